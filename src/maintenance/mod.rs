//! What the admin tool does that no npm client does: account administration, listings across
//! the registry, owners and deprecations by name, garbage collection of orphan blobs, integrity
//! checks, and online backups. The CLI's local backend calls these; every write still goes
//! through `authz` with the [`local_admin`] identity.
//!
//! The local administrator: whoever can open the data directory can already change every byte
//! of it, so the CLI acting on it directly acts as an administrator. It has no account row
//! (user id 0); writes it makes record no author.

pub mod migrate;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::io::Read;
use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest, Sha512};

use crate::accounts::auth::Identity;
use crate::accounts::authz::{require_admin, Admin};
use crate::accounts::password::{check_password_policy, hash_password};
use crate::blobs::Blob;
use crate::clock::now_iso;
use crate::error::{Error, Result};
use crate::packages::names::PackageName;
use crate::store::{PackageSummary, PackumentFlavor, Store, UserRecord};
use crate::Registry;

/// The identity of the CLI's local backend: an administrator without an account row.
pub fn local_admin() -> Identity {
    Identity {
        user: UserRecord {
            id: 0,
            name: "local administrator".to_string(),
            email: String::new(),
            password_hash: String::new(),
            is_admin: true,
            created_at: String::new(),
            updated_at: String::new(),
            profile: Default::default(),
        },
        token: None,
    }
}

pub fn list_users(store: &Store, _admin: &Admin<'_>) -> Result<Vec<UserRecord>> {
    store.read(|db| db.all_users())
}

fn user_named(db: &crate::store::Db<'_>, name: &str) -> Result<UserRecord> {
    db.user_by_name(name)?
        .ok_or_else(|| Error::not_found(format!("no user named {name:?}")))
}

/// Grants or withdraws administrator rights.
pub fn set_admin(store: &Store, _admin: &Admin<'_>, name: &str, admin: bool) -> Result<UserRecord> {
    store.write(|db| {
        let user = user_named(db, name)?;
        db.set_user_admin(user.id, admin, &now_iso())?;
        user_named(db, name)
    })
}

/// Sets a user's password (runs the KDF). Remembered Basic credentials stop matching at once,
/// since they are keyed to the stored hash.
pub fn set_password(store: &Store, _admin: &Admin<'_>, name: &str, password: &str) -> Result<()> {
    check_password_policy(password)?;
    let hash = hash_password(password);
    store.write(|db| {
        let user = user_named(db, name)?;
        db.set_password_hash(user.id, &hash, &now_iso())
    })
}

/// Deletes an account with its tokens. Refused while it is the only maintainer of a package:
/// add another owner first.
pub fn delete_user(store: &Store, _admin: &Admin<'_>, name: &str) -> Result<()> {
    store.write(|db| {
        let user = user_named(db, name)?;
        let packages = db.packages_of_maintainer(user.id)?;
        let sole: Vec<&str> = packages
            .iter()
            .filter(|(_, _, count)| *count <= 1)
            .map(|(_, name, _)| name.as_str())
            .collect();
        if !sole.is_empty() {
            return Err(Error::conflict(format!(
                "{name} is the only maintainer of {}: add another owner first \
                 (registry owner add USER PACKAGE)",
                sole.join(", ")
            )));
        }
        db.delete_user(user.id)?;
        let now = now_iso();
        for (id, package, _) in &packages {
            crate::packages::packument::refresh(db, *id, package, &now)?;
        }
        Ok(())
    })
}

/// Issues a token for any user (the administrator's `registry token create --user`).
pub fn create_token_for_user(
    store: &Store,
    _admin: &Admin<'_>,
    user: &str,
    options: &crate::accounts::tokens::TokenOptions,
) -> Result<(UserRecord, crate::accounts::tokens::IssuedToken)> {
    let user = store
        .read(|db| db.user_by_name(user))?
        .ok_or_else(|| Error::not_found(format!("no user named {user:?}")))?;
    let issued = crate::accounts::tokens::create_token(store, user.id, options)?;
    Ok((user, issued))
}

