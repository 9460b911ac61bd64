//! The web UI's sign-in, sign-out and sign-up, and npm's web login, over HTTP: the done
//! endpoint's polling, expiry of unknown logins, Verdaccio's paths, login CSRF, the lockout,
//! open redirects, cookie flags, and the read gate of `read_access = "authenticated"`.

mod common;

use common::web_form::*;
use common::*;
use registry_core::accounts::cidr::Cidr;
use registry_core::config::{ReadAccess, Registration};
use reqwest::blocking::Response;
use serde_json::{json, Value};

#[test]
fn the_done_url_is_pending_then_gives_the_token_once() {
    let reg = TestRegistry::start();
    reg.add_user("alice", "alice-password");
    let (login_url, done_url) = open_login(&reg, json!({}));
    assert!(login_url.starts_with(&reg.base) && done_url.starts_with(&reg.base));
    assert!(login_url.contains("/-/web/cli-login/"));

    let pending = client().get(&done_url).send().expect("poll");
    assert_eq!(pending.status(), 202);
    assert_eq!(pending.headers()["retry-after"], "1");

    // The page's URL is not the polling URL: whoever saw it cannot collect the token.
    let login_id = login_url.rsplit('/').next().expect("id");
    let stolen = client()
        .get(reg.url(&format!("/-/v1/done/{login_id}")))
        .send()
        .expect("poll");
    assert_eq!(stolen.status(), 404);

    // Anonymous: sent to sign in first, and back.
    let anonymous = browser().get(&login_url).send().expect("page");
    assert_eq!(anonymous.status(), 303);
    let location = anonymous.headers()["location"]
        .to_str()
        .expect("text")
        .to_string();
    assert!(
        location.starts_with("/-/web/login?next=%2F-%2Fweb%2Fcli-login%2F")
            || location.starts_with("/-/web/login?next=/-/web/cli-login/"),
        "{location}"
    );

    let session = sign_in(&reg, "alice", "alice-password");
    // A post without the session's CSRF token is refused.
    let forged = browser()
        .post(&login_url)
        .header("cookie", &session)
        .form_fields(&[("csrf", "nope")])
        .send()
        .expect("forged");
    assert_eq!(forged.status(), 403);
    assert_eq!(client().get(&done_url).send().expect("poll").status(), 202);

    let approved = approve(&login_url, &session);
    assert_eq!(approved.status(), 200);
    assert!(approved.text().expect("page").contains("npm is logged in"));

    let done = client().get(&done_url).send().expect("poll");
    assert_eq!(done.status(), 200);
    let token = done.json::<Value>().expect("json")["token"]
        .as_str()
        .expect("token")
        .to_string();
    let whoami: Value = client()
        .get(reg.url("/-/whoami"))
        .bearer_auth(&token)
        .send()
        .expect("whoami")
        .json()
        .expect("json");
    assert_eq!(whoami["username"], "alice");

    // Exactly once.
    let again = client().get(&done_url).send().expect("poll");
    assert_eq!(again.status(), 404);
    let page = browser()
        .get(&login_url)
        .header("cookie", &session)
        .send()
        .expect("page");
    assert_eq!(page.status(), 404);
}

