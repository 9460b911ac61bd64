//! An upstream's packument made ours: parsed once when it arrives, its tarball URLs pointed at
//! this registry (under the placeholder origin the daemon fills in, as for local documents),
//! and each version's original tarball URL and checksums kept aside for the tarball fetch.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::packages::names::PackageName;
use crate::packages::packument::TARBALL_ORIGIN;

/// A document ready to cache.
pub struct Prepared {
    pub body: Vec<u8>,
    /// Ours: a digest of the body.
    pub etag: String,
    /// JSON `{version: [url, integrity, shasum]}`.
    pub dists: String,
    /// What a client installing the package asks for next.
    pub outline: Outline,
}

/// What an install reads of a document to choose a version and go on: the versions, the one
/// `latest` names, and what `latest` depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outline {
    pub versions: Vec<String>,
    pub latest: Option<String>,
    /// Name → range, an alias (`npm:real@1`) as its real name and range.
    pub latest_dependencies: BTreeMap<String, String>,
}

/// Where a version's tarball is upstream, and what it must hash to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dist {
    pub url: String,
    /// `sha512-…` (or another SRI hash); empty when the upstream gave none.
    pub integrity: String,
    /// Hex sha1; empty when the upstream gave none.
    pub shasum: String,
}

impl Dist {
    pub fn from_stored(text: &str) -> Option<Dist> {
        let parts: Vec<String> = serde_json::from_str(text).ok()?;
        match parts.as_slice() {
            [url, integrity, shasum] => Some(Dist {
                url: url.clone(),
                integrity: integrity.clone(),
                shasum: shasum.clone(),
            }),
            _ => None,
        }
    }
}

/// Makes an upstream document (`bytes`) ours. `upstream_url` resolves relative tarball URLs.
pub fn prepare(name: &PackageName, upstream_url: &str, bytes: &[u8]) -> Result<Prepared, String> {
    let mut doc: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("the document is not JSON: {e}"))?;
    let map = doc
        .as_object_mut()
        .ok_or("the document is not a JSON object")?;
    if let Some(other) = map.get("name").and_then(Value::as_str) {
        if other != name.as_str() {
            return Err(format!("the document is of {other:?}, not {name}"));
        }
    }
    map.remove("_attachments");
    let mut dists = Map::new();
    if let Some(versions) = map.get_mut("versions").and_then(Value::as_object_mut) {
        for (version, manifest) in versions.iter_mut() {
            let Some(dist) = manifest.get_mut("dist").and_then(Value::as_object_mut) else {
                continue;
            };
            let text = |key: &str| {
                dist.get(key)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let original = text("tarball");
            if original.is_empty() {
                continue;
            }
            let url = if original.starts_with('/') {
                format!("{}{original}", origin_of(upstream_url))
            } else {
                original
            };
            dists.insert(
                version.clone(),
                Value::from(vec![url, text("integrity"), text("shasum")]),
            );
            dist.insert(
                "tarball".into(),
                Value::from(format!(
                    "{TARBALL_ORIGIN}/{name}/-/{}-{version}.tgz",
                    name.bare()
                )),
            );
        }
    }
    let outline = outline(map);
    let body = serde_json::to_vec(&doc).map_err(|e| format!("cannot serialise: {e}"))?;
    let digest = Sha256::digest(&body);
    Ok(Prepared {
        etag: format!("\"u{}\"", hex::encode(&digest[..12])),
        body,
        dists: Value::Object(dists).to_string(),
        outline,
    })
}

fn outline(doc: &Map<String, Value>) -> Outline {
    let versions = doc.get("versions").and_then(Value::as_object);
    let latest = doc
        .get("dist-tags")
        .and_then(|tags| tags.get("latest"))
        .and_then(Value::as_str);
    Outline {
        versions: versions.map_or_else(Vec::new, |v| v.keys().cloned().collect()),
        latest: latest.map(str::to_string),
        latest_dependencies: versions
            .zip(latest)
            .and_then(|(versions, latest)| versions.get(latest))
            .map(|manifest| manifest_dependencies(manifest).collect())
            .unwrap_or_default(),
    }
}

