//! The account side of the protocol: `npm token`, `npm profile`, `npm whoami` with every kind
//! of token, CIDR allow-lists (and who may say where a request comes from), the CouchDB user
//! update that npm's legacy login falls back to, and cnpmcore's admin user creation. Each
//! behaviour is checked over HTTP, and the npm commands are also driven with the real npm.

mod common;

use std::time::{Duration, Instant};

use common::*;
use registry_core::accounts::cidr::Cidr;
use registry_core::accounts::tokens::TokenOptions;
use registry_core::clock::iso;
use registry_core::config::Registration;
use reqwest::blocking::{RequestBuilder, Response};
use reqwest::header;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn json_of(response: Response) -> Value {
    let status = response.status();
    let text = response.text().expect("body");
    assert!(
        status.is_success(),
        "expected success, got {status}: {text}"
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Asserts the status and npm's error shape; returns the `error` sentence.
fn expect_error(response: Response, status: u16) -> String {
    let got = response.status().as_u16();
    let text = response.text().expect("body");
    assert_eq!(got, status, "unexpected status, body: {text}");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let error = body["error"]
        .as_str()
        .expect("an error sentence")
        .to_string();
    assert_eq!(body["reason"], body["error"], "{body}");
    assert!(!error.is_empty());
    error
}

fn challenge(response: &Response) -> String {
    response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn get(reg: &TestRegistry, path: &str, token: Option<&str>) -> Response {
    with_token(client().get(reg.url(path)), token)
        .send()
        .expect("GET")
}

fn post(reg: &TestRegistry, path: &str, token: Option<&str>, body: &Value) -> Response {
    with_token(client().post(reg.url(path)), token)
        .json(body)
        .send()
        .expect("POST")
}

fn delete(reg: &TestRegistry, path: &str, token: Option<&str>) -> Response {
    with_token(client().delete(reg.url(path)), token)
        .send()
        .expect("DELETE")
}

fn with_token(request: RequestBuilder, token: Option<&str>) -> RequestBuilder {
    match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

fn whoami(reg: &TestRegistry, token: &str) -> Response {
    get(reg, "/-/whoami", Some(token))
}

fn whoami_name(reg: &TestRegistry, token: &str) -> String {
    json_of(whoami(reg, token))["username"]
        .as_str()
        .expect("username")
        .to_string()
}

/// `POST /-/npm/v1/tokens` as `token`'s owner.
fn create_token(reg: &TestRegistry, token: &str, body: Value) -> Response {
    post(reg, "/-/npm/v1/tokens", Some(token), &body)
}

/// Creates a token over HTTP and returns (secret, response body).
fn created(reg: &TestRegistry, token: &str, body: Value) -> (String, Value) {
    let response = create_token(reg, token, body);
    assert_eq!(response.status().as_u16(), 201);
    let body = json_of(response);
    let secret = body["token"].as_str().expect("the secret").to_string();
    (secret, body)
}

fn token_count(reg: &TestRegistry, user: &str) -> u64 {
    reg.registry
        .store
        .read(|db| {
            let id = db.user_by_name(user)?.map(|u| u.id).unwrap_or_default();
            db.count_tokens_of_user(id)
        })
        .expect("count tokens")
}

/// Every token object of the caller, following `urls.next` as npm does.
fn list_all(reg: &TestRegistry, token: &str, first: &str) -> Vec<Value> {
    let mut objects = Vec::new();
    let mut next = Some(reg.url(first));
    while let Some(url) = next {
        let page = json_of(client().get(&url).bearer_auth(token).send().expect("GET"));
        assert!(page["urls"].is_object(), "urls is always present: {page}");
        objects.extend(page["objects"].as_array().expect("objects").iter().cloned());
        next = page["urls"]["next"].as_str().map(str::to_string);
        if let Some(next) = &next {
            assert!(
                next.starts_with(&reg.base),
                "next is an absolute URL: {next}"
            );
        }
    }
    objects
}

fn couch_body(name: &str, password: &str, email: Option<&str>) -> Value {
    let mut body = json!({
        "_id": format!("org.couchdb.user:{name}"),
        "name": name,
        "password": password,
        "type": "user",
        "roles": [],
        "date": "2025-01-01T00:00:00.000Z",
    });
    if let Some(email) = email {
        body["email"] = email.into();
    }
    body
}

fn couch_put(request: RequestBuilder, body: &Value) -> Response {
    request.json(body).send().expect("PUT")
}

fn basic_whoami(reg: &TestRegistry, user: &str, password: &str) -> u16 {
    client()
        .get(reg.url("/-/whoami"))
        .basic_auth(user, Some(password))
        .send()
        .expect("whoami")
        .status()
        .as_u16()
}

/// An ISO timestamp `days` from now (negative: in the past).
fn days_from_now(days: i64) -> String {
    iso(time::OffsetDateTime::now_utc() + time::Duration::days(days))
}

// ---------------------------------------------------------------------------------------------
// npm token create
// ---------------------------------------------------------------------------------------------

#[test]
fn token_create_with_the_password_answers_a_secret_that_works() {
    let reg = TestRegistry::start();
    let login = reg.user_with_token("alice");
    let (secret, body) = created(
        &reg,
        &login,
        json!({ "name": "laptop", "password": "alice-password" }),
    );
    assert!(secret.starts_with("npm_") && secret.len() == 40, "{secret}");
    assert_eq!(body["name"], "laptop");
    assert_eq!(body["readonly"], false);
    assert_eq!(body["cidr_whitelist"], Value::Null);
    assert_eq!(body["expires"], Value::Null);
    assert!(body["key"].as_str().is_some_and(|k| k.len() == 32));
    assert!(body["created"].as_str().is_some_and(|c| c.ends_with('Z')));
    assert_eq!(whoami_name(&reg, &secret), "alice");

    // The secret is shown once: listings carry only its display prefix.
    let listing = get(&reg, "/-/npm/v1/tokens", Some(&login))
        .text()
        .expect("body");
    assert!(!listing.contains(&secret), "the secret leaked: {listing}");
    let objects = list_all(&reg, &login, "/-/npm/v1/tokens");
    let mine = objects
        .iter()
        .find(|o| o["key"] == body["key"])
        .expect("the new token is listed");
    assert_eq!(mine["token"], &secret[..8]);
    assert_eq!(mine["name"], "laptop");
    assert_eq!(mine["readonly"], false);
}

#[test]
fn token_create_with_the_legacy_body_is_honoured() {
    let reg = TestRegistry::start();
    let login = reg.user_with_token("alice");
    let (secret, body) = created(
        &reg,
        &login,
        json!({ "password": "alice-password", "readonly": true, "cidr_whitelist": [] }),
    );
    assert_eq!(body["readonly"], true);
    assert_eq!(publish(&reg, &secret, "legacy-pkg", "1.0.0"), 403);
}

#[test]
fn token_create_with_a_wrong_password_is_401_basic_and_issues_nothing() {
    let reg = TestRegistry::start();
    let login = reg.user_with_token("alice");
    let before = token_count(&reg, "alice");
    let response = create_token(
        &reg,
        &login,
        json!({ "name": null, "password": "wrong-pw" }),
    );
    let www = challenge(&response);
    let error = expect_error(response, 401);
    assert!(
        www.starts_with("Basic"),
        "npm says 'Incorrect password' for Basic: {www}"
    );
    assert!(error.contains("password"), "{error}");
    assert_eq!(token_count(&reg, "alice"), before);
}

#[test]
fn token_create_needs_a_login_and_a_writable_full_token() {
    let reg = TestRegistry::start();
    let login = reg.user_with_token("alice");
    let anonymous = post(
        &reg,
        "/-/npm/v1/tokens",
        None,
        &json!({ "password": "alice-password" }),
    );
    assert!(challenge(&anonymous).starts_with("Bearer"));
    expect_error(anonymous, 401);

    let readonly = reg.token(
        "alice",
        TokenOptions {
            readonly: true,
            ..TokenOptions::default()
        },
    );
    let error = expect_error(
        create_token(&reg, &readonly, json!({ "password": "alice-password" })),
        403,
    );
    assert!(error.contains("read-only"), "{error}");

    // A token limited to some packages cannot mint itself an unlimited one.
    let (limited, _) = created(
        &reg,
        &login,
        json!({ "password": "alice-password", "packages": ["only-this"] }),
    );
    let error = expect_error(
        create_token(&reg, &limited, json!({ "password": "alice-password" })),
        403,
    );
    assert!(error.contains("limited"), "{error}");
}

#[test]
fn token_create_refuses_with_400_what_it_cannot_honour() {
    let reg = TestRegistry::start();
    let login = reg.user_with_token("alice");
    let before = token_count(&reg, "alice");
    for (body, words) in [
        (
            json!({ "password": "alice-password", "orgs": ["Not/An/Org"] }),
            "org name",
        ),
        (
            json!({ "password": "alice-password", "orgs_permission": "read-write" }),
            "--orgs",
        ),
        (
            json!({ "password": "alice-password", "bypass_2fa": true }),
            "two-factor",
        ),
        (
            json!({ "password": "alice-password", "packages_and_scopes_permission": "no-access" }),
            "read-only or read-write",
        ),
        (
            json!({ "password": "alice-password", "cidr_whitelist": ["10.0.0.0/33"] }),
            "IPv4",
        ),
        (
            json!({ "password": "alice-password", "cidr_whitelist": ["fd00::/8"] }),
            "IPv4",
        ),
        (
            json!({ "password": "alice-password", "packages": [] }),
            "empty",
        ),
        (
            json!({ "password": "alice-password", "expires": -3 }),
            "expires",
        ),
        (
            json!({ "password": "alice-password", "future_flag": true }),
            "future_flag",
        ),
        (json!({ "name": "no password" }), "password"),
        (json!("password"), "object"),
    ] {
        let error = expect_error(create_token(&reg, &login, body.clone()), 400);
        assert!(
            error.contains(words),
            "{body}: {error:?} should mention {words:?}"
        );
    }
    let malformed = client()
        .post(reg.url("/-/npm/v1/tokens"))
        .bearer_auth(&login)
        .header(header::CONTENT_TYPE, "application/json")
        .body(r#"{"password": "#)
        .send()
        .expect("POST");
    expect_error(malformed, 400);
    assert_eq!(token_count(&reg, "alice"), before, "nothing was issued");
}

#[test]
fn a_read_only_token_can_read_and_whoami_but_publishing_is_403() {
    let reg = TestRegistry::start();
    let login = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &login, "mine", "1.0.0"), 201);
    let (readonly, body) = created(
        &reg,
        &login,
        json!({ "password": "alice-password", "packages_and_scopes_permission": "read-only" }),
    );
    assert_eq!(body["readonly"], true);
    assert_eq!(whoami_name(&reg, &readonly), "alice");
    assert_eq!(get(&reg, "/mine", Some(&readonly)).status().as_u16(), 200);
    assert_eq!(publish(&reg, &readonly, "mine", "1.0.1"), 403);
    assert_eq!(publish(&reg, &readonly, "brand-new", "1.0.0"), 403);
}

#[test]
fn a_token_limited_to_packages_and_scopes_writes_only_those() {
    let reg = TestRegistry::start();
    let login = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &login, "existing", "1.0.0"), 201);
    let (limited, body) = created(
        &reg,
        &login,
        json!({
            "password": "alice-password",
            "packages": ["allowed"],
            "scopes": ["team"],
            "packages_and_scopes_permission": "read-write",
        }),
    );
    assert_eq!(body["packages"], json!(["allowed"]));
    assert_eq!(body["scopes"], json!(["@team"]));
    assert_eq!(body["readonly"], false);
    assert_eq!(whoami_name(&reg, &limited), "alice");
    assert_eq!(publish(&reg, &limited, "allowed", "1.0.0"), 201);
    assert_eq!(publish(&reg, &limited, "allowed", "1.0.1"), 201);
    assert_eq!(publish(&reg, &limited, "@team/tool", "1.0.0"), 201);
    // Outside the limits: neither a new package nor one alice maintains.
    assert_eq!(publish(&reg, &limited, "elsewhere", "1.0.0"), 403);
    assert_eq!(publish(&reg, &limited, "@teammate/tool", "1.0.0"), 403);
    assert_eq!(publish(&reg, &limited, "existing", "1.0.1"), 403);
    assert_eq!(get(&reg, "/elsewhere", None).status().as_u16(), 404);
    // The limit is the token's, not alice's.
    assert_eq!(publish(&reg, &login, "existing", "1.0.1"), 201);
}

#[test]
fn an_expiring_token_works_until_it_expires_then_is_401() {
    let reg = TestRegistry::start();
    let login = reg.user_with_token("alice");
    let (expiring, body) = created(
        &reg,
        &login,
        json!({ "password": "alice-password", "expires": 7 }),
    );
    let expires = body["expires"].as_str().expect("expires is answered");
    assert!(expires > days_from_now(6).as_str() && expires < days_from_now(8).as_str());
    assert_eq!(whoami_name(&reg, &expiring), "alice");

    let expired = reg.token(
        "alice",
        TokenOptions {
            expires_at: Some(days_from_now(-1)),
            ..TokenOptions::default()
        },
    );
    let response = whoami(&reg, &expired);
    assert!(challenge(&response).starts_with("Bearer"));
    let error = expect_error(response, 401);
    assert!(error.contains("expired"), "{error}");
    assert_eq!(publish(&reg, &expired, "late", "1.0.0"), 401);
}

// ---------------------------------------------------------------------------------------------
// CIDR allow-lists and X-Forwarded-For
// ---------------------------------------------------------------------------------------------

fn cidr_token(reg: &TestRegistry, networks: &[&str]) -> String {
    reg.token(
        "alice",
        TokenOptions {
            cidr_whitelist: networks.iter().map(|n| n.to_string()).collect(),
            ..TokenOptions::default()
        },
    )
}

fn whoami_from(reg: &TestRegistry, token: &str, forwarded_for: Option<&str>) -> Response {
    let mut request = client().get(reg.url("/-/whoami")).bearer_auth(token);
    if let Some(xff) = forwarded_for {
        request = request.header("x-forwarded-for", xff);
    }
    request.send().expect("whoami")
}

/// A 401 that npm reports as EAUTHIP: the challenge has an `ipaddress` part.
fn expect_ip_refusal(response: Response) {
    let www = challenge(&response);
    let parts: Vec<String> = www.split(',').map(|p| p.trim().to_lowercase()).collect();
    assert!(
        parts.iter().any(|p| p == "ipaddress"),
        "WWW-Authenticate: {www:?}"
    );
    let error = expect_error(response, 401);
    assert!(error.contains("may not be used from"), "{error}");
}

#[test]
fn a_cidr_token_works_from_inside_its_networks_only() {
    let reg = TestRegistry::start();
    reg.add_user("alice", "alice-password");
    let inside = cidr_token(&reg, &["10.0.0.0/8", "127.0.0.0/8"]);
    assert_eq!(whoami_name(&reg, &inside), "alice");
    let outside = cidr_token(&reg, &["10.0.0.0/8"]);
    expect_ip_refusal(whoami(&reg, &outside));
    assert_eq!(publish(&reg, &outside, "from-afar", "1.0.0"), 401);
    assert_eq!(publish(&reg, &inside, "from-here", "1.0.0"), 201);
}

#[test]
fn token_create_stores_the_cidr_list_and_enforces_it() {
    let reg = TestRegistry::start();
    let login = reg.user_with_token("alice");
    let (secret, body) = created(
        &reg,
        &login,
        json!({ "password": "alice-password", "cidr_whitelist": ["192.168.0.0/16"] }),
    );
    assert_eq!(body["cidr_whitelist"], json!(["192.168.0.0/16"]));
    expect_ip_refusal(whoami(&reg, &secret));
    let (here, _) = created(
        &reg,
        &login,
        json!({ "password": "alice-password", "cidr_whitelist": ["127.0.0.1"] }),
    );
    assert_eq!(whoami_name(&reg, &here), "alice");
}

#[test]
fn x_forwarded_for_is_ignored_from_an_untrusted_peer() {
    let reg = TestRegistry::start();
    reg.add_user("alice", "alice-password");
    let office = cidr_token(&reg, &["10.1.0.0/16"]);
    expect_ip_refusal(whoami_from(&reg, &office, Some("10.1.2.3")));
    // …and it cannot make a token from the peer's own network fail either.
    let local = cidr_token(&reg, &["127.0.0.1/32"]);
    assert_eq!(
        whoami_from(&reg, &local, Some("10.1.2.3"))
            .status()
            .as_u16(),
        200
    );
}

#[test]
fn x_forwarded_for_is_honoured_from_a_trusted_proxy() {
    let reg = TestRegistry::start_with(|config| {
        config.trusted_proxies = vec![Cidr::parse("127.0.0.1/32").expect("cidr")];
    });
    reg.add_user("alice", "alice-password");
    let office = cidr_token(&reg, &["10.1.0.0/16"]);
    assert_eq!(
        json_of(whoami_from(&reg, &office, Some("10.1.2.3")))["username"],
        "alice"
    );
    // The rightmost untrusted hop counts: a client cannot prepend its way in.
    assert_eq!(
        whoami_from(&reg, &office, Some("10.1.2.3, 203.0.113.5"))
            .status()
            .as_u16(),
        401
    );
    expect_ip_refusal(whoami_from(&reg, &office, Some("192.168.9.9")));
    // Without the header the proxy itself is the client.
    expect_ip_refusal(whoami_from(&reg, &office, None));
}

// ---------------------------------------------------------------------------------------------
// npm token list / revoke, lastUsedAt
// ---------------------------------------------------------------------------------------------

#[test]
fn token_list_pages_with_absolute_next_urls_and_shows_only_the_callers_tokens() {
    let reg = TestRegistry::start();
    let login = reg.user_with_token("alice");
    for _ in 0..6 {
        reg.token("alice", TokenOptions::default());
    }
    reg.user_with_token("bob");
    let first = json_of(get(&reg, "/-/npm/v1/tokens?page=0&perPage=3", Some(&login)));
    assert_eq!(first["total"], 7);
    assert_eq!(first["objects"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        first["urls"]["next"],
        reg.url("/-/npm/v1/tokens?page=1&perPage=3")
    );
    let all = list_all(&reg, &login, "/-/npm/v1/tokens?perPage=3");
    let mut keys: Vec<&str> = all.iter().filter_map(|o| o["key"].as_str()).collect();
    assert_eq!(keys.len(), 7);
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), 7, "no token twice across pages");
    let last = json_of(get(&reg, "/-/npm/v1/tokens?page=2&perPage=3", Some(&login)));
    assert_eq!(last["objects"].as_array().map(Vec::len), Some(1));
    assert_eq!(last["urls"], json!({}), "the last page has no next");
    // One page holds everything by default.
    let default = json_of(get(&reg, "/-/npm/v1/tokens", Some(&login)));
    assert_eq!(default["objects"].as_array().map(Vec::len), Some(7));
    assert_eq!(default["urls"], json!({}));

    expect_error(get(&reg, "/-/npm/v1/tokens?page=-1", Some(&login)), 400);
    let anonymous = get(&reg, "/-/npm/v1/tokens", None);
    assert!(challenge(&anonymous).starts_with("Bearer"));
    expect_error(anonymous, 401);
}

