//! Search across the first upstream (local hits first, upstream ones after, never a local,
//! private or duplicate name; local results alone when the upstream fails) and `npm audit`
//! forwarded to it (a 404 at once without one).

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::fake_http::{Canned, FakeHttp};
use common::{client, publish, write_package, Npm, TestRegistry};
use registry_core::upstream::config::{NamePattern, UpstreamConfig, UpstreamFile};
use serde_json::{json, Value};

fn upstream_of(base: &str) -> UpstreamConfig {
    UpstreamConfig::shortcut(base).unwrap_or_else(|e| panic!("upstream config: {e}"))
}

fn search(reg: &TestRegistry, query: &str) -> (u16, Value) {
    let response = client()
        .get(reg.url(&format!("/-/v1/search?{query}")))
        .send()
        .expect("search");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

fn names(body: &Value) -> Vec<String> {
    body["objects"]
        .as_array()
        .map(|objects| {
            objects
                .iter()
                .filter_map(|o| o["package"]["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("gunzip");
    out
}

/// An upstream registry with three packages, and a downstream with two of its own (one of
/// them also upstream) that keeps `@corp/*` private.
fn pair() -> (TestRegistry, TestRegistry) {
    let up = TestRegistry::start();
    let upstream = upstream_of(&up.base);
    let down = TestRegistry::start_with(move |config| {
        config.upstreams = vec![upstream];
        config.private = vec![NamePattern::parse("@corp/*").expect("pattern")];
    });
    // Local names first: a name the upstream already has cannot be published downstream.
    let token = down.user_with_token("alice");
    for name in ["local-thing", "shared-pkg"] {
        assert_eq!(publish(&down, &token, name, "2.0.0"), 201, "{name} local");
    }
    let token = up.user_with_token("uploader");
    for name in ["shared-pkg", "remote-only", "@corp/secret"] {
        assert_eq!(publish(&up, &token, name, "1.0.0"), 201, "{name} upstream");
    }
    (up, down)
}

#[test]
fn search_lists_local_hits_first_then_the_upstreams_without_duplicates_or_private_names() {
    let (up, down) = pair();
    let (status, upstream_only) = search(&up, "text=package&size=20");
    assert_eq!(status, 200);
    assert_eq!(names(&upstream_only).len(), 3, "{upstream_only}");

    let (status, body) = search(&down, "text=package&size=20");
    assert_eq!(status, 200, "{body}");
    let found = names(&body);
    assert_eq!(found.len(), 3, "{found:?}");
    let mut local = found[..2].to_vec();
    local.sort();
    assert_eq!(
        local,
        ["local-thing", "shared-pkg"],
        "local hits first: {found:?}"
    );
    assert_eq!(found[2], "remote-only");
    assert_eq!(body["total"], 3, "{body}");
    // The local shared-pkg is the one listed (version 2.0.0), not the upstream's.
    let shared = body["objects"]
        .as_array()
        .and_then(|o| o.iter().find(|o| o["package"]["name"] == "shared-pkg"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(shared["package"]["version"], "2.0.0");
    let remote = &body["objects"][2]["package"];
    assert!(
        remote["maintainers"].is_array(),
        "npm needs maintainers: {remote}"
    );

    // size trims the merged list.
    let (_, small) = search(&down, "text=package&size=2");
    assert_eq!(names(&small).len(), 2);

    // The upstream gone: the local results, still a 200.
    up.stop();
    let (status, body) = search(&down, "text=package&size=20");
    assert_eq!(status, 200, "{body}");
    let mut found = names(&body);
    found.sort();
    assert_eq!(found, ["local-thing", "shared-pkg"]);
    assert_eq!(body["total"], 2);
}

#[test]
fn a_slow_upstream_search_is_cut_off_at_its_timeout_with_local_results() {
    let slow = FakeHttp::start(|_| {
        std::thread::sleep(Duration::from_secs(5));
        Canned::new(200, "application/json", r#"{"objects":[],"total":0}"#)
    });
    let upstream = UpstreamConfig::from_file(
        UpstreamFile {
            name: "slow".into(),
            url: slow.base.clone(),
            timeout: Some("300ms".into()),
            ..UpstreamFile::default()
        },
        &|_| None,
    )
    .expect("upstream config");
    let down = TestRegistry::start_with(move |config| config.upstreams = vec![upstream]);
    let token = down.user_with_token("alice");
    // The publish asks the (slow) upstream whether the name is taken there; that is not
    // what this test measures, so it may take its own time.
    let _ = publish(&down, &token, "local-thing", "1.0.0");
    let started = Instant::now();
    let (status, body) = search(&down, "text=local");
    let elapsed = started.elapsed();
    assert_eq!(status, 200, "{body}");
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    assert!(slow.count("/-/v1/search?text=local&size=20&from=0") >= 1);
}

#[test]
fn audit_without_an_upstream_is_a_404_at_once() {
    let reg = TestRegistry::start();
    for path in [
        "/-/npm/v1/security/advisories/bulk",
        "/-/npm/v1/security/audits/quick",
    ] {
        let started = Instant::now();
        let response = client()
            .post(reg.url(path))
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(gzip(br#"{"foo":["1.0.0"]}"#))
            .send()
            .expect("audit");
        assert_eq!(response.status().as_u16(), 404, "{path}");
        let body: Value = response.json().unwrap_or(Value::Null);
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("npm audit") && error.contains("upstream"),
            "{body}"
        );
        assert_eq!(body["reason"], body["error"]);
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}

#[test]
fn audit_is_forwarded_to_the_upstream_as_received_and_its_answer_relayed() {
    let advisories = json!({ "foo": [{ "id": 1, "url": "https://example/1", "title": "bad",
        "severity": "high", "vulnerable_versions": "<2.0.0", "cwe": [], "cvss": {} }] });
    let answer = advisories.to_string();
    let fake = FakeHttp::start(move |request| match request.path.as_str() {
        "/-/npm/v1/security/advisories/bulk" => {
            Canned::new(200, "application/json; charset=utf-8", answer.clone())
        }
        "/-/npm/v1/security/audits/quick" => {
            Canned::new(400, "application/json", r#"{"error":"quick is gone"}"#)
        }
        _ => Canned::not_found(),
    });
    let upstream = upstream_of(&fake.base);
    let down = TestRegistry::start_with(move |config| config.upstreams = vec![upstream]);

    let sent = gzip(br#"{"foo":["1.0.0"]}"#);
    let response = client()
        .post(down.url("/-/npm/v1/security/advisories/bulk"))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(sent.clone())
        .send()
        .expect("audit");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json; charset=utf-8")
    );
    let body: Value = response.json().unwrap_or(Value::Null);
    assert_eq!(body, advisories);
    let recorded = fake.requests();
    let bulk = recorded
        .iter()
        .find(|r| r.path == "/-/npm/v1/security/advisories/bulk")
        .expect("forwarded");
    assert_eq!(bulk.method, "POST");
    assert_eq!(bulk.header("content-encoding"), Some("gzip"));
    assert!(bulk.body == sent, "the body as received");
    assert_eq!(gunzip(&bulk.body), br#"{"foo":["1.0.0"]}"#);

    // The upstream's 4xx is relayed as it is.
    let response = client()
        .post(down.url("/-/npm/v1/security/audits/quick"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .expect("quick audit");
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(
        response.json::<Value>().unwrap_or(Value::Null)["error"],
        "quick is gone"
    );

    // The upstream gone: a 502 that says so.
    fake.stop();
    let response = client()
        .post(down.url("/-/npm/v1/security/advisories/bulk"))
        .header("content-encoding", "gzip")
        .body(sent)
        .send()
        .expect("audit");
    assert_eq!(response.status().as_u16(), 502);
    let body: Value = response.json().unwrap_or(Value::Null);
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("upstream"),
        "{body}"
    );
}

#[test]
fn npm_audit_works_through_the_forwarded_endpoint() {
    let fake = FakeHttp::start(|request| match request.path.as_str() {
        "/-/npm/v1/security/advisories/bulk" => Canned::new(200, "application/json", "{}"),
        _ => Canned::not_found(),
    });
    let upstream = upstream_of(&fake.base);
    let down = TestRegistry::start_with(move |config| config.upstreams = vec![upstream]);
    let token = down.user_with_token("alice");
    assert_eq!(publish(&down, &token, "audited-dep", "1.0.0"), 201);
    let npm = Npm::new(&down).with_token(&token);
    let project = write_package(&npm.dir("project"), "project", "1.0.0", json!({}));
    npm.ok(&project, &["install", "audited-dep"]);
    let out = npm.ok(&project, &["audit"]);
    assert!(out.contains("found 0 vulnerabilities"), "{out}");
    let bulk = fake
        .requests()
        .into_iter()
        .find(|r| r.path == "/-/npm/v1/security/advisories/bulk")
        .expect("npm audit was forwarded");
    assert_eq!(bulk.header("content-encoding"), Some("gzip"));
    let sent: Value = serde_json::from_slice(&gunzip(&bulk.body)).unwrap_or(Value::Null);
    assert_eq!(sent, json!({ "audited-dep": ["1.0.0"] }));
}

#[test]
fn an_audit_redirected_to_another_host_is_not_followed() {
    let fake = FakeHttp::start(|_| Canned::redirect("http://127.0.0.2:9/elsewhere"));
    let upstream = upstream_of(&fake.base);
    let down = TestRegistry::start_with(move |config| config.upstreams = vec![upstream]);
    let response = client()
        .post(down.url("/-/npm/v1/security/advisories/bulk"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .expect("audit");
    assert_eq!(response.status().as_u16(), 502);
    let body: Value = response.json().unwrap_or(Value::Null);
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("redirect to another host"),
        "{body}"
    );
    assert_eq!(fake.requests().len(), 1, "asked once, not followed");
}
