//! `registry hook ls|add|rm|test|deliveries`

use serde_json::json;

use crate::backend::{Backend, HookInfo, HookRequest};
use crate::cli::{HookAddArgs, HookCommand, HookTypeArg};
use crate::output::{opt, Out};

pub fn run(backend: &dyn Backend, out: &Out, command: HookCommand) -> anyhow::Result<()> {
    match command {
        HookCommand::Ls(args) => {
            let hooks = backend.hook_list(args.name.as_deref())?;
            if out.json {
                return out.json(&hooks);
            }
            let rows = hooks.iter().map(row).collect();
            out.table(
                &[
                    "ID",
                    "OWNER",
                    "TYPE",
                    "NAME",
                    "ENDPOINT",
                    "LAST DELIVERY",
                    "CODE",
                ],
                rows,
            )
        }
        HookCommand::Add(args) => {
            let hook = backend.hook_add(&request(args))?;
            if out.json {
                return out.json(&hook);
            }
            // The id alone on stdout, for scripts.
            out.line(&hook.id)?;
            if !out.quiet {
                eprintln!("+ {} hook on {} → {}", hook.kind, hook.name, hook.endpoint);
            }
            Ok(())
        }
        HookCommand::Rm(args) => {
            let hook = backend.hook_rm(&args.id)?;
            if out.json {
                return out.json(&hook);
            }
            out.done(format!("- {} hook {} on {}", hook.kind, hook.id, hook.name))
        }
        HookCommand::Test(args) => {
            let delivery = backend.hook_test(&args.id)?;
            if out.json {
                return out.json(&json!({ "hook": args.id, "delivery": delivery }));
            }
            out.line(&delivery)?;
            if !out.quiet {
                eprintln!(
                    "queued a ping to hook {}; `registry hook deliveries {}` shows how it went",
                    args.id, args.id
                );
            }
            Ok(())
        }
        HookCommand::Deliveries(args) => {
            let deliveries = backend.hook_deliveries(&args.id, args.limit)?;
            if out.json {
                return out.json(&deliveries);
            }
            let rows = deliveries
                .iter()
                .map(|d| {
                    vec![
                        d.id.clone(),
                        d.event.clone(),
                        d.package.clone(),
                        d.status.clone(),
                        d.attempts.to_string(),
                        d.response_code.map(|c| c.to_string()).unwrap_or_default(),
                        d.duration_ms
                            .map(|ms| format!("{ms} ms"))
                            .unwrap_or_default(),
                        d.created.clone(),
                        opt(&d.error),
                    ]
                })
                .collect();
            out.table(
                &[
                    "ID", "EVENT", "PACKAGE", "STATUS", "ATTEMPTS", "CODE", "TIME", "CREATED",
                    "ERROR",
                ],
                rows,
            )
        }
    }
}

/// npm's guess of the type from the name: `@scope` is a scope, `~user` an owner.
fn request(args: HookAddArgs) -> HookRequest {
    let kind = match args.kind {
        Some(HookTypeArg::Package) => "package",
        Some(HookTypeArg::Scope) => "scope",
        Some(HookTypeArg::Owner) => "owner",
        None if args.name.starts_with('~') => "owner",
        None if args.name.starts_with('@') && !args.name.contains('/') => "scope",
        None => "package",
    };
    HookRequest {
        kind: kind.to_string(),
        name: args.name,
        endpoint: args.endpoint,
        secret: args.secret,
        owner: args.user,
    }
}

fn row(hook: &HookInfo) -> Vec<String> {
    vec![
        hook.id.clone(),
        hook.username.clone(),
        hook.kind.clone(),
        hook.name.clone(),
        hook.endpoint.clone(),
        opt(&hook.last_delivery),
        hook.response_code
            .map(|c| c.to_string())
            .unwrap_or_default(),
    ]
}
