//! Pieces several pages share: a list of packages, links to a package and a user, sizes.

use maud::{html, Markup};
use registry_core::packages::pages::Listed;

/// The page of a package (optionally at a version). Names are URL-safe by npm's rules, and
/// maud escapes the attribute besides.
pub fn package_href(name: &str, version: Option<&str>) -> String {
    match version {
        Some(version) => format!("/-/web/package/{name}/v/{version}"),
        None => format!("/-/web/package/{name}"),
    }
}

pub fn user_href(name: &str) -> String {
    format!("/-/web/user/{name}")
}

/// A list of packages with their latest version and description; `empty` when there are none.
pub fn package_list(packages: &[Listed], empty: &str) -> Markup {
    html! {
        @if packages.is_empty() {
            p.muted { (empty) }
        } @else {
            ul.packages {
                @for package in packages {
                    li {
                        a.name href=(package_href(&package.name, None)) { (package.name) }
                        @if !package.version.is_empty() {
                            " " span.version { (package.version) }
                        }
                        @if !package.description.is_empty() {
                            p.description { (package.description) }
                        }
                    }
                }
            }
        }
    }
}

/// `1.2 MB`-style sizes (powers of 1024, as npm prints them).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// The date part of an ISO time (`2026-01-02T…` → `2026-01-02`).
pub fn day_of(iso: &str) -> &str {
    iso.get(..10).unwrap_or(iso)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_npm() {
        assert_eq!(human_size(10), "10 B");
        assert_eq!(human_size(2048), "2.0 kB");
        assert_eq!(human_size(5 * 1024 * 1024 + 1024 * 512), "5.5 MB");
    }
}
