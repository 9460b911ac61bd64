//! `registry unpublish NAME[@VERSION]`: asks on a terminal, needs --yes otherwise.

use serde_json::Value;

use crate::backend::Backend;
use crate::cli::UnpublishArgs;
use crate::exit::UsageError;
use crate::output::{can_prompt, Out};

pub fn run(backend: &dyn Backend, out: &Out, args: UnpublishArgs) -> anyhow::Result<()> {
    let (name, version) = super::dist_tag::split_spec(&args.spec)?;
    let what = match version {
        Some(version) => format!("{name}@{version}"),
        None => format!("every version of {name}"),
    };
    // Check the package (and version) exist before asking anything.
    let doc = backend.packument(name)?;
    if let Some(version) = version {
        if doc
            .pointer(&format!(
                "/versions/{}",
                version.replace('~', "~0").replace('/', "~1")
            ))
            .is_none()
        {
            return Err(registry_core::Error::not_found(format!(
                "{name} has no version {version}"
            ))
            .into());
        }
    }
    if !args.yes {
        if !can_prompt() {
            return Err(UsageError(format!(
                "unpublishing {what} needs confirmation: pass --yes (no terminal to ask on)"
            ))
            .into());
        }
        let confirmed = dialoguer::Confirm::new()
            .with_prompt(format!(
                "Unpublish {what}? Its version numbers can never be reused"
            ))
            .default(false)
            .interact()?;
        if !confirmed {
            return Err(anyhow::anyhow!("not unpublished: cancelled"));
        }
    }
    match version {
        Some(version) => backend.unpublish_version(name, version)?,
        None => {
            let rev = doc.get("_rev").and_then(Value::as_str).unwrap_or_default();
            backend.unpublish_package(name, rev)?;
        }
    }
    if out.json {
        return out.json(&serde_json::json!({ "name": name, "version": version }));
    }
    out.done(format!("- {what}"))
}