#[test]
fn token_list_works_with_a_read_only_token() {
    let reg = TestRegistry::start();
    reg.add_user("alice", "alice-password");
    let readonly = reg.token(
        "alice",
        TokenOptions {
            readonly: true,
            name: Some("ro".into()),
            ..TokenOptions::default()
        },
    );
    let all = list_all(&reg, &readonly, "/-/npm/v1/tokens");
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["readonly"], true);
    assert_eq!(all[0]["name"], "ro");
}

#[test]
fn revoke_by_key_or_by_secret_ends_the_token() {
    let reg = TestRegistry::start();
    let login = reg.user_with_token("alice");
    let (by_key, body) = created(&reg, &login, json!({ "password": "alice-password" }));
    let key = body["key"].as_str().expect("key").to_string();
    let response = delete(&reg, &format!("/-/npm/v1/tokens/token/{key}"), Some(&login));
    assert_eq!(response.status().as_u16(), 204);
    expect_error(whoami(&reg, &by_key), 401);

    let (by_secret, _) = created(&reg, &login, json!({ "password": "alice-password" }));
    let response = delete(
        &reg,
        &format!("/-/npm/v1/tokens/token/{by_secret}"),
        Some(&login),
    );
    assert_eq!(response.status().as_u16(), 204);
    expect_error(whoami(&reg, &by_secret), 401);

    // Again: already gone.
    expect_error(
        delete(&reg, &format!("/-/npm/v1/tokens/token/{key}"), Some(&login)),
        404,
    );
    // A token may revoke itself.
    let response = delete(
        &reg,
        &format!("/-/npm/v1/tokens/token/{login}"),
        Some(&login),
    );
    assert_eq!(response.status().as_u16(), 204);
    expect_error(whoami(&reg, &login), 401);
}

