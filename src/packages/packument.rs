//! The two packument documents of a package: the full document (`application/json`) and npm's
//! abbreviated install document (`application/vnd.npm.install-v1+json`).
//!
//! Neither is stored whole. Each version row keeps its manifest and its abbreviation as JSON
//! text, and a document is assembled by splicing those fragments, without parsing them, when it
//! is read; the daemon caches the bytes under the package's revision, which every write bumps.
//! So a publish writes only its own rows, whatever the number of versions before it.
//!
//! Tarball URLs are stored with a placeholder origin, [`TARBALL_ORIGIN`]; whoever serves the
//! bytes puts in the registry's public URL (configured, or taken from the request's Host).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::store::{Db, PackumentRow, ReadState, Store};

/// Which representation of a packument: the full document or npm's abbreviated ("corgi") one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PackumentFlavor {
    Full,
    Abbreviated,
}

/// Stands for the registry's origin inside stored tarball URLs.
pub const TARBALL_ORIGIN: &str = "{{registry-origin}}";

/// Fields of a version manifest that the abbreviated document keeps (npm's registry docs).
const ABBREVIATED_FIELDS: &[&str] = &[
    "name",
    "version",
    "deprecated",
    "dependencies",
    "optionalDependencies",
    "devDependencies",
    "bundleDependencies",
    "bundledDependencies",
    "peerDependencies",
    "peerDependenciesMeta",
    "acceptDependencies",
    "bin",
    "directories",
    "dist",
    "engines",
    "_hasShrinkwrap",
    "hasInstallScript",
    "cpu",
    "os",
    "libc",
    "funding",
    "license",
];

/// Fields copied from the `latest` version to the top of the full document.
const TOP_LEVEL_FIELDS: &[&str] = &[
    "description",
    "homepage",
    "keywords",
    "repository",
    "author",
    "bugs",
    "license",
];

/// Everything a packument is built from, read in one snapshot.
pub struct PackageSnapshot<'a> {
    pub name: &'a str,
    pub created_at: &'a str,
    pub modified_at: &'a str,
    pub rev: &'a str,
    pub dist_tags: &'a BTreeMap<String, String>,
    /// (name, email)
    pub maintainers: &'a [(String, String)],
    /// Every version ever published, in publication order, with fragments of the wanted flavor.
    pub versions: &'a [PackumentRow],
    /// The full manifest of the version the top-level fields come from (`latest`), if any.
    pub latest_manifest: Option<&'a str>,
    pub latest_readme: &'a str,
    /// Users who starred the package.
    pub stargazers: &'a [String],
    /// When the whole package was unpublished, if it was.
    pub unpublished_at: Option<&'a str>,
}

/// One assembled document.
pub struct Packument {
    pub json: Vec<u8>,
    pub etag: String,
    /// The package was fully unpublished: the document is its tombstone.
    pub tombstone: bool,
}

pub fn revision(rev_seq: i64, name: &str, modified_at: &str) -> String {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([0])
        .chain_update(modified_at.as_bytes())
        .chain_update(rev_seq.to_le_bytes())
        .finalize();
    format!("{rev_seq}-{}", hex::encode(&digest[..8]))
}

/// The ETag of a document: its revision, which every write to the package changes.
pub fn etag(flavor: PackumentFlavor, rev: &str) -> String {
    let tag = match flavor {
        PackumentFlavor::Full => 'f',
        PackumentFlavor::Abbreviated => 'a',
    };
    format!("\"{tag}{rev}\"")
}

/// The version the top-level fields and the readme come from: `latest` if it is live, else the
/// last one published.
fn latest_row<'r>(
    dist_tags: &BTreeMap<String, String>,
    rows: &'r [PackumentRow],
) -> Option<&'r PackumentRow> {
    let mut live = rows.iter().filter(|r| r.deleted_at.is_none());
    dist_tags
        .get("latest")
        .and_then(|tag| live.clone().find(|r| &r.version == tag))
        .or_else(|| live.next_back())
}

