//! Looking inside a published tarball: it must be a gzip'd tar holding `package/package.json`,
//! with no entry that escapes the package directory, and it must not inflate without bound.
//! Like npm, which strips the first path component when it unpacks, the top directory may have
//! another name than `package` (DefinitelyTyped's `@types/node` tarballs use `node/`).

use std::io::Read;
use std::path::Component;

use flate2::read::GzDecoder;
use serde_json::Value;

use crate::error::{Error, Result};

/// A tarball may inflate to at most this many bytes (a gzip bomb stops here).
pub const MAX_UNPACKED_BYTES: u64 = 512 * 1024 * 1024;
const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug)]
pub struct TarballContents {
    pub manifest: Value,
    pub file_count: u64,
    pub unpacked_size: u64,
}

pub fn inspect(bytes: &[u8]) -> Result<TarballContents> {
    let bad = |why: String| Error::bad_request(format!("the tarball is not valid: {why}"));
    let limited = GzDecoder::new(bytes).take(MAX_UNPACKED_BYTES + 1);
    let mut archive = tar::Archive::new(limited);
    let mut manifest = None;
    let mut file_count = 0u64;
    let mut unpacked_size = 0u64;
    // The top directory of the first entry; npm strips it, whatever its name.
    let mut root: Option<std::ffi::OsString> = None;
    let entries = archive
        .entries()
        .map_err(|e| bad(format!("not a gzip'd tar archive ({e})")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(format!("not a gzip'd tar archive ({e})")))?;
        let path = entry
            .path()
            .map_err(|e| bad(format!("an entry has an unreadable path ({e})")))?
            .into_owned();
        if path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(bad(format!(
                "entry {:?} points outside the package directory",
                path.display().to_string()
            )));
        }
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            return Err(bad(format!(
                "entry {:?} is a link; npm packages contain plain files only",
                path.display().to_string()
            )));
        }
        if kind.is_file() {
            file_count += 1;
            unpacked_size += entry.size();
            if unpacked_size > MAX_UNPACKED_BYTES {
                return Err(bad(format!(
                    "it unpacks to more than {MAX_UNPACKED_BYTES} bytes"
                )));
            }
        }
        let normal: Vec<_> = path
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect();
        if let (None, Some(first)) = (&root, normal.first()) {
            root = Some(first.as_os_str().to_os_string());
        }
        if kind.is_file()
            && normal.len() == 2
            && root.as_deref() == Some(normal[0].as_os_str())
            && normal[1].as_os_str() == "package.json"
        {
            let mut text = String::new();
            (&mut entry)
                .take(MAX_MANIFEST_BYTES)
                .read_to_string(&mut text)
                .map_err(|e| bad(format!("package/package.json is not UTF-8 text ({e})")))?;
            let parsed: Value = serde_json::from_str(&text)
                .map_err(|e| bad(format!("package/package.json is not valid JSON ({e})")))?;
            manifest = Some(parsed);
        }
    }
    // Reaching the end of the tar stream is not reaching the end of the gzip stream; read the
    // remainder so a bomb hidden after the tar end-marker is still caught by the limit.
    let mut rest = archive.into_inner();
    let trailing = std::io::copy(&mut rest, &mut std::io::sink())
        .map_err(|e| bad(format!("broken gzip data ({e})")))?;
    if rest.limit() == 0 && trailing > 0 {
        return Err(bad(format!(
            "it unpacks to more than {MAX_UNPACKED_BYTES} bytes"
        )));
    }
    let manifest = manifest.ok_or_else(|| bad("it has no package/package.json".into()))?;
    Ok(TarballContents {
        manifest,
        file_count,
        unpacked_size,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;

    /// A gzip'd tar with the given (path, content) files.
    pub fn build_tarball(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        for (path, content) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            // set_path refuses `..`; write the raw name so hostile archives can be built too.
            let name = path.as_bytes();
            header.as_old_mut().name[..name.len()].copy_from_slice(name);
            header.set_cksum();
            builder.append(&header, *content).ok();
        }
        builder
            .into_inner()
            .and_then(|gz| gz.finish())
            .unwrap_or_default()
    }

    #[test]
    fn reads_the_manifest_and_counts_files() -> Result<()> {
        let tgz = build_tarball(&[
            ("package/package.json", br#"{"name":"a","version":"1.0.0"}"#),
            ("package/index.js", b"module.exports = 1;\n"),
        ]);
        let contents = inspect(&tgz)?;
        assert_eq!(contents.manifest["name"], "a");
        assert_eq!(contents.file_count, 2);
        assert_eq!(contents.unpacked_size, 30 + 20);
        Ok(())
    }

    #[test]
    fn refuses_escaping_paths_missing_manifest_and_garbage() {
        let escaping = build_tarball(&[
            ("package/package.json", br#"{"name":"a","version":"1.0.0"}"#),
            ("package/../../evil", b"x"),
        ]);
        let err = inspect(&escaping)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("outside the package"), "{err}");
        let absolute = build_tarball(&[("/etc/passwd", b"x")]);
        assert!(inspect(&absolute).is_err());
        let no_manifest = build_tarball(&[("package/index.js", b"x")]);
        let err = inspect(&no_manifest)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("no package/package.json"), "{err}");
        assert!(inspect(b"not gzip at all").is_err());
        let bad_json = build_tarball(&[("package/package.json", b"{nope")]);
        assert!(inspect(&bad_json).is_err());
    }

    #[test]
    fn the_top_directory_may_have_another_name_as_in_types_packages() -> Result<()> {
        let types_node = build_tarball(&[
            (
                "node/package.json",
                br#"{"name":"@types/node","version":"1.0.0"}"#,
            ),
            ("node/index.d.ts", b"export {};\n"),
        ]);
        let contents = inspect(&types_node)?;
        assert_eq!(contents.manifest["name"], "@types/node");
        // Only the first entry's directory counts: a package.json elsewhere is not the manifest.
        let stray = build_tarball(&[
            ("node/index.d.ts", b"export {};\n"),
            ("other/package.json", br#"{"name":"x","version":"1.0.0"}"#),
        ]);
        assert!(inspect(&stray).is_err());
        Ok(())
    }
}
