//! `registry gc [--apply]`: orphan tarball blobs (local only: the data directory's files or
//! the configured S3 bucket). A dry run by default.

use std::time::Duration;

use registry_core::maintenance::{delete_orphans, find_orphans, with_local_admin};
use serde_json::json;

use crate::backend::Backend;
use crate::cli::GcArgs;
use crate::output::{bytes, Out};

/// A blob younger than this may belong to a publish still committing: left alone.
const MIN_AGE: Duration = Duration::from_secs(15 * 60);

pub fn run(backend: &dyn Backend, out: &Out, args: GcArgs) -> anyhow::Result<()> {
    let local = backend.local("registry gc")?;
    let registry = &local.registry;
    let orphans = find_orphans(registry, MIN_AGE)?;
    let total: u64 = orphans.iter().map(|o| o.size).sum();
    let mut freed = 0;
    if args.apply && !orphans.is_empty() {
        let bar = out.progress(orphans.len() as u64, "deleting");
        freed =
            with_local_admin(|admin| delete_orphans(registry, admin, &orphans, |_| bar.inc(1)))?;
        bar.finish_and_clear();
    }
    if out.json {
        let blobs: Vec<_> = orphans
            .iter()
            .map(|o| json!({ "sha512": o.name, "path": o.location, "size": o.size }))
            .collect();
        return out.json(&json!({
            "applied": args.apply, "orphans": blobs, "count": orphans.len(),
            "bytes": total, "freed_bytes": freed,
        }));
    }
    if !out.quiet {
        for orphan in &orphans {
            out.line(format!("{}  {}", bytes(orphan.size), orphan.location))?;
        }
    }
    if args.apply {
        out.done(format!(
            "deleted {} orphan blobs, freed {}",
            orphans.len(),
            bytes(freed)
        ))
    } else if orphans.is_empty() {
        out.done("no orphan blobs")
    } else {
        out.done(format!(
            "{} orphan blobs, {} (dry run: pass --apply to delete them)",
            orphans.len(),
            bytes(total)
        ))
    }
}