/// A JSON object written field by field; values are JSON text spliced in as they are.
struct ObjectWriter {
    out: Vec<u8>,
    empty: bool,
}

impl ObjectWriter {
    fn with_capacity(capacity: usize) -> ObjectWriter {
        let mut out = Vec::with_capacity(capacity + 2);
        out.push(b'{');
        ObjectWriter { out, empty: true }
    }

    fn raw(&mut self, key: &str, json: &[u8]) -> Result<()> {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        serde_json::to_writer(&mut self.out, key).map_err(serialise_error)?;
        self.out.push(b':');
        self.out.extend_from_slice(json);
        Ok(())
    }

    fn value(&mut self, key: &str, value: &impl serde::Serialize) -> Result<()> {
        let json = serde_json::to_vec(value).map_err(serialise_error)?;
        self.raw(key, &json)
    }

    fn finish(mut self) -> Vec<u8> {
        self.out.push(b'}');
        self.out
    }
}

fn serialise_error(e: serde_json::Error) -> Error {
    Error::Storage(format!("cannot serialise packument: {e}"))
}

pub fn build(snapshot: &PackageSnapshot<'_>, flavor: PackumentFlavor) -> Result<Packument> {
    let live: Vec<&PackumentRow> = snapshot
        .versions
        .iter()
        .filter(|v| v.deleted_at.is_none())
        .collect();
    let mut time = Map::new();
    time.insert("created".into(), snapshot.created_at.into());
    time.insert("modified".into(), snapshot.modified_at.into());
    for v in snapshot.versions {
        time.insert(v.version.clone(), v.published_at.clone().into());
    }
    let maintainers: Vec<Value> = snapshot
        .maintainers
        .iter()
        .map(|(name, email)| json!({ "name": name, "email": email }))
        .collect();
    if let (Some(unpublished_at), true) = (snapshot.unpublished_at, live.is_empty()) {
        return tombstone(snapshot, flavor, time, maintainers, unpublished_at);
    }

    let fragments_len: usize = live
        .iter()
        .map(|v| v.version.len() + v.fragment.as_ref().map_or(0, String::len) + 4)
        .sum();
    let mut versions = ObjectWriter::with_capacity(fragments_len);
    for row in &live {
        let fragment = row.fragment.as_deref().ok_or_else(|| {
            Error::Storage(format!(
                "version {} of {} has no abbreviated manifest yet",
                row.version, snapshot.name
            ))
        })?;
        versions.raw(&row.version, fragment.as_bytes())?;
    }
    let versions = versions.finish();

    let mut doc = ObjectWriter::with_capacity(versions.len() + 64 * snapshot.versions.len());
    match flavor {
        PackumentFlavor::Full => {
            doc.value("_id", &snapshot.name)?;
            doc.value("_rev", &snapshot.rev)?;
            doc.value("name", &snapshot.name)?;
            let latest = snapshot.latest_manifest.map(parse_manifest).transpose()?;
            if let Some(manifest) = &latest {
                for field in TOP_LEVEL_FIELDS {
                    if let Some(value) = manifest.get(*field) {
                        doc.value(field, value)?;
                    }
                }
            }
            doc.value("dist-tags", snapshot.dist_tags)?;
            doc.raw("versions", &versions)?;
            doc.value("time", &time)?;
            doc.value("maintainers", &maintainers)?;
            if let Some(manifest) = &latest {
                doc.value("readme", &snapshot.latest_readme)?;
                if let Some(file) = manifest.get("readmeFilename") {
                    doc.value("readmeFilename", file)?;
                }
            }
            let users: Map<String, Value> = snapshot
                .stargazers
                .iter()
                .map(|name| (name.clone(), Value::Bool(true)))
                .collect();
            doc.value("users", &users)?;
        }
        PackumentFlavor::Abbreviated => {
            doc.value("name", &snapshot.name)?;
            doc.value("modified", &snapshot.modified_at)?;
            doc.value("dist-tags", snapshot.dist_tags)?;
            doc.raw("versions", &versions)?;
            doc.value("time", &time)?;
        }
    }
    Ok(Packument {
        json: doc.finish(),
        etag: etag(flavor, snapshot.rev),
        tombstone: false,
    })
}