#[test]
fn revoking_someone_elses_token_is_404_but_an_admin_may() {
    let reg = TestRegistry::start();
    let alice = reg.user_with_token("alice");
    let bob = reg.user_with_token("bob");
    let (bobs, body) = created(&reg, &bob, json!({ "password": "bob-password" }));
    let key = body["key"].as_str().expect("key").to_string();
    for target in [&key, &bobs] {
        expect_error(
            delete(
                &reg,
                &format!("/-/npm/v1/tokens/token/{target}"),
                Some(&alice),
            ),
            404,
        );
    }
    assert_eq!(whoami_name(&reg, &bobs), "bob", "bob's token survived");

    let readonly = reg.token(
        "alice",
        TokenOptions {
            readonly: true,
            ..TokenOptions::default()
        },
    );
    expect_error(
        delete(
            &reg,
            &format!("/-/npm/v1/tokens/token/{key}"),
            Some(&readonly),
        ),
        403,
    );
    expect_error(
        delete(&reg, &format!("/-/npm/v1/tokens/token/{key}"), None),
        401,
    );

    reg.add_user_with("root", "root-password", true);
    let admin = reg.token("root", TokenOptions::default());
    let response = delete(&reg, &format!("/-/npm/v1/tokens/token/{key}"), Some(&admin));
    assert_eq!(response.status().as_u16(), 204);
    expect_error(whoami(&reg, &bobs), 401);
}

