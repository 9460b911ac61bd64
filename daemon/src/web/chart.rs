//! The downloads chart: an SVG drawn on the server (one bar per day), so it shows without
//! JavaScript and under a CSP that allows no inline script or style (colours come from the
//! stylesheet's classes).

use maud::{html, Markup};
use registry_core::packages::downloads::format_day;
use time::Date;

const WIDTH: u64 = 720;
const HEIGHT: u64 = 200;
/// Room below the bars for the dates and above for the maximum.
const TOP: u64 = 16;
const BOTTOM: u64 = 20;

/// Daily downloads as bars, with the busiest day's count and the first and last dates.
pub fn downloads_chart(days: &[(Date, u64)]) -> Markup {
    let max = days.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let total: u64 = days.iter().map(|(_, n)| *n).sum();
    let plot = HEIGHT - TOP - BOTTOM;
    let count = days.len().max(1) as u64;
    // Widths in hundredths of a unit keep 365 bars inside 720 units without floats.
    let slot = WIDTH * 100 / count;
    let bar = (slot * 8 / 10).max(1);
    let label = match (days.first(), days.last()) {
        (Some((first, _)), Some((last, _))) => format!(
            "Downloads per day from {} to {}: {total} in all, at most {max} in a day",
            format_day(*first),
            format_day(*last)
        ),
        _ => "No downloads".to_string(),
    };
    let hundredths = |n: u64| format!("{}.{:02}", n / 100, n % 100);
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (WIDTH) " " (HEIGHT) }
            role="img" aria-label=(label) {
            title { (label) }
            line.axis x1="0" y1=(HEIGHT - BOTTOM) x2=(WIDTH) y2=(HEIGHT - BOTTOM) {}
            @for (i, (day, n)) in days.iter().enumerate() {
                @if *n > 0 {
                    @let h = (n * plot * 100 / max.max(1)).max(100);
                    rect.bar x=(hundredths(i as u64 * slot)) y=(hundredths((HEIGHT - BOTTOM) * 100 - h))
                        width=(hundredths(bar)) height=(hundredths(h)) {
                        title { (format_day(*day)) ": " (n) }
                    }
                }
            }
            text x="0" y="11" { "max " (max) "/day" }
            @if let Some((first, _)) = days.first() {
                text x="0" y=(HEIGHT - 5) { (format_day(*first)) }
            }
            @if let Some((last, _)) = days.last() {
                text x=(WIDTH) y=(HEIGHT - 5) text-anchor="end" { (format_day(*last)) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    fn days(counts: &[u64]) -> Vec<(Date, u64)> {
        let start = Date::from_calendar_date(2026, time::Month::January, 1).expect("date");
        counts
            .iter()
            .enumerate()
            .map(|(i, n)| (start + Duration::days(i as i64), *n))
            .collect()
    }

    #[test]
    fn one_bar_per_day_with_downloads() {
        let svg = downloads_chart(&days(&[0, 5, 10, 0])).into_string();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert_eq!(svg.matches("<rect").count(), 2, "{svg}");
        assert!(svg.contains("2026-01-01"), "{svg}");
        assert!(svg.contains("2026-01-04"), "{svg}");
        assert!(svg.contains("max 10/day"), "{svg}");
        assert!(svg.contains("15 in all"), "{svg}");
    }

    #[test]
    fn the_busiest_day_fills_the_plot() {
        let svg = downloads_chart(&days(&[10])).into_string();
        assert!(svg.contains("height=\"164.00\""), "{svg}");
    }

    #[test]
    fn a_year_fits_and_nothing_is_inline_styled() {
        let counts: Vec<u64> = (0..365).map(|i| i * 7 % 13).collect();
        let svg = downloads_chart(&days(&counts)).into_string();
        assert!(!svg.contains("style="), "CSP: no inline style");
        assert!(svg.matches("<rect").count() > 300);
    }

    #[test]
    fn no_days_is_an_empty_chart() {
        let svg = downloads_chart(&[]).into_string();
        assert!(svg.contains("No downloads"), "{svg}");
        assert!(!svg.contains("<rect"));
    }
}
