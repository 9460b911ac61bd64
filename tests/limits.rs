//! The configurable limits: each one, set small, refuses what exceeds it with its status and a
//! reason naming the setting, and a refused request stores nothing.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use registry_core::accounts::cidr::Cidr;
use reqwest::blocking::Response;
use reqwest::header;
use serde_json::{json, Value};

/// The `error` of a JSON error answer with `status` (which `reason` repeats).
fn error_of(response: Response, status: u16) -> String {
    let actual = response.status().as_u16();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = response.text().expect("error body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    assert!(
        content_type.starts_with("application/json"),
        "error bodies are JSON, got {content_type:?}: {text}"
    );
    let body: Value = serde_json::from_str(&text).expect("JSON error body");
    assert_eq!(body["error"], body["reason"], "{text}");
    body["error"].as_str().unwrap_or_default().to_string()
}

fn put(reg: &TestRegistry, token: &str, name: &str, body: &Value) -> Response {
    client()
        .put(reg.url(&format!("/{}", escaped(name))))
        .bearer_auth(token)
        .json(body)
        .send()
        .expect("PUT")
}

fn get_status(reg: &TestRegistry, path: &str) -> u16 {
    client()
        .get(reg.url(path))
        .send()
        .expect("GET")
        .status()
        .as_u16()
}

/// The version numbers in `name`'s packument (none if it does not exist).
fn stored_versions(reg: &TestRegistry, name: &str) -> Vec<String> {
    let response = client()
        .get(reg.url(&format!("/{}", escaped(name))))
        .send()
        .expect("GET packument");
    if response.status().as_u16() == 404 {
        return Vec::new();
    }
    let doc: Value = response.json().expect("packument JSON");
    doc["versions"]
        .as_object()
        .map(|v| v.keys().cloned().collect())
        .unwrap_or_default()
}