#[test]
fn last_used_at_appears_in_the_listing_after_a_flush() {
    let reg = TestRegistry::start();
    let login = reg.user_with_token("alice");
    let (used, body) = created(&reg, &login, json!({ "password": "alice-password" }));
    let key = body["key"].clone();
    let unused_key =
        created(&reg, &login, json!({ "password": "alice-password" })).1["key"].clone();
    let before = registry_core::clock::now_iso();
    assert_eq!(whoami_name(&reg, &used), "alice");
    // Flushed every few seconds, not per request: poll (bounded) for it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let last_used = loop {
        let all = list_all(&reg, &login, "/-/npm/v1/tokens");
        let entry = all
            .iter()
            .find(|o| o["key"] == key)
            .cloned()
            .expect("listed");
        if let Some(at) = entry["lastUsedAt"].as_str() {
            let unused = all.iter().find(|o| o["key"] == unused_key).expect("listed");
            assert!(unused.get("lastUsedAt").is_none(), "{unused}");
            break at.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "lastUsedAt never appeared: {entry}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(last_used >= before, "{last_used} < {before}");
}

#[test]
fn last_used_at_is_flushed_at_shutdown() {
    let reg = TestRegistry::start();
    reg.add_user("alice", "alice-password");
    let token = reg.token("alice", TokenOptions::default());
    assert_eq!(whoami_name(&reg, &token), "alice");
    let registry = reg.registry.clone();
    reg.stop();
    let used = registry
        .store
        .read(|db| {
            let id = db.user_by_name("alice")?.map(|u| u.id).unwrap_or_default();
            db.tokens_of_user(id, 0, 10)
        })
        .expect("read tokens");
    assert_eq!(used.len(), 1);
    assert!(used[0].last_used_at.is_some(), "{:?}", used[0]);
}

// ---------------------------------------------------------------------------------------------
// npm whoami with every kind of token
// ---------------------------------------------------------------------------------------------

#[test]
fn whoami_answers_for_every_kind_of_token() {
    let reg = TestRegistry::start();
    let login = reg.user_with_token("alice");
    let kinds = [
        json!({ "password": "alice-password", "packages_and_scopes_permission": "read-only" }),
        json!({ "password": "alice-password", "readonly": true }),
        json!({ "password": "alice-password", "cidr_whitelist": ["127.0.0.0/8"] }),
        json!({ "password": "alice-password", "expires": 1 }),
        json!({ "password": "alice-password", "packages": ["x"], "scopes": ["@y"] }),
        json!({ "password": "alice-password", "packages_all": true, "description": "all" }),
    ];
    for body in kinds {
        let (secret, _) = created(&reg, &login, body.clone());
        assert_eq!(whoami_name(&reg, &secret), "alice", "{body}");
    }
    assert_eq!(basic_whoami(&reg, "alice", "alice-password"), 200);
}

// ---------------------------------------------------------------------------------------------
// npm profile
// ---------------------------------------------------------------------------------------------

#[test]
fn profile_get_describes_the_caller() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    let profile = json_of(get(&reg, "/-/npm/v1/user", Some(&token)));
    assert_eq!(profile["name"], "alice");
    assert_eq!(profile["email"], "alice@example.com");
    assert_eq!(profile["tfa"], Value::Null);
    assert_eq!(profile["fullname"], Value::Null);
    assert!(profile["created"]
        .as_str()
        .is_some_and(|c| c.ends_with('Z')));
    assert!(profile.get("password").is_none() && profile.get("password_hash").is_none());
    let anonymous = get(&reg, "/-/npm/v1/user", None);
    expect_error(anonymous, 401);
}

