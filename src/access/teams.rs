//! Teams of an org (`@acme:developers`): npm's `npm team create|destroy|add|rm|ls` and the
//! grants of `npm access grant|revoke`.

use serde::Serialize;

use crate::access::orgs::{normalize_org_name, org_named, user_named};
use crate::access::packages::readable_package;
use crate::access::{OrgRecord, TeamPermission, TeamRecord, DEVELOPERS_TEAM};
use crate::accounts::auth::Identity;
use crate::accounts::authz::{require_maintainer, require_org, require_writer, Action};
use crate::clock::now_iso;
use crate::error::{Error, Result};
use crate::packages::names::{validate_username, PackageName};
use crate::store::{Db, Store};

/// A team as `ORG:TEAM` (npm also writes `@ORG:TEAM`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamName {
    pub org: String,
    pub team: String,
}

impl TeamName {
    pub fn parse(entity: &str) -> Result<TeamName> {
        let bare = entity.strip_prefix('@').unwrap_or(entity);
        let (org, team) = bare.split_once(':').ok_or_else(|| {
            Error::bad_request(format!("{entity:?} is not a team: write it as @org:team"))
        })?;
        TeamName::new(org, team)
    }

    pub fn new(org: &str, team: &str) -> Result<TeamName> {
        let org = normalize_org_name(org)?;
        validate_username(team).map_err(|_| {
            Error::bad_request(format!(
                "{team:?} is not a valid team name: lowercase letters, digits, '-', '.' and '_'"
            ))
        })?;
        Ok(TeamName {
            org,
            team: team.to_string(),
        })
    }
}

impl std::fmt::Display for TeamName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.org, self.team)
    }
}

/// What `npm team create` answers.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedTeam {
    pub name: String,
    pub description: String,
    pub created: String,
}

fn team_named(db: &Db<'_>, org: &OrgRecord, name: &TeamName) -> Result<TeamRecord> {
    db.team_by_name(org.id, &name.team)?
        .ok_or_else(|| Error::not_found(format!("no team {name}")))
}

/// The org and team, after checking that the caller may do `action` to the org.
fn authorized(
    db: &Db<'_>,
    identity: Option<&Identity>,
    action: Action,
    name: &TeamName,
) -> Result<(OrgRecord, TeamRecord)> {
    let org = org_named(db, &name.org)?;
    require_org(db, identity, action, org.id, &org.name)?;
    let team = team_named(db, &org, name)?;
    Ok((org, team))
}

const MAX_DESCRIPTION_LEN: usize = 1024;

pub fn create_team(
    store: &Store,
    identity: Option<&Identity>,
    name: &TeamName,
    description: Option<&str>,
) -> Result<CreatedTeam> {
    let description = description.unwrap_or_default();
    if description.len() > MAX_DESCRIPTION_LEN || description.chars().any(char::is_control) {
        return Err(Error::bad_request(format!(
            "a team's description is at most {MAX_DESCRIPTION_LEN} bytes of text without \
             control characters"
        )));
    }
    store.write(|db| {
        let org = org_named(db, &name.org)?;
        require_org(db, identity, Action::ManageOrg, org.id, &org.name)?;
        if db.team_by_name(org.id, &name.team)?.is_some() {
            return Err(Error::conflict(format!("the team {name} already exists")));
        }
        let now = now_iso();
        db.insert_team(org.id, &name.team, description, &now)?;
        Ok(CreatedTeam {
            name: name.to_string(),
            description: description.to_string(),
            created: now,
        })
    })
}

pub fn destroy_team(store: &Store, identity: Option<&Identity>, name: &TeamName) -> Result<()> {
    if name.team == DEVELOPERS_TEAM {
        return Err(Error::conflict(format!(
            "{name} cannot be destroyed: every org keeps its {DEVELOPERS_TEAM} team, which new \
             members join and new packages are granted to (remove members or revoke packages \
             instead)"
        )));
    }
    store.write(|db| {
        let (_, team) = authorized(db, identity, Action::ManageOrg, name)?;
        db.delete_team(team.id)
    })
}

/// Adds a member of the org to the team; adding someone already in it succeeds.
pub fn add_member(
    store: &Store,
    identity: Option<&Identity>,
    name: &TeamName,
    user: &str,
) -> Result<()> {
    store.write(|db| {
        let (org, team) = authorized(db, identity, Action::ManageOrg, name)?;
        let user = user_named(db, user)?;
        if db.org_role(org.id, user.id)?.is_none() {
            return Err(Error::bad_request(format!(
                "{} is not a member of the org {}: add them first with `npm org set {} {}`",
                user.name, org.name, org.name, user.name
            )));
        }
        db.add_team_member(team.id, user.id)?;
        Ok(())
    })
}

pub fn remove_member(
    store: &Store,
    identity: Option<&Identity>,
    name: &TeamName,
    user: &str,
) -> Result<()> {
    store.write(|db| {
        let (_, team) = authorized(db, identity, Action::ManageOrg, name)?;
        let user = user_named(db, user)?;
        if !db.remove_team_member(team.id, user.id)? {
            return Err(Error::not_found(format!(
                "{} is not a member of {name}",
                user.name
            )));
        }
        Ok(())
    })
}

/// The org's teams as `org:team`; members of the org and admins only.
pub fn list_teams(store: &Store, identity: Option<&Identity>, org: &str) -> Result<Vec<String>> {
    let org_name = normalize_org_name(org)?;
    store.read(|db| {
        let org = org_named(db, &org_name)?;
        require_org(db, identity, Action::ReadOrg, org.id, &org.name)?;
        Ok(db
            .teams(org.id)?
            .into_iter()
            .map(|team| format!("{}:{team}", org.name))
            .collect())
    })
}

pub fn list_members(
    store: &Store,
    identity: Option<&Identity>,
    name: &TeamName,
) -> Result<Vec<String>> {
    store.read(|db| {
        let (_, team) = authorized(db, identity, Action::ReadOrg, name)?;
        db.team_members(team.id)
    })
}

/// `npm access grant`: the team gets the package read-only or read-write. The caller manages
/// the org, and the package is in the org's scope or the caller may change its access.
pub fn grant(
    store: &Store,
    identity: Option<&Identity>,
    name: &TeamName,
    package: &PackageName,
    permission: TeamPermission,
) -> Result<()> {
    let writer = require_writer(identity)?;
    store.write(|db| {
        let (org, team) = authorized(db, identity, Action::ManageOrg, name)?;
        let package_id = grantable(db, &writer, &org, package)?;
        db.grant_team(team.id, package_id, permission)
    })
}

/// `npm access revoke`: the team loses the package.
pub fn revoke(
    store: &Store,
    identity: Option<&Identity>,
    name: &TeamName,
    package: &PackageName,
) -> Result<()> {
    let writer = require_writer(identity)?;
    store.write(|db| {
        let (org, team) = authorized(db, identity, Action::ManageOrg, name)?;
        let package_id = grantable(db, &writer, &org, package)?;
        if !db.revoke_team(team.id, package_id)? {
            return Err(Error::not_found(format!(
                "the team {name} has no access to {package}"
            )));
        }
        Ok(())
    })
}

fn grantable(
    db: &Db<'_>,
    writer: &crate::accounts::authz::Writer<'_>,
    org: &OrgRecord,
    package: &PackageName,
) -> Result<i64> {
    let record = readable_package(db, Some(writer.identity()), package)?;
    if package.scope() != Some(org.name.as_str()) {
        // Outside the org's scope: only someone who may change the package's access.
        require_maintainer(db, writer, Action::SetAccess, &record)?;
    }
    Ok(record.id)
}
