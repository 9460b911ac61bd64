//! `registry team create|destroy|add|rm|ls`

use registry_core::access::teams::TeamName;

use crate::backend::Backend;
use crate::cli::TeamCommand;
use crate::output::Out;

pub fn run(backend: &dyn Backend, out: &Out, command: TeamCommand) -> anyhow::Result<()> {
    match command {
        TeamCommand::Create(args) => {
            let team = team_name(&args.team)?;
            let created = backend.team_create(&team, args.description.as_deref())?;
            if out.json {
                return out.json(&created);
            }
            out.done(format!("created team {}", created.name))
        }
        TeamCommand::Destroy(args) => {
            let team = team_name(&args.team)?;
            backend.team_destroy(&team)?;
            out.done(format!("destroyed team {team}"))
        }
        TeamCommand::Add(args) => {
            let team = team_name(&args.team)?;
            backend.team_add(&team, &args.user)?;
            out.done(format!("added {} to {team}", args.user))
        }
        TeamCommand::Rm(args) => {
            let team = team_name(&args.team)?;
            backend.team_rm(&team, &args.user)?;
            out.done(format!("removed {} from {team}", args.user))
        }
        TeamCommand::Ls(args) => {
            // `ORG:TEAM` names a team (its members), a bare `ORG` an org (its teams), as in
            // `npm team ls`.
            let mut names = if args.target.contains(':') {
                backend.team_members(&team_name(&args.target)?)?
            } else {
                backend.team_list(&super::org::org_name(&args.target)?)?
            };
            names.sort();
            if out.json {
                return out.json(&names);
            }
            for name in names {
                out.line(name)?;
            }
            Ok(())
        }
    }
}

/// `org:team` or `@org:team`; anything else is a usage error before anything is sent.
pub fn team_name(raw: &str) -> anyhow::Result<TeamName> {
    Ok(TeamName::parse(raw)?)
}
