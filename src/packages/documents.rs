//! The non-publish updates that arrive as a whole or partial package document, on
//! `PUT /:pkg` or `PUT /:pkg/-rev/:rev`. The body is classified first, and only the part of it
//! that the operation may change is applied:
//! - `users` alone: star / unstar, each caller only for themselves;
//! - `maintainers` (no `versions`): owner add / rm;
//! - `versions`: deprecate / undeprecate (only `deprecated` may change) and, when versions
//!   are missing from it, unpublishing those versions.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::accounts::auth::Identity;
use crate::accounts::authz::{require_maintainer, require_writer, Action};
use crate::clock::now_iso;
use crate::error::{Error, Result};
use crate::hooks::outbox::{self, Change};
use crate::packages::names::{validate_tag, PackageName};
use crate::packages::packument;
use crate::packages::tags::live_package;
use crate::packages::unpublish::{check_rev, remove_versions};
use crate::store::{Db, PackageRecord, Store};

#[derive(Debug, PartialEq, Eq)]
enum Update {
    Star(BTreeSet<String>),
    Owners(Vec<String>),
    Versions {
        /// Every version listed, with its `deprecated` text ("" or absent: not deprecated).
        listed: BTreeMap<String, Option<String>>,
        tags: BTreeMap<String, String>,
    },
}

/// Applies a document update; answers the package's new revision.
pub fn apply(
    store: &Store,
    identity: Option<&Identity>,
    name: &PackageName,
    rev_in_path: Option<&str>,
    body: &Value,
) -> Result<String> {
    let body = body
        .as_object()
        .ok_or_else(|| Error::bad_request("the document must be a JSON object"))?;
    if let Some(id) = body.get("_id").or_else(|| body.get("name")) {
        if id.as_str() != Some(name.as_str()) {
            return Err(Error::bad_request(format!(
                "the document's _id {id} does not match the package name {name} in the URL"
            )));
        }
    }
    let update = classify(body)?;
    let rev = rev_in_path.or_else(|| body.get("_rev").and_then(Value::as_str));
    let writer = require_writer(identity)?;
    store.write(|db| {
        let package = live_package(db, name)?;
        if let Some(rev) = rev {
            check_rev(&package, rev)?;
        }
        let now = now_iso();
        let changes: Vec<Change> = match &update {
            Update::Star(users) => {
                let user = &writer.identity().user;
                let before: BTreeSet<String> = db.stargazers(package.id)?.into_iter().collect();
                let mut others_before = before.clone();
                others_before.remove(&user.name);
                let mut others_after = users.clone();
                others_after.remove(&user.name);
                if others_before != others_after {
                    return Err(Error::forbidden(
                        "you can only star or unstar a package as yourself",
                    ));
                }
                let starred = users.contains(&user.name);
                db.set_star(package.id, user.id, starred)?;
                let user = user.name.clone();
                match (starred, before.contains(&user)) {
                    (true, false) => vec![Change::Star { user }],
                    (false, true) => vec![Change::Unstar { user }],
                    _ => Vec::new(),
                }
            }
            Update::Owners(names) => {
                require_maintainer(db, &writer, Action::ChangeOwners, &package)?;
                set_owners(db, &package, names)?
            }
            Update::Versions { listed, tags } => {
                update_versions(db, &writer, &package, listed, tags, &now)?
            }
        };
        if !changes.is_empty() {
            let rev = packument::refresh(db, package.id, name.as_str(), &now)?;
            outbox::enqueue(db, name.as_str(), &changes)?;
            Ok(rev)
        } else {
            Ok(packument::revision(
                package.rev_seq,
                &package.name,
                &package.modified_at,
            ))
        }
    })
}