/// The tokens of `user`, or of every user, with their owner's name.
pub fn list_all_tokens(
    store: &Store,
    admin: &Admin<'_>,
    user: Option<&str>,
) -> Result<Vec<(String, crate::store::TokenRecord)>> {
    let users = match user {
        Some(name) => vec![store
            .read(|db| db.user_by_name(name))?
            .ok_or_else(|| Error::not_found(format!("no user named {name:?}")))?],
        None => list_users(store, admin)?,
    };
    let mut out = Vec::new();
    for user in users {
        let mut offset = 0;
        loop {
            let page = crate::accounts::tokens::list_tokens(
                store,
                user.id,
                offset,
                crate::accounts::tokens::MAX_PAGE_SIZE,
            )?;
            offset += page.tokens.len() as u64;
            let done = page.tokens.is_empty() || offset >= page.total;
            out.extend(page.tokens.into_iter().map(|t| (user.name.clone(), t)));
            if done {
                break;
            }
        }
    }
    Ok(out)
}

/// The tarball size of each live version of a package.
pub fn tarball_sizes(store: &Store, name: &PackageName) -> Result<BTreeMap<String, u64>> {
    store.read(|db| {
        let package = crate::packages::tags::live_package(db, name)?;
        Ok(db
            .versions(package.id)?
            .into_iter()
            .filter(|v| v.deleted_at.is_none())
            .map(|v| (v.version, v.tarball_size))
            .collect())
    })
}

pub fn list_packages(store: &Store) -> Result<Vec<PackageSummary>> {
    store.read(|db| db.package_summaries())
}

/// The document update that makes `names` the maintainers of `name` (for `documents::apply`
/// locally, or `PUT /:pkg/-rev/:rev` remotely).
pub fn owners_document(name: &PackageName, rev: &str, names: &[String]) -> Value {
    let maintainers: Vec<Value> = names.iter().map(|n| json!({ "name": n })).collect();
    json!({ "_id": name.as_str(), "_rev": rev, "maintainers": maintainers })
}

/// The document update that deprecates (or with an empty `message`, undeprecates) the versions
/// of the full packument `doc` that match `range`, leaving every other version as it is.
/// Answers the document and the versions it changes; `None` when no version matches.
pub fn deprecate_document(
    doc: &Value,
    range: &semver::VersionReq,
    message: &str,
) -> Result<Option<(Value, Vec<String>)>> {
    let name = doc
        .get("_id")
        .or_else(|| doc.get("name"))
        .and_then(Value::as_str)
        .ok_or_else(|| Error::bad_request("the package document has no name"))?;
    let rev = doc.get("_rev").and_then(Value::as_str).unwrap_or_default();
    let versions = doc
        .get("versions")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::bad_request(format!("{name} has no versions")))?;
    let mut listed = serde_json::Map::new();
    let mut matched = Vec::new();
    for (version, manifest) in versions {
        let current = manifest
            .get("deprecated")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let matches = semver::Version::parse(version).is_ok_and(|v| {
            range.matches(&v) || (!v.pre.is_empty() && range_matches_prerelease(range, &v))
        });
        let wanted = if matches {
            matched.push(version.clone());
            message.to_string()
        } else {
            current
        };
        listed.insert(version.clone(), json!({ "deprecated": wanted }));
    }
    if matched.is_empty() {
        return Ok(None);
    }
    let update = json!({ "_id": name, "_rev": rev, "versions": listed });
    Ok(Some((update, matched)))
}

/// npm's `deprecate` includes prereleases in a range (`semver.satisfies(v, range,
/// {includePrerelease: true})`): compare the release part alone.
fn range_matches_prerelease(range: &semver::VersionReq, version: &semver::Version) -> bool {
    let release = semver::Version::new(version.major, version.minor, version.patch);
    range.matches(&release)
}

/// One stored object nothing refers to: a blob, or a temporary file left by a crash.
pub type OrphanBlob = crate::blobs::StoredObject;

/// The sha512 of every blob a live version, a proxied tarball or a mirrored binary file
/// refers to.
fn referenced_blobs(registry: &Registry) -> Result<HashSet<String>> {
    registry.store.read(|db| {
        let mut referenced: HashSet<String> = db
            .live_tarballs()?
            .into_iter()
            .map(|t| t.sha512_hex)
            .collect();
        referenced.extend(db.cached_tarball_blobs()?);
        referenced.extend(db.binary_file_blobs()?);
        Ok(referenced)
    })
}

