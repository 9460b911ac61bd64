//! The web UI's content pages over HTTP: each page's status and key content, that npm's
//! `GET /` stays JSON, search pagination, restricted packages hidden from those who may not
//! read them (and only them), the tokens page's CSRF-checked forms, the security headers on
//! every page, and junk input that must never be a 5xx.

mod common;

use common::{escaped, package_tarball, publish, publish_body, TestRegistry};
use registry_core::accounts::sessions::start_session;
use registry_core::accounts::users::find_user;
use registry_core::packages::downloads::{self, DownloadCounter};
use registry_core::packages::names::PackageName;
use reqwest::blocking::{Client, Response};
use serde_json::{json, Value};

const HOSTILE_README: &str = "# Hello README\n\nSome **bold** text.\n\n\
<script>alert('readme')</script>\n\n<img src=\"x.png\" onerror=\"alert(2)\">\n\n\
[click me](javascript:alert(3))\n\n<iframe src=\"https://evil.example\"></iframe>\n\n\
<div><b>unclosed";

/// A client that shows redirects instead of following them.
fn browser() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .expect("client")
}

/// A page as a browser asks for it, with the session cookie if any.
fn page(reg: &TestRegistry, path: &str, cookie: Option<&str>) -> (u16, String) {
    let mut request = browser()
        .get(reg.url(path))
        .header("accept", "text/html,application/xhtml+xml");
    if let Some(secret) = cookie {
        request = request.header("cookie", format!("registry_session={secret}"));
    }
    let response = request.send().expect("request");
    let status = response.status().as_u16();
    if response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap_or_default().starts_with("text/html"))
    {
        assert_security_headers(path, &response);
    }
    (status, response.text().expect("body"))
}

fn assert_security_headers(path: &str, response: &Response) {
    let h = response.headers();
    let csp = h
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("{path}: no CSP"));
    assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
    assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
    assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
    assert!(
        csp.contains("img-src 'self' data: https:;"),
        "{path}: README badges load, over https only: {csp}"
    );
    assert_eq!(
        h.get("x-frame-options").map(|v| v.as_bytes()),
        Some(&b"DENY"[..]),
        "{path}"
    );
    assert!(
        h.get("cache-control")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("no-store")),
        "{path}: cache-control"
    );
}

/// A browser session for `user`: the cookie's secret and the CSRF token of its forms.
fn sign_in(reg: &TestRegistry, user: &str) -> (String, String) {
    let record = find_user(&reg.registry.store, user)
        .expect("read user")
        .expect("user exists");
    let started = start_session(&reg.registry.store, &record).expect("session");
    (started.secret, started.session.csrf)
}

fn publish_with(reg: &TestRegistry, token: &str, name: &str, version: &str, extra: Value) -> u16 {
    let tgz = package_tarball(name, version);
    let mut body = publish_body(name, version, &tgz);
    if let Value::Object(extra) = extra {
        for (key, value) in extra {
            // `access` belongs to the document (`npm publish --access`), the rest to the
            // version's manifest.
            if key == "access" {
                body["access"] = value;
            } else {
                body["versions"][version][key] = value;
            }
        }
    }
    browser()
        .put(reg.url(&format!("/{}", escaped(name))))
        .bearer_auth(token)
        .json(&body)
        .send()
        .expect("publish")
        .status()
        .as_u16()
}

fn set_tag(reg: &TestRegistry, token: &str, name: &str, tag: &str, version: &str) {
    let status = browser()
        .put(reg.url(&format!("/-/package/{}/dist-tags/{tag}", escaped(name))))
        .bearer_auth(token)
        .json(&json!(version))
        .send()
        .expect("tag")
        .status();
    assert!(status.is_success(), "tag: {status}");
}

fn seed_downloads(reg: &TestRegistry, name: &str, version: &str, count: u64) {
    let counter = DownloadCounter::default();
    let name = PackageName::parse(name).expect("name");
    counter.record_on(&name, version, downloads::today(), count);
    counter.flush(&reg.registry.store).expect("flush");
}

