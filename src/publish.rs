//! `npm publish`: the body of `PUT /:package` with `_attachments`.
//!
//! Order: parse and validate everything → verify the tarball (length, sha1, sha512, a gzip'd
//! tar whose package.json names the same package and version) → write the blob durably →
//! one write transaction that re-checks the version number, inserts the version and tags and
//! rebuilds the packuments. A crash leaves at worst an orphan blob, never a version without
//! its tarball.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Map, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use crate::authz::{require_maintainer, require_package_in_token, Action, Writer};
use crate::blobs::BlobStore;
use crate::clock::now_iso;
use crate::error::{Error, Result};
use crate::names::{validate_tag, validate_version, PackageName};
use crate::packument::{self, TARBALL_ORIGIN};
use crate::store::{NewVersion, Store};
use crate::tarball;

#[derive(Debug, PartialEq, Eq)]
pub enum PublishOutcome {
    /// A new version was stored.
    Published { rev: String },
    /// The same tarball was already published under this version (a client retry).
    AlreadyPublished,
}

/// What was checked and computed before any write.
struct VerifiedPublish {
    version: String,
    manifest: Map<String, Value>,
    readme: String,
    tags: BTreeMap<String, String>,
    tarball: Vec<u8>,
    sha512_hex: String,
    sha1_hex: String,
}

pub fn publish(
    store: &Store,
    blobs: &dyn BlobStore,
    writer: &Writer<'_>,
    name: &PackageName,
    body: &Value,
) -> Result<PublishOutcome> {
    // A blocked name is refused before its tarball is even looked at (and again below, where
    // the write happens, in case the block was set in between).
    crate::blocks::ensure_readable(store, name)?;
    let verified = verify(name, body)?;
    let user = &writer.identity().user;

    // Fast path for an identical retry, and an early refusal for a reused version number,
    // before the tarball is written. Only a maintainer gets either answer: a stranger's
    // "retry" of someone else's tarball is a 403, not a success.
    if let Some(outcome) = store.read(|db| match db.package_by_name(name.as_str())? {
        Some(package) => {
            require_maintainer(db, writer, Action::Publish, name.as_str(), package.id)?;
            existing_version_outcome(db.version_state(package.id, &verified.version)?, &verified)
        }
        None => Ok(None),
    })? {
        return Ok(outcome);
    }

    blobs.put(&verified.sha512_hex, &verified.tarball)?;

    store.write(|db| {
        crate::blocks::ensure_not_blocked(db, name.as_str())?;
        let now = now_iso();
        let package_id = match db.package_by_name(name.as_str())? {
            Some(package) => {
                require_maintainer(db, writer, Action::Publish, name.as_str(), package.id)?;
                if let Some(outcome) = existing_version_outcome(
                    db.version_state(package.id, &verified.version)?,
                    &verified,
                )? {
                    return Ok(outcome);
                }
                if package.unpublished_at.is_some() {
                    // A new version brings a fully unpublished package back to life.
                    db.set_package_unpublished(package.id, None)?;
                }
                package.id
            }
            None => {
                require_package_in_token(writer, name.as_str())?;
                let id = db.insert_package(name.as_str(), &now)?;
                db.add_maintainer(id, user.id)?;
                id
            }
        };
        let maintainers: Vec<Value> = db
            .maintainers(package_id)?
            .into_iter()
            .map(|(name, email)| json!({ "name": name, "email": email }))
            .collect();
        let mut manifest = verified.manifest.clone();
        manifest.insert(
            "_npmUser".into(),
            json!({ "name": user.name, "email": user.email }),
        );
        manifest.insert("maintainers".into(), Value::Array(maintainers));
        let manifest_text = Value::Object(manifest).to_string();
        db.insert_version(&NewVersion {
            package_id,
            version: &verified.version,
            manifest: &manifest_text,
            readme: &verified.readme,
            tarball_sha512: &verified.sha512_hex,
            tarball_sha1: &verified.sha1_hex,
            tarball_size: verified.tarball.len() as u64,
            published_at: &now,
            publisher_id: user.id,
        })?;
        for (tag, version) in &verified.tags {
            db.set_dist_tag(package_id, tag, version)?;
        }
        if !db.dist_tags(package_id)?.contains_key("latest") {
            db.set_dist_tag(package_id, "latest", &verified.version)?;
        }
        let rev = packument::refresh(db, package_id, name.as_str(), &now)?;
        Ok(PublishOutcome::Published { rev })
    })
}

