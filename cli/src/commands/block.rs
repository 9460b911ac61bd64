//! `registry block NAME [--reason]` and `registry unblock NAME`

use crate::backend::Backend;
use crate::cli::{BlockArgs, UnblockArgs};
use crate::output::Out;

pub fn block(backend: &dyn Backend, out: &Out, args: BlockArgs) -> anyhow::Result<()> {
    backend.block(&args.package, &args.reason)?;
    let status = backend
        .block_status(&args.package)
        .unwrap_or(crate::backend::BlockInfo {
            name: args.package.clone(),
            blocked: true,
            reason: Some(args.reason.clone()),
        });
    if out.json {
        return out.json(&status);
    }
    out.done(format!("blocked {}: {}", args.package, args.reason))
}

pub fn unblock(backend: &dyn Backend, out: &Out, args: UnblockArgs) -> anyhow::Result<()> {
    backend.unblock(&args.package)?;
    if out.json {
        return out.json(&crate::backend::BlockInfo {
            name: args.package,
            blocked: false,
            reason: None,
        });
    }
    out.done(format!("unblocked {}", args.package))
}
