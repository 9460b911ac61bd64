//! A package's access level and who may use it: `npm access get|set status`,
//! `npm access list collaborators`, `npm access list packages`.

use crate::access::orgs::{normalize_org_name, org_named, user_named};
use crate::access::teams::TeamName;
use crate::access::{hidden, require_read, visibility, Access, TeamPermission};
use crate::accounts::auth::Identity;
use crate::accounts::authz::{require_maintainer, require_org, require_writer, Action};
use crate::clock::now_iso;
use crate::error::{Error, Result};
use crate::packages::names::PackageName;
use crate::store::{Db, PackageRecord, Store};

/// The package if `reader` may see it; otherwise the same 404 as for no package at all. A
/// blocked package is a 451 here as on every other path.
pub fn readable_package(
    db: &Db<'_>,
    reader: Option<&Identity>,
    name: &PackageName,
) -> Result<PackageRecord> {
    crate::packages::blocks::ensure_not_blocked(db, name.as_str())?;
    let package = db
        .package_by_name(name.as_str())?
        .filter(|p| p.unpublished_at.is_none())
        .ok_or_else(|| hidden(name.as_str()))?;
    require_read(db, reader, package.id, &package.name, package.restricted)?;
    Ok(package)
}

/// `npm access get status`.
pub fn access_of(store: &Store, reader: Option<&Identity>, name: &PackageName) -> Result<Access> {
    store.read(|db| readable_package(db, reader, name).map(|p| Access::of(p.restricted)))
}

/// `npm access set status=public|private`: maintainers, the org's owners and admins, and
/// registry admins. The change shows at once on every read path (each read checks it).
pub fn set_access(
    store: &Store,
    identity: Option<&Identity>,
    name: &PackageName,
    access: Access,
) -> Result<()> {
    let writer = require_writer(identity)?;
    store.write(|db| {
        let package = readable_package(db, identity, name)?;
        require_maintainer(db, &writer, Action::SetAccess, &package)?;
        if package.restricted != (access == Access::Restricted) {
            db.set_package_restricted(package.id, access == Access::Restricted)?;
            // A new revision, so that clients holding the document revalidate it.
            crate::packages::packument::refresh(db, package.id, name.as_str(), &now_iso())?;
        }
        Ok(())
    })
}

/// `npm access list collaborators`: maintainers (read-write) and members of teams granted the
/// package.
pub fn collaborators(
    store: &Store,
    reader: Option<&Identity>,
    name: &PackageName,
) -> Result<Vec<(String, TeamPermission)>> {
    store.read(|db| {
        let package = readable_package(db, reader, name)?;
        db.collaborators(package.id)
    })
}

/// Whose packages `npm access list packages` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackageOwner {
    Org(String),
    Team(TeamName),
    User(String),
}

/// The packages of an org (all under its scope, read-write), of a team (its grants) or of a
/// user (maintained, or through teams), leaving out what `reader` may not see; 404 when
/// there is no such org, team or user.
pub fn packages_of(
    store: &Store,
    reader: Option<&Identity>,
    owner: &PackageOwner,
) -> Result<Vec<(String, TeamPermission)>> {
    store.read(|db| {
        let seen = visibility(db, reader)?;
        let rows: Vec<(i64, String, bool, TeamPermission)> = match owner {
            PackageOwner::Org(org) => {
                let org = org_named(db, &normalize_org_name(org)?)?;
                db.scope_packages(&org.name)?
                    .into_iter()
                    .map(|(id, name, restricted)| (id, name, restricted, TeamPermission::ReadWrite))
                    .collect()
            }
            PackageOwner::Team(team) => {
                let org = org_named(db, &team.org)?;
                require_org(db, reader, Action::ReadOrg, org.id, &org.name)?;
                let record = db
                    .team_by_name(org.id, &team.team)?
                    .ok_or_else(|| Error::not_found(format!("no team {team}")))?;
                db.team_packages(record.id)?
            }
            PackageOwner::User(user) => {
                let user = user_named(db, user)?;
                db.user_packages(user.id)?
            }
        };
        Ok(rows
            .into_iter()
            .filter(|(id, _, restricted, _)| seen.includes(*id, *restricted))
            .map(|(_, name, _, permission)| (name, permission))
            .collect())
    })
}
