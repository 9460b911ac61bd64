//! Dist-tags: `npm dist-tag ls|add|rm` and the older `PUT /:pkg/:tag`.

use std::collections::BTreeMap;

use crate::accounts::auth::Identity;
use crate::accounts::authz::{require_maintainer, Action, Writer};
use crate::clock::now_iso;
use crate::error::{Error, Result};
use crate::hooks::outbox::{self, Change};
use crate::packages::names::{validate_tag, PackageName};
use crate::packages::packument;
use crate::store::{Db, PackageRecord, Store};

/// The package if it exists, was not fully unpublished and is not blocked: every change to an
/// existing package goes through here.
pub fn live_package(db: &Db<'_>, name: &PackageName) -> Result<PackageRecord> {
    crate::packages::blocks::ensure_not_blocked(db, name.as_str())?;
    match db.package_by_name(name.as_str())? {
        Some(package) if package.unpublished_at.is_none() => Ok(package),
        Some(_) => Err(Error::not_found(format!("package {name} was unpublished"))),
        None => Err(crate::registry::package_not_found(name)),
    }
}

/// The package's dist-tags, if `reader` may see the package.
pub fn list(
    store: &Store,
    name: &PackageName,
    reader: Option<&Identity>,
) -> Result<BTreeMap<String, String>> {
    store.read(|db| {
        let package = live_package(db, name)?;
        crate::access::require_read(db, reader, package.id, &package.name, package.restricted)?;
        db.dist_tags(package.id)
    })
}

/// Points `tag` at `version`, which must be a live version of the package.
pub fn set(
    store: &Store,
    writer: &Writer<'_>,
    name: &PackageName,
    tag: &str,
    version: &str,
) -> Result<()> {
    validate_tag(tag)?;
    store.write(|db| {
        let package = live_package(db, name)?;
        require_maintainer(db, writer, Action::Tag, &package)?;
        let live = db
            .versions(package.id)?
            .into_iter()
            .any(|v| v.version == version && v.deleted_at.is_none());
        if !live {
            return Err(Error::bad_request(format!(
                "{name} has no version {version:?} to tag as {tag:?}"
            )));
        }
        db.set_dist_tag(package.id, tag, version)?;
        packument::refresh(db, package.id, name.as_str(), &now_iso())?;
        let change = Change::DistTag {
            tag: tag.to_string(),
        };
        outbox::enqueue(db, name.as_str(), &[change])?;
        Ok(())
    })
}

pub fn remove(store: &Store, writer: &Writer<'_>, name: &PackageName, tag: &str) -> Result<()> {
    if tag == "latest" {
        return Err(Error::bad_request(
            "the latest tag cannot be removed: point it at another version instead",
        ));
    }
    store.write(|db| {
        let package = live_package(db, name)?;
        require_maintainer(db, writer, Action::Tag, &package)?;
        if !db.delete_dist_tag(package.id, tag)? {
            return Err(Error::not_found(format!("{name} has no dist-tag {tag:?}")));
        }
        packument::refresh(db, package.id, name.as_str(), &now_iso())?;
        let change = Change::DistTagRm {
            tag: tag.to_string(),
        };
        outbox::enqueue(db, name.as_str(), &[change])?;
        Ok(())
    })
}

/// The version `latest` should fall back to when its version is gone: the highest stable
/// version left, else the highest prerelease.
pub fn fallback_latest<'a>(live: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    live.into_iter()
        .filter_map(|v| semver::Version::parse(v).ok().map(|parsed| (parsed, v)))
        .max_by(|(a, _), (b, _)| (a.pre.is_empty(), a).cmp(&(b.pre.is_empty(), b)))
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_falls_back_to_the_highest_stable_version() {
        assert_eq!(
            fallback_latest(["1.0.0", "2.0.0-rc.1", "1.5.0"]),
            Some("1.5.0")
        );
        assert_eq!(
            fallback_latest(["2.0.0-rc.1", "2.0.0-beta.3"]),
            Some("2.0.0-rc.1")
        );
        assert_eq!(fallback_latest([]), None);
    }
}
