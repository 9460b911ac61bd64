//! `npm publish`: the body of `PUT /:package` with `_attachments`.
//!
//! Order: parse and validate everything → verify each tarball (size, length, sha1, sha512, a
//! gzip'd tar whose package.json names the same package and version) → write the blobs
//! durably → one write transaction that re-checks the version numbers, inserts the versions
//! and tags and rebuilds the packuments. A crash leaves at worst an orphan blob, never a
//! version without its tarball.
//!
//! npm sends one version per publish; other clients may send several (up to
//! `max_versions_per_publish`), each with its own tarball, and they are stored all or nothing.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Map, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use crate::access::{self, Access};
use crate::accounts::authz::{require_maintainer, require_new_package, Action, Writer};
use crate::blobs::BlobStore;
use crate::clock::now_iso;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::hooks::outbox::{self, Change};
use crate::packages::names::{validate_tag, validate_version, PackageName};
use crate::packages::packument::{self, TARBALL_ORIGIN};
use crate::packages::tarball;
use crate::store::{Db, NewVersion, Store};

#[derive(Debug, PartialEq, Eq)]
pub enum PublishOutcome {
    /// A new version was stored.
    Published { rev: String },
    /// The same tarball was already published under this version (a client retry).
    AlreadyPublished,
}

/// What one publish may carry (from the configuration).
#[derive(Debug, Clone, Copy)]
pub struct PublishLimits {
    pub max_versions: u64,
    pub max_attachment_bytes: u64,
    pub max_name_length: u64,
    /// A new package's access when the publish does not say (`default_access`).
    pub default_access: Access,
}

impl PublishLimits {
    pub fn of(config: &Config) -> PublishLimits {
        PublishLimits {
            max_versions: config.max_versions_per_publish,
            max_attachment_bytes: config.max_attachment_bytes,
            max_name_length: config.max_package_name_length,
            default_access: config.default_access,
        }
    }
}

/// What was checked and computed before any write.
struct VerifiedPublish {
    versions: Vec<VerifiedVersion>,
    tags: BTreeMap<String, String>,
    /// `npm publish --access`; only a new package takes it (as on npmjs, `npm access set`
    /// changes an existing one).
    access: Option<Access>,
}

/// One version of a publish, checked against its own tarball.
struct VerifiedVersion {
    version: String,
    manifest: Map<String, Value>,
    readme: String,
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
    limits: &PublishLimits,
) -> Result<PublishOutcome> {
    // A blocked name is refused before its tarball is even looked at (and again below, where
    // the write happens, in case the block was set in between).
    crate::packages::blocks::ensure_readable(store, name)?;
    let verified = verify(name, body, limits)?;
    let user = &writer.identity().user;

    // Fast path for an identical retry, and an early refusal for a reused version number,
    // before the tarball is written. Only a maintainer gets either answer: a stranger's
    // "retry" of someone else's tarball is a 403, not a success.
    if let Some(outcome) = store.read(|db| match db.package_by_name(name.as_str())? {
        Some(package) => {
            require_maintainer(db, writer, Action::Publish, &package)?;
            existing_versions_outcome(db, package.id, &verified)
        }
        None => {
            check_new_name(name, limits)?;
            require_new_package(db, writer, name.as_str()).map(|()| None)
        }
    })? {
        return Ok(outcome);
    }

    for version in &verified.versions {
        blobs.put(&version.sha512_hex, &version.tarball)?;
    }

    store.write(|db| {
        crate::packages::blocks::ensure_not_blocked(db, name.as_str())?;
        let now = now_iso();
        let package_id = match db.package_by_name(name.as_str())? {
            Some(package) => {
                require_maintainer(db, writer, Action::Publish, &package)?;
                if let Some(outcome) = existing_versions_outcome(db, package.id, &verified)? {
                    return Ok(outcome);
                }
                if package.unpublished_at.is_some() {
                    // A new version brings a fully unpublished package back to life.
                    db.set_package_unpublished(package.id, None)?;
                }
                package.id
            }
            None => {
                check_new_name(name, limits)?;
                require_new_package(db, writer, name.as_str())?;
                let id = db.insert_package(name.as_str(), &now)?;
                db.add_maintainer(id, user.id)?;
                let access = verified.access.unwrap_or(limits.default_access);
                if access == Access::Restricted {
                    db.set_package_restricted(id, true)?;
                }
                access::orgs::grant_to_developers(db, name.as_str(), id)?;
                id
            }
        };
        let maintainers: Vec<Value> = db
            .maintainers(package_id)?
            .into_iter()
            .map(|(name, email)| json!({ "name": name, "email": email }))
            .collect();
        // Every version in this one transaction: a failure on any stores none of them.
        for version in &verified.versions {
            let mut manifest = version.manifest.clone();
            manifest.insert(
                "_npmUser".into(),
                json!({ "name": user.name, "email": user.email }),
            );
            manifest.insert("maintainers".into(), Value::Array(maintainers.clone()));
            let manifest_text = Value::Object(manifest).to_string();
            db.insert_version(&NewVersion {
                package_id,
                version: &version.version,
                manifest: &manifest_text,
                deprecated: version
                    .manifest
                    .get("deprecated")
                    .and_then(Value::as_str)
                    .filter(|message| !message.is_empty()),
                readme: &version.readme,
                tarball_sha512: &version.sha512_hex,
                tarball_sha1: &version.sha1_hex,
                tarball_size: version.tarball.len() as u64,
                published_at: &now,
                publisher_id: user.id,
            })?;
        }
        for (tag, version) in &verified.tags {
            db.set_dist_tag(package_id, tag, version)?;
        }
        if !db.dist_tags(package_id)?.contains_key("latest") {
            db.set_dist_tag(package_id, "latest", verified.highest())?;
        }
        let rev = packument::refresh(db, package_id, name.as_str(), &now)?;
        let tags = db.dist_tags(package_id)?;
        let changes: Vec<Change> = verified
            .versions
            .iter()
            .map(|v| Change::Publish {
                version: v.version.clone(),
                tag: verified
                    .tags
                    .iter()
                    .chain(tags.iter().filter(|(tag, _)| *tag == "latest"))
                    .find(|(_, target)| **target == v.version)
                    .map(|(tag, _)| tag.clone()),
            })
            .collect();
        outbox::enqueue(db, name.as_str(), &changes)?;
        Ok(PublishOutcome::Published { rev })
    })
}

