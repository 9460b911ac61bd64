//! `registry downloads NAME [--range …] [--by-version]`

use crate::backend::Backend;
use crate::cli::DownloadsArgs;
use crate::output::Out;

pub fn run(backend: &dyn Backend, out: &Out, args: DownloadsArgs) -> anyhow::Result<()> {
    // The same rules in both modes, before anything is asked of the registry.
    registry_core::downloads::parse_period(&args.range, registry_core::downloads::today())?;
    let report = backend.downloads(&args.package, &args.range)?;
    if out.json {
        return out.json(&report);
    }
    out.line(format!(
        "{}: {} downloads from {} to {}",
        report.package, report.total, report.start, report.end
    ))?;
    if args.by_version {
        let rows = report
            .versions
            .iter()
            .map(|v| vec![v.version.clone(), v.downloads.to_string()])
            .collect();
        out.table(&["VERSION", "DOWNLOADS"], rows)
    } else {
        let rows = report
            .days
            .iter()
            .map(|d| vec![d.day.clone(), d.downloads.to_string()])
            .collect();
        out.table(&["DAY", "DOWNLOADS"], rows)
    }
}