#[test]
fn the_home_page_is_html_for_browsers_and_get_root_stays_json_for_npm() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &token, "fresh-pkg", "1.0.0"), 201);
    assert_eq!(publish(&reg, &token, "popular-pkg", "1.0.0"), 201);
    seed_downloads(&reg, "popular-pkg", "1.0.0", 42);

    let (status, body) = page(&reg, "/", None);
    assert_eq!(status, 200);
    assert!(body.contains("Recently updated"), "{body}");
    assert!(body.contains("href=\"/-/web/package/fresh-pkg\""), "{body}");
    assert!(body.contains("Most downloaded"), "{body}");
    assert!(body.contains("42 downloads"), "{body}");
    assert!(body.contains("action=\"/-/web/search\""), "{body}");
    assert!(body.contains("2 packages"), "{body}");

    // npm sends `Accept: application/json` (or nothing): the CouchDB-style document.
    for accept in [Some("application/json"), Some("*/*"), None] {
        let mut request = browser().get(reg.url("/"));
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        let response = request.send().expect("GET /");
        assert_eq!(response.status().as_u16(), 200);
        let doc: Value = response.json().expect("JSON");
        assert_eq!(doc["db_name"], "registry", "{accept:?}");
        assert_eq!(doc["doc_count"], 2);
    }
}

#[test]
fn the_package_page_shows_a_sanitized_readme_versions_tags_links_and_the_chart() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    let extra = json!({
        "readme": HOSTILE_README,
        "keywords": ["parsing", "fast"],
        "license": "MIT",
        "homepage": "javascript:alert(4)",
        "repository": { "type": "git", "url": "git+https://git.example/alice/lib.git" },
    });
    assert_eq!(
        publish_with(&reg, &token, "lib", "1.0.0", extra.clone()),
        201
    );
    assert_eq!(publish_with(&reg, &token, "lib", "1.1.0", extra), 201);
    set_tag(&reg, &token, "lib", "beta", "1.0.0");
    assert_eq!(
        publish_with(
            &reg,
            &token,
            "@alice/app",
            "2.0.0",
            json!({ "dependencies": { "lib": "^1.0.0", "left-pad": "1.3.0" } })
        ),
        201
    );
    seed_downloads(&reg, "lib", "1.1.0", 7);
    seed_downloads(&reg, "lib", "1.0.0", 3);

    let (status, body) = page(&reg, "/-/web/package/lib", None);
    assert_eq!(status, 200, "{body}");
    // The README, rendered and sanitized.
    assert!(body.contains("<h1>Hello README</h1>"), "{body}");
    assert!(body.contains("<strong>bold</strong>"), "{body}");
    let lower = body.to_lowercase();
    assert!(
        !lower.contains("alert('readme')"),
        "script survived: {body}"
    );
    assert!(!lower.contains("onerror"), "handler survived");
    assert!(!lower.contains("javascript:"), "javascript: URL survived");
    assert!(!lower.contains("<iframe"), "iframe survived");
    // Versions, tags, facts, links (only http/https).
    assert!(body.contains("/-/web/package/lib/v/1.0.0"), "{body}");
    assert!(body.contains("/-/web/package/lib/v/1.1.0"), "{body}");
    assert!(body.contains("beta"), "{body}");
    assert!(body.contains("MIT"), "{body}");
    assert!(
        body.contains("href=\"https://git.example/alice/lib\""),
        "{body}"
    );
    assert!(body.contains("npm install lib"), "{body}");
    assert!(body.contains("data-copy=\"install-command\""), "{body}");
    assert!(body.contains("Tarball size"), "{body}");
    assert!(body.contains("keywords%3Aparsing"), "{body}");
    assert!(body.contains("href=\"/-/web/user/alice\""), "{body}");
    // The local dependent, and the chart with its per-version breakdown.
    assert!(
        body.contains("href=\"/-/web/package/@alice/app\""),
        "{body}"
    );
    assert!(body.contains("<svg"), "{body}");
    assert!(body.contains("10 downloads in the last 30 days"), "{body}");
    assert!(body.contains("Downloads per version"), "{body}");
    for days in [90, 365] {
        let (status, body) = page(&reg, &format!("/-/web/package/lib?days={days}"), None);
        assert_eq!(status, 200);
        assert!(body.contains(&format!("in the last {days} days")), "{body}");
        assert!(body.contains("<svg"));
    }

    // A version page, and a tag as the version.
    let (status, body) = page(&reg, "/-/web/package/lib/v/1.0.0", None);
    assert_eq!(status, 200);
    assert!(body.contains("npm install lib@1.0.0"), "{body}");
    let (status, _) = page(&reg, "/-/web/package/lib/v/beta", None);
    assert_eq!(status, 200);
    let (status, _) = page(&reg, "/-/web/package/lib/v/9.9.9", None);
    assert_eq!(status, 404);

    // A scoped package in both spellings; its local dependency is linked, the other is not.
    for path in ["/-/web/package/@alice/app", "/-/web/package/@alice%2fapp"] {
        let (status, body) = page(&reg, path, None);
        assert_eq!(status, 200, "{path}");
        assert!(body.contains("href=\"/-/web/package/lib\""), "{body}");
        assert!(body.contains("left-pad"), "{body}");
        assert!(!body.contains("href=\"/-/web/package/left-pad\""), "{body}");
    }

    // A deprecated version says so, on its page and in the version list.
    assert_eq!(
        publish_with(
            &reg,
            &token,
            "old-lib",
            "1.0.0",
            json!({ "deprecated": "use lib instead" })
        ),
        201
    );
    let (status, body) = page(&reg, "/-/web/package/old-lib", None);
    assert_eq!(status, 200);
    assert!(
        body.contains("Deprecated: </strong>use lib instead"),
        "{body}"
    );
    assert!(body.contains("class=\"badge deprecated\""), "{body}");

    let (status, body) = page(&reg, "/-/web/package/nothing-here", None);
    assert_eq!(status, 404);
    assert!(body.contains("not found"), "{body}");
}

