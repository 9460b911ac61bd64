//! A user's page (`/-/web/user/NAME`): the packages they maintain that the reader may see.

use maud::{html, Markup};
use registry_core::accounts::sessions::WebSession;
use registry_core::packages::pages::Listed;

use super::layout;
use super::listing::package_list;

pub fn page(session: Option<&WebSession>, user: &str, packages: &[Listed]) -> Markup {
    layout(
        user,
        session,
        html! {
            h1 { (user) }
            h2 { "Packages maintained (" (packages.len()) ")" }
            (package_list(packages, "No packages to show."))
        },
    )
}
