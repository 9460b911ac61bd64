//! `registry sync NAME [--no-deps] [--versions 1.0.0,1.0.1] [--wait]`

use std::io::Write;
use std::time::{Duration, Instant};

use crate::backend::{Backend, SyncRequest, SyncStatus};
use crate::cli::SyncArgs;
use crate::output::Out;

/// How often `--wait` asks how far the sync is.
const POLL: Duration = Duration::from_millis(200);
/// After this long with nothing started, `--wait` says what it is waiting for.
const HINT_AFTER: Duration = Duration::from_secs(10);

pub fn run(backend: &dyn Backend, out: &Out, args: SyncArgs) -> anyhow::Result<()> {
    let request = SyncRequest {
        skip_dependencies: args.no_deps,
        versions: args.versions,
    };
    let mut status = backend.sync_start(&args.package, &request)?;
    if !args.wait {
        if out.json {
            return out.json(&status);
        }
        // Only the id on stdout, for scripts; the explanation for people on stderr.
        out.line(&status.id)?;
        if !out.quiet {
            let _ = writeln!(
                std::io::stderr(),
                "queued the sync of {}; add --wait to follow it to its end",
                status.package
            );
        }
        return Ok(());
    }
    let bar = out.progress(status.total, "syncing");
    let started = Instant::now();
    let mut hinted = false;
    while !status.done() {
        std::thread::sleep(POLL);
        status = backend.sync_status(&status.package, &status.id)?;
        bar.set_length(status.total);
        bar.set_position(status.finished);
        if !hinted && status.state == "waiting" && started.elapsed() > HINT_AFTER {
            hinted = true;
            bar.suspend(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "still waiting for a worker to start the sync: is `registry serve` running \
                     on this data directory?"
                );
            });
        }
    }
    bar.finish_and_clear();
    report(out, &status)
}

fn report(out: &Out, status: &SyncStatus) -> anyhow::Result<()> {
    if out.json {
        out.json(status)?;
    } else {
        let dependencies = status.total.saturating_sub(1);
        out.done(format!(
            "sync of {}: {} ({dependencies} dependencies synced with it, {} failed)",
            status.package, status.state, status.errors
        ))?;
    }
    if status.state == "error" {
        anyhow::bail!(
            "the sync of {} failed: {}",
            status.package,
            status.error.as_deref().unwrap_or("see its log")
        );
    }
    if status.errors > 0 {
        anyhow::bail!(
            "{} of the {} packages of the sync of {} failed (`GET /-/package/NAME/syncs/ID/log` \
             says why)",
            status.errors,
            status.total,
            status.package
        );
    }
    Ok(())
}
