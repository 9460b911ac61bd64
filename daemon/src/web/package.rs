//! The package page (`/-/web/package/NAME[/v/VERSION]`): README, versions and tags,
//! deprecation, dependencies and dependents, maintainers, links, the install command, the
//! tarball's size and file count, and the downloads chart with its per-version breakdown.

use std::collections::BTreeMap;

use maud::{html, Markup};
use registry_core::accounts::sessions::WebSession;
use registry_core::packages::downloads::RangeReport;
use registry_core::packages::pages::PackageOverview;
use serde_json::Value;

use super::chart::downloads_chart;
use super::encode_query;
use super::layout;
use super::listing::{day_of, human_size, package_href, user_href};
use super::markdown;

/// The periods the chart offers, in days.
pub const PERIODS: [u32; 3] = [30, 90, 365];
/// Versions listed before "show all".
pub const VERSIONS_SHOWN: usize = 50;

pub struct PackagePage<'a> {
    pub overview: &'a PackageOverview,
    /// Whether a version was asked for in the path.
    pub pinned: bool,
    pub days: u32,
    pub all_versions: bool,
    pub downloads: &'a RangeReport,
}

/// Only http(s) URLs become links; `git+https://…` and `git://host/…` are shown as https.
pub fn web_url(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let raw = raw.strip_prefix("git+").unwrap_or(raw);
    let url = if let Some(rest) = raw.strip_prefix("git://") {
        format!("https://{rest}")
    } else {
        raw.to_string()
    };
    let url = url.strip_suffix(".git").map(str::to_string).unwrap_or(url);
    let lower = url.to_ascii_lowercase();
    let ok = (lower.starts_with("https://") || lower.starts_with("http://"))
        && !url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"');
    ok.then_some(url)
}

fn repository_url(manifest: &Value) -> Option<String> {
    match &manifest["repository"] {
        Value::String(url) => web_url(url),
        Value::Object(repo) => repo.get("url").and_then(Value::as_str).and_then(web_url),
        _ => None,
    }
}

fn license_of(manifest: &Value) -> Option<String> {
    match &manifest["license"] {
        Value::String(license) => Some(license.clone()),
        Value::Object(license) => license
            .get("type")
            .and_then(Value::as_str)
            .map(String::from),
        _ => None,
    }
}