#[test]
fn verdaccio_paths_and_other_methods_work() {
    let reg = TestRegistry::start();
    reg.add_user("bob", "bob-password");
    let (login_url, done_url) = open_login(&reg, json!({ "create": false }));
    let login_id = login_url.rsplit('/').next().expect("id").to_string();
    let done_id = done_url.rsplit('/').next().expect("id").to_string();

    let cli = browser()
        .get(reg.url(&format!("/-/v1/login_cli/{login_id}")))
        .send()
        .expect("login_cli");
    assert_eq!(cli.status(), 303);
    assert_eq!(
        cli.headers()["location"],
        format!("/-/web/cli-login/{login_id}").as_str()
    );

    let query = client()
        .get(reg.url(&format!("/-/v1/done?sessionId={done_id}")))
        .send()
        .expect("poll");
    assert_eq!(query.status(), 202);
    // npm's web-OTP polling reuses the original method (PUT for dist-tag add).
    let put = client()
        .put(&done_url)
        .body("\"1.0.0\"")
        .send()
        .expect("poll");
    assert_eq!(put.status(), 202);

    let session = sign_in(&reg, "bob", "bob-password");
    assert_eq!(approve(&login_url, &session).status(), 200);
    let done = client()
        .get(reg.url(&format!("/-/v1/done?sessionId={done_id}")))
        .send()
        .expect("poll");
    assert_eq!(done.status(), 200);
    assert!(done.json::<Value>().expect("json")["token"].is_string());
    assert_eq!(client().get(&done_url).send().expect("poll").status(), 404);
}