fn classify(body: &Map<String, Value>) -> Result<Update> {
    if body.contains_key("_attachments") && body.get("_attachments") != Some(&Value::Null) {
        return Err(Error::bad_request(
            "a document with _attachments is a publish: send it to PUT /:package",
        ));
    }
    if let Some(versions) = body.get("versions") {
        let versions = versions
            .as_object()
            .ok_or_else(|| Error::bad_request("versions must be an object"))?;
        let mut listed = BTreeMap::new();
        for (version, manifest) in versions {
            let deprecated = match manifest.get("deprecated") {
                None | Some(Value::Null) => None,
                Some(Value::String(text)) if text.is_empty() => None,
                Some(Value::String(text)) => Some(text.clone()),
                Some(_) => {
                    return Err(Error::bad_request(format!(
                        "versions[{version}].deprecated must be a string"
                    )))
                }
            };
            listed.insert(version.clone(), deprecated);
        }
        let mut tags = BTreeMap::new();
        if let Some(given) = body.get("dist-tags") {
            let given = given
                .as_object()
                .ok_or_else(|| Error::bad_request("dist-tags must be an object"))?;
            for (tag, version) in given {
                let version = version.as_str().ok_or_else(|| {
                    Error::bad_request(format!("dist-tag {tag:?} must name a version"))
                })?;
                tags.insert(tag.clone(), version.to_string());
            }
        }
        return Ok(Update::Versions { listed, tags });
    }
    if let Some(maintainers) = body.get("maintainers") {
        let list = maintainers
            .as_array()
            .ok_or_else(|| Error::bad_request("maintainers must be an array"))?;
        let names = list
            .iter()
            .map(|m| {
                m.get("name")
                    .or_else(|| m.get("username"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| Error::bad_request("each maintainer needs a name"))
            })
            .collect::<Result<Vec<_>>>()?;
        return Ok(Update::Owners(names));
    }
    if let Some(users) = body.get("users") {
        let users = users
            .as_object()
            .ok_or_else(|| Error::bad_request("users must be an object"))?;
        let starred = users
            .iter()
            .filter(|(_, v)| v.as_bool() == Some(true))
            .map(|(k, _)| k.clone())
            .collect();
        return Ok(Update::Star(starred));
    }
    Err(Error::bad_request(
        "unsupported document update: expected versions, maintainers or users",
    ))
}

/// Replaces the maintainers; answers who was added and removed.
fn set_owners(db: &Db<'_>, package: &PackageRecord, names: &[String]) -> Result<Vec<Change>> {
    if names.is_empty() {
        return Err(Error::bad_request(
            "a package must keep at least one maintainer: the last owner cannot be removed",
        ));
    }
    let mut wanted = BTreeMap::new();
    for name in names {
        let user = db
            .user_by_name(name)?
            .ok_or_else(|| Error::bad_request(format!("there is no user named {name:?}")))?;
        wanted.insert(user.name.clone(), user.id);
    }
    let current: BTreeSet<String> = db
        .maintainers(package.id)?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let mut changes = Vec::new();
    for (name, id) in &wanted {
        if !current.contains(name) {
            db.add_maintainer(package.id, *id)?;
            changes.push(Change::Owner {
                maintainer: name.clone(),
            });
        }
    }
    for name in current.iter().filter(|n| !wanted.contains_key(*n)) {
        if let Some(user) = db.user_by_name(name)? {
            db.remove_maintainer(package.id, user.id)?;
            changes.push(Change::OwnerRm {
                maintainer: name.clone(),
            });
        }
    }
    Ok(changes)
}

/// Deprecations, and removal of the live versions the document no longer lists; answers
/// what changed.
fn update_versions(
    db: &Db<'_>,
    writer: &crate::accounts::authz::Writer<'_>,
    package: &PackageRecord,
    listed: &BTreeMap<String, Option<String>>,
    tags: &BTreeMap<String, String>,
    now: &str,
) -> Result<Vec<Change>> {
    let stored = db.versions(package.id)?;
    let live: Vec<_> = stored.iter().filter(|v| v.deleted_at.is_none()).collect();
    if let Some(unknown) = listed
        .keys()
        .find(|v| !live.iter().any(|l| &&l.version == v))
    {
        return Err(Error::bad_request(format!(
            "version {unknown} is not a published version of {}: new versions are published \
             with their tarball",
            package.name
        )));
    }
    let mut deprecations = Vec::new();
    for record in &live {
        let Some(wanted) = listed.get(&record.version) else {
            continue;
        };
        let mut manifest: Map<String, Value> = serde_json::from_str(&record.manifest)
            .map_err(|e| Error::Storage(format!("stored manifest is not JSON: {e}")))?;
        let current = manifest
            .get("deprecated")
            .and_then(Value::as_str)
            .map(str::to_string);
        if current != *wanted {
            match wanted {
                Some(text) => manifest.insert("deprecated".into(), text.clone().into()),
                None => manifest.remove("deprecated"),
            };
            deprecations.push((
                record.version.clone(),
                Value::Object(manifest).to_string(),
                wanted.clone(),
            ));
        }
    }
    let removed: Vec<String> = live
        .iter()
        .filter(|v| !listed.contains_key(&v.version))
        .map(|v| v.version.clone())
        .collect();
    if !deprecations.is_empty() {
        require_maintainer(db, writer, Action::Deprecate, package)?;
        for (version, manifest, message) in &deprecations {
            let message = message.as_deref().filter(|text| !text.is_empty());
            db.update_manifest(package.id, version, manifest, message)?;
        }
    }
    if !removed.is_empty() {
        require_maintainer(db, writer, Action::Unpublish, package)?;
        // Tags the client sent along that still point at a remaining version are kept as
        // sent (npm moves `latest` this way); the rest are repaired by remove_versions.
        for (tag, version) in tags {
            if listed.contains_key(version) {
                validate_tag(tag)?;
                db.set_dist_tag(package.id, tag, version)?;
            }
        }
        remove_versions(db, package, &removed, now)?;
        repair_latest(db, package, listed)?;
    }
    let deprecated = deprecations
        .into_iter()
        .map(|(version, _, message)| match message {
            Some(message) => Change::Deprecated { version, message },
            None => Change::Undeprecated { version },
        });
    let unpublished = removed.into_iter().map(|version| Change::Unpublish {
        version: Some(version),
    });
    Ok(deprecated.chain(unpublished).collect())
}

/// npm picks `latest` after an unpublish by loose semver, which can be a prerelease; keep a
/// stable `latest` whenever a stable version is left.
fn repair_latest(
    db: &Db<'_>,
    package: &PackageRecord,
    listed: &BTreeMap<String, Option<String>>,
) -> Result<()> {
    let tags = db.dist_tags(package.id)?;
    let Some(latest) = tags.get("latest") else {
        return Ok(());
    };
    let is_prerelease = semver::Version::parse(latest).is_ok_and(|v| !v.pre.is_empty());
    if is_prerelease {
        if let Some(stable) =
            crate::packages::tags::fallback_latest(listed.keys().map(String::as_str))
        {
            if stable != latest {
                db.set_dist_tag(package.id, "latest", stable)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn classify_json(body: Value) -> Result<Update> {
        classify(body.as_object().unwrap_or(&Map::new()))
    }

    #[test]
    fn documents_are_told_apart() -> Result<()> {
        assert_eq!(
            classify_json(
                json!({"_id": "a", "_rev": "1-x", "users": {"bob": true, "eve": false}})
            )?,
            Update::Star(BTreeSet::from(["bob".to_string()]))
        );
        assert_eq!(
            classify_json(json!({"_id": "a", "maintainers": [{"name": "bob", "email": "b@x"}]}))?,
            Update::Owners(vec!["bob".into()])
        );
        let versions = classify_json(json!({
            "_id": "a", "maintainers": [], "users": {},
            "versions": {"1.0.0": {"deprecated": "old"}, "1.1.0": {"deprecated": ""}},
            "dist-tags": {"latest": "1.1.0"}
        }))?;
        assert_eq!(
            versions,
            Update::Versions {
                listed: BTreeMap::from([
                    ("1.0.0".to_string(), Some("old".to_string())),
                    ("1.1.0".to_string(), None)
                ]),
                tags: BTreeMap::from([("latest".to_string(), "1.1.0".to_string())]),
            }
        );
        Ok(())
    }

    #[test]
    fn malformed_documents_are_refused() {
        for body in [
            json!({"_id": "a"}),
            json!({"versions": []}),
            json!({"versions": {"1.0.0": {"deprecated": 5}}}),
            json!({"maintainers": {"name": "x"}}),
            json!({"maintainers": [{"email": "x"}]}),
            json!({"users": []}),
            json!({"versions": {}, "_attachments": {"a.tgz": {}}}),
        ] {
            assert!(
                classify_json(body.clone()).is_err(),
                "{body} should be refused"
            );
        }
    }
}