/// Files in the blob store: a refused publish must not have written a tarball.
fn blob_count(reg: &TestRegistry) -> usize {
    fn count(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| {
                        let path = e.path();
                        if path.is_dir() {
                            count(&path)
                        } else {
                            1
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    count(&reg.registry.config.blobs_dir())
}

/// A publish document carrying every one of `versions` of `name`, each with its tarball
/// under npm's attachment key; `latest` is the last.
fn multi_version_body(name: &str, versions: &[&str]) -> Value {
    let mut body = json!(null);
    for version in versions {
        let tgz = package_tarball(name, version);
        let one = publish_body(name, version, &tgz);
        if body.is_null() {
            body = one;
            continue;
        }
        body["versions"][*version] = one["versions"][*version].clone();
        let key = format!("{name}-{version}.tgz");
        body["_attachments"][&key] = one["_attachments"][&key].clone();
    }
    body["dist-tags"] = json!({ "latest": versions.last() });
    body
}

#[test]
fn a_body_nested_deeper_than_max_json_depth_is_400_and_stores_nothing() {
    let reg = TestRegistry::start_with(|c| c.max_json_depth = 8);
    let token = reg.user_with_token("alice");
    let tgz = package_tarball("deep", "1.0.0");
    let mut body = publish_body("deep", "1.0.0", &tgz);
    // body → versions → 1.0.0 → config → a → b → c → d → e: nine levels of objects.
    body["versions"]["1.0.0"]["config"] = json!({ "a": { "b": { "c": { "d": { "e": {} } } } } });
    let error = error_of(put(&reg, &token, "deep", &body), 400);
    assert!(error.contains("max_json_depth"), "{error}");
    assert!(error.contains("8 levels"), "{error}");
    assert_eq!(get_status(&reg, "/deep"), 404);
    assert_eq!(blob_count(&reg), 0);

    // Eight levels are allowed: the limit is not off by one.
    body["versions"]["1.0.0"]["config"] = json!({ "a": { "b": { "c": { "d": {} } } } });
    assert_eq!(put(&reg, &token, "deep", &body).status().as_u16(), 201);
    assert_eq!(stored_versions(&reg, "deep"), ["1.0.0"]);
}

#[test]
fn a_tarball_over_max_attachment_bytes_is_413_and_stores_nothing() {
    let reg = TestRegistry::start_with(|c| c.max_attachment_bytes = 2048);
    let token = reg.user_with_token("alice");
    // Bytes that gzip cannot shrink below the limit.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let noise: Vec<u8> = (0..8192)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect();
    let manifest = json!({ "name": "big", "version": "1.0.0" }).to_string();
    let tgz = tarball(&[
        ("package/package.json", manifest.as_bytes()),
        ("package/noise.bin", &noise),
    ]);
    assert!(tgz.len() > 2048, "the test tarball must exceed the limit");
    let error = error_of(
        put(&reg, &token, "big", &publish_body("big", "1.0.0", &tgz)),
        413,
    );
    assert!(error.contains("max_attachment_bytes"), "{error}");
    assert!(error.contains("big@1.0.0"), "{error}");
    assert_eq!(get_status(&reg, "/big"), 404);
    assert_eq!(blob_count(&reg), 0);

    // A small tarball passes the same registry.
    let small = package_tarball("big", "1.0.0");
    assert!(small.len() <= 2048);
    let response = put(&reg, &token, "big", &publish_body("big", "1.0.0", &small));
    assert_eq!(response.status().as_u16(), 201);
}

#[test]
fn a_new_package_name_over_max_package_name_length_is_400_but_old_packages_keep_theirs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let long = "a-name-of-twenty-five-ch";
    {
        let reg = TestRegistry::start_with(|c| c.data_dir = data_dir.clone());
        let token = reg.user_with_token("alice");
        assert_eq!(publish(&reg, &token, long, "1.0.0"), 201);
        reg.stop();
    }
    let reg = TestRegistry::start_with(|c| {
        c.data_dir = data_dir.clone();
        c.max_package_name_length = 10;
    });
    let token = reg.token("alice", Default::default());
    let tgz = package_tarball("eleven-char", "1.0.0");
    let error = error_of(
        put(
            &reg,
            &token,
            "eleven-char",
            &publish_body("eleven-char", "1.0.0", &tgz),
        ),
        400,
    );
    assert!(error.contains("max_package_name_length"), "{error}");
    assert_eq!(get_status(&reg, "/eleven-char"), 404);
    assert_eq!(publish(&reg, &token, "ten-chars0", "1.0.0"), 201);
    // A package from before the limit was lowered still gets new versions.
    assert_eq!(publish(&reg, &token, long, "1.0.1"), 201);
    assert_eq!(stored_versions(&reg, long), ["1.0.0", "1.0.1"]);
}

#[test]
fn npms_one_version_per_publish_is_the_default_and_more_is_400() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    let body = multi_version_body("pair", &["1.0.0", "1.1.0"]);
    let error = error_of(put(&reg, &token, "pair", &body), 400);
    assert!(error.contains("max_versions_per_publish"), "{error}");
    assert_eq!(get_status(&reg, "/pair"), 404);
    assert_eq!(blob_count(&reg), 0);
}

#[test]
fn several_versions_are_stored_together_when_max_versions_per_publish_allows() {
    let reg = TestRegistry::start_with(|c| c.max_versions_per_publish = 2);
    let token = reg.user_with_token("alice");
    let body = multi_version_body("pair", &["1.0.0", "1.1.0"]);
    assert_eq!(put(&reg, &token, "pair", &body).status().as_u16(), 201);
    assert_eq!(stored_versions(&reg, "pair"), ["1.0.0", "1.1.0"]);
    let doc: Value = client()
        .get(reg.url("/pair"))
        .send()
        .expect("GET")
        .json()
        .expect("JSON");
    assert_eq!(doc["dist-tags"]["latest"], "1.1.0");
    for version in ["1.0.0", "1.1.0"] {
        let bytes = client()
            .get(reg.url(&format!("/pair/-/pair-{version}.tgz")))
            .send()
            .expect("GET tarball")
            .bytes()
            .expect("tarball bytes");
        assert_eq!(bytes.as_ref(), package_tarball("pair", version).as_slice());
    }
    // npm retries on a lost answer: the identical document again is a success.
    assert_eq!(put(&reg, &token, "pair", &body).status().as_u16(), 200);

    // Three versions are one too many: refused whole.
    let three = multi_version_body("trio", &["1.0.0", "1.1.0", "1.2.0"]);
    let error = error_of(put(&reg, &token, "trio", &three), 400);
    assert!(error.contains("at most 2"), "{error}");
    assert_eq!(get_status(&reg, "/trio"), 404);
}

#[test]
fn a_multi_version_publish_with_one_bad_version_stores_none_of_them() {
    let reg = TestRegistry::start_with(|c| c.max_versions_per_publish = 3);
    let token = reg.user_with_token("alice");
    let blobs_before = blob_count(&reg);

    // The second tarball is corrupt: nothing of the document is kept.
    let mut body = multi_version_body("solo", &["1.0.0", "1.1.0"]);
    body["versions"]["1.1.0"]["dist"]["shasum"] = json!("0".repeat(40));
    body["versions"]["1.1.0"]["dist"]
        .as_object_mut()
        .map(|d| d.remove("integrity"));
    error_of(put(&reg, &token, "solo", &body), 400);
    assert_eq!(get_status(&reg, "/solo"), 404);
    assert_eq!(blob_count(&reg), blobs_before);

    // A version without its own attachment is refused too.
    let mut body = multi_version_body("solo", &["1.0.0", "1.1.0"]);
    let attachments = body["_attachments"].as_object_mut().expect("attachments");
    let tarball = attachments
        .remove("solo-1.1.0.tgz")
        .expect("second tarball");
    attachments.insert("something-else.tgz".into(), tarball);
    let error = error_of(put(&reg, &token, "solo", &body), 400);
    assert!(error.contains("solo-1.1.0.tgz"), "{error}");
    assert_eq!(get_status(&reg, "/solo"), 404);

    // Reusing a published number along with new ones: refused, and the new ones not stored.
    assert_eq!(publish(&reg, &token, "solo", "1.0.0"), 201);
    let body = multi_version_body("solo", &["1.0.0", "2.0.0", "2.1.0"]);
    let error = error_of(put(&reg, &token, "solo", &body), 403);
    assert!(error.contains("1.0.0"), "{error}");
    assert_eq!(stored_versions(&reg, "solo"), ["1.0.0"]);
}

#[test]
fn headers_over_max_header_bytes_get_431_with_a_reason_and_other_connections_go_on() {
    let reg = TestRegistry::start_with(|c| c.max_header_bytes = 4096);
    let kept = client();
    assert_eq!(
        kept.get(reg.url("/-/ping")).send().expect("ping").status(),
        200
    );

    // Just over the limit: our answer, with a reason.
    let response = client()
        .get(reg.url("/-/ping"))
        .header("x-padding", "p".repeat(5000))
        .send()
        .expect("oversized request");
    let error = error_of(response, 431);
    assert!(error.contains("max_header_bytes"), "{error}");

    // Far over it: hyper refuses before buffering it all, on that connection only, and its
    // refusal carries a reason too.
    let huge = format!(
        "GET /-/ping HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n",
        "p".repeat(100_000)
    );
    let (status, reason) = raw_exchange(&reg, huge.as_bytes());
    assert_eq!(status, 431);
    assert!(reason.contains("max_header_bytes"), "{reason}");

    // The connection opened before, and new ones, are served as usual.
    assert_eq!(
        kept.get(reg.url("/-/ping")).send().expect("ping").status(),
        200
    );
    assert_eq!(get_status(&reg, "/-/ping"), 200);
}

/// A plain TCP connection to the registry, with a bounded read.
fn raw_connection(reg: &TestRegistry) -> TcpStream {
    let stream = TcpStream::connect(reg.base.trim_start_matches("http://")).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream
}

/// Sends `request` on a new connection and reads the answer to the end: hyper's own refusals
/// close the connection. Answers the status and the JSON body's reason.
fn raw_exchange(reg: &TestRegistry, request: &[u8]) -> (u16, String) {
    let mut stream = raw_connection(reg);
    // The server may close before reading everything; the answer is what matters.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.take(64 * 1024).read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").expect("a whole head");
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {answer}"));
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{answer}"
    );
    let error: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {answer}"));
    assert_eq!(error["error"], error["reason"], "{answer}");
    let reason = error["reason"].as_str().expect("a reason").to_string();
    (status, reason)
}