pub fn page(session: Option<&WebSession>, p: &PackagePage<'_>) -> Markup {
    let o = p.overview;
    let name = o.package.name.as_str();
    let m = &o.manifest;
    let latest = o.tags.get("latest");
    let install = if latest == Some(&o.shown) {
        format!("npm install {name}")
    } else {
        format!("npm install {name}@{}", o.shown)
    };
    let mut tags_of: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (tag, version) in &o.tags {
        tags_of.entry(version).or_default().push(tag);
    }
    let shown_row = o.versions.iter().find(|v| v.version == o.shown);
    let live: Vec<_> = o
        .versions
        .iter()
        .rev()
        .filter(|v| v.deleted_at.is_none())
        .collect();
    let listed = if p.all_versions {
        live.len()
    } else {
        live.len().min(VERSIONS_SHOWN)
    };
    let deprecated = m["deprecated"].as_str().filter(|d| !d.is_empty());
    let version_path = p.pinned.then_some(o.shown.as_str());
    let here = package_href(name, version_path);
    let mut by_version: Vec<(&String, u64)> = p
        .downloads
        .versions
        .iter()
        .map(|(v, days)| (v, days.iter().map(|(_, n)| n).sum()))
        .collect();
    by_version.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let total_downloads: u64 = p.downloads.days.iter().map(|(_, n)| n).sum();

    layout(
        name,
        session,
        html! {
            div.package-head {
                h1 { (name) }
                p.muted {
                    (o.shown)
                    @if let Some(tags) = tags_of.get(o.shown.as_str()) {
                        @for tag in tags { " " span.badge { (tag) } }
                    }
                    @if let Some(row) = shown_row { " · published " time datetime=(row.published_at) { (day_of(&row.published_at)) } }
                }
                @if let Some(description) = m["description"].as_str().filter(|d| !d.is_empty()) {
                    p.lead { (description) }
                }
            }
            @if let Some(message) = deprecated {
                p.notice.deprecated role="note" { strong { "Deprecated: " } (message) }
            }
            div.layout {
                div.main {
                    section.install aria-labelledby="install-heading" {
                        h2 #install-heading.visually-hidden { "Install" }
                        pre { code #install-command { (install) } }
                        button.secondary type="button" data-copy="install-command" { "Copy install command" }
                    }
                    section.readme aria-labelledby="readme-heading" {
                        h2 #readme-heading.visually-hidden { "README" }
                        @if o.readme.trim().is_empty() {
                            p.muted { "This version has no README." }
                        } @else {
                            (markdown::render(&o.readme))
                        }
                    }
                    section #downloads aria-labelledby="downloads-heading" {
                        h2 #downloads-heading { "Downloads" }
                        nav.periods aria-label="Chart period" {
                            @for days in PERIODS {
                                @if days == p.days {
                                    span aria-current="true" { "Last " (days) " days" }
                                } @else {
                                    a href={ (here) "?days=" (days) "#downloads" } { "Last " (days) " days" }
                                }
                            }
                        }
                        p { (total_downloads) " downloads in the last " (p.days) " days." }
                        (downloads_chart(&p.downloads.days))
                        @if !by_version.is_empty() {
                            table.by-version {
                                caption { "Downloads per version, last " (p.days) " days" }
                                thead { tr { th scope="col" { "Version" } th scope="col" { "Downloads" } } }
                                tbody {
                                    @for (version, count) in &by_version {
                                        tr { td { a href=(package_href(name, Some(version))) { (version) } } td { (count) } }
                                    }
                                }
                            }
                        }
                    }
                    section aria-labelledby="versions-heading" {
                        h2 #versions-heading { "Versions (" (live.len()) ")" }
                        table.versions {
                            thead { tr { th scope="col" { "Version" } th scope="col" { "Published" } th scope="col" { "Tags" } } }
                            tbody {
                                @for v in live.iter().take(listed) {
                                    tr {
                                        td {
                                            a href=(package_href(name, Some(&v.version))) { (v.version) }
                                            @if let Some(message) = &v.deprecated {
                                                " " span.badge.deprecated title=(message) { "deprecated" }
                                            }
                                        }
                                        td { time datetime=(v.published_at) { (day_of(&v.published_at)) } }
                                        td { @if let Some(tags) = tags_of.get(v.version.as_str()) { (tags.join(", ")) } }
                                    }
                                }
                            }
                        }
                        @if listed < live.len() {
                            p { a href={ (here) "?versions=all#versions-heading" } { "Show all " (live.len()) " versions" } }
                        }
                    }
                }
                aside.facts aria-label="About this package" {
                    dl {
                        @if let Some(license) = license_of(m) { dt { "License" } dd { (license) } }
                        @if let Some(url) = m["homepage"].as_str().and_then(web_url) {
                            dt { "Homepage" } dd { a href=(url) rel="noopener noreferrer nofollow" { (url) } }
                        }
                        @if let Some(url) = repository_url(m) {
                            dt { "Repository" } dd { a href=(url) rel="noopener noreferrer nofollow" { (url) } }
                        }
                        @if let Some(row) = shown_row {
                            dt { "Tarball size" } dd { (human_size(row.tarball_size)) }
                        }
                        @if let Some(files) = m["dist"]["fileCount"].as_u64() {
                            dt { "Files" } dd { (files) }
                        }
                        @if let Some(size) = m["dist"]["unpackedSize"].as_u64() {
                            dt { "Unpacked size" } dd { (human_size(size)) }
                        }
                    }
                    @if let Some(keywords) = m["keywords"].as_array().filter(|k| !k.is_empty()) {
                        h2 { "Keywords" }
                        ul.tags {
                            @for keyword in keywords.iter().filter_map(Value::as_str) {
                                li { a href={ "/-/web/search?q=" (encode_query(&format!("keywords:{keyword}"))) } { (keyword) } }
                            }
                        }
                    }
                    h2 { "Maintainers" }
                    ul {
                        @for (maintainer, _) in &o.maintainers {
                            li { a href=(user_href(maintainer)) { (maintainer) } }
                        }
                    }
                    h2 { "Dist-tags" }
                    ul {
                        @for (tag, version) in &o.tags {
                            li { (tag) ": " a href=(package_href(name, Some(version))) { (version) } }
                        }
                    }
                    @let deps = m["dependencies"].as_object();
                    h2 { "Dependencies (" (deps.map_or(0, |d| d.len())) ")" }
                    @if let Some(deps) = deps.filter(|d| !d.is_empty()) {
                        ul.deps {
                            @for (dep, range) in deps {
                                li {
                                    @if o.local_dependencies.contains(dep) {
                                        a href=(package_href(dep, None)) { (dep) }
                                    } @else {
                                        (dep)
                                    }
                                    " " span.muted { (range.as_str().unwrap_or_default()) }
                                }
                            }
                        }
                    } @else {
                        p.muted { "None." }
                    }
                    h2 { "Dependents here (" (o.dependents.len()) ")" }
                    @if o.dependents.is_empty() {
                        p.muted { "No package in this registry depends on it." }
                    } @else {
                        ul.deps {
                            @for dependent in &o.dependents {
                                li { a href=(package_href(dependent, None)) { (dependent) } }
                            }
                        }
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_become_links() {
        assert_eq!(
            web_url("git+https://github.com/a/b.git").as_deref(),
            Some("https://github.com/a/b")
        );
        assert_eq!(
            web_url("git://github.com/a/b").as_deref(),
            Some("https://github.com/a/b")
        );
        assert_eq!(web_url("javascript:alert(1)"), None);
        assert_eq!(web_url("JAVASCRIPT://x"), None);
        assert_eq!(web_url("data:text/html,x"), None);
        assert_eq!(web_url("ftp://x"), None);
        assert_eq!(
            web_url("http://example.com/x").as_deref(),
            Some("http://example.com/x")
        );
    }
}
