//! `registry downloads NAME [--range …] [--by-version]` and `registry downloads --top N`:
//! totals as a table, daily downloads as a chart that fits 80 columns.

use crate::backend::{Backend, DayCount};
use crate::cli::DownloadsArgs;
use crate::output::Out;

/// Columns the bars may use: 80 minus the day label, the count and the spacing.
const BAR_WIDTH: usize = 50;
/// Past this many days, one line per day is too long: the chart becomes a sparkline.
const MAX_DAY_LINES: usize = 31;
const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

pub fn run(backend: &dyn Backend, out: &Out, args: DownloadsArgs) -> anyhow::Result<()> {
    // The same rules in both modes, before anything is asked of the registry.
    registry_core::packages::downloads::parse_period(
        &args.range,
        registry_core::packages::downloads::today(),
    )?;
    if let Some(limit) = args.top {
        return top(backend, out, &args.range, usize::from(limit));
    }
    let Some(package) = args.package.as_deref() else {
        return Err(crate::exit::UsageError("name a package, or ask for --top N".into()).into());
    };
    let report = backend.downloads(package, &args.range)?;
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
        out.table(&["VERSION", "DOWNLOADS"], rows)?;
    }
    for line in chart(&report.days) {
        out.line(line)?;
    }
    Ok(())
}

fn top(backend: &dyn Backend, out: &Out, range: &str, limit: usize) -> anyhow::Result<()> {
    let report = backend.top_downloads(range, limit)?;
    if out.json {
        return out.json(&report);
    }
    out.line(format!(
        "most downloaded from {} to {}",
        report.start, report.end
    ))?;
    let rows = report
        .packages
        .iter()
        .enumerate()
        .map(|(i, p)| {
            vec![
                (i + 1).to_string(),
                p.package.clone(),
                p.downloads.to_string(),
            ]
        })
        .collect();
    out.table(&["#", "PACKAGE", "DOWNLOADS"], rows)
}

/// Daily downloads drawn in text: a bar per day for up to a month, else a sparkline of at
/// most `BAR_WIDTH` buckets with the dates at its ends and the busiest bucket's count.
fn chart(days: &[DayCount]) -> Vec<String> {
    let Some(max) = days.iter().map(|d| d.downloads).max() else {
        return Vec::new();
    };
    if days.len() <= MAX_DAY_LINES {
        let width = max.to_string().len();
        return days
            .iter()
            .map(|d| {
                let bar = scaled(d.downloads, max, BAR_WIDTH);
                format!("{} {:>width$} {}", d.day, d.downloads, "█".repeat(bar))
            })
            .collect();
    }
    let per_bucket = days.len().div_ceil(BAR_WIDTH);
    let buckets: Vec<u64> = days
        .chunks(per_bucket)
        .map(|chunk| chunk.iter().map(|d| d.downloads).sum())
        .collect();
    let busiest = buckets.iter().copied().max().unwrap_or(0);
    let line: String = buckets
        .iter()
        .map(|&n| match n {
            0 => ' ',
            n => SPARKS[scaled(n, busiest, SPARKS.len() - 1)],
        })
        .collect();
    let first = days.first().map(|d| d.day.as_str()).unwrap_or_default();
    let last = days.last().map(|d| d.day.as_str()).unwrap_or_default();
    vec![
        format!("{busiest:>8} ┤{line}"),
        format!("{:>8} └{}", 0, "─".repeat(buckets.len())),
        format!(
            "{:>10}{first}{:>pad$}",
            "",
            last,
            pad = buckets
                .len()
                .saturating_sub(first.len())
                .max(last.len() + 1)
        ),
        format!("{:>10}({per_bucket} days per column)", ""),
    ]
}

/// `n` of `max` as a length out of `width` (at least 1 for any non-zero `n`).
fn scaled(n: u64, max: u64, width: usize) -> usize {
    if n == 0 || max == 0 {
        return 0;
    }
    let len = (n as u128 * width as u128).div_ceil(max as u128) as usize;
    len.clamp(1, width)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn days(counts: &[u64]) -> Vec<DayCount> {
        counts
            .iter()
            .enumerate()
            .map(|(i, &downloads)| DayCount {
                day: format!("2026-01-{:02}", i + 1),
                downloads,
            })
            .collect()
    }

    #[test]
    fn a_month_is_a_bar_per_day_within_80_columns() {
        let lines = chart(&days(&[0, 5, 10, 1]));
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], "2026-01-01  0 ");
        assert!(lines[2].ends_with(&"█".repeat(BAR_WIDTH)), "{}", lines[2]);
        assert!(
            lines[3].ends_with(" 1 █████"),
            "1 of 10 is a tenth: {}",
            lines[3]
        );
        let tiny = chart(&days(&[1000, 1]));
        assert_eq!(tiny[1], "2026-01-02    1 █", "a non-zero day always shows");
        assert!(lines.iter().all(|l| l.chars().count() <= 80));
    }

    #[test]
    fn a_year_is_a_labelled_sparkline_within_80_columns() {
        let counts: Vec<u64> = (0..365).map(|i| i % 7).collect();
        let lines = chart(&days(&counts));
        assert_eq!(lines.len(), 4);
        assert!(
            lines[0].contains('┤') && lines[0].contains('█'),
            "{}",
            lines[0]
        );
        assert!(lines[2].contains("2026-01-01"), "{}", lines[2]);
        assert!(lines[3].contains("8 days per column"), "{}", lines[3]);
        assert!(lines.iter().all(|l| l.chars().count() <= 80), "{lines:?}");
        assert!(chart(&[]).is_empty());
    }
}
