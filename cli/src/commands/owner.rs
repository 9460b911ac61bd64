//! `registry owner ls|add|rm`

use registry_core::maintenance::{maintainer_names, owners_document};
use registry_core::packages::names::PackageName;
use serde_json::Value;

use crate::backend::Backend;
use crate::cli::OwnerCommand;
use crate::output::Out;

pub fn run(backend: &dyn Backend, out: &Out, command: OwnerCommand) -> anyhow::Result<()> {
    match command {
        OwnerCommand::Ls(args) => {
            let doc = backend.packument(&args.package)?;
            let owners = maintainer_names(&doc);
            if out.json {
                return out.json(&owners);
            }
            for owner in owners {
                out.line(owner)?;
            }
            Ok(())
        }
        OwnerCommand::Add(args) => change(backend, &args.package, |owners| {
            if !owners.contains(&args.user) {
                owners.push(args.user.clone());
            }
        })
        .and_then(|()| out.done(format!("+ {} ({})", args.user, args.package))),
        OwnerCommand::Rm(args) => {
            let doc = backend.packument(&args.package)?;
            if !maintainer_names(&doc).contains(&args.user) {
                return Err(registry_core::Error::not_found(format!(
                    "{} is not a maintainer of {}",
                    args.user, args.package
                ))
                .into());
            }
            change(backend, &args.package, |owners| {
                owners.retain(|o| *o != args.user)
            })
            .and_then(|()| out.done(format!("- {} ({})", args.user, args.package)))
        }
    }
}

fn change(
    backend: &dyn Backend,
    package: &str,
    edit: impl FnOnce(&mut Vec<String>),
) -> anyhow::Result<()> {
    let name = PackageName::parse(package)?;
    let doc = backend.packument(package)?;
    let rev = doc.get("_rev").and_then(Value::as_str).unwrap_or_default();
    let mut owners = maintainer_names(&doc);
    edit(&mut owners);
    backend.update_document(package, &owners_document(&name, rev, &owners))
}