/// `Some` if the version numbers were used before: success for an identical retry of the
/// whole publish, else a refusal. A document that repeats some published versions and adds
/// others is refused whole, so that a publish is all or nothing in both directions.
fn existing_versions_outcome(
    db: &Db<'_>,
    package_id: i64,
    verified: &VerifiedPublish,
) -> Result<Option<PublishOutcome>> {
    let mut repeated = Vec::new();
    for version in &verified.versions {
        let state = db.version_state(package_id, &version.version)?;
        if existing_version_outcome(state, version)?.is_some() {
            repeated.push(version.version.as_str());
        }
    }
    if repeated.is_empty() {
        Ok(None)
    } else if repeated.len() == verified.versions.len() {
        Ok(Some(PublishOutcome::AlreadyPublished))
    } else {
        Err(Error::forbidden(format!(
            "You cannot publish over the previously published versions: {}.",
            repeated.join(", ")
        )))
    }
}

/// A new package's name must fit `max_package_name_length` (lowered from npm's 214 by an
/// administrator); packages that already exist keep their names and may get new versions.
fn check_new_name(name: &PackageName, limits: &PublishLimits) -> Result<()> {
    let length = name.as_str().len() as u64;
    if length > limits.max_name_length {
        return Err(Error::bad_request(format!(
            "invalid package name {name:?}: it has {length} characters, more than this \
             registry's limit of {} for new packages (max_package_name_length)",
            limits.max_name_length
        )));
    }
    Ok(())
}

/// `Some` if this version number was used before: success for an identical retry, else a
/// refusal (version numbers are never reusable, even after an unpublish).
fn existing_version_outcome(
    state: Option<(String, bool)>,
    verified: &VerifiedVersion,
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

fn verify(name: &PackageName, body: &Value, limits: &PublishLimits) -> Result<VerifiedPublish> {
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
    if versions.is_empty() {
        return Err(Error::bad_request(
            "the publish body's versions object is empty",
        ));
    }
    if versions.len() as u64 > limits.max_versions {
        return Err(Error::bad_request(format!(
            "a publish may carry at most {} version(s) on this registry \
             (max_versions_per_publish); this one has {}",
            limits.max_versions,
            versions.len()
        )));
    }
    let numbers: Vec<&str> = versions.keys().map(String::as_str).collect();
    for version in &numbers {
        validate_version(version)?;
    }
    // The cheap checks first: tarballs are decoded and unpacked last.
    let tags = dist_tags(body, &numbers)?;
    let access = match body.get("access") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(Access::parse(text)?),
        Some(other) => {
            return Err(Error::bad_request(format!(
                "access must be \"public\" or \"restricted\", not {other}"
            )))
        }
    };
    let tarballs = tarballs(body, name, &numbers, limits)?;
    let verified = versions
        .iter()
        .zip(tarballs)
        .map(|((version, manifest), tarball)| {
            verify_version(name, body, version, manifest, tarball)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(VerifiedPublish {
        versions: verified,
        tags,
        access,
    })
}

/// Checks one (validated) version's manifest against its decoded tarball and computes its
/// `dist`.
fn verify_version(
    name: &PackageName,
    body: &Map<String, Value>,
    version: &str,
    manifest: &Value,
    (tarball, declared_length): (Vec<u8>, Option<u64>),
) -> Result<VerifiedVersion> {
    let Value::Object(manifest) = manifest else {
        return Err(Error::bad_request(format!(
            "versions[{version}] must be an object"
        )));
    };
    let mut manifest = manifest.clone();
    if manifest.get("name").and_then(Value::as_str) != Some(name.as_str()) {
        return Err(Error::bad_request(format!(
            "versions[{version}].name must be {name}"
        )));
    }
    if manifest.get("version").and_then(Value::as_str) != Some(version) {
        return Err(Error::bad_request(format!(
            "versions[{version}].version must be {version}"
        )));
    }

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
    if inner_name != Some(name.as_str()) || inner_version != Some(version) {
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
            "tarball": format!("{TARBALL_ORIGIN}{}", name.tarball_path(version)),
            "fileCount": contents.file_count,
            "unpackedSize": contents.unpacked_size,
        }),
    );

    Ok(VerifiedVersion {
        version: version.to_string(),
        manifest,
        readme,
        tarball,
        sha512_hex: hex::encode(sha512),
        sha1_hex,
    })
}

