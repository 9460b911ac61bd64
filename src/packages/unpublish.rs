//! Unpublishing versions and whole packages. Version numbers stay burnt; tarballs of removed
//! versions stop being served at once, and their blobs are left for `registry gc`.

use crate::accounts::authz::{require_maintainer, Action, Writer};
use crate::clock::now_iso;
use crate::error::{Error, Result};
use crate::hooks::outbox::{self, Change};
use crate::packages::names::PackageName;
use crate::packages::packument;
use crate::packages::tags::{fallback_latest, live_package};
use crate::store::{Db, PackageRecord, Store};

/// Removes `versions` (live ones) inside the caller's transaction, repairs the tags, and turns
/// the package into a tombstone when nothing is left. The caller refreshes the packument.
pub fn remove_versions(
    db: &Db<'_>,
    package: &PackageRecord,
    versions: &[String],
    now: &str,
) -> Result<()> {
    for version in versions {
        db.mark_version_deleted(package.id, version, now)?;
    }
    let live = live_versions(db, package)?;
    for (tag, target) in db.dist_tags(package.id)? {
        if !live.contains(&target) {
            db.delete_dist_tag(package.id, &tag)?;
        }
    }
    match fallback_latest(live.iter().map(String::as_str)) {
        Some(latest) => {
            if !db.dist_tags(package.id)?.contains_key("latest") {
                db.set_dist_tag(package.id, "latest", latest)?;
            }
        }
        None => db.set_package_unpublished(package.id, Some(now))?,
    }
    Ok(())
}

fn live_versions(db: &Db<'_>, package: &PackageRecord) -> Result<Vec<String>> {
    Ok(db
        .versions(package.id)?
        .into_iter()
        .filter(|v| v.deleted_at.is_none())
        .map(|v| v.version)
        .collect())
}

/// `DELETE /:pkg/-rev/:rev`: the whole package.
pub fn unpublish_package(
    store: &Store,
    writer: &Writer<'_>,
    name: &PackageName,
    rev: &str,
) -> Result<()> {
    store.write(|db| {
        let package = live_package(db, name)?;
        require_maintainer(db, writer, Action::Unpublish, &package)?;
        check_rev(&package, rev)?;
        let now = now_iso();
        let live = live_versions(db, &package)?;
        remove_versions(db, &package, &live, &now)?;
        packument::refresh(db, package.id, name.as_str(), &now)?;
        outbox::enqueue(db, name.as_str(), &[Change::Unpublish { version: None }])?;
        Ok(())
    })
}

/// `DELETE /:pkg/-/:file/-rev/:rev`: npm sends it after the document update that removed the
/// version; if the version is still live (another client), it is unpublished here.
pub fn unpublish_tarball(
    store: &Store,
    writer: &Writer<'_>,
    name: &PackageName,
    file: &str,
) -> Result<()> {
    let version = crate::registry::version_of_tarball(name, file)
        .ok_or_else(|| Error::not_found(format!("tarball {file} of {name} not found")))?;
    store.write(|db| {
        let package = live_package(db, name)?;
        require_maintainer(db, writer, Action::Unpublish, &package)?;
        match db.version_state(package.id, &version)? {
            None => Err(Error::not_found(format!(
                "tarball {file} of {name} not found"
            ))),
            Some((_, true)) => Ok(()),
            Some((_, false)) => {
                let now = now_iso();
                remove_versions(db, &package, std::slice::from_ref(&version), &now)?;
                packument::refresh(db, package.id, name.as_str(), &now)?;
                outbox::enqueue(
                    db,
                    name.as_str(),
                    &[Change::Unpublish {
                        version: Some(version),
                    }],
                )?;
                Ok(())
            }
        }
    })
}

/// A write that names a revision must name the current one (CouchDB's optimistic locking):
/// a client acting on a stale document is told so instead of undoing someone else's change.
pub fn check_rev(package: &PackageRecord, rev: &str) -> Result<()> {
    let current = packument::revision(package.rev_seq, &package.name, &package.modified_at);
    if rev != current {
        return Err(Error::conflict(format!(
            "document update conflict: revision {rev} is not the current {current}; fetch the \
             package again and retry"
        )));
    }
    Ok(())
}