/// `Some` if this version number was used before: success for an identical retry, else a
/// refusal (version numbers are never reusable, even after an unpublish).
fn existing_version_outcome(
    state: Option<(String, bool)>,
    verified: &VerifiedPublish,
) -> Result<Option<PublishOutcome>> {
    match state {
        None => Ok(None),
        Some((sha512, false)) if sha512 == verified.sha512_hex => {
            Ok(Some(PublishOutcome::AlreadyPublished))
        }
        Some((_, false)) => Err(Error::forbidden(format!(
            "You cannot publish over the previously published versions: {}.",
            verified.version
        ))),
        Some((_, true)) => Err(Error::forbidden(format!(
            "Version {} was unpublished and its number cannot be used again: publish a new \
             version.",
            verified.version
        ))),
    }
}

fn verify(name: &PackageName, body: &Value) -> Result<VerifiedPublish> {
    let body = body
        .as_object()
        .ok_or_else(|| Error::bad_request("the publish body must be a JSON object"))?;
    for field in ["_id", "name"] {
        if let Some(value) = body.get(field) {
            if value.as_str() != Some(name.as_str()) {
                return Err(Error::bad_request(format!(
                    "the document's {field} {value} does not match the package name {name} in \
                     the URL"
                )));
            }
        }
    }

    let versions = body
        .get("versions")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::bad_request("the publish body has no versions object"))?;
    let (version, manifest) = match versions.iter().collect::<Vec<_>>().as_slice() {
        [(version, manifest)] => ((*version).clone(), (*manifest).clone()),
        _ => {
            return Err(Error::bad_request(
                "a publish must carry exactly one version",
            ))
        }
    };
    validate_version(&version)?;
    let Value::Object(mut manifest) = manifest else {
        return Err(Error::bad_request(format!(
            "versions[{version}] must be an object"
        )));
    };
    if manifest.get("name").and_then(Value::as_str) != Some(name.as_str()) {
        return Err(Error::bad_request(format!(
            "versions[{version}].name must be {name}"
        )));
    }
    if manifest.get("version").and_then(Value::as_str) != Some(version.as_str()) {
        return Err(Error::bad_request(format!(
            "versions[{version}].version must be {version}"
        )));
    }

    let tags = dist_tags(body, &version)?;
    let (tarball, declared_length) = attachment(body)?;
    if let Some(length) = declared_length {
        if length != tarball.len() as u64 {
            return Err(Error::bad_request(format!(
                "the attachment's length is {length} but its data has {} bytes",
                tarball.len()
            )));
        }
    }

    let sha512 = Sha512::digest(&tarball);
    let sha1_hex = hex::encode(Sha1::digest(&tarball));
    let integrity = format!("sha512-{}", B64.encode(sha512));
    let dist = manifest.get("dist").and_then(Value::as_object);
    let shasum = dist.and_then(|d| d.get("shasum")).and_then(Value::as_str);
    let declared_integrity = dist
        .and_then(|d| d.get("integrity"))
        .and_then(Value::as_str);
    if shasum.is_none() && declared_integrity.is_none() {
        return Err(Error::bad_request(format!(
            "versions[{version}].dist must give the tarball's shasum or integrity"
        )));
    }
    if let Some(shasum) = shasum {
        if !shasum.eq_ignore_ascii_case(&sha1_hex) {
            return Err(Error::bad_request(format!(
                "the tarball's sha1 is {sha1_hex}, but dist.shasum says {shasum}: the upload \
                 is corrupt"
            )));
        }
    }
    if let Some(declared) = declared_integrity {
        check_integrity(declared, &tarball)?;
    }

    let contents = tarball::inspect(&tarball)?;
    let inner_name = contents.manifest.get("name").and_then(Value::as_str);
    let inner_version = contents.manifest.get("version").and_then(Value::as_str);
    if inner_name != Some(name.as_str()) || inner_version != Some(version.as_str()) {
        return Err(Error::bad_request(format!(
            "the tarball's package/package.json is {}@{}, not {name}@{version}",
            inner_name.unwrap_or("?"),
            inner_version.unwrap_or("?")
        )));
    }

    let readme = match manifest.remove("readme") {
        Some(Value::String(readme)) => readme,
        _ => body
            .get("readme")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    };
    manifest.insert("_id".into(), format!("{name}@{version}").into());
    manifest.insert(
        "dist".into(),
        json!({
            "integrity": integrity,
            "shasum": sha1_hex,
            "tarball": format!("{TARBALL_ORIGIN}{}", name.tarball_path(&version)),
            "fileCount": contents.file_count,
            "unpackedSize": contents.unpacked_size,
        }),
    );

    Ok(VerifiedPublish {
        version,
        manifest,
        readme,
        tags,
        tarball,
        sha512_hex: hex::encode(sha512),
        sha1_hex,
    })
}

