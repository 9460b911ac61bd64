//! The home page (`GET /` for a browser): a search box, recently changed and most downloaded
//! packages.

use maud::{html, Markup};
use registry_core::accounts::sessions::WebSession;
use registry_core::packages::pages::Listed;

use super::layout;
use super::listing::package_list;

pub struct Home {
    pub total: u64,
    pub recent: Vec<Listed>,
    /// With their downloads in the last 30 days.
    pub popular: Vec<(Listed, u64)>,
}

pub fn page(session: Option<&WebSession>, home: &Home) -> Markup {
    layout(
        "Packages",
        session,
        html! {
            h1 { "Packages" }
            p.muted { (home.total) " packages in this registry." }
            form.search-large role="search" action="/-/web/search" method="get" {
                label for="home-search" { "Search packages" }
                div.row {
                    input #home-search type="search" name="q" placeholder="name, keyword, keywords:x, author:y";
                    button type="submit" { "Search" }
                }
            }
            div.columns {
                section aria-labelledby="recent-heading" {
                    h2 #recent-heading { "Recently updated" }
                    (package_list(&home.recent, "Nothing has been published yet."))
                }
                section aria-labelledby="popular-heading" {
                    h2 #popular-heading { "Most downloaded (30 days)" }
                    @if home.popular.is_empty() {
                        p.muted { "No downloads in the last 30 days." }
                    } @else {
                        ol.packages {
                            @for (package, count) in &home.popular {
                                li {
                                    a.name href=(super::listing::package_href(&package.name, None)) { (package.name) }
                                    " " span.muted { (count) " downloads" }
                                    @if !package.description.is_empty() {
                                        p.description { (package.description) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}
