//! Search results (`/-/web/search?q=&page=`): one page of the `/-/v1/search` engine's
//! answer, with the total and links to the pages before and after.

use maud::{html, Markup};
use registry_core::accounts::sessions::WebSession;
use serde_json::Value;

use super::listing::package_href;
use super::{encode_query, layout};

pub const PER_PAGE: u32 = 20;
/// Pages past this are refused: nobody pages that far, and the offset stays cheap.
pub const MAX_PAGE: u32 = 500;

pub struct Results {
    pub query: String,
    /// 1-based.
    pub page: u32,
    pub total: u64,
    /// The engine's `{package, …}` objects.
    pub objects: Vec<Value>,
}

fn page_href(query: &str, page: u32) -> String {
    format!("/-/web/search?q={}&page={page}", encode_query(query))
}

pub fn page(session: Option<&WebSession>, results: &Results) -> Markup {
    let pages = results.total.div_ceil(u64::from(PER_PAGE)).max(1);
    let first = u64::from(results.page - 1) * u64::from(PER_PAGE) + 1;
    let last = first + results.objects.len() as u64 - 1;
    let title = if results.query.is_empty() {
        "All packages".to_string()
    } else {
        format!("Search: {}", results.query)
    };
    layout(
        &title,
        session,
        html! {
            h1 { (title) }
            form.search-large role="search" action="/-/web/search" method="get" {
                label for="results-search" { "Search packages" }
                div.row {
                    input #results-search type="search" name="q" value=(results.query);
                    button type="submit" { "Search" }
                }
            }
            @if results.objects.is_empty() {
                p #result-count { "No packages found (" (results.total) " in all)." }
            } @else {
                p #result-count { (first) "–" (last) " of " (results.total) " packages" }
                ol.packages start=(first) {
                    @for object in &results.objects {
                        @let package = &object["package"];
                        @let name = package["name"].as_str().unwrap_or_default();
                        li {
                            a.name href=(package_href(name, None)) { (name) }
                            " " span.version { (package["version"].as_str().unwrap_or_default()) }
                            @if let Some(message) = object["flags"]["deprecated"].as_str() {
                                " " span.badge.deprecated title=(message) { "deprecated" }
                            }
                            @if let Some(description) = package["description"].as_str().filter(|d| !d.is_empty()) {
                                p.description { (description) }
                            }
                        }
                    }
                }
            }
            nav.pagination aria-label="Result pages" {
                @if results.page > 1 {
                    a rel="prev" href=(page_href(&results.query, results.page - 1)) { "← Previous" }
                }
                span { "Page " (results.page) " of " (pages) }
                @if u64::from(results.page) < pages && results.page < MAX_PAGE {
                    a rel="next" href=(page_href(&results.query, results.page + 1)) { "Next →" }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode_query("a b&c=@x/y"), "a%20b%26c%3D%40x%2Fy");
    }
}