#[test]
fn search_results_are_paginated_twenty_at_a_time() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    for i in 0..45 {
        assert_eq!(
            publish(&reg, &token, &format!("widget-{i:02}"), "1.0.0"),
            201
        );
    }
    let (status, body) = page(&reg, "/-/web/search?q=widget", None);
    assert_eq!(status, 200);
    assert!(body.contains("1–20 of 45 packages"), "{body}");
    assert_eq!(body.matches("class=\"name\"").count(), 20);
    assert!(
        body.contains("rel=\"next\" href=\"/-/web/search?q=widget&amp;page=2\""),
        "{body}"
    );
    assert!(!body.contains("rel=\"prev\""));

    let (status, body) = page(&reg, "/-/web/search?q=widget&page=3", None);
    assert_eq!(status, 200);
    assert!(body.contains("41–45 of 45 packages"), "{body}");
    assert_eq!(body.matches("class=\"name\"").count(), 5);
    assert!(body.contains("rel=\"prev\""));
    assert!(!body.contains("rel=\"next\""));

    let (status, body) = page(&reg, "/-/web/search?q=widget&page=9", None);
    assert_eq!(status, 200);
    assert!(body.contains("No packages found (45 in all)"), "{body}");

    for bad in ["0", "-1", "abc", "99999999999"] {
        let (status, _) = page(&reg, &format!("/-/web/search?q=widget&page={bad}"), None);
        assert_eq!(status, 400, "page={bad}");
    }
    // What was searched for is shown escaped.
    let (status, body) = page(&reg, "/-/web/search?q=%3Cscript%3Ex", None);
    assert_eq!(status, 200);
    assert!(!body.contains("<script>x"), "{body}");
}

#[test]
fn a_restricted_package_appears_only_to_those_who_may_read_it() {
    let reg = TestRegistry::start();
    let mia = reg.user_with_token("mia");
    reg.add_user("bob", "bob-password");
    assert_eq!(publish(&reg, &mia, "open-pkg", "1.0.0"), 201);
    assert_eq!(
        publish_with(
            &reg,
            &mia,
            "@mia/secret",
            "1.0.0",
            json!({ "access": "restricted" })
        ),
        201
    );
    let (mia_cookie, _) = sign_in(&reg, "mia");
    let (bob_cookie, _) = sign_in(&reg, "bob");

    for (who, cookie) in [("anonymous", None), ("bob", Some(bob_cookie.as_str()))] {
        for path in [
            "/",
            "/-/web/search?q=secret",
            "/-/web/search?q=",
            "/-/web/user/mia",
        ] {
            let (status, body) = page(&reg, path, cookie);
            assert_eq!(status, 200, "{who} {path}");
            assert!(
                !body.contains("@mia/secret"),
                "{who} sees it on {path}: {body}"
            );
        }
        let (status, hidden) = page(&reg, "/-/web/package/@mia/secret", cookie);
        assert_eq!(status, 404, "{who}");
        let (status, missing) = page(&reg, "/-/web/package/@mia/absent", cookie);
        assert_eq!(status, 404);
        assert_eq!(
            hidden.replace("secret", "absent"),
            missing,
            "the same 404 as nothing"
        );
        let (_, home) = page(&reg, "/", cookie);
        assert!(home.contains("1 packages"), "{who}: not counted: {home}");
    }

    let cookie = Some(mia_cookie.as_str());
    for path in ["/", "/-/web/search?q=secret", "/-/web/user/mia"] {
        let (status, body) = page(&reg, path, cookie);
        assert_eq!(status, 200, "mia {path}");
        assert!(
            body.contains("@mia/secret"),
            "mia misses it on {path}: {body}"
        );
    }
    let (status, body) = page(&reg, "/-/web/package/@mia/secret", cookie);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("@mia/secret"));
}