/// The document of a fully unpublished package: its burnt versions stay listed in `time`, and
/// `time.unpublished` says when and which versions went (npm shows "Unpublished on …").
fn tombstone(
    snapshot: &PackageSnapshot<'_>,
    flavor: PackumentFlavor,
    mut time: Map<String, Value>,
    maintainers: Vec<Value>,
    unpublished_at: &str,
) -> Result<Packument> {
    let burnt: Vec<&str> = snapshot
        .versions
        .iter()
        .map(|v| v.version.as_str())
        .collect();
    time.insert(
        "unpublished".into(),
        json!({ "time": unpublished_at, "versions": burnt, "maintainers": maintainers }),
    );
    let doc = json!({
        "_id": snapshot.name,
        "_rev": snapshot.rev,
        "name": snapshot.name,
        "time": time,
    });
    Ok(Packument {
        json: serde_json::to_vec(&doc).map_err(serialise_error)?,
        etag: etag(flavor, snapshot.rev),
        tombstone: true,
    })
}

fn parse_manifest(text: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Error::Storage(
            "a stored manifest is not a JSON object".to_string(),
        )),
    }
}

/// The abbreviated form of a stored manifest, as JSON text.
pub fn abbreviate_manifest(manifest: &str) -> Result<String> {
    Ok(abbreviate(&parse_manifest(manifest)?).to_string())
}

fn abbreviate(manifest: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    for field in ABBREVIATED_FIELDS {
        if let Some(value) = manifest.get(*field) {
            out.insert((*field).into(), value.clone());
        }
    }
    if !out.contains_key("hasInstallScript") && has_install_script(manifest) {
        out.insert("hasInstallScript".into(), true.into());
    }
    Value::Object(out)
}

fn has_install_script(manifest: &Map<String, Value>) -> bool {
    manifest
        .get("scripts")
        .and_then(Value::as_object)
        .is_some_and(|scripts| {
            ["preinstall", "install", "postinstall"]
                .iter()
                .any(|s| scripts.contains_key(*s))
        })
}

/// Puts the registry's origin (`http://host:port`, no trailing slash) into stored bytes.
pub fn with_origin(stored: &[u8], origin: &str) -> Vec<u8> {
    let marker = TARBALL_ORIGIN.as_bytes();
    let mut out = Vec::with_capacity(stored.len() + 16 * origin.len());
    let mut rest = stored;
    while let Some(at) = find(rest, marker) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(origin.as_bytes());
        rest = &rest[at + marker.len()..];
    }
    out.extend_from_slice(rest);
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The current ETag of a package's document (`None`: no such package) from its read state
/// (one indexed statement, or memory: a cache tells whether its copy is current without
/// assembling the document): the block first, then `may_read` with the package's id if it is
/// restricted (a reader who may not see it gets a 404), then the ETag.
pub fn etag_of_state(
    state: &ReadState<(i64, String)>,
    name: &str,
    flavor: PackumentFlavor,
    may_read: impl FnOnce(i64) -> Result<()>,
) -> Result<Option<String>> {
    if let Some(reason) = &state.block_reason {
        return Err(crate::packages::blocks::blocked(name, reason));
    }
    if let (Some(id), true) = (state.package_id, state.restricted) {
        may_read(id)?;
    }
    Ok(state
        .found
        .as_ref()
        .map(|(rev_seq, modified_at)| etag(flavor, &revision(*rev_seq, name, modified_at))))
}

