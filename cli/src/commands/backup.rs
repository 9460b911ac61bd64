//! `registry backup DEST` (online, local only) and `registry restore SRC`.

use registry_core::maintenance::{backup, restore, with_local_admin, BackupReport};
use serde_json::json;

use crate::backend::Backend;
use crate::cli::{BackupArgs, GlobalArgs, RestoreArgs};
use crate::output::{bytes, Out};

fn report(out: &Out, verb: &str, place: &std::path::Path, r: &BackupReport) -> anyhow::Result<()> {
    if out.json {
        return out.json(&json!({
            "path": place, "database_bytes": r.database_bytes, "blobs": r.blobs,
            "blob_bytes": r.blob_bytes,
        }));
    }
    out.done(format!(
        "{verb} {}: database {}, {} tarballs ({})",
        place.display(),
        bytes(r.database_bytes),
        r.blobs,
        bytes(r.blob_bytes)
    ))
}

pub fn run_backup(backend: &dyn Backend, out: &Out, args: BackupArgs) -> anyhow::Result<()> {
    let local = backend.local("registry backup")?;
    let bar = out.progress(0, "backup");
    let result = with_local_admin(|admin| {
        backup(&local.registry, admin, &args.dest, |stage, done, total| {
            bar.set_message(stage.to_string());
            bar.set_length(total);
            bar.set_position(done);
        })
    });
    bar.finish_and_clear();
    report(out, "backed up to", &args.dest, &result?)
}

/// Restore never opens the registry: the target must be new, and the daemon stopped.
pub fn run_restore(global: &GlobalArgs, out: &Out, args: RestoreArgs) -> anyhow::Result<()> {
    if global.registry.is_some() {
        return Err(crate::backend::only_local("registry restore"));
    }
    let config = super::load_config(global, Default::default())?;
    let bar = out.progress(0, "restore");
    let result = restore(&args.src, &config.data_dir, |stage, done, total| {
        bar.set_message(stage.to_string());
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    report(out, "restored into", &config.data_dir, &result?)
}