#[test]
fn profile_set_changes_fields_like_npm_sends_them() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    // npm sends every writable key, the new value in place, "" turned into null.
    let body = json!({
        "email": "alice@example.com", "fullname": "Alice Liddell", "homepage": "https://a.example",
        "freenode": null, "twitter": "@alice", "github": "alice",
    });
    let updated = json_of(post(&reg, "/-/npm/v1/user", Some(&token), &body));
    assert_eq!(updated["fullname"], "Alice Liddell");
    assert_eq!(updated["github"], "alice");
    assert_eq!(updated["twitter"], "@alice");
    assert_eq!(updated["homepage"], "https://a.example");
    let again = json_of(get(&reg, "/-/npm/v1/user", Some(&token)));
    assert_eq!(again["fullname"], "Alice Liddell");
    assert!(again["updated"].as_str() >= again["created"].as_str());

    // Empty strings clear; keys left out stay.
    let cleared = json_of(post(
        &reg,
        "/-/npm/v1/user",
        Some(&token),
        &json!({ "github": "", "email": "new@example.org" }),
    ));
    assert_eq!(cleared["github"], Value::Null);
    assert_eq!(cleared["email"], "new@example.org");
    assert_eq!(cleared["fullname"], "Alice Liddell");
    // The email is public in the user document too.
    let doc = json_of(get(&reg, "/-/user/org.couchdb.user:alice", None));
    assert_eq!(doc["email"], "new@example.org");
}

#[test]
fn profile_set_refuses_what_it_cannot_do() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    for (body, words) in [
        (
            json!({ "tfa": { "password": "alice-password", "mode": "auth-only" } }),
            "two-factor",
        ),
        (json!({ "email": "not-an-address" }), "email"),
        (json!({ "email": null }), "email"),
        (json!({ "name": "mallory" }), "name"),
        (json!({ "fullname": ["x"] }), "fullname"),
        (json!({ "password": "just-a-string" }), "password"),
        (json!(["email"]), "object"),
    ] {
        let error = expect_error(post(&reg, "/-/npm/v1/user", Some(&token), &body), 400);
        assert!(
            error.contains(words),
            "{body}: {error:?} should mention {words:?}"
        );
    }
    let profile = json_of(get(&reg, "/-/npm/v1/user", Some(&token)));
    assert_eq!(profile["email"], "alice@example.com", "nothing changed");

    let readonly = reg.token(
        "alice",
        TokenOptions {
            readonly: true,
            ..TokenOptions::default()
        },
    );
    expect_error(
        post(
            &reg,
            "/-/npm/v1/user",
            Some(&readonly),
            &json!({ "fullname": "X" }),
        ),
        403,
    );
    expect_error(
        post(&reg, "/-/npm/v1/user", None, &json!({ "fullname": "X" })),
        401,
    );
}

