//! Private packages: npm's access model. A package is public or restricted; a restricted one
//! is readable only by its maintainers, by members of teams granted it, by the owners and
//! admins of the org whose scope it is in, and by registry admins. Everyone else is told it
//! does not exist (404), on every path: see [`Visibility`] for listings and
//! [`crate::accounts::authz`] for the decision itself.
//!
//! Orgs own the scope of their name (`@acme/…`); a user's own scope `@name` belongs to that
//! user. Teams (`@acme:developers`) are granted packages read-only or read-write.

pub mod orgs;
pub mod packages;
pub mod teams;

use std::collections::HashSet;

use serde::Serialize;

use crate::accounts::auth::Identity;
use crate::accounts::authz;
use crate::error::{Error, Result};
use crate::store::Db;

/// The team every org starts with: members join it when they join the org, and each new
/// package published under the org's scope is granted to it read-write (as on npmjs).
pub const DEVELOPERS_TEAM: &str = "developers";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    Public,
    Restricted,
}

impl Access {
    /// npm's words: `public`, and `restricted` (or `private`, as `npm access set` says it).
    pub fn parse(text: &str) -> Result<Access> {
        match text {
            "public" => Ok(Access::Public),
            "restricted" | "private" => Ok(Access::Restricted),
            other => Err(Error::bad_request(format!(
                "access must be \"public\" or \"restricted\", not {other:?}"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Access::Public => "public",
            Access::Restricted => "restricted",
        }
    }

    pub fn of(restricted: bool) -> Access {
        if restricted {
            Access::Restricted
        } else {
            Access::Public
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OrgRole {
    Developer,
    Admin,
    Owner,
}

impl OrgRole {
    pub fn parse(text: &str) -> Option<OrgRole> {
        match text {
            "developer" => Some(OrgRole::Developer),
            "admin" => Some(OrgRole::Admin),
            "owner" => Some(OrgRole::Owner),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OrgRole::Developer => "developer",
            OrgRole::Admin => "admin",
            OrgRole::Owner => "owner",
        }
    }

    /// Owners and admins manage the org's members, teams and packages.
    pub fn manages(self) -> bool {
        self >= OrgRole::Admin
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum TeamPermission {
    #[serde(rename = "read-only")]
    ReadOnly,
    #[serde(rename = "read-write")]
    ReadWrite,
}

impl TeamPermission {
    pub fn parse(text: &str) -> Result<TeamPermission> {
        match text {
            "read-only" => Ok(TeamPermission::ReadOnly),
            "read-write" => Ok(TeamPermission::ReadWrite),
            other => Err(Error::bad_request(format!(
                "permissions must be \"read-only\" or \"read-write\", not {other:?}"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TeamPermission::ReadOnly => "read-only",
            TeamPermission::ReadWrite => "read-write",
        }
    }

    /// What npm's access listings say: `read` or `write`.
    pub fn wire(self) -> &'static str {
        match self {
            TeamPermission::ReadOnly => "read",
            TeamPermission::ReadWrite => "write",
        }
    }
}

#[derive(Debug, Clone)]
pub struct OrgRecord {
    pub id: i64,
    pub name: String,
    pub created_at: String,
    pub members: u64,
}

#[derive(Debug, Clone)]
pub struct TeamRecord {
    pub id: i64,
    pub org_id: i64,
    pub name: String,
    pub description: String,
    pub created_at: String,
}

/// What one user holds on one package.
#[derive(Debug, Clone, Copy, Default)]
pub struct PackageRights {
    pub maintainer: bool,
    /// The best grant among the user's teams.
    pub team: Option<TeamPermission>,
    /// The user's role in the org whose scope the package is in.
    pub org_role: Option<OrgRole>,
}

/// The restricted packages a reader may see, for listings (search, feeds, by-user, stars,
/// downloads): public packages are always in.
#[derive(Debug, Clone)]
pub enum Visibility {
    /// An admin with an unlimited credential.
    Everything,
    /// Public packages and these restricted ones.
    PublicAnd(HashSet<i64>),
}

impl Visibility {
    pub fn anonymous() -> Visibility {
        Visibility::PublicAnd(HashSet::new())
    }

    /// Whether a package (by id and access) is in.
    pub fn includes(&self, package_id: i64, restricted: bool) -> bool {
        match self {
            Visibility::Everything => true,
            Visibility::PublicAnd(ids) => !restricted || ids.contains(&package_id),
        }
    }
}

impl Default for Visibility {
    /// What an anonymous reader sees: the safe default for a listing nobody scoped.
    fn default() -> Visibility {
        Visibility::anonymous()
    }
}

/// What `reader` may see in listings.
pub fn visibility(db: &Db<'_>, reader: Option<&Identity>) -> Result<Visibility> {
    let Some(identity) = reader else {
        return Ok(Visibility::anonymous());
    };
    if identity.user.is_admin && !identity.is_package_limited() {
        return Ok(Visibility::Everything);
    }
    let candidates = if identity.user.is_admin {
        db.restricted_packages()?
    } else {
        db.readable_restricted(identity.user.id)?
    };
    Ok(Visibility::PublicAnd(
        candidates
            .into_iter()
            .filter(|(_, name)| identity.may_reach_package(name))
            .map(|(id, _)| id)
            .collect(),
    ))
}

/// The org that owns a package name's scope, by the scope's spelling (whether or not such an
/// org exists).
pub fn scope_of(package: &str) -> Option<&str> {
    package
        .strip_prefix('@')
        .and_then(|rest| rest.split_once('/'))
        .map(|(scope, _)| scope)
}

/// Whether `reader` may read a package (by id, name and access); if not, the same 404 as for
/// no package at all. Public: yes, without a lookup. Restricted: one statement for the
/// reader's rights.
pub fn require_read(
    db: &Db<'_>,
    reader: Option<&Identity>,
    package_id: i64,
    name: &str,
    restricted: bool,
) -> Result<()> {
    if !restricted {
        return Ok(());
    }
    let Some(identity) = reader else {
        return Err(hidden(name));
    };
    let rights = db.package_rights(package_id, scope_of(name), identity.user.id)?;
    let subject = authz::subject_for_package(identity, name, true, true, rights);
    match authz::decide(authz::Action::Read, subject) {
        authz::Decision::Allow => Ok(()),
        _ => Err(hidden(name)),
    }
}

/// A 404 if `name` is a local restricted package that `reader` may not see; names that are
/// not local (proxied, or unknown) pass.
pub fn ensure_readable(db: &Db<'_>, reader: Option<&Identity>, name: &str) -> Result<()> {
    match db.package_by_name(name)? {
        Some(package) => require_read(db, reader, package.id, name, package.restricted),
        None => Ok(()),
    }
}

/// A 404 for a package the reader may not see: the same answer as for one that does not exist.
pub fn hidden(name: &str) -> Error {
    Error::not_found(format!("package {name} not found"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visibility_includes() {
        let some = Visibility::PublicAnd([3, 1].into_iter().collect());
        assert!(some.includes(3, true) && !some.includes(2, true) && some.includes(2, false));
        assert!(Visibility::Everything.includes(2, true));
        assert!(!Visibility::default().includes(1, true));
    }

    #[test]
    fn words() {
        assert_eq!(Access::parse("private").ok(), Some(Access::Restricted));
        assert!(Access::parse("secret").is_err());
        assert!(OrgRole::Owner.manages() && OrgRole::Admin.manages());
        assert!(!OrgRole::Developer.manages());
        assert_eq!(scope_of("@acme/x"), Some("acme"));
        assert_eq!(scope_of("x"), None);
    }
}
