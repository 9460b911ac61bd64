//! The content pages in a real headless Chromium: home → search → package page (README
//! visible, chart drawn), then sign in, create and revoke a token. Screenshots of the main
//! pages at 375 and 1440 px go to `target/screenshots/`.

mod common;

use common::webdriver::Browser;
use common::*;
use registry_core::packages::downloads::{self, DownloadCounter};
use registry_core::packages::names::PackageName;

const PHONE: (u32, u32) = (375, 812);
const DESKTOP: (u32, u32) = (1440, 900);

fn screenshots(browser: &Browser, name: &str) {
    for (width, height) in [PHONE, DESKTOP] {
        browser.set_window_size(width, height);
        let path = browser.screenshot(&format!("{name}-{width}"));
        eprintln!("screenshot: {}", path.display());
    }
}

#[test]
fn browse_search_read_a_package_and_manage_tokens_in_the_browser() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    for name in ["lib", "lib-extra", "other"] {
        assert_eq!(publish(&reg, &token, name, "1.0.0"), 201);
    }
    assert_eq!(publish(&reg, &token, "lib", "1.1.0"), 201);
    let counter = DownloadCounter::default();
    let lib = PackageName::parse("lib").expect("name");
    let today = downloads::today();
    for back in 0..30 {
        let day = today - time::Duration::days(back);
        counter.record_on(&lib, "1.1.0", day, (back as u64 * 7) % 23 + 1);
        counter.record_on(&lib, "1.0.0", day, (back as u64 * 3) % 5);
    }
    counter.flush(&reg.registry.store).expect("flush");

    let browser = Browser::start(DESKTOP.0, DESKTOP.1);

    // Home: a browser's GET / is the home page.
    browser.goto(&reg.url("/"));
    assert!(browser
        .find("#recent-heading")
        .text()
        .contains("Recently updated"));
    screenshots(&browser, "home");

    // Search from the home page's box.
    browser.find("#home-search").type_text("lib");
    browser
        .find("form.search-large button[type=submit]")
        .click();
    browser.wait_for_url(|u| u.contains("/-/web/search?q=lib"));
    assert!(browser
        .find("#result-count")
        .text()
        .contains("of 2 packages"));
    screenshots(&browser, "search");

    // The package page: the README is shown, the chart is drawn.
    browser
        .find("ol.packages a.name[href=\"/-/web/package/lib\"]")
        .click();
    browser.wait_for_url(|u| u.ends_with("/-/web/package/lib"));
    assert_eq!(browser.find(".readme h1").text(), "lib");
    assert!(
        browser.try_find("svg.chart rect.bar").is_some(),
        "no bars drawn"
    );
    assert!(browser
        .find("#install-command")
        .text()
        .contains("npm install lib"));
    screenshots(&browser, "package");
    browser.goto(&reg.url("/-/web/package/lib?days=365"));
    assert!(browser.find("#downloads").text().contains("last 365 days"));
    browser.goto(&reg.url("/-/web/user/alice"));
    assert!(browser.find("main").text().contains("lib-extra"));
    screenshots(&browser, "user");

    // Tokens: sign in first, then create one, see it once, revoke it.
    browser.set_window_size(DESKTOP.0, DESKTOP.1);
    browser.goto(&reg.url("/-/web/tokens"));
    browser.wait_for_url(|u| u.contains("/-/web/login"));
    browser.find("#login-name").type_text("alice");
    browser.find("#login-password").type_text("alice-password");
    browser.find("form.stacked button[type=submit]").click();
    browser.wait_for_url(|u| u.ends_with("/-/web/tokens"));
    let listed_before = browser.find("#list-heading").text();
    browser.find("#token-name").type_text("from the browser");
    browser.find("#token-readonly").click();
    browser.find("#token-cidr").type_text("127.0.0.1/32");
    browser.find("#token-expires").type_text("7");
    browser.find("form.stacked button[type=submit]").click();
    let secret = browser.find("#new-token").text();
    assert!(secret.starts_with("npm_"), "{secret}");
    assert!(browser
        .find("table.tokens")
        .text()
        .contains("from the browser"));
    screenshots(&browser, "tokens");
    browser.set_window_size(DESKTOP.0, DESKTOP.1);

    // Revoke the new token (the row that has its name).
    browser
        .find("table.tokens tbody tr:last-child button.danger")
        .click();
    // The form posts back to the same URL: the new token's box going away marks the new page.
    browser.wait_until_gone("#new-token");
    browser.wait_for_url(|u| u.ends_with("/-/web/tokens"));
    assert_eq!(browser.find("#list-heading").text(), listed_before);
    let whoami = client()
        .get(reg.url("/-/whoami"))
        .bearer_auth(&secret)
        .send()
        .expect("whoami");
    assert_eq!(
        whoami.status().as_u16(),
        401,
        "the revoked token still works"
    );
}