fn dist_tags(body: &Map<String, Value>, version: &str) -> Result<BTreeMap<String, String>> {
    let mut tags = BTreeMap::new();
    match body.get("dist-tags") {
        None | Some(Value::Null) => {}
        Some(Value::Object(given)) => {
            for (tag, target) in given {
                validate_tag(tag)?;
                if target.as_str() != Some(version) {
                    return Err(Error::bad_request(format!(
                        "dist-tag {tag:?} must point at the version being published, {version}"
                    )));
                }
                tags.insert(tag.clone(), version.to_string());
            }
        }
        Some(_) => return Err(Error::bad_request("dist-tags must be an object")),
    }
    if tags.is_empty() {
        tags.insert("latest".to_string(), version.to_string());
    }
    Ok(tags)
}

/// The decoded tarball attachment and its declared length. A provenance bundle
/// (`*.sigstore`, raw JSON) may ride along and is ignored.
fn attachment(body: &Map<String, Value>) -> Result<(Vec<u8>, Option<u64>)> {
    let attachments = body
        .get("_attachments")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::bad_request("the publish body has no _attachments"))?;
    let tarballs: Vec<&Value> = attachments
        .iter()
        .filter(|(key, _)| !key.ends_with(".sigstore"))
        .map(|(_, value)| value)
        .collect();
    let [attachment] = tarballs.as_slice() else {
        return Err(Error::bad_request(
            "a publish must carry exactly one tarball attachment",
        ));
    };
    let data = attachment
        .get("data")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::bad_request("the attachment has no base64 data"))?;
    let bytes = B64
        .decode(data.trim())
        .map_err(|_| Error::bad_request("the attachment's data is not valid base64"))?;
    if bytes.is_empty() {
        return Err(Error::bad_request("the attachment is empty"));
    }
    let length = match attachment.get("length") {
        None | Some(Value::Null) => None,
        Some(value) => Some(value.as_u64().ok_or_else(|| {
            Error::bad_request("the attachment's length must be a non-negative integer")
        })?),
    };
    Ok((bytes, length))
}

/// Checks every hash of a Subresource Integrity string that we can compute; at least one must
/// be of a known algorithm.
fn check_integrity(declared: &str, tarball: &[u8]) -> Result<()> {
    let mut checked = 0;
    for entry in declared.split_whitespace() {
        let Some((algorithm, digest)) = entry.split_once('-') else {
            return Err(Error::bad_request(format!(
                "malformed dist.integrity {declared:?}"
            )));
        };
        let digest = digest.split('?').next().unwrap_or_default();
        let actual = match algorithm {
            "sha512" => B64.encode(Sha512::digest(tarball)),
            "sha256" => B64.encode(Sha256::digest(tarball)),
            "sha1" => B64.encode(Sha1::digest(tarball)),
            _ => continue,
        };
        if actual != digest {
            return Err(Error::bad_request(format!(
                "the tarball's {algorithm} does not match dist.integrity: the upload is corrupt"
            )));
        }
        checked += 1;
    }
    if checked == 0 {
        return Err(Error::bad_request(format!(
            "dist.integrity {declared:?} has no sha512, sha256 or sha1 hash"
        )));
    }
    Ok(())
}