/// Every blob in the store (and leftover temporary file) that no live version refers to.
/// A blob written for a publish whose transaction has not committed yet looks like an orphan
/// too: objects younger than `min_age` are left alone.
pub fn find_orphans(registry: &Registry, min_age: std::time::Duration) -> Result<Vec<OrphanBlob>> {
    let referenced = referenced_blobs(registry)?;
    let mut orphans: Vec<OrphanBlob> = registry
        .blobs
        .list()?
        .into_iter()
        .filter(|object| {
            let young = object
                .modified
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|age| age < min_age);
            !young && !referenced.contains(&object.name)
        })
        .collect();
    orphans.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(orphans)
}

/// Deletes orphans found by [`find_orphans`], checking each again against the database just
/// before, so a version published meanwhile keeps its tarball.
pub fn delete_orphans(
    registry: &Registry,
    _admin: &Admin<'_>,
    orphans: &[OrphanBlob],
    mut progress: impl FnMut(&OrphanBlob),
) -> Result<u64> {
    let referenced = referenced_blobs(registry)?;
    let mut freed = 0;
    for orphan in orphans {
        progress(orphan);
        if referenced.contains(&orphan.name) {
            continue;
        }
        registry.blobs.delete(orphan)?;
        freed += orphan.size;
    }
    Ok(freed)
}

/// One problem `registry doctor` found.
#[derive(Debug, Clone)]
pub struct Problem {
    /// `missing-blob`, `corrupt-blob`, `stale-packument`, `broken-packument`.
    pub kind: &'static str,
    pub package: String,
    pub version: Option<String>,
    pub detail: String,
    pub repair: String,
}

/// How many items doctor will look at, for a progress bar.
pub fn doctor_items(registry: &Registry) -> Result<u64> {
    let tarballs = registry.store.read(|db| db.live_tarballs())?.len() as u64;
    let packages = registry.store.read(|db| db.all_packages())?.len() as u64;
    Ok(tarballs + packages)
}

/// Checks every live version's blob (present, with the recorded sha512) and every package's
/// stored packument (present, and what its tables say it should be).
pub fn doctor(registry: &Registry, mut tick: impl FnMut()) -> Result<Vec<Problem>> {
    let mut problems = Vec::new();
    for tarball in registry.store.read(|db| db.live_tarballs())? {
        tick();
        let restore = format!(
            "restore the blob from a backup (registry restore), or unpublish the version \
             (registry unpublish {}@{})",
            tarball.package, tarball.version
        );
        match hash_blob(registry, &tarball.sha512_hex) {
            Ok(actual) if actual == tarball.sha512_hex => {}
            Ok(actual) => problems.push(Problem {
                kind: "corrupt-blob",
                package: tarball.package.clone(),
                version: Some(tarball.version.clone()),
                detail: format!(
                    "the tarball's sha512 is {}…, not the recorded {}…",
                    &actual[..16],
                    &tarball.sha512_hex[..16.min(tarball.sha512_hex.len())]
                ),
                repair: restore,
            }),
            Err(Error::MissingBlob(_)) => problems.push(Problem {
                kind: "missing-blob",
                package: tarball.package.clone(),
                version: Some(tarball.version.clone()),
                detail: format!("the tarball blob {} is missing", tarball.sha512_hex),
                repair: restore,
            }),
            Err(other) => return Err(other),
        }
    }
    for (id, name) in registry.store.read(|db| db.all_packages())? {
        tick();
        let repair = "rebuild it with `registry doctor --repair`".to_string();
        let problem = registry.store.read(|db| packument_problem(db, id, &name))?;
        if let Some((kind, detail)) = problem {
            problems.push(Problem {
                kind,
                package: name,
                version: None,
                detail,
                repair,
            });
        }
    }
    Ok(problems)
}

/// What is wrong with the fragments a package's documents are assembled from, if anything:
/// an abbreviation that no longer matches its manifest, or a document that cannot be built.
fn packument_problem(
    db: &crate::store::Db<'_>,
    package_id: i64,
    name: &str,
) -> Result<Option<(&'static str, String)>> {
    for (version, manifest, abbreviated) in db.abbreviations(package_id)? {
        let Ok(expected) = crate::packages::packument::abbreviate_manifest(&manifest) else {
            return Ok(Some((
                "broken-packument",
                format!("the stored manifest of version {version} is not a JSON object"),
            )));
        };
        if abbreviated.is_some_and(|stored| stored != expected) {
            return Ok(Some((
                "stale-packument",
                format!(
                    "the abbreviated manifest of version {version} does not match its manifest"
                ),
            )));
        }
    }
    for flavor in [PackumentFlavor::Full, PackumentFlavor::Abbreviated] {
        if let Err(e) = crate::packages::packument::build_current(db, name, flavor) {
            return Ok(Some(("broken-packument", e.to_string())));
        }
    }
    Ok(None)
}