impl VerifiedPublish {
    /// The highest version published: `latest` when the document names no tag for it.
    fn highest(&self) -> &str {
        highest(self.versions.iter().map(|v| v.version.as_str()))
    }
}

/// The highest of some (validated) version numbers; "" for none.
fn highest<'a>(versions: impl Iterator<Item = &'a str>) -> &'a str {
    versions
        .max_by_key(|v| semver::Version::parse(v).ok())
        .unwrap_or_default()
}

fn dist_tags(body: &Map<String, Value>, versions: &[&str]) -> Result<BTreeMap<String, String>> {
    let mut tags = BTreeMap::new();
    match body.get("dist-tags") {
        None | Some(Value::Null) => {}
        Some(Value::Object(given)) => {
            for (tag, target) in given {
                validate_tag(tag)?;
                let Some(version) = target.as_str().filter(|t| versions.contains(t)) else {
                    return Err(Error::bad_request(format!(
                        "dist-tag {tag:?} must point at a version being published ({})",
                        versions.join(", ")
                    )));
                };
                tags.insert(tag.clone(), version.to_string());
            }
        }
        Some(_) => return Err(Error::bad_request("dist-tags must be an object")),
    }
    if tags.is_empty() {
        tags.insert(
            "latest".to_string(),
            highest(versions.iter().copied()).to_string(),
        );
    }
    Ok(tags)
}

/// The decoded tarball of each version (in the order of `versions`) and its declared length.
/// A provenance bundle (`*.sigstore`, raw JSON) may ride along and is ignored. The tarball of
/// a single version may have any key (clients differ); with several versions each must be
/// under npm's key, `NAME-VERSION.tgz` (or the tarball's file name, `BARE-VERSION.tgz`).
fn tarballs(
    body: &Map<String, Value>,
    name: &PackageName,
    versions: &[&str],
    limits: &PublishLimits,
) -> Result<Vec<(Vec<u8>, Option<u64>)>> {
    let attachments = body
        .get("_attachments")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::bad_request("the publish body has no _attachments"))?;
    let tarballs: Vec<&Value> = attachments
        .iter()
        .filter(|(key, _)| !key.ends_with(".sigstore"))
        .map(|(_, value)| value)
        .collect();
    if let ([version], [attachment]) = (versions, tarballs.as_slice()) {
        return Ok(vec![decode_attachment(attachment, name, version, limits)?]);
    }
    if tarballs.len() != versions.len() {
        return Err(Error::bad_request(format!(
            "a publish must carry one tarball attachment per version: this one has {} \
             version(s) and {} tarball(s)",
            versions.len(),
            tarballs.len()
        )));
    }
    versions
        .iter()
        .map(|version| {
            let key = format!("{name}-{version}.tgz");
            let attachment = attachments
                .get(&key)
                .or_else(|| attachments.get(&name.tarball_file(version)))
                .ok_or_else(|| {
                    Error::bad_request(format!(
                        "the publish has no tarball attachment {key:?} for version {version}"
                    ))
                })?;
            decode_attachment(attachment, name, version, limits)
        })
        .collect()
}

/// One attachment's tarball, decoded, within `max_attachment_bytes`, and its declared length.
fn decode_attachment(
    attachment: &Value,
    name: &PackageName,
    version: &str,
    limits: &PublishLimits,
) -> Result<(Vec<u8>, Option<u64>)> {
    let too_large = || {
        Error::PayloadTooLarge(format!(
            "the tarball of {name}@{version} is larger than this registry's limit of {} bytes \
             (max_attachment_bytes)",
            limits.max_attachment_bytes
        ))
    };
    let data = attachment
        .get("data")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::bad_request("the attachment has no base64 data"))?
        .trim();
    // Every 4 base64 characters are 3 bytes, less at most 2 of padding: refuse before
    // decoding what is certainly too large.
    if (data.len() as u64 / 4 * 3).saturating_sub(2) > limits.max_attachment_bytes {
        return Err(too_large());
    }
    let bytes = B64
        .decode(data)
        .map_err(|_| Error::bad_request("the attachment's data is not valid base64"))?;
    if bytes.len() as u64 > limits.max_attachment_bytes {
        return Err(too_large());
    }
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
