//! `registry deprecate NAME[@RANGE] MESSAGE`

use registry_core::maintenance::deprecate_document;
use serde_json::json;

use crate::backend::Backend;
use crate::cli::DeprecateArgs;
use crate::exit::UsageError;
use crate::output::Out;

pub fn run(backend: &dyn Backend, out: &Out, args: DeprecateArgs) -> anyhow::Result<()> {
    let (name, range) = super::dist_tag::split_spec(&args.spec)?;
    let range = semver::VersionReq::parse(range.unwrap_or("*"))
        .map_err(|e| UsageError(format!("{:?} is not a semver range: {e}", args.spec)))?;
    let doc = backend.packument(name)?;
    let Some((update, versions)) = deprecate_document(&doc, &range, &args.message)? else {
        return Err(registry_core::Error::not_found(format!(
            "no version of {name} matches {range}"
        ))
        .into());
    };
    backend.update_document(name, &update)?;
    if out.json {
        return out.json(&json!({ "name": name, "versions": versions, "message": args.message }));
    }
    let verb = if args.message.is_empty() {
        "undeprecated"
    } else {
        "deprecated"
    };
    out.done(format!("{verb} {name}@{}", versions.join(", ")))
}