/// Rebuilds the packuments doctor found stale or missing.
pub fn repair_packuments(registry: &Registry, _admin: &Admin<'_>, names: &[String]) -> Result<()> {
    for name in names {
        registry.store.write(|db| {
            let package = db
                .package_by_name(name)?
                .ok_or_else(|| Error::not_found(format!("package {name} not found")))?;
            db.clear_abbreviations(package.id)?;
            crate::packages::packument::refresh(db, package.id, name, &now_iso())?;
            Ok(())
        })?;
    }
    Ok(())
}

/// The sha512 of a stored blob; `MissingBlob` when it is not there, and the store's own
/// error (an S3 outage: 503) when it cannot be read, which doctor must not call missing.
fn hash_blob(registry: &Registry, sha512_hex: &str) -> Result<String> {
    let (blob, _) = registry.blobs.open(sha512_hex)?;
    let mut file = blob.into_reader();
    let mut hasher = Sha512::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// What a backup holds.
#[derive(Debug, Clone, Default)]
pub struct BackupReport {
    pub database_bytes: u64,
    pub blobs: u64,
    pub blob_bytes: u64,
}

/// A consistent online copy of the registry into the new directory `dest`: the database
/// first (SQLite's backup API: one snapshot), then every blob the copy refers to, from
/// whichever store holds them (an S3 bucket's blobs land in `dest/blobs/` too). Blobs are
/// written before the database transaction that refers to them commits, so every blob the
/// snapshot needs exists when it is copied.
pub fn backup(
    registry: &Registry,
    _admin: &Admin<'_>,
    dest: &Path,
    mut progress: impl FnMut(&str, u64, u64),
) -> Result<BackupReport> {
    if dest.exists() && fs::read_dir(dest)?.next().is_some() {
        return Err(Error::conflict(format!(
            "{} exists and is not empty: back up into a new directory",
            dest.display()
        )));
    }
    fs::create_dir_all(dest)?;
    let db_path = dest.join("registry.db");
    registry
        .store
        .backup_to(&db_path, |done, total| progress("database", done, total))?;
    let copy = Store::open(&db_path)?;
    let (tarballs, cached) =
        copy.read(|db| Ok((db.live_tarballs()?, db.cached_tarball_blobs()?)))?;
    drop(copy);
    let wanted: BTreeSet<String> = tarballs
        .into_iter()
        .map(|t| t.sha512_hex)
        .chain(cached)
        .collect();
    let mut report = BackupReport {
        database_bytes: fs::metadata(&db_path)?.len(),
        ..BackupReport::default()
    };
    let total = wanted.len() as u64;
    for (i, sha) in wanted.iter().enumerate() {
        progress("blobs", i as u64, total);
        let to = dest
            .join("blobs")
            .join(crate::blobs::blob_relative_path(sha)?);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut file = fs::File::create(&to)?;
        // File to file, std's copy is copy_file_range, as fs::copy was.
        let copied = match registry.blobs.open(sha)?.0 {
            Blob::File(mut from) => std::io::copy(&mut from, &mut file),
            Blob::Stream(mut from) => std::io::copy(&mut from, &mut file),
            Blob::Bytes(bytes) => {
                std::io::Write::write_all(&mut file, &bytes).map(|()| bytes.len() as u64)
            }
        };
        report.blob_bytes +=
            copied.map_err(|e| Error::Storage(format!("cannot copy blob {sha}: {e}")))?;
        report.blobs += 1;
    }
    progress("blobs", total, total);
    Ok(report)
}

/// Restores a backup made by [`backup`] into an empty data directory. The registry must not
/// be running on `data_dir`.
pub fn restore(
    source: &Path,
    data_dir: &Path,
    mut progress: impl FnMut(&str, u64, u64),
) -> Result<BackupReport> {
    let src_db = source.join("registry.db");
    if !src_db.is_file() {
        return Err(Error::not_found(format!(
            "{} is not a backup: it has no registry.db",
            source.display()
        )));
    }
    crate::store::check_database(&src_db)?;
    let target_db = data_dir.join("registry.db");
    if target_db.exists() {
        return Err(Error::conflict(format!(
            "{} already has a database: restore into a new, empty data directory (and point \
             --data-dir at it)",
            data_dir.display()
        )));
    }
    fs::create_dir_all(data_dir)?;
    let mut files = Vec::new();
    let mut stack = vec![source.join("blobs")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let entry = entry?;
            if entry.metadata()?.is_dir() {
                stack.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
    }
    let mut report = BackupReport::default();
    let total = files.len() as u64;
    for (i, from) in files.iter().enumerate() {
        progress("blobs", i as u64, total);
        let relative = from
            .strip_prefix(source)
            .map_err(|_| Error::Storage("a blob outside the backup".into()))?;
        let to = data_dir.join(relative);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)?;
        }
        report.blob_bytes += fs::copy(from, &to)?;
        report.blobs += 1;
    }
    progress("blobs", total, total);
    let tmp = data_dir.join("registry.db.restoring");
    report.database_bytes = fs::copy(&src_db, &tmp)?;
    fs::rename(&tmp, &target_db)?;
    Ok(report)
}

