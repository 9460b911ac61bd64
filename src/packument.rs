//! Building the two packument documents of a package from its stored rows: the full document
//! (`application/json`) and npm's abbreviated install document
//! (`application/vnd.npm.install-v1+json`). Both are built once per write and stored as bytes.
//!
//! Tarball URLs are stored with a placeholder origin, [`TARBALL_ORIGIN`]; whoever serves the
//! bytes puts in the registry's public URL (configured, or taken from the request's Host).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::store::VersionRecord;

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

/// Everything a packument is built from.
pub struct PackageSnapshot<'a> {
    pub name: &'a str,
    pub created_at: &'a str,
    pub modified_at: &'a str,
    pub rev: &'a str,
    pub dist_tags: &'a BTreeMap<String, String>,
    /// (name, email)
    pub maintainers: &'a [(String, String)],
    pub versions: &'a [VersionRecord],
    /// Users who starred the package.
    pub stargazers: &'a [String],
    /// When the whole package was unpublished, if it was.
    pub unpublished_at: Option<&'a str>,
}

pub struct BuiltPackument {
    pub full: Vec<u8>,
    pub full_etag: String,
    pub abbreviated: Vec<u8>,
    pub abbreviated_etag: String,
    /// The package was fully unpublished: both documents are its tombstone.
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

pub fn etag_of(flavor_tag: &str, bytes: &[u8]) -> String {
    format!(
        "\"{flavor_tag}{}\"",
        hex::encode(&Sha256::digest(bytes)[..16])
    )
}

pub fn build(snapshot: &PackageSnapshot<'_>) -> Result<BuiltPackument> {
    let live: Vec<(&VersionRecord, Map<String, Value>)> = snapshot
        .versions
        .iter()
        .filter(|v| v.deleted_at.is_none())
        .map(|v| Ok((v, parse_manifest(v)?)))
        .collect::<Result<_>>()?;

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
        return tombstone(snapshot, time, maintainers, unpublished_at);
    }

    let latest = snapshot
        .dist_tags
        .get("latest")
        .and_then(|tag| live.iter().find(|(v, _)| &v.version == tag))
        .or_else(|| live.last());

    let mut full = Map::new();
    full.insert("_id".into(), snapshot.name.into());
    full.insert("_rev".into(), snapshot.rev.into());
    full.insert("name".into(), snapshot.name.into());
    if let Some((_, manifest)) = latest {
        for field in TOP_LEVEL_FIELDS {
            if let Some(value) = manifest.get(*field) {
                full.insert((*field).into(), value.clone());
            }
        }
    }
    full.insert("dist-tags".into(), json!(snapshot.dist_tags));
    let mut versions = Map::new();
    for (record, manifest) in &live {
        versions.insert(record.version.clone(), Value::Object(manifest.clone()));
    }
    full.insert("versions".into(), Value::Object(versions));
    full.insert("time".into(), Value::Object(time.clone()));
    full.insert("maintainers".into(), Value::Array(maintainers));
    if let Some((record, manifest)) = latest {
        full.insert("readme".into(), record.readme.clone().into());
        if let Some(file) = manifest.get("readmeFilename") {
            full.insert("readmeFilename".into(), file.clone());
        }
    }
    let users: Map<String, Value> = snapshot
        .stargazers
        .iter()
        .map(|name| (name.clone(), Value::Bool(true)))
        .collect();
    full.insert("users".into(), Value::Object(users));

    let mut abbreviated = Map::new();
    abbreviated.insert("name".into(), snapshot.name.into());
    abbreviated.insert("modified".into(), snapshot.modified_at.into());
    abbreviated.insert("dist-tags".into(), json!(snapshot.dist_tags));
    let mut abbreviated_versions = Map::new();
    for (record, manifest) in &live {
        abbreviated_versions.insert(record.version.clone(), abbreviate(manifest));
    }
    abbreviated.insert("versions".into(), Value::Object(abbreviated_versions));
    abbreviated.insert("time".into(), Value::Object(time));

    let full = to_bytes(&full)?;
    let abbreviated = to_bytes(&abbreviated)?;
    Ok(BuiltPackument {
        full_etag: etag_of("f", &full),
        full,
        abbreviated_etag: etag_of("a", &abbreviated),
        abbreviated,
        tombstone: false,
    })
}

/// The document of a fully unpublished package: its burnt versions stay listed in `time`, and
/// `time.unpublished` says when and which versions went (npm shows "Unpublished on …").
fn tombstone(
    snapshot: &PackageSnapshot<'_>,
    mut time: Map<String, Value>,
    maintainers: Vec<Value>,
    unpublished_at: &str,
) -> Result<BuiltPackument> {
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
    let bytes = serde_json::to_vec(&doc)
        .map_err(|e| Error::Storage(format!("cannot serialise tombstone: {e}")))?;
    Ok(BuiltPackument {
        full_etag: etag_of("f", &bytes),
        abbreviated_etag: etag_of("a", &bytes),
        abbreviated: bytes.clone(),
        full: bytes,
        tombstone: true,
    })
}

fn parse_manifest(version: &VersionRecord) -> Result<Map<String, Value>> {
    match serde_json::from_str(&version.manifest) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Error::Storage(format!(
            "stored manifest of version {} is not a JSON object",
            version.version
        ))),
    }
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

