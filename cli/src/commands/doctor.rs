//! `registry doctor [--repair]`: integrity of tarballs and packuments (local only).

use registry_core::maintenance::{doctor, doctor_items, repair_packuments, with_local_admin};
use serde_json::json;

use crate::backend::Backend;
use crate::cli::DoctorArgs;
use crate::output::Out;

pub fn run(backend: &dyn Backend, out: &Out, args: DoctorArgs) -> anyhow::Result<()> {
    let local = backend.local("registry doctor")?;
    let registry = &local.registry;
    let bar = out.progress(doctor_items(registry)?, "checking");
    let mut problems = doctor(registry, || bar.inc(1))?;
    bar.finish_and_clear();
    let mut repaired = Vec::new();
    if args.repair {
        let names: Vec<String> = problems
            .iter()
            .filter(|p| p.kind.ends_with("packument"))
            .map(|p| p.package.clone())
            .collect();
        with_local_admin(|admin| repair_packuments(registry, admin, &names))?;
        repaired = names;
        problems.retain(|p| !p.kind.ends_with("packument"));
    }
    if out.json {
        let list: Vec<_> = problems
            .iter()
            .map(|p| {
                json!({ "kind": p.kind, "package": p.package, "version": p.version,
                             "detail": p.detail, "repair": p.repair })
            })
            .collect();
        out.json(&json!({ "ok": problems.is_empty(), "problems": list, "repaired": repaired }))?;
    } else {
        for name in &repaired {
            out.done(format!("repaired the packument of {name}"))?;
        }
        for p in &problems {
            let what = match &p.version {
                Some(v) => format!("{}@{v}", p.package),
                None => p.package.clone(),
            };
            eprintln!("{}: {what}: {} — {}", p.kind, p.detail, p.repair);
        }
        if problems.is_empty() {
            out.done("no problems found")?;
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(anyhow::anyhow!(
            "{} problem(s) found: see above for how to repair each",
            problems.len()
        ))
    }
}