/// The names the given versions depend on (`dependencies`, `optionalDependencies`,
/// `peerDependencies`), an alias (`npm:real@1`) counting as its real name.
pub fn dependencies_of(versions: &Map<String, Value>, wanted: &[String]) -> BTreeSet<String> {
    wanted
        .iter()
        .filter_map(|version| versions.get(version))
        .flat_map(manifest_dependencies)
        .map(|(name, _)| name)
        .collect()
}

/// A manifest's dependencies of every kind an install resolves, as (name, range); an alias
/// (`npm:real@1`) as its real name and range.
fn manifest_dependencies(manifest: &Value) -> impl Iterator<Item = (String, String)> + '_ {
    ["dependencies", "optionalDependencies", "peerDependencies"]
        .into_iter()
        .filter_map(|field| manifest.get(field).and_then(Value::as_object))
        .flatten()
        .map(|(key, spec)| {
            let spec = spec.as_str().unwrap_or_default();
            match spec.strip_prefix("npm:") {
                Some(aliased) => match aliased.rfind('@') {
                    Some(at) if at > 0 => {
                        (aliased[..at].to_string(), aliased[at + 1..].to_string())
                    }
                    _ => (aliased.to_string(), String::new()),
                },
                None => (key.clone(), spec.to_string()),
            }
        })
}

/// `https://host[:port]` of a URL.
fn origin_of(url: &str) -> &str {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    match url[scheme_end..].find('/') {
        Some(slash) => &url[..scheme_end + slash],
        None => url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Result;
    use serde_json::json;

    #[test]
    fn tarball_urls_point_here_and_the_originals_are_kept(
    ) -> std::result::Result<(), Box<dyn std::error::Error>> {
        let name = PackageName::parse("@s/p")?;
        let upstream = json!({
            "name": "@s/p",
            "dist-tags": {"latest": "1.0.0"},
            "versions": {
                "1.0.0": {"dist": {"tarball": "https://cdn.example/p.tgz",
                                   "integrity": "sha512-x", "shasum": "ab"},
                          "dependencies": {"a": "^1"}},
                "1.1.0": {"dist": {"tarball": "/@s/p/-/p-1.1.0.tgz"},
                          "dependencies": {"b": "^1"}}
            },
            "_attachments": {}
        });
        let prepared = prepare(
            &name,
            "https://r.example/base",
            upstream.to_string().as_bytes(),
        )
        .map_err(crate::Error::bad_request)?;
        let doc: Value = serde_json::from_slice(&prepared.body)?;
        assert_eq!(
            doc["versions"]["1.0.0"]["dist"]["tarball"],
            format!("{TARBALL_ORIGIN}/@s/p/-/p-1.0.0.tgz")
        );
        assert!(doc.get("_attachments").is_none());
        let dists: Value = serde_json::from_str(&prepared.dists)?;
        assert_eq!(
            dists["1.0.0"],
            json!(["https://cdn.example/p.tgz", "sha512-x", "ab"])
        );
        assert_eq!(
            dists["1.1.0"][0], "https://r.example/@s/p/-/p-1.1.0.tgz",
            "relative URLs resolve against the upstream's origin"
        );
        assert_eq!(
            Vec::from_iter(prepared.outline.latest_dependencies),
            [("a".to_string(), "^1".to_string())],
            "what the version `latest` names depends on, not another version"
        );
        assert_eq!(prepared.outline.latest.as_deref(), Some("1.0.0"));
        assert_eq!(prepared.outline.versions, ["1.0.0", "1.1.0"]);
        Ok(())
    }

    #[test]
    fn a_document_of_another_package_or_not_json_is_refused() -> Result<()> {
        let name = PackageName::parse("p")?;
        assert!(prepare(&name, "http://x", br#"{"name":"q"}"#).is_err());
        assert!(prepare(&name, "http://x", b"<html>").is_err());
        assert!(prepare(&name, "http://x", b"[1]").is_err());
        Ok(())
    }

    #[test]
    fn dependencies_are_the_names_of_every_kind_and_aliases_resolve() {
        let versions = json!({
            "1.0.0": {"dependencies": {"a": "^1", "b": "npm:@s/real@2"},
                      "peerDependencies": {"p": "*"}, "devDependencies": {"dev": "1"}},
            "2.0.0": {"optionalDependencies": {"o": "1"}},
        });
        let map = versions.as_object().cloned().unwrap_or_default();
        let names = dependencies_of(&map, &["1.0.0".to_string()]);
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(names, ["@s/real", "a", "p"]);
    }
}
