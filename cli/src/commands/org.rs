//! `registry org create|ls|set|rm`

use registry_core::access::orgs::normalize_org_name;

use crate::backend::{Backend, OrgRole};
use crate::cli::{OrgCommand, OrgCreateArgs, OrgRoleArg, OrgSetArgs};
use crate::output::Out;

pub fn run(backend: &dyn Backend, out: &Out, command: OrgCommand) -> anyhow::Result<()> {
    match command {
        OrgCommand::Create(args) => create(backend, out, args),
        OrgCommand::Ls(args) => match args.org {
            None => list(backend, out),
            Some(org) => members(backend, out, &org_name(&org)?),
        },
        OrgCommand::Set(args) => set(backend, out, args),
        OrgCommand::Rm(args) => {
            let org = org_name(&args.org)?;
            backend.org_rm(&org, &args.user)?;
            out.done(format!("removed {} from {org}", args.user))
        }
    }
}

/// `@acme` or `acme` → `acme`; a bad spelling is a usage error before anything is sent.
pub fn org_name(raw: &str) -> anyhow::Result<String> {
    Ok(normalize_org_name(raw)?)
}

fn role(arg: OrgRoleArg) -> OrgRole {
    match arg {
        OrgRoleArg::Developer => OrgRole::Developer,
        OrgRoleArg::Admin => OrgRole::Admin,
        OrgRoleArg::Owner => OrgRole::Owner,
    }
}

fn create(backend: &dyn Backend, out: &Out, args: OrgCreateArgs) -> anyhow::Result<()> {
    let org = org_name(&args.org)?;
    let created = backend.org_create(&org, &args.owner)?;
    if out.json {
        return out.json(&created);
    }
    out.done(format!(
        "created org {} (scope @{}/), owned by {}",
        created.name, created.name, args.owner
    ))
}

fn list(backend: &dyn Backend, out: &Out) -> anyhow::Result<()> {
    let mut orgs = backend.org_list()?;
    // Both modes list by name, whatever order the store or the server answers in.
    orgs.sort_by(|a, b| a.name.cmp(&b.name));
    if out.json {
        return out.json(&orgs);
    }
    let rows = orgs
        .iter()
        .map(|o| vec![o.name.clone(), o.members.to_string(), o.created.clone()])
        .collect();
    out.table(&["NAME", "MEMBERS", "CREATED"], rows)
}

fn members(backend: &dyn Backend, out: &Out, org: &str) -> anyhow::Result<()> {
    let members = backend.org_members(org)?;
    if out.json {
        // npm's shape (`npm org ls --json`): user → role.
        return out.json(&members);
    }
    let rows = members
        .iter()
        .map(|(user, role)| vec![user.clone(), role.as_str().to_string()])
        .collect();
    out.table(&["USER", "ROLE"], rows)
}

fn set(backend: &dyn Backend, out: &Out, args: OrgSetArgs) -> anyhow::Result<()> {
    let org = org_name(&args.org)?;
    let done = backend.org_set(&org, &args.user, role(args.role))?;
    if out.json {
        return out.json(&done);
    }
    out.done(format!(
        "{} is now {} of {} ({} members)",
        done.user, done.role, done.org.name, done.org.size
    ))
}
