//! `registry migrate --to postgres://… [--blobs-url s3://…]` (local only): copies the
//! single-node registry of the data directory into PostgreSQL (and its tarballs into a
//! bucket), then runs doctor's checks on the copy; exits 1 when they find a problem.

use clap::Args;
use registry_core::config::redact_database_url;
use registry_core::maintenance::migrate::{migrate, MigrateReport};
use registry_core::maintenance::with_local_admin;
use serde_json::{json, Map, Value};

use crate::backend::Backend;
use crate::output::{bytes, Out};

/// The long help of `registry migrate` (the clap tree's variant names this).
pub const LONG_ABOUT: &str = "Copy the registry into PostgreSQL (tarballs into S3 too), then \
    check the copy (local only).\n\n\
    Copies every row of the data directory's SQLite database into the empty PostgreSQL \
    database --to, in one transaction, and with --blobs-url every tarball into that bucket; \
    then opens the copy as a node would and runs `registry doctor`'s checks on it (exit 1 on \
    a problem). A target that holds any data is refused and left as it was. Stop the daemon \
    first: what it writes during the copy is not carried over. Then set database_url (and \
    blobs_url) in every node's configuration.";

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The PostgreSQL database to copy into, postgres://USER:PASSWORD@HOST:5432/DB; it must
    /// hold no data (a new database, or a new schema: ?options=-csearch_path%3DNAME)
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Copy the tarballs into this bucket too, s3://BUCKET[/PREFIX], with the configured s3_*
    /// settings and AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (default: they stay where they are)
    #[arg(long, value_name = "URL")]
    pub blobs_url: Option<String>,
}

pub fn run(backend: &dyn Backend, out: &Out, args: MigrateArgs) -> anyhow::Result<()> {
    let local = backend.local("registry migrate")?;
    let source = &local.registry;
    // The target is the source's configuration with the scaled-out stores: what every node
    // will run with once `database_url` and `blobs_url` are set in its configuration.
    let mut target = source.config.clone();
    target.database_url = Some(args.to.clone());
    target
        .sources
        .insert("database_url", "flag --to".to_string());
    if let Some(url) = &args.blobs_url {
        target.blobs_url = Some(url.clone());
        target
            .sources
            .insert("blobs_url", "flag --blobs-url".to_string());
    }
    // Checked before anything is opened: a bad URL is a usage error that names its flag.
    target.postgres_url()?;
    target.s3()?;
    let bar = out.progress(0, "migrate");
    let result = with_local_admin(|admin| {
        migrate(source, admin, &target, |stage, done, total| {
            bar.set_message(stage.to_string());
            bar.set_length(total);
            bar.set_position(done);
        })
    });
    bar.finish_and_clear();
    let report = result?;
    let to = redact_database_url(&args.to);
    if out.json {
        print_json(out, &report, &to, target.blobs_url.as_deref())?;
    } else {
        print_text(out, &report, &to, target.blobs_url.as_deref())?;
    }
    if report.problems.is_empty() {
        Ok(())
    } else {
        Err(anyhow::anyhow!(
            "doctor found {} problem(s) on the target: see above",
            report.problems.len()
        ))
    }
}

fn print_json(
    out: &Out,
    report: &MigrateReport,
    to: &str,
    blobs_url: Option<&str>,
) -> anyhow::Result<()> {
    let tables: Map<String, Value> = report
        .tables
        .tables
        .iter()
        .map(|t| (t.name.clone(), Value::from(t.rows)))
        .collect();
    let blobs = report.blobs.as_ref().map(
        |b| json!({ "copied": b.copied, "present": b.present, "bytes": b.bytes, "to": blobs_url }),
    );
    let problems: Vec<Value> = report
        .problems
        .iter()
        .map(|p| {
            json!({ "kind": p.kind, "package": p.package, "version": p.version,
                    "detail": p.detail, "repair": p.repair })
        })
        .collect();
    out.json(&json!({
        "ok": report.problems.is_empty(),
        "to": to,
        "rows": report.tables.rows(),
        "tables": tables,
        "blobs": blobs,
        "doctor": { "ok": report.problems.is_empty(), "problems": problems },
    }))
}

fn print_text(
    out: &Out,
    report: &MigrateReport,
    to: &str,
    blobs_url: Option<&str>,
) -> anyhow::Result<()> {
    let copied: Vec<_> = report.tables.tables.iter().filter(|t| t.rows > 0).collect();
    out.done(format!(
        "copied {} rows of {} tables into {to}",
        report.tables.rows(),
        copied.len()
    ))?;
    if !out.quiet {
        let rows = copied
            .iter()
            .map(|t| vec![t.name.clone(), t.rows.to_string()])
            .collect();
        out.table(&["TABLE", "ROWS"], rows)?;
    }
    match &report.blobs {
        Some(b) => out.done(format!(
            "tarballs: {} copied ({}), {} already there, into {}",
            b.copied,
            bytes(b.bytes),
            b.present,
            blobs_url.unwrap_or("the data directory")
        ))?,
        None => out.done("tarballs: left where they are (no --blobs-url)")?,
    }
    for p in &report.problems {
        let what = match &p.version {
            Some(v) => format!("{}@{v}", p.package),
            None => p.package.clone(),
        };
        eprintln!("{}: {what}: {} — {}", p.kind, p.detail, p.repair);
    }
    if report.problems.is_empty() {
        out.done("doctor: no problems found on the target")?;
        out.done(
            "next: set database_url (and blobs_url) in every node's configuration, then start \
             the nodes",
        )?;
    }
    Ok(())
}