#[test]
fn profile_set_password_checks_the_old_one_and_ends_remembered_basic_credentials() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    // Basic credentials that verified are remembered for a while…
    assert_eq!(basic_whoami(&reg, "alice", "alice-password"), 200);

    let wrong = post(
        &reg,
        "/-/npm/v1/user",
        Some(&token),
        &json!({ "password": { "old": "not-it-at-all", "new": "brand-new-password" } }),
    );
    assert!(challenge(&wrong).starts_with("Basic"));
    expect_error(wrong, 401);
    let short = post(
        &reg,
        "/-/npm/v1/user",
        Some(&token),
        &json!({ "password": { "old": "alice-password", "new": "short" } }),
    );
    assert!(expect_error(short, 400).contains("too short"));

    let changed = json_of(post(
        &reg,
        "/-/npm/v1/user",
        Some(&token),
        &json!({ "email": "alice@example.com", "fullname": null,
                 "password": { "old": "alice-password", "new": "brand-new-password" } }),
    ));
    assert_eq!(changed["name"], "alice");
    assert!(changed.get("password").is_none());
    // …and forgotten when the password changes.
    assert_eq!(basic_whoami(&reg, "alice", "alice-password"), 401);
    assert_eq!(basic_whoami(&reg, "alice", "brand-new-password"), 200);
    // Tokens stay valid; new ones need the new password.
    assert_eq!(whoami_name(&reg, &token), "alice");
    expect_error(
        create_token(&reg, &token, json!({ "password": "alice-password" })),
        401,
    );
    created(&reg, &token, json!({ "password": "brand-new-password" }));
}

// ---------------------------------------------------------------------------------------------
// CouchDB user update (npm's legacy login after a 409) and cnpmcore's admin user creation
// ---------------------------------------------------------------------------------------------