#[test]
fn junk_never_gets_a_server_error() {
    let reg = TestRegistry::start();
    let c = browser();
    let paths = [
        "/-/v1/done/",
        "/-/v1/done/zz",
        "/-/v1/done/%00%ff",
        "/-/v1/done?sessionId=",
        "/-/v1/done?sessionId=%ZZ",
        "/-/v1/login_cli/..%2f..",
        "/-/web/cli-login/abc",
        "/-/web/cli-login/%E0%A4%A",
        "/-/web/login?next=%ZZ",
        "/-/web/login?next=//evil.example&next=x",
        &format!("/-/web/cli-login/{}", "a".repeat(48)),
    ];
    for path in paths {
        let status = c.get(reg.url(path)).send().expect("get").status();
        assert!(status.as_u16() < 500, "{path}: {status}");
    }
    for body in [
        "",
        "not json",
        "[]",
        "{\"create\":\"yes\"}",
        "{\"create\":true}",
    ] {
        let status = c
            .post(reg.url("/-/v1/login"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .expect("post")
            .status();
        assert_eq!(status, 200, "{body:?}");
    }
    for body in ["", "name=%ZZ&password", "&&&=", "login_csrf=x"] {
        for path in [
            "/-/web/login",
            "/-/web/logout",
            "/-/web/signup",
            "/-/web/cli-login/x",
        ] {
            let status = c
                .post(reg.url(path))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .expect("post")
                .status();
            assert!(status.as_u16() < 500, "{path} {body:?}: {status}");
        }
    }
}

#[test]
fn sign_in_needs_the_form_token_and_the_right_password() {
    let reg = TestRegistry::start();
    reg.add_user("carol", "carol-password");

    // No CSRF cookie (a cross-site post): refused, no session.
    let forged = browser()
        .post(reg.url("/-/web/login"))
        .form_fields(&[
            ("login_csrf", "x"),
            ("name", "carol"),
            ("password", "carol-password"),
        ])
        .send()
        .expect("post");
    assert_eq!(forged.status(), 403);
    assert!(cookie(&forged, "registry_session").is_none());

    // A wrong password and an unknown user read the same.
    let wrong = post_login(&reg, "carol", "nope", "/");
    assert_eq!(wrong.status(), 401);
    assert!(cookie(&wrong, "registry_session").is_none());
    let wrong_page = wrong.text().expect("page");
    assert!(
        wrong_page.contains("Incorrect name or password."),
        "{wrong_page}"
    );
    let unknown = post_login(&reg, "nobody", "nope", "/");
    assert_eq!(unknown.status(), 401);
    assert!(unknown
        .text()
        .expect("page")
        .contains("Incorrect name or password."));

    // Right: 303 to a local `next`, never to another site.
    let ok = post_login(&reg, "carol", "carol-password", "/-/web/tokens");
    assert_eq!(ok.status(), 303);
    assert_eq!(ok.headers()["location"], "/-/web/tokens");
    for evil in [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
    ] {
        let response = post_login(&reg, "carol", "carol-password", evil);
        assert_eq!(response.status(), 303);
        assert_eq!(response.headers()["location"], "/", "{evil}");
    }
    let page = browser()
        .get(reg.url("/-/web/login?next=//evil.example"))
        .send()
        .expect("page")
        .text()
        .expect("page");
    assert!(!page.contains("evil.example"), "{page}");
}

#[test]
fn the_lockout_applies_to_the_web_form() {
    let reg = TestRegistry::start();
    reg.add_user("dave", "dave-password");
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(post_login(&reg, "dave", "guess", "/").status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 401, 429]);
    let locked = post_login(&reg, "dave", "dave-password", "/");
    assert_eq!(locked.status(), 429);
    assert!(locked.headers().get("retry-after").is_some());
    assert!(cookie(&locked, "registry_session").is_none());
    // The same lockout guards npm's door.
    let couch = client()
        .put(reg.url("/-/user/org.couchdb.user:dave"))
        .json(&json!({ "name": "dave", "password": "dave-password" }))
        .send()
        .expect("couch login");
    assert_eq!(couch.status(), 429);
}

/// A browser's refusal is a page it can show, not JSON.
fn assert_html_page(response: Response, status: u16) -> String {
    assert_eq!(response.status(), status);
    let kind = response.headers()["content-type"]
        .to_str()
        .expect("type")
        .to_string();
    assert!(kind.starts_with("text/html"), "{kind}");
    let page = response.text().expect("page");
    assert!(page.contains("role=\"alert\""), "{page}");
    page
}

#[test]
fn the_forms_refusals_are_html_pages() {
    let reg = TestRegistry::start_with(|c| {
        c.auth_requests_per_second = 1;
        c.auth_burst = 3;
        // Lets the test speak for another address through X-Forwarded-For.
        c.trusted_proxies = vec![Cidr::parse("127.0.0.1/32").expect("cidr")];
    });
    reg.add_user("fay", "fay-password");
    let session = sign_in(&reg, "fay", "fay-password");
    let (login_url, _) = open_login(&reg, json!({}));
    // Another address spends its burst where it is cheap, then posts the sign-in form.
    let npm_login = || {
        client()
            .post(reg.url("/-/v1/login"))
            .header("x-forwarded-for", "10.0.0.9")
            .send()
            .expect("npm login")
    };
    for _ in 0..3 {
        assert_eq!(npm_login().status(), 200);
    }
    let (csrf_cookie, token) = login_form(&reg, "/-/web/login");
    let limited = browser()
        .post(reg.url("/-/web/login"))
        .header("x-forwarded-for", "10.0.0.9")
        .header("cookie", csrf_cookie)
        .form_fields(&[("login_csrf", &token), ("name", "fay"), ("password", "x")])
        .send()
        .expect("sign in");
    assert!(limited.headers().get("retry-after").is_some());
    assert_html_page(limited, 429);
    // npm's own endpoint keeps answering JSON.
    let npm = npm_login();
    assert_eq!(npm.status(), 429);
    let body: Value = npm.json().expect("json");
    assert!(body["reason"].is_string(), "{body}");
    // Stale CSRF tokens on sign-out and on npm's login approval.
    let logout = browser()
        .post(reg.url("/-/web/logout"))
        .header("cookie", &session)
        .form_fields(&[("csrf", "stale")])
        .send()
        .expect("logout");
    let page = assert_html_page(logout, 403);
    assert!(page.contains("reload the page"), "{page}");
    let approval = browser()
        .post(&login_url)
        .header("cookie", &session)
        .form_fields(&[("csrf", "stale")])
        .send()
        .expect("approve");
    assert_html_page(approval, 403);
}

#[test]
fn sign_out_needs_the_session_token_and_ends_the_session() {
    let reg = TestRegistry::start();
    reg.add_user("erin", "erin-password");
    let session = sign_in(&reg, "erin", "erin-password");
    // Signed in: the login page sends the browser on.
    let page = browser()
        .get(reg.url("/-/web/login"))
        .header("cookie", &session)
        .send()
        .expect("page");
    assert_eq!(page.status(), 303);

    let forged = browser()
        .post(reg.url("/-/web/logout"))
        .header("cookie", &session)
        .form_fields(&[("csrf", "x")])
        .send()
        .expect("post");
    assert_eq!(forged.status(), 403);

    // The session's CSRF token, from a page that carries it (an approval page).
    let (login_url, _) = open_login(&reg, json!({}));
    let approval = browser()
        .get(&login_url)
        .header("cookie", &session)
        .send()
        .expect("page");
    let csrf = hidden(&approval.text().expect("page"), "csrf");
    let out = browser()
        .post(reg.url("/-/web/logout"))
        .header("cookie", &session)
        .form_fields(&[("csrf", csrf.as_str())])
        .send()
        .expect("post");
    assert_eq!(out.status(), 303);
    assert_eq!(out.headers()["location"], "/");
    let cleared = set_cookies(&out).join("\n");
    assert!(
        cleared.contains("registry_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    // The old cookie no longer signs anyone in.
    let after = browser()
        .get(&login_url)
        .header("cookie", &session)
        .send()
        .expect("page");
    assert_eq!(after.status(), 303);
}

#[test]
fn cookies_are_http_only_same_site_and_secure_over_https() {
    let reg = TestRegistry::start();
    reg.add_user("fay", "fay-password");
    let response = post_login(&reg, "fay", "fay-password", "/");
    let all = set_cookies(&response);
    let session = all
        .iter()
        .find(|c| c.starts_with("registry_session="))
        .expect("session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax"),
        "{session}"
    );
    assert!(!session.contains("Secure"), "plain http: {session}");
    let form = browser().get(reg.url("/-/web/login")).send().expect("page");
    let csrf = set_cookies(&form).join("\n");
    assert!(
        csrf.contains("HttpOnly") && csrf.contains("SameSite=Strict"),
        "{csrf}"
    );

    let https =
        TestRegistry::start_with(|c| c.public_url = Some("https://registry.example".into()));
    https.add_user("fay", "fay-password");
    let form = browser()
        .get(https.url("/-/web/login"))
        .send()
        .expect("page");
    assert!(set_cookies(&form).join("\n").contains("; Secure"));
    let response = post_login(&https, "fay", "fay-password", "/");
    let session = set_cookies(&response)
        .into_iter()
        .find(|c| c.starts_with("registry_session="))
        .expect("session cookie");
    assert!(
        session.contains("; Secure") && session.contains("HttpOnly"),
        "{session}"
    );
    // And npm is sent to the public origin.
    let (login_url, done_url) = open_login(&https, json!({}));
    assert!(
        login_url.starts_with("https://registry.example/-/web/cli-login/"),
        "{login_url}"
    );
    assert!(
        done_url.starts_with("https://registry.example/-/v1/done/"),
        "{done_url}"
    );
}

#[test]
fn sign_up_when_registration_is_open_only() {
    let closed = TestRegistry::start();
    let page = browser()
        .get(closed.url("/-/web/login"))
        .send()
        .expect("page")
        .text()
        .expect("page");
    assert!(
        !page.contains("/-/web/signup"),
        "no sign-up link while closed"
    );
    assert_eq!(
        browser()
            .get(closed.url("/-/web/signup"))
            .send()
            .expect("page")
            .status(),
        404
    );

    let open = TestRegistry::start_with(|c| c.registration = Registration::Open);
    let page = browser()
        .get(open.url("/-/web/login"))
        .send()
        .expect("page")
        .text()
        .expect("page");
    assert!(page.contains("/-/web/signup"), "{page}");
    let form = browser()
        .get(open.url("/-/web/signup?next=/-/web/tokens"))
        .send()
        .expect("page");
    let csrf_cookie = cookie(&form, "registry_login_csrf").expect("cookie");
    let token = hidden(&form.text().expect("page"), "login_csrf");
    let post = |name: &str, email: &str, password: &str| {
        browser()
            .post(open.url("/-/web/signup"))
            .header("cookie", &csrf_cookie)
            .form_fields(&[
                ("login_csrf", token.as_str()),
                ("name", name),
                ("email", email),
                ("password", password),
                ("next", "/-/web/tokens"),
            ])
            .send()
            .expect("sign up")
    };
    assert_eq!(
        post("gina", "not-an-email", "gina-password-1").status(),
        400
    );
    let made = post("gina", "gina@example.com", "gina-password-1");
    assert_eq!(made.status(), 303);
    assert_eq!(made.headers()["location"], "/-/web/tokens");
    assert!(cookie(&made, "registry_session").is_some());
    let taken = post("gina", "gina@example.com", "gina-password-1");
    assert_eq!(taken.status(), 409);
    sign_in(&open, "gina", "gina-password-1");

    // npm adduser's login goes to the sign-up form.
    let (login_url, _) = open_login(&open, json!({ "create": true }));
    let start = browser().get(&login_url).send().expect("page");
    assert_eq!(start.status(), 303);
    assert!(start.headers()["location"]
        .to_str()
        .expect("text")
        .starts_with("/-/web/signup?next="));
}

#[test]
fn authenticated_reads_let_the_login_through_and_send_browsers_to_it() {
    let reg = TestRegistry::start_with(|c| c.read_access = ReadAccess::Authenticated);
    reg.add_user("hal", "hal-password");
    let c = browser();
    for path in [
        "/-/web/login",
        "/-/web/static/style.css",
        "/-/web/static/app.js",
    ] {
        assert_eq!(
            c.get(reg.url(path)).send().expect("get").status(),
            200,
            "{path}"
        );
    }
    let (login_url, done_url) = open_login(&reg, json!({}));
    assert_eq!(client().get(&done_url).send().expect("poll").status(), 202);
    let login_id = login_url.rsplit('/').next().expect("id");
    assert_eq!(
        c.get(reg.url(&format!("/-/v1/login_cli/{login_id}")))
            .send()
            .expect("get")
            .status(),
        303
    );
    // The CLI login page itself is open: it sends the browser on to sign in.
    let page = c
        .get(&login_url)
        .header("accept", "text/html")
        .send()
        .expect("get");
    assert_eq!(page.status(), 303);

    // Any other page, for a browser: to the sign-in page, then back.
    for (path, next) in [
        ("/", "%2F"),
        ("/-/web/tokens", "%2F-%2Fweb%2Ftokens"),
        ("/-/web/search?q=a", "%2F-%2Fweb%2Fsearch%3Fq%3Da"),
    ] {
        let response = c
            .get(reg.url(path))
            .header("accept", "text/html,*/*")
            .send()
            .expect("get");
        assert_eq!(response.status(), 303, "{path}");
        let location = response.headers()["location"]
            .to_str()
            .expect("text")
            .to_string();
        let expected = format!("/-/web/login?next={}", next.replace("%2F", "/"));
        assert_eq!(location, expected, "{path}");
    }
    // npm's JSON requests still get the 401 that makes it suggest `npm login`.
    let npm = c
        .get(reg.url("/"))
        .header("accept", "application/json")
        .send()
        .expect("get");
    assert_eq!(npm.status(), 401);
    assert_eq!(
        c.get(reg.url("/some-package"))
            .send()
            .expect("get")
            .status(),
        401
    );

    // Signed in, the session cookie lets the browser through the gate.
    let session = sign_in(&reg, "hal", "hal-password");
    let approval = c
        .get(&login_url)
        .header("cookie", &session)
        .send()
        .expect("page");
    assert_eq!(approval.status(), 200);
    let home = c
        .get(reg.url("/-/web/tokens"))
        .header("cookie", &session)
        .header("accept", "text/html")
        .send()
        .expect("get");
    assert_ne!(
        home.status(),
        303,
        "a signed-in browser is not sent to sign in"
    );
    assert_ne!(home.status(), 401);
}