/// Maintainer names of a package, from its stored full packument (used by both backends).
pub fn maintainer_names(doc: &Value) -> Vec<String> {
    doc.get("maintainers")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|m| m.get("name").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The administrator proof of the local backend.
pub fn with_local_admin<T>(f: impl FnOnce(&Admin<'_>) -> Result<T>) -> Result<T> {
    let identity = local_admin();
    let admin = require_admin(Some(&identity))?;
    f(&admin)
}

/// A version → deprecation map of a full packument (for `package info`).
pub fn deprecations(doc: &Value) -> BTreeMap<String, String> {
    doc.get("versions")
        .and_then(Value::as_object)
        .map(|versions| {
            versions
                .iter()
                .filter_map(|(v, m)| {
                    m.get("deprecated")
                        .and_then(Value::as_str)
                        .filter(|d| !d.is_empty())
                        .map(|d| (v.clone(), d.to_string()))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        json!({
            "_id": "p", "_rev": "3-abc",
            "versions": {
                "1.0.0": {}, "1.1.0": {"deprecated": "old"}, "2.0.0-rc.1": {}, "2.0.0": {}
            }
        })
    }

    #[test]
    fn deprecating_a_range_keeps_every_other_version_as_it_was() -> Result<()> {
        let range = semver::VersionReq::parse("<2").map_err(Error::bad_request)?;
        let (update, changed) = deprecate_document(&doc(), &range, "gone")?
            .ok_or_else(|| Error::bad_request("expected matches"))?;
        assert_eq!(changed, ["1.0.0", "1.1.0"]);
        assert_eq!(
            update,
            json!({"_id": "p", "_rev": "3-abc", "versions": {
                "1.0.0": {"deprecated": "gone"}, "1.1.0": {"deprecated": "gone"},
                "2.0.0-rc.1": {"deprecated": ""}, "2.0.0": {"deprecated": ""}
            }})
        );
        Ok(())
    }

    #[test]
    fn ranges_include_prereleases_as_npm_deprecate_does() -> Result<()> {
        let range = semver::VersionReq::parse("^2").map_err(Error::bad_request)?;
        let (_, changed) = deprecate_document(&doc(), &range, "x")?
            .ok_or_else(|| Error::bad_request("expected matches"))?;
        assert_eq!(changed, ["2.0.0-rc.1", "2.0.0"]);
        let none = semver::VersionReq::parse(">3").map_err(Error::bad_request)?;
        assert!(deprecate_document(&doc(), &none, "x")?.is_none());
        Ok(())
    }

    #[test]
    fn the_local_administrator_passes_the_admin_check() -> Result<()> {
        with_local_admin(|admin| {
            assert!(admin.identity().user.is_admin);
            assert_eq!(admin.identity().user.id, 0);
            Ok(())
        })
    }

    #[test]
    fn owner_documents_name_every_maintainer() -> Result<()> {
        let name = PackageName::parse("@s/p")?;
        assert_eq!(
            owners_document(&name, "1-x", &["a".into(), "b".into()]),
            json!({"_id": "@s/p", "_rev": "1-x", "maintainers": [{"name": "a"}, {"name": "b"}]})
        );
        Ok(())
    }
}