#[test]
fn the_user_page_lists_what_they_maintain() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("carol");
    assert_eq!(publish(&reg, &token, "carols-pkg", "1.0.0"), 201);
    let (status, body) = page(&reg, "/-/web/user/carol", None);
    assert_eq!(status, 200);
    assert!(
        body.contains("href=\"/-/web/package/carols-pkg\""),
        "{body}"
    );
    let (status, _) = page(&reg, "/-/web/user/nobody", None);
    assert_eq!(status, 404);
}

fn post_form(
    reg: &TestRegistry,
    path: &str,
    cookie: &str,
    form: &[(&str, &str)],
) -> (u16, Option<String>, String) {
    let response = browser()
        .post(reg.url(path))
        .header("cookie", format!("registry_session={cookie}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode_form(form))
        .send()
        .expect("post");
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    if status != 303 {
        assert_security_headers(path, &response);
    }
    (status, location, response.text().expect("body"))
}

/// `application/x-www-form-urlencoded`, as a browser sends a form.
fn encode_form(fields: &[(&str, &str)]) -> String {
    let encode = |text: &str| {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn whoami(reg: &TestRegistry, token: &str) -> u16 {
    browser()
        .get(reg.url("/-/whoami"))
        .bearer_auth(token)
        .send()
        .expect("whoami")
        .status()
        .as_u16()
}

/// The secret shown on the page after a create.
fn shown_token(body: &str) -> String {
    let start = body.find("id=\"new-token\">").expect("token shown") + "id=\"new-token\">".len();
    let end = start + body[start..].find('<').expect("end");
    body[start..end].to_string()
}

#[test]
fn tokens_are_created_and_revoked_through_csrf_checked_forms() {
    let reg = TestRegistry::start();
    reg.add_user("dana", "dana-password");
    let (cookie, csrf) = sign_in(&reg, "dana");

    // Signed out: to the sign-in page, coming back here.
    let response = browser().get(reg.url("/-/web/tokens")).send().expect("get");
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(
        response.headers()["location"],
        "/-/web/login?next=/-/web/tokens"
    );

    let (status, body) = page(&reg, "/-/web/tokens", Some(&cookie));
    assert_eq!(status, 200);
    assert!(body.contains("You have no tokens"), "{body}");
    assert!(
        body.contains(&format!("name=\"csrf\" value=\"{csrf}\"")),
        "{body}"
    );
    assert!(body.contains("<label for=\"token-cidr\""), "{body}");

    // Without the CSRF token, or with another: refused, nothing created.
    for form in [
        vec![("name", "ci")],
        vec![("name", "ci"), ("csrf", "forged")],
    ] {
        let (status, _, _) = post_form(&reg, "/-/web/tokens", &cookie, &form);
        assert_eq!(status, 403);
    }
    let (_, body) = page(&reg, "/-/web/tokens", Some(&cookie));
    assert!(body.contains("You have no tokens"), "{body}");

    // Bad fields are explained on the form.
    for (field, value) in [
        ("cidr", "10.0.0.0/40"),
        ("cidr", "::1/128"),
        ("expires_days", "0"),
        ("expires_days", "x"),
    ] {
        let (status, _, body) = post_form(
            &reg,
            "/-/web/tokens",
            &cookie,
            &[("csrf", &csrf), (field, value)],
        );
        assert_eq!(status, 400, "{field}={value}");
        assert!(body.contains("role=\"alert\""), "{body}");
    }

    let (status, _, body) = post_form(
        &reg,
        "/-/web/tokens",
        &cookie,
        &[
            ("csrf", &csrf),
            ("name", "laptop"),
            ("readonly", "on"),
            ("cidr", "127.0.0.1, 10.0.0.0/8"),
            ("expires_days", "30"),
        ],
    );
    assert_eq!(status, 201, "{body}");
    let secret = shown_token(&body);
    assert!(secret.starts_with("npm_"), "{secret}");
    assert!(body.contains("read-only"), "{body}");
    assert!(body.contains("127.0.0.1/32, 10.0.0.0/8"), "{body}");
    assert!(body.contains("laptop"));
    assert_eq!(whoami(&reg, &secret), 200);

    // Shown once: never again.
    let (_, body) = page(&reg, "/-/web/tokens", Some(&cookie));
    assert!(!body.contains(&secret), "the secret is shown again");
    assert!(body.contains("laptop"));
    let key = {
        let start = body.find("/-/web/tokens/").expect("revoke form") + "/-/web/tokens/".len();
        let end = start + body[start..].find('/').expect("end");
        body[start..end].to_string()
    };

    let revoke = format!("/-/web/tokens/{key}/revoke");
    let (status, _, _) = post_form(&reg, &revoke, &cookie, &[]);
    assert_eq!(status, 403);
    assert_eq!(
        whoami(&reg, &secret),
        200,
        "still valid after a refused revoke"
    );
    let (status, location, _) = post_form(&reg, &revoke, &cookie, &[("csrf", &csrf)]);
    assert_eq!(status, 303);
    assert_eq!(location.as_deref(), Some("/-/web/tokens"));
    assert_eq!(whoami(&reg, &secret), 401);
    let (status, _, _) = post_form(&reg, &revoke, &cookie, &[("csrf", &csrf)]);
    assert_eq!(status, 404, "gone");

    // Someone else's session cannot revoke dana's tokens.
    let other = reg.token("dana", Default::default());
    reg.add_user("eve", "eve-password");
    let (eve_cookie, eve_csrf) = sign_in(&reg, "eve");
    let (_, body) = page(&reg, "/-/web/tokens", Some(&cookie));
    let start = body.find("/-/web/tokens/").expect("form") + "/-/web/tokens/".len();
    let key = &body[start..start + body[start..].find('/').expect("end")];
    let (status, _, _) = post_form(
        &reg,
        &format!("/-/web/tokens/{key}/revoke"),
        &eve_cookie,
        &[("csrf", &eve_csrf)],
    );
    assert_eq!(status, 404);
    assert_eq!(whoami(&reg, &other), 200);
}

#[test]
fn junk_input_is_never_a_server_error() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &token, "real-pkg", "1.0.0"), 201);
    let long = "a".repeat(5000);
    let paths = [
        "/-/web/package/".to_string(),
        "/-/web/package/%ff%fe".to_string(),
        "/-/web/package/a/b/c/d".to_string(),
        "/-/web/package/..%2f..%2fetc%2fpasswd".to_string(),
        "/-/web/package/real-pkg/v/".to_string(),
        "/-/web/package/real-pkg/v/%00".to_string(),
        "/-/web/package/real-pkg?days=-1&versions=%ff".to_string(),
        "/-/web/package/@/x".to_string(),
        format!("/-/web/package/{long}"),
        "/-/web/user/%00".to_string(),
        "/-/web/user/..".to_string(),
        format!("/-/web/user/{long}"),
        "/-/web/search?q=%ff%fe".to_string(),
        format!("/-/web/search?q={long}"),
        "/-/web/search?q=keywords:,,,&page=1".to_string(),
        "/-/web/search?q=\"\"\"*&page=".to_string(),
        "/-/web/tokens/x/revoke".to_string(),
    ];
    for path in &paths {
        let (status, _) = page(&reg, path, None);
        assert!(status < 500, "{path}: {status}");
    }
    let (status, _) = page(&reg, "/-/web/tokens?x=%ff", Some("not-a-session"));
    assert_eq!(status, 303);
    // Junk form posts.
    let (cookie, _) = sign_in(&reg, "alice");
    for body in ["%%%", "csrf=%ff", "a=b&&&=", ""] {
        let response = browser()
            .post(reg.url("/-/web/tokens"))
            .header("cookie", format!("registry_session={cookie}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .expect("post");
        assert!(
            response.status().as_u16() < 500,
            "{body:?}: {}",
            response.status()
        );
    }
}
