//! Orgs: `registry org create` (admin), then npm's `npm org set|rm|ls`
//! (`PUT|DELETE|GET /-/org/:org/user`).

use serde::Serialize;

use crate::access::{OrgRecord, OrgRole, TeamPermission, DEVELOPERS_TEAM};
use crate::accounts::auth::Identity;
use crate::accounts::authz::{require_org, Action, Admin};
use crate::clock::now_iso;
use crate::error::{Error, Result};
use crate::packages::names::validate_username;
use crate::store::{Db, Store, UserRecord};

/// An org name as npm spells it (`@acme` or `acme`), validated as a user name is: the two
/// share one namespace, the scope.
pub fn normalize_org_name(raw: &str) -> Result<String> {
    let bare = raw.strip_prefix('@').unwrap_or(raw);
    validate_username(bare).map_err(|_| {
        Error::bad_request(format!(
            "{raw:?} is not a valid org name: lowercase letters, digits, '-', '.' and '_'"
        ))
    })?;
    Ok(bare.to_string())
}

/// What `npm org set` prints: the org with its new size, the user and the role.
#[derive(Debug, Clone, Serialize)]
pub struct Membership {
    pub org: OrgSize,
    pub user: String,
    pub role: OrgRole,
}

#[derive(Debug, Clone, Serialize)]
pub struct OrgSize {
    pub name: String,
    pub size: u64,
}

pub(crate) fn org_named(db: &Db<'_>, name: &str) -> Result<OrgRecord> {
    db.org_by_name(name)?
        .ok_or_else(|| Error::not_found(format!("no org named {name}")))
}

pub(crate) fn user_named(db: &Db<'_>, name: &str) -> Result<UserRecord> {
    let bare = name.strip_prefix('@').unwrap_or(name);
    db.user_by_name(bare)?
        .ok_or_else(|| Error::not_found(format!("no user named {bare}")))
}

/// Creates an org with its first owner and its `developers` team. Admins only.
pub fn create_org(store: &Store, _admin: &Admin<'_>, name: &str, owner: &str) -> Result<OrgRecord> {
    let name = normalize_org_name(name)?;
    store.write(|db| {
        if db.org_by_name(&name)?.is_some() {
            return Err(Error::conflict(format!("the org {name} already exists")));
        }
        if db.user_by_name(&name)?.is_some() {
            return Err(Error::conflict(format!(
                "{name} is a user name, and the scope @{name} belongs to that user: choose \
                 another name for the org"
            )));
        }
        let owner = user_named(db, owner)?;
        let now = now_iso();
        let org_id = db.insert_org(&name, &now)?;
        db.set_org_member(org_id, owner.id, OrgRole::Owner)?;
        let team_id = db.insert_team(org_id, DEVELOPERS_TEAM, "", &now)?;
        db.add_team_member(team_id, owner.id)?;
        org_named(db, &name)
    })
}

/// Every org, for admins.
pub fn list_orgs(store: &Store, _admin: &Admin<'_>) -> Result<Vec<OrgRecord>> {
    store.read(|db| db.orgs())
}

/// `npm org set ORG USER [ROLE]`: adds the user (to the org and its `developers` team) or
/// changes their role. Owners and admins of the org may; only owners make or unmake owners;
/// the last owner stays.
pub fn set_member(
    store: &Store,
    identity: Option<&Identity>,
    org: &str,
    user: &str,
    role: Option<&str>,
) -> Result<Membership> {
    let org_name = normalize_org_name(org)?;
    let role = match role {
        None => OrgRole::Developer,
        Some(text) => OrgRole::parse(text).ok_or_else(|| {
            Error::bad_request(format!(
                "role must be \"owner\", \"admin\" or \"developer\", not {text:?}"
            ))
        })?,
    };
    store.write(|db| {
        let org = org_named(db, &org_name)?;
        require_org(db, identity, Action::ManageOrg, org.id, &org.name)?;
        let user = user_named(db, user)?;
        let current = db.org_role(org.id, user.id)?;
        if role == OrgRole::Owner || current == Some(OrgRole::Owner) {
            require_org(db, identity, Action::ManageOrgOwners, org.id, &org.name)?;
        }
        if current == Some(OrgRole::Owner) && role != OrgRole::Owner {
            keep_an_owner(db, &org)?;
        }
        db.set_org_member(org.id, user.id, role)?;
        if current.is_none() {
            if let Some(team) = db.team_by_name(org.id, DEVELOPERS_TEAM)? {
                db.add_team_member(team.id, user.id)?;
            }
        }
        let size = org_named(db, &org.name)?.members;
        Ok(Membership {
            org: OrgSize {
                name: org.name,
                size,
            },
            user: user.name,
            role,
        })
    })
}

fn keep_an_owner(db: &Db<'_>, org: &OrgRecord) -> Result<()> {
    if db.count_org_owners(org.id)? <= 1 {
        return Err(Error::conflict(format!(
            "that is the last owner of {}: make someone else an owner first",
            org.name
        )));
    }
    Ok(())
}

/// `npm org rm ORG USER`: removes the user from the org and all of its teams.
pub fn remove_member(
    store: &Store,
    identity: Option<&Identity>,
    org: &str,
    user: &str,
) -> Result<()> {
    let org_name = normalize_org_name(org)?;
    store.write(|db| {
        let org = org_named(db, &org_name)?;
        require_org(db, identity, Action::ManageOrg, org.id, &org.name)?;
        let user = user_named(db, user)?;
        match db.org_role(org.id, user.id)? {
            None => Err(Error::not_found(format!(
                "{} is not a member of {}",
                user.name, org.name
            ))),
            Some(role) => {
                if role == OrgRole::Owner {
                    require_org(db, identity, Action::ManageOrgOwners, org.id, &org.name)?;
                    keep_an_owner(db, &org)?;
                }
                db.remove_org_member(org.id, user.id)?;
                Ok(())
            }
        }
    })
}

/// `npm org ls ORG`: every member and their role; members of the org and admins only.
pub fn members(
    store: &Store,
    identity: Option<&Identity>,
    org: &str,
) -> Result<Vec<(String, OrgRole)>> {
    let org_name = normalize_org_name(org)?;
    store.read(|db| {
        let org = org_named(db, &org_name)?;
        require_org(db, identity, Action::ReadOrg, org.id, &org.name)?;
        db.org_members(org.id)
    })
}

/// A new package under an org's scope is granted to the org's `developers` team read-write,
/// as npmjs does; called in the publish's transaction.
pub fn grant_to_developers(db: &Db<'_>, package: &str, package_id: i64) -> Result<()> {
    let Some(scope) = crate::access::scope_of(package) else {
        return Ok(());
    };
    let Some(org) = db.org_by_name(scope)? else {
        return Ok(());
    };
    if let Some(team) = db.team_by_name(org.id, DEVELOPERS_TEAM)? {
        db.grant_team(team.id, package_id, TeamPermission::ReadWrite)?;
    }
    Ok(())
}