fn to_bytes(doc: &Map<String, Value>) -> Result<Vec<u8>> {
    serde_json::to_vec(doc).map_err(|e| Error::Storage(format!("cannot serialise packument: {e}")))
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

/// Builds both documents of a package from its rows as they are now in `db`; returns them
/// with the revision they carry.
pub fn build_current(
    db: &crate::store::Db<'_>,
    package_id: i64,
    name: &str,
) -> Result<(BuiltPackument, String)> {
    let package = db
        .package_by_name(name)?
        .ok_or_else(|| Error::Storage(format!("package {name} vanished mid-transaction")))?;
    let rev = revision(package.rev_seq, name, &package.modified_at);
    let dist_tags = db.dist_tags(package_id)?;
    let maintainers = db.maintainers(package_id)?;
    let versions = db.versions(package_id)?;
    let stargazers = db.stargazers(package_id)?;
    let built = build(&PackageSnapshot {
        name,
        created_at: &package.created_at,
        modified_at: &package.modified_at,
        rev: &rev,
        dist_tags: &dist_tags,
        maintainers: &maintainers,
        versions: &versions,
        stargazers: &stargazers,
        unpublished_at: package.unpublished_at.as_deref(),
    })?;
    Ok((built, rev))
}

/// Rebuilds and stores both documents of a package inside the caller's write transaction,
/// after bumping its revision: every write that changes a package ends with this.
pub fn refresh(
    db: &crate::store::Db<'_>,
    package_id: i64,
    name: &str,
    now: &str,
) -> Result<String> {
    db.bump_package_revision(package_id, now)?;
    let (built, rev) = build_current(db, package_id, name)?;
    db.save_packument(&crate::store::NewPackument {
        package_id,
        name,
        rev: &rev,
        full_json: &built.full,
        full_etag: &built.full_etag,
        abbrev_json: &built.abbreviated,
        abbrev_etag: &built.abbreviated_etag,
        tombstone: built.tombstone,
    })?;
    // The search index is part of the package: rewritten in this same transaction.
    crate::search::reindex(db, package_id, name)?;
    db.record_change(name, "packument", now)?;
    Ok(rev)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(v: &str, deleted: bool) -> VersionRecord {
        VersionRecord {
            version: v.into(),
            manifest: json!({
                "name": "foo", "version": v, "description": format!("foo at {v}"),
                "scripts": {"postinstall": "node x"}, "dependencies": {"bar": "^1"},
                "readmeFilename": "README.md",
                "dist": {"tarball": format!("{TARBALL_ORIGIN}/foo/-/foo-{v}.tgz"), "shasum": "x"}
            })
            .to_string(),
            readme: format!("# foo {v}"),
            tarball_sha512: "0".repeat(128),
            tarball_sha1: "0".repeat(40),
            tarball_size: 10,
            published_at: format!("2024-01-0{}T00:00:00.000Z", v.len()),
            deleted_at: deleted.then(|| "2024-02-01T00:00:00.000Z".to_string()),
        }
    }

    #[test]
    fn full_and_abbreviated_documents_have_what_clients_read() -> Result<()> {
        let tags = BTreeMap::from([("latest".to_string(), "1.0.0".to_string())]);
        let versions = [version("1.0.0", false), version("0.9.0", true)];
        let maintainers = [("alice".to_string(), "a@example.com".to_string())];
        let built = build(&PackageSnapshot {
            name: "foo",
            created_at: "2024-01-01T00:00:00.000Z",
            modified_at: "2024-03-01T00:00:00.000Z",
            rev: "3-abc",
            dist_tags: &tags,
            maintainers: &maintainers,
            versions: &versions,
            stargazers: &["bob".to_string()],
            unpublished_at: None,
        })?;
        let full: Value = serde_json::from_slice(&built.full).unwrap_or_default();
        assert_eq!(full["_rev"], "3-abc");
        assert_eq!(full["description"], "foo at 1.0.0");
        assert_eq!(full["readme"], "# foo 1.0.0");
        assert_eq!(full["maintainers"][0]["name"], "alice");
        assert_eq!(full["users"]["bob"], true);
        assert!(
            full["versions"].get("0.9.0").is_none(),
            "unpublished versions are not listed"
        );
        assert!(
            full["time"].get("0.9.0").is_some(),
            "but their publication time is kept"
        );
        let corgi: Value = serde_json::from_slice(&built.abbreviated).unwrap_or_default();
        assert_eq!(corgi["modified"], "2024-03-01T00:00:00.000Z");
        assert_eq!(corgi["versions"]["1.0.0"]["hasInstallScript"], true);
        assert!(corgi["versions"]["1.0.0"].get("description").is_none());
        assert!(corgi.get("readme").is_none());
        assert_ne!(built.full_etag, built.abbreviated_etag);
        Ok(())
    }

    #[test]
    fn origin_is_put_into_every_tarball_url() {
        let stored = format!("{{\"a\":\"{TARBALL_ORIGIN}/x\",\"b\":\"{TARBALL_ORIGIN}/y\"}}");
        let out = with_origin(stored.as_bytes(), "http://h:1");
        assert_eq!(out, br#"{"a":"http://h:1/x","b":"http://h:1/y"}"#.to_vec());
    }
}