#[test]
fn heads_hyper_cannot_parse_get_a_json_reason_too() {
    let reg = TestRegistry::start();
    let too_many = format!(
        "GET /-/ping HTTP/1.1\r\nHost: x\r\n{}\r\n",
        (0..150)
            .map(|i| format!("x-h{i}: 1\r\n"))
            .collect::<String>()
    );
    let (status, reason) = raw_exchange(&reg, too_many.as_bytes());
    assert_eq!(status, 431);
    assert!(reason.contains("100 header lines"), "{reason}");
    for malformed in [
        "GET /a b c\r\n\r\n",
        "GET / HTTP/1.1\r\nho st: x\r\n\r\n",
        "\x01\x02 / HTTP/1.1\r\n\r\n",
    ] {
        let (status, reason) = raw_exchange(&reg, malformed.as_bytes());
        assert_eq!(status, 400, "{malformed:?}");
        assert!(reason.contains("not valid HTTP/1.1"), "{reason}");
    }
    // After a good request on the same connection, a bad one is refused the same way.
    let mut stream = raw_connection(&reg);
    stream
        .write_all(b"GET /-/ping HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nho st: x\r\n\r\n")
        .expect("two requests");
    let mut answer = String::new();
    let _ = stream.take(64 * 1024).read_to_string(&mut answer);
    let (first, second) = answer
        .split_once("{}")
        .unwrap_or_else(|| panic!("no ping answer: {answer}"));
    assert!(first.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(second.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        second.ends_with("\"reason\":\"the request line or a header is not valid HTTP/1.1\"}"),
        "{answer}"
    );
    assert_eq!(get_status(&reg, "/-/ping"), 200);
}

#[test]
fn auth_endpoints_allow_a_burst_per_address_then_answer_429_with_retry_after() {
    let reg = TestRegistry::start_with(|c| {
        c.auth_requests_per_second = 1;
        c.auth_burst = 3;
        // Lets the test speak for several addresses through X-Forwarded-For.
        c.trusted_proxies = vec![Cidr::parse("127.0.0.1/32").expect("cidr")];
    });
    reg.add_user("alice", "alice-password");
    // npm's web login endpoint is limited too, and answers without hashing a password (it only
    // opens a pending login): the
    // burst is spent there so that the test does not depend on how fast PBKDF2 runs.
    let web_login = |from: &str| {
        client()
            .post(reg.url("/-/v1/login"))
            .header("x-forwarded-for", from)
            .send()
            .expect("web login")
    };
    let login = |from: &str| {
        client()
            .put(reg.url("/-/user/org.couchdb.user:alice"))
            .header("x-forwarded-for", from)
            .json(&json!({ "name": "alice", "password": "alice-password" }))
            .send()
            .expect("login")
    };
    for _ in 0..3 {
        assert_eq!(web_login("10.0.0.1").status().as_u16(), 200);
    }
    let refused = web_login("10.0.0.1");
    let retry_after: u64 = refused
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let error = error_of(refused, 429);
    assert!(error.contains("auth_requests_per_second"), "{error}");

    // The other password endpoints share the address's bucket.
    error_of(login("10.0.0.1"), 429);
    let token = reg.token("alice", Default::default());
    let create = client()
        .post(reg.url("/-/npm/v1/tokens"))
        .bearer_auth(&token)
        .header("x-forwarded-for", "10.0.0.1")
        .json(&json!({ "password": "alice-password" }))
        .send()
        .expect("token create");
    error_of(create, 429);

    // Another address, and the other endpoints, are not held back.
    assert_eq!(login("10.0.0.2").status().as_u16(), 201);
    let whoami = client()
        .get(reg.url("/-/whoami"))
        .bearer_auth(&token)
        .header("x-forwarded-for", "10.0.0.1")
        .send()
        .expect("whoami");
    assert_eq!(whoami.status().as_u16(), 200);
}