/// Assembles one document of a package from its rows as they are now in `db` (`None`: no such
/// package).
pub fn build_current(
    db: &Db<'_>,
    name: &str,
    flavor: PackumentFlavor,
) -> Result<Option<Packument>> {
    let Some(package) = db.package_by_name(name)? else {
        return Ok(None);
    };
    let rev = revision(package.rev_seq, name, &package.modified_at);
    let dist_tags = db.dist_tags(package.id)?;
    let versions = db.packument_rows(package.id, flavor)?;
    let maintainers = db.maintainers(package.id)?;
    let (latest, latest_readme, stargazers) = match flavor {
        PackumentFlavor::Full => {
            let latest = latest_row(&dist_tags, &versions);
            let readme = match latest {
                Some(row) => db.readme(package.id, &row.version)?,
                None => String::new(),
            };
            (latest, readme, db.stargazers(package.id)?)
        }
        PackumentFlavor::Abbreviated => (None, String::new(), Vec::new()),
    };
    build(
        &PackageSnapshot {
            name,
            created_at: &package.created_at,
            modified_at: &package.modified_at,
            rev: &rev,
            dist_tags: &dist_tags,
            maintainers: &maintainers,
            versions: &versions,
            latest_manifest: latest.and_then(|row| row.fragment.as_deref()),
            latest_readme: &latest_readme,
            stargazers: &stargazers,
            unpublished_at: package.unpublished_at.as_deref(),
        },
        flavor,
    )
    .map(Some)
}

/// Computes the abbreviations not computed yet, of one package or of all.
pub fn fill_abbreviations(db: &Db<'_>, package_id: Option<i64>) -> Result<()> {
    for (version_id, manifest) in db.unabbreviated_versions(package_id)? {
        db.set_abbreviation(version_id, &abbreviate_manifest(&manifest)?)?;
    }
    Ok(())
}

/// Versions stored before abbreviations were (or written by an older binary) get theirs once,
/// when the registry opens; a read-only look first, so opening costs no write when none is due.
pub fn fill_pending(store: &Store) -> Result<()> {
    if store.read(|db| db.unabbreviated_versions(None))?.is_empty() {
        return Ok(());
    }
    store.write(|db| fill_abbreviations(db, None))
}