#[test]
fn couch_user_update_with_basic_auth_answers_a_token() {
    let reg = TestRegistry::start();
    reg.add_user("alice", "alice-password");
    let doc = json_of(get(&reg, "/-/user/org.couchdb.user:alice?write=true", None));
    let rev = doc["_rev"].as_str().expect("_rev").to_string();
    assert!(rev.starts_with("1-") && rev.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    let path = format!("/-/user/org.couchdb.user:alice/-rev/{rev}");
    // npm's body: its PUT body plus the document's fields.
    let mut body = couch_body("alice", "alice-password", None);
    body["email"] = doc["email"].clone();
    body["_rev"] = rev.clone().into();

    let response = couch_put(
        client()
            .put(reg.url(&path))
            .basic_auth("alice", Some("alice-password")),
        &body,
    );
    assert!(response.status().is_success(), "{}", response.status());
    let answer = json_of(response);
    assert!(answer["ok"].as_str().is_some_and(|ok| !ok.is_empty()));
    let token = answer["token"].as_str().expect("token");
    assert_eq!(whoami_name(&reg, token), "alice");

    let wrong = couch_put(
        client()
            .put(reg.url(&path))
            .basic_auth("alice", Some("wrong-password")),
        &body,
    );
    assert!(challenge(&wrong).starts_with("Basic"));
    expect_error(wrong, 401);
    reg.add_user("mallory", "mallory-password");
    let other = couch_put(
        client()
            .put(reg.url(&path))
            .basic_auth("mallory", Some("mallory-password")),
        &body,
    );
    expect_error(other, 401);
    let odd = "/-/user/org.couchdb.user:alice/-rev/";
    expect_error(couch_put(client().put(reg.url(odd)), &body), 404);
}

#[test]
fn an_admin_creates_users_while_registration_is_closed() {
    let reg = TestRegistry::start();
    reg.add_user_with("root", "root-password", true);
    let admin = reg.token("root", TokenOptions::default());
    let path = "/-/user/org.couchdb.user:newbie";
    let body = couch_body("newbie", "newbie-password", Some("newbie@example.com"));

    // Not an admin, or an admin's read-only token: registration is closed.
    let stranger = reg.user_with_token("stranger");
    let readonly_admin = reg.token(
        "root",
        TokenOptions {
            readonly: true,
            ..TokenOptions::default()
        },
    );
    for token in [
        None,
        Some(stranger.as_str()),
        Some(readonly_admin.as_str()),
        Some("npm_stale"),
    ] {
        let request = with_token(client().put(reg.url(path)), token);
        let error = expect_error(couch_put(request, &body), 403);
        assert!(error.contains("registration is closed"), "{error}");
    }

    let created = couch_put(client().put(reg.url(path)).bearer_auth(&admin), &body);
    assert_eq!(created.status().as_u16(), 201);
    let token = json_of(created)["token"]
        .as_str()
        .expect("token")
        .to_string();
    assert_eq!(whoami_name(&reg, &token), "newbie");
    assert_eq!(basic_whoami(&reg, "newbie", "newbie-password"), 200);
    let profile = json_of(get(&reg, "/-/npm/v1/user", Some(&token)));
    assert_eq!(profile["email"], "newbie@example.com");
    // The new account is an ordinary one.
    expect_error(
        delete(&reg, "/-/npm/v1/tokens/token/npm_x", Some(&token)),
        404,
    );

    // The name is taken now.
    let again = couch_put(client().put(reg.url(path)).bearer_auth(&admin), &body);
    assert!(expect_error(again, 409).contains("already exists"));
    // An admin still needs a valid email.
    let bad = couch_body("other", "other-password", Some("nope"));
    let other = "/-/user/org.couchdb.user:other";
    expect_error(
        couch_put(client().put(reg.url(other)).bearer_auth(&admin), &bad),
        400,
    );
}

#[test]
fn adduser_for_an_existing_name_follows_cnpmcores_rules() {
    let reg = TestRegistry::start_with(|config| config.registration = Registration::Open);
    reg.add_user("alice", "alice-password");
    let path = "/-/user/org.couchdb.user:alice";
    let put = |body: &Value| couch_put(client().put(reg.url(path)), body);
    // Wrong password: 401.
    let error = expect_error(
        put(&couch_body(
            "alice",
            "wrong-password",
            Some("alice@example.com"),
        )),
        401,
    );
    assert!(error.contains("password"), "{error}");
    // Right password, another email: 409.
    let error = expect_error(
        put(&couch_body(
            "alice",
            "alice-password",
            Some("other@example.com"),
        )),
        409,
    );
    assert!(error.contains("another email"), "{error}");
    // Right password, same email: logged in.
    let answer = json_of(put(&couch_body(
        "alice",
        "alice-password",
        Some("ALICE@example.com"),
    )));
    assert!(answer["token"].is_string());
    // A name in the body that differs from the URL is refused (400, which the npm tests pin;
    // cnpmcore answers 422).
    expect_error(put(&couch_body("mallory", "alice-password", None)), 400);
}

// ---------------------------------------------------------------------------------------------
// The real npm
// ---------------------------------------------------------------------------------------------

/// npm's output (stdout and stderr) and whether it succeeded.
fn npm_output(npm: &Npm, args: &[&str]) -> (bool, String) {
    let output = npm.run(npm.home.path(), args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// The secret from npm's "Created token npm_…" line.
fn created_secret(output: &str) -> String {
    output
        .lines()
        .find_map(|line| line.trim().strip_prefix("Created token "))
        .map(|token| token.trim().to_string())
        .unwrap_or_else(|| panic!("no 'Created token' in:\n{output}"))
}

#[test]
fn npm_token_create_list_and_revoke() {
    let reg = TestRegistry::start();
    let login = reg.user_with_token("alice");
    let npm = Npm::new(&reg).with_token(&login);
    let home = npm.home.path();

    let out = npm.ok(
        home,
        &[
            "token",
            "create",
            "--password",
            "alice-password",
            "--name",
            "ci",
        ],
    );
    let secret = created_secret(&out);
    assert!(secret.starts_with("npm_"), "{out}");
    let other = Npm::new(&reg).with_token(&secret);
    assert_eq!(other.ok(other.home.path(), &["whoami"]).trim(), "alice");

    let listed = npm.ok(home, &["token", "list"]);
    assert!(
        listed.contains(&format!("Token {}…", &secret[..8])),
        "{listed}"
    );
    assert!(listed.contains("name ci"), "{listed}");
    assert!(
        !listed.contains(&secret),
        "the secret is never listed:\n{listed}"
    );
    let json: Value = serde_json::from_str(&npm.ok(home, &["token", "list", "--json"]))
        .expect("npm token list --json");
    let entry = json
        .as_array()
        .and_then(|all| all.iter().find(|t| t["token"] == secret[..8]))
        .cloned()
        .expect("the new token in --json");
    let id = entry["id"]
        .as_str()
        .expect("npm computes an id")
        .to_string();

    let out = npm.ok(home, &["token", "revoke", &id]);
    assert!(out.contains("Removed 1 token"), "{out}");
    let (ok, out) = npm_output(&other, &["whoami"]);
    assert!(!ok, "a revoked token still works:\n{out}");
    assert!(out.contains("401"), "{out}");
}

#[test]
fn npm_token_revoke_by_the_secret_itself() {
    let reg = TestRegistry::start();
    let login = reg.user_with_token("alice");
    let npm = Npm::new(&reg).with_token(&login);
    let home = npm.home.path();
    let secret =
        created_secret(&npm.ok(home, &["token", "create", "--password", "alice-password"]));
    let out = npm.ok(home, &["token", "revoke", &secret]);
    assert!(out.contains("Removed 1 token"), "{out}");
    expect_error(whoami(&reg, &secret), 401);
    assert_eq!(whoami_name(&reg, &login), "alice");
}

#[test]
fn npm_token_create_with_granular_options() {
    let reg = TestRegistry::start();
    let login = reg.user_with_token("alice");
    let npm = Npm::new(&reg).with_token(&login);
    let home = npm.home.path();
    let out = npm.ok(
        home,
        &[
            "token",
            "create",
            "--password",
            "alice-password",
            "--packages-and-scopes-permission",
            "read-only",
            "--expires",
            "30",
            "--cidr",
            "10.0.0.0/8",
        ],
    );
    assert!(out.contains("with IP whitelist: 10.0.0.0/8"), "{out}");
    assert!(out.contains("expires: "), "{out}");
    let secret = created_secret(&out);
    // Used from 127.0.0.1, outside its allow-list: npm reports EAUTHIP.
    let limited = Npm::new(&reg).with_token(&secret);
    let (ok, out) = npm_output(&limited, &["whoami"]);
    assert!(!ok, "{out}");
    assert!(out.contains("EAUTHIP"), "{out}");
    assert!(
        out.contains("Login is not allowed from your IP address"),
        "{out}"
    );

    // A token limited to an org is issued (it reaches only that org's packages).
    let (ok, out) = npm_output(
        &npm,
        &[
            "token",
            "create",
            "--password",
            "alice-password",
            "--orgs",
            "acme",
            "--orgs-permission",
            "read-only",
        ],
    );
    assert!(ok, "{out}");
    let limited = reg
        .registry
        .store
        .read(|db| db.user_by_name("alice"))
        .expect("read")
        .expect("alice");
    let tokens =
        registry_core::accounts::tokens::list_tokens(&reg.registry.store, limited.id, 0, 100)
            .expect("tokens");
    assert!(
        tokens
            .tokens
            .iter()
            .any(|t| t.orgs.as_deref() == Some(&["acme".to_string()][..])),
        "no token limited to acme"
    );
    // What the registry cannot honour makes npm fail, with our sentence.
    let (ok, out) = npm_output(
        &npm,
        &[
            "token",
            "create",
            "--password",
            "alice-password",
            "--bypass-2fa",
        ],
    );
    assert!(!ok, "{out}");
    assert!(out.contains("400") && out.contains("two-factor"), "{out}");
    // A wrong password is reported as such.
    let (ok, out) = npm_output(&npm, &["token", "create", "--password", "wrong-password"]);
    assert!(!ok, "{out}");
    // The Basic challenge makes npm explain it as a password problem, not a stale login.
    assert!(
        out.contains("E401") && out.contains("Incorrect or missing password"),
        "{out}"
    );
}

#[test]
fn npm_token_create_asks_for_the_password_on_a_terminal() {
    let reg = TestRegistry::start();
    let login = reg.user_with_token("alice");
    let npm = Npm::new(&reg).with_token(&login);
    let (status, out) = npm.on_tty(
        npm.home.path(),
        &["token", "create"],
        &[("password:", "alice-password")],
    );
    assert_eq!(status, Some(0), "{out}");
    let secret = created_secret(&out);
    assert_eq!(whoami_name(&reg, &secret), "alice");
}

#[test]
fn npm_token_list_follows_next_across_pages() {
    let reg = TestRegistry::start();
    let login = reg.user_with_token("alice");
    for _ in 0..60 {
        reg.token("alice", TokenOptions::default());
    }
    let first = json_of(get(&reg, "/-/npm/v1/tokens", Some(&login)));
    assert!(
        first["urls"]["next"].is_string(),
        "61 tokens need two pages"
    );
    let npm = Npm::new(&reg).with_token(&login);
    let json: Value = serde_json::from_str(&npm.ok(npm.home.path(), &["token", "list", "--json"]))
        .expect("npm token list --json");
    assert_eq!(json.as_array().map(Vec::len), Some(61));
}

#[test]
fn npm_whoami_with_readonly_cidr_and_expiring_tokens() {
    let reg = TestRegistry::start();
    reg.add_user("alice", "alice-password");
    let tokens = [
        reg.token(
            "alice",
            TokenOptions {
                readonly: true,
                ..TokenOptions::default()
            },
        ),
        cidr_token(&reg, &["127.0.0.1/32"]),
        reg.token(
            "alice",
            TokenOptions {
                expires_at: Some(days_from_now(1)),
                ..TokenOptions::default()
            },
        ),
    ];
    for token in tokens {
        let npm = Npm::new(&reg).with_token(&token);
        assert_eq!(npm.ok(npm.home.path(), &["whoami"]).trim(), "alice");
    }
    let expired = reg.token(
        "alice",
        TokenOptions {
            expires_at: Some(days_from_now(-1)),
            ..TokenOptions::default()
        },
    );
    let npm = Npm::new(&reg).with_token(&expired);
    let (ok, out) = npm_output(&npm, &["whoami"]);
    assert!(!ok && out.contains("401"), "{out}");
}

#[test]
fn npm_profile_get_and_set() {
    let reg = TestRegistry::start();
    let login = reg.user_with_token("alice");
    let npm = Npm::new(&reg).with_token(&login);
    let home = npm.home.path();
    let out = npm.ok(home, &["profile", "get"]);
    assert!(out.contains("name: alice"), "{out}");
    assert!(
        out.contains("email: alice@example.com(unverified)"),
        "{out}"
    );
    assert!(out.contains("two-factor auth: disabled"), "{out}");

    let out = npm.ok(home, &["profile", "set", "fullname", "Alice Liddell"]);
    assert!(out.contains("Set fullname to Alice Liddell"), "{out}");
    let out = npm.ok(home, &["profile", "set", "github", "alice-gh"]);
    assert!(out.contains("Set github to alice-gh"), "{out}");
    let out = npm.ok(home, &["profile", "get"]);
    assert!(out.contains("fullname: Alice Liddell"), "{out}");
    assert!(out.contains("github: alice-gh"), "{out}");
    assert_eq!(
        npm.ok(home, &["profile", "get", "fullname"]).trim(),
        "Alice Liddell"
    );

    let out = npm.ok(
        home,
        &["profile", "set", "email", "alice@wonderland.example"],
    );
    assert!(
        out.contains("Set email to alice@wonderland.example"),
        "{out}"
    );
    let (ok, out) = npm_output(&npm, &["profile", "set", "email", "not-an-email"]);
    assert!(!ok && out.contains("400"), "{out}");
}

#[test]
fn npm_profile_set_password_on_a_terminal() {
    let reg = TestRegistry::start();
    let login = reg.user_with_token("alice");
    let npm = Npm::new(&reg).with_token(&login);
    let (status, out) = npm.on_tty(
        npm.home.path(),
        &["profile", "set", "password"],
        &[
            ("Current password:", "alice-password"),
            ("New password:", "a-much-better-password"),
            ("Again:", "a-much-better-password"),
        ],
    );
    assert_eq!(status, Some(0), "{out}");
    assert!(out.contains("Set password"), "{out}");
    assert_eq!(basic_whoami(&reg, "alice", "a-much-better-password"), 200);
    assert_eq!(basic_whoami(&reg, "alice", "alice-password"), 401);

    // A wrong current password changes nothing.
    let (status, out) = npm.on_tty(
        npm.home.path(),
        &["profile", "set", "password"],
        &[
            ("Current password:", "alice-password"),
            ("New password:", "yet-another-password"),
            ("Again:", "yet-another-password"),
        ],
    );
    assert_ne!(status, Some(0), "{out}");
    assert!(
        out.contains("E401") && out.contains("Incorrect or missing password"),
        "{out}"
    );
    assert_eq!(basic_whoami(&reg, "alice", "a-much-better-password"), 200);
}
