//! `registry access get|set|grant|revoke|ls packages|ls collaborators`

use std::collections::BTreeMap;

use registry_core::packages::names::PackageName;
use registry_core::Error;
use serde::Serialize;

use crate::backend::{Access, Backend, PackageOwner, TeamPermission};
use crate::cli::{AccessCommand, AccessLevelArg, AccessLsCommand, PermissionArg};
use crate::output::Out;

use super::team::team_name;

/// `registry access get|set --json`.
#[derive(Debug, Serialize)]
struct AccessInfo<'a> {
    package: &'a str,
    access: Access,
}

/// `registry access grant --json`.
#[derive(Debug, Serialize)]
struct GrantInfo {
    team: String,
    package: String,
    permissions: TeamPermission,
}

pub fn run(backend: &dyn Backend, out: &Out, command: AccessCommand) -> anyhow::Result<()> {
    match command {
        AccessCommand::Get(args) => {
            let package = PackageName::parse(&args.package)?;
            let access = backend.access_get(&package)?;
            if out.json {
                return out.json(&AccessInfo {
                    package: package.as_str(),
                    access,
                });
            }
            out.line(format!("{package}: {}", access.as_str()))
        }
        AccessCommand::Set(args) => {
            let package = PackageName::parse(&args.package)?;
            let access = match args.level {
                AccessLevelArg::Public => Access::Public,
                AccessLevelArg::Restricted => Access::Restricted,
            };
            backend.access_set(&package, access)?;
            if out.json {
                return out.json(&AccessInfo {
                    package: package.as_str(),
                    access,
                });
            }
            out.done(format!("{package} is now {}", access.as_str()))
        }
        AccessCommand::Grant(args) => {
            let team = team_name(&args.team)?;
            let package = PackageName::parse(&args.package)?;
            let permissions = match args.permissions {
                PermissionArg::ReadOnly => TeamPermission::ReadOnly,
                PermissionArg::ReadWrite => TeamPermission::ReadWrite,
            };
            backend.access_grant(&team, &package, permissions)?;
            if out.json {
                return out.json(&GrantInfo {
                    team: team.to_string(),
                    package: package.as_str().to_string(),
                    permissions,
                });
            }
            out.done(format!(
                "granted {team} {} on {package}",
                permissions.as_str()
            ))
        }
        AccessCommand::Revoke(args) => {
            let team = team_name(&args.team)?;
            let package = PackageName::parse(&args.package)?;
            backend.access_revoke(&team, &package)?;
            out.done(format!("revoked {team}'s access to {package}"))
        }
        AccessCommand::Ls(AccessLsCommand::Packages(args)) => {
            let packages = packages_of(backend, &args.owner)?;
            listing(out, "PACKAGE", &packages)
        }
        AccessCommand::Ls(AccessLsCommand::Collaborators(args)) => {
            let package = PackageName::parse(&args.package)?;
            let users = backend.collaborators(&package)?;
            listing(out, "USER", &users)
        }
    }
}

/// `ORG:TEAM` is a team; a bare name is an org, else a user (npm's `npm access list
/// packages` asks in that order too).
fn packages_of(
    backend: &dyn Backend,
    owner: &str,
) -> anyhow::Result<BTreeMap<String, TeamPermission>> {
    if owner.contains(':') {
        return backend.packages_of(&PackageOwner::Team(team_name(owner)?));
    }
    let name = super::org::org_name(owner)?;
    match backend.packages_of(&PackageOwner::Org(name.clone())) {
        Err(e) if is_not_found(&e) => {}
        other => return other,
    }
    match backend.packages_of(&PackageOwner::User(name.clone())) {
        Err(e) if is_not_found(&e) => {
            Err(Error::not_found(format!("no org or user named {name}")).into())
        }
        other => other,
    }
}

fn is_not_found(err: &anyhow::Error) -> bool {
    matches!(err.downcast_ref::<Error>(), Some(Error::NotFound(_)))
}

/// A name → permission listing: npm's `{"name": "read"|"write"}` for scripts, the words
/// `access grant` takes for people.
fn listing(
    out: &Out,
    what: &str,
    entries: &BTreeMap<String, TeamPermission>,
) -> anyhow::Result<()> {
    if out.json {
        let wire: BTreeMap<&str, &str> = entries
            .iter()
            .map(|(name, permission)| (name.as_str(), permission.wire()))
            .collect();
        return out.json(&wire);
    }
    let rows = entries
        .iter()
        .map(|(name, permission)| vec![name.clone(), permission.as_str().to_string()])
        .collect();
    out.table(&[what, "PERMISSIONS"], rows)
}