/// Ends every write that changes a package, inside its transaction: bumps the revision (which
/// is the documents' ETag), computes the abbreviations of new or changed versions, and updates
/// the search index and the changes feed.
pub fn refresh(db: &Db<'_>, package_id: i64, name: &str, now: &str) -> Result<String> {
    let rev_seq = db.bump_package_revision(package_id, now)?;
    fill_abbreviations(db, Some(package_id))?;
    crate::packages::search::reindex(db, package_id, name)?;
    db.record_change(name, "packument", now)?;
    Ok(revision(rev_seq, name, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(v: &str) -> String {
        json!({
            "name": "foo", "version": v, "description": format!("foo at {v}"),
            "scripts": {"postinstall": "node x"}, "dependencies": {"bar": "^1"},
            "readmeFilename": "README.md",
            "dist": {"tarball": format!("{TARBALL_ORIGIN}/foo/-/foo-{v}.tgz"), "shasum": "x"}
        })
        .to_string()
    }

    fn row(v: &str, deleted: bool, flavor: PackumentFlavor) -> Result<PackumentRow> {
        let manifest = manifest(v);
        Ok(PackumentRow {
            version: v.into(),
            fragment: Some(match flavor {
                PackumentFlavor::Full => manifest,
                PackumentFlavor::Abbreviated => abbreviate_manifest(&manifest)?,
            }),
            published_at: format!("2024-01-0{}T00:00:00.000Z", v.len()),
            deleted_at: deleted.then(|| "2024-02-01T00:00:00.000Z".to_string()),
        })
    }

    fn build_foo(flavor: PackumentFlavor, unpublished_at: Option<&str>) -> Result<Value> {
        let tags = BTreeMap::from([("latest".to_string(), "1.0.0".to_string())]);
        let deleted = unpublished_at.is_some();
        let versions = [row("1.0.0", deleted, flavor)?, row("0.9.0", true, flavor)?];
        let maintainers = [("alice".to_string(), "a@example.com".to_string())];
        let latest = manifest("1.0.0");
        let built = build(
            &PackageSnapshot {
                name: "foo",
                created_at: "2024-01-01T00:00:00.000Z",
                modified_at: "2024-03-01T00:00:00.000Z",
                rev: "3-abc",
                dist_tags: &tags,
                maintainers: &maintainers,
                versions: &versions,
                latest_manifest: Some(&latest),
                latest_readme: "# foo 1.0.0",
                stargazers: &["bob".to_string()],
                unpublished_at,
            },
            flavor,
        )?;
        assert_eq!(built.tombstone, deleted);
        assert_eq!(built.etag, etag(flavor, "3-abc"));
        serde_json::from_slice(&built.json).map_err(|e| Error::Storage(e.to_string()))
    }

    #[test]
    fn full_and_abbreviated_documents_have_what_clients_read() -> Result<()> {
        let full = build_foo(PackumentFlavor::Full, None)?;
        assert_eq!(full["_rev"], "3-abc");
        assert_eq!(full["description"], "foo at 1.0.0");
        assert_eq!(full["readme"], "# foo 1.0.0");
        assert_eq!(full["maintainers"][0]["name"], "alice");
        assert_eq!(full["users"]["bob"], true);
        assert_eq!(
            full["versions"]["1.0.0"],
            serde_json::from_str::<Value>(&manifest("1.0.0")).unwrap_or_default()
        );
        assert!(
            full["versions"].get("0.9.0").is_none(),
            "unpublished versions are not listed"
        );
        assert!(
            full["time"].get("0.9.0").is_some(),
            "but their publication time is kept"
        );
        let corgi = build_foo(PackumentFlavor::Abbreviated, None)?;
        assert_eq!(corgi["modified"], "2024-03-01T00:00:00.000Z");
        assert_eq!(corgi["versions"]["1.0.0"]["hasInstallScript"], true);
        assert_eq!(corgi["versions"]["1.0.0"]["dependencies"]["bar"], "^1");
        assert!(corgi["versions"]["1.0.0"].get("description").is_none());
        assert!(corgi.get("readme").is_none());
        Ok(())
    }

    #[test]
    fn a_fully_unpublished_package_is_a_tombstone_in_both_flavors() -> Result<()> {
        for flavor in [PackumentFlavor::Full, PackumentFlavor::Abbreviated] {
            let doc = build_foo(flavor, Some("2024-04-01T00:00:00.000Z"))?;
            assert!(doc.get("versions").is_none());
            assert_eq!(
                doc["time"]["unpublished"]["versions"],
                json!(["1.0.0", "0.9.0"])
            );
        }
        Ok(())
    }

    #[test]
    fn keys_that_need_escaping_are_escaped() -> Result<()> {
        let tags = BTreeMap::from([("we\"ird".to_string(), "1.0.0".to_string())]);
        let versions = [row("1.0.0", false, PackumentFlavor::Abbreviated)?];
        let built = build(
            &PackageSnapshot {
                name: "foo",
                created_at: "c",
                modified_at: "m",
                rev: "1-a",
                dist_tags: &tags,
                maintainers: &[],
                versions: &versions,
                latest_manifest: None,
                latest_readme: "",
                stargazers: &[],
                unpublished_at: None,
            },
            PackumentFlavor::Abbreviated,
        )?;
        let doc: Value =
            serde_json::from_slice(&built.json).map_err(|e| Error::Storage(e.to_string()))?;
        assert_eq!(doc["dist-tags"]["we\"ird"], "1.0.0");
        Ok(())
    }

    #[test]
    fn origin_is_put_into_every_tarball_url() {
        let stored = format!("{{\"a\":\"{TARBALL_ORIGIN}/x\",\"b\":\"{TARBALL_ORIGIN}/y\"}}");
        let out = with_origin(stored.as_bytes(), "http://h:1");
        assert_eq!(out, br#"{"a":"http://h:1/x","b":"http://h:1/y"}"#.to_vec());
    }
}
