//! The npm wire protocol over HTTP, against the daemon started in-process: registry metadata,
//! accounts and tokens, packuments, tarballs and publish validation. Every refusal must be a
//! JSON `{"error", "reason"}` body with the right 4xx status, never a 5xx.

mod common;

use std::io::{Read, Write};

use common::*;
use registry_core::accounts::tokens::TokenOptions;
use registry_core::config::Registration;
use reqwest::blocking::Response;
use reqwest::header::{self, HeaderMap};
use serde_json::{json, Value};

const CORGI: &str = "application/vnd.npm.install-v1+json";
const CORGI_ACCEPT: &str =
    "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Asserts an error answer: exactly `status`, a JSON body with a non-empty string `error` and a
/// string `reason`. Returns the body.
fn expect_error(response: Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let content_type = header_str(response.headers(), header::CONTENT_TYPE);
    let text = response.text().expect("error body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    error_body(&text, content_type.as_deref())
}

fn error_body(text: &str, content_type: Option<&str>) -> Value {
    assert!(
        content_type.is_some_and(|t| t.starts_with("application/json")),
        "error bodies are JSON, got Content-Type {content_type:?}: {text}"
    );
    let body: Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("error body is not JSON ({e}): {text}"));
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        !error.is_empty(),
        "error body without an `error` string: {text}"
    );
    assert!(
        body["reason"].is_string(),
        "error body without a `reason` string: {text}"
    );
    body
}

/// The `error` sentence of an error body.
fn error_text(body: &Value) -> &str {
    body["error"].as_str().expect("error is a string")
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn json_of(response: Response) -> Value {
    let status = response.status();
    let text = response.text().expect("response body");
    assert!(
        status.is_success(),
        "expected success, got {status}: {text}"
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn get(reg: &TestRegistry, path: &str) -> Response {
    client().get(reg.url(path)).send().expect("GET")
}

fn get_json(reg: &TestRegistry, path: &str) -> Value {
    json_of(get(reg, path))
}

fn put_json(reg: &TestRegistry, path: &str, token: Option<&str>, body: &Value) -> Response {
    let mut request = client().put(reg.url(path)).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().expect("PUT")
}

/// `PUT /:name` with a publish document.
fn put_publish(reg: &TestRegistry, token: Option<&str>, name: &str, body: &Value) -> Response {
    put_json(reg, &format!("/{}", escaped(name)), token, body)
}

fn get_bytes(reg: &TestRegistry, path: &str) -> Vec<u8> {
    let response = get(reg, path);
    assert_eq!(response.status().as_u16(), 200, "GET {path}");
    response.bytes().expect("body").to_vec()
}

/// `PUT /-/user/org.couchdb.user:NAME` as `npm login` (no email) or `npm adduser` (email).
fn couch_login(reg: &TestRegistry, name: &str, password: &str, email: Option<&str>) -> Response {
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
    put_json(
        reg,
        &format!("/-/user/org.couchdb.user:{name}"),
        None,
        &body,
    )
}

fn whoami(reg: &TestRegistry, token: &str) -> Response {
    client()
        .get(reg.url("/-/whoami"))
        .bearer_auth(token)
        .send()
        .expect("whoami")
}

/// A registry where alice (token returned) has published `pkg@1.0.0`; the tarball is returned
/// so that tests can check it is still served unchanged after a refused request.
fn with_published_pkg() -> (TestRegistry, String, Vec<u8>) {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    let tgz = package_tarball("pkg", "1.0.0");
    let response = put_publish(
        &reg,
        Some(&token),
        "pkg",
        &publish_body("pkg", "1.0.0", &tgz),
    );
    assert_eq!(response.status().as_u16(), 201, "first publish of pkg");
    (reg, token, tgz)
}

/// The stored `pkg` is exactly what `with_published_pkg` published: one version, `latest`
/// on it, the same tarball served, the same data in the abbreviated document, and no other
/// tarball in the blob store.
fn assert_pkg_intact(reg: &TestRegistry, tgz: &[u8]) {
    let doc = get_json(reg, "/pkg");
    let versions: Vec<&String> = doc["versions"]
        .as_object()
        .expect("versions object")
        .keys()
        .collect();
    assert_eq!(
        versions,
        ["1.0.0"],
        "pkg still has exactly its first version"
    );
    assert_eq!(doc["dist-tags"], json!({ "latest": "1.0.0" }));
    assert_eq!(doc["versions"]["1.0.0"]["dist"]["shasum"], shasum(tgz));
    assert_eq!(
        doc["versions"]["1.0.0"]["dist"]["integrity"],
        integrity(tgz)
    );
    assert_eq!(doc["maintainers"][0]["name"], "alice");
    assert_eq!(
        get_bytes(reg, "/pkg/-/pkg-1.0.0.tgz"),
        tgz,
        "the original tarball is served"
    );
    let corgi = json_of(
        client()
            .get(reg.url("/pkg"))
            .header(header::ACCEPT, CORGI_ACCEPT)
            .send()
            .expect("corgi GET"),
    );
    assert_eq!(corgi["dist-tags"]["latest"], "1.0.0");
    assert_eq!(corgi["versions"].as_object().map(|v| v.len()), Some(1));
    assert_eq!(
        stored_files(reg),
        1,
        "no tarball was stored besides pkg@1.0.0's"
    );
}

/// How many files the blob store holds (temporary files included): a refused publish must
/// not leave its tarball behind.
fn stored_files(reg: &TestRegistry) -> usize {
    fn count(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|entry| match entry.file_type() {
                        Ok(kind) if kind.is_dir() => count(&entry.path()),
                        Ok(_) => 1,
                        Err(_) => 0,
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    count(&reg.data_dir.path().join("data").join("blobs"))
}

/// A tarball of `package/package.json` for `name@version` plus `package/index.js` with
/// `index` as its content.
fn tarball_with_index(name: &str, version: &str, index: &[u8]) -> Vec<u8> {
    let manifest = json!({ "name": name, "version": version }).to_string();
    tarball(&[
        ("package/package.json", manifest.as_bytes()),
        ("package/index.js", index),
    ])
}

/// A raw HTTP/1.1 exchange, for request targets that an URL library would normalise
/// (`/..`, `/%2e%2e`). Returns status, headers (lowercased names) and body.
fn raw_request(
    reg: &TestRegistry,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let length = body.len().to_string();
    let mut all_headers = vec![("Content-Length", length.as_str())];
    all_headers.extend_from_slice(headers);
    let mut request = request_head(reg, method, target, &all_headers);
    request.extend_from_slice(body);
    raw_exchange(reg, &request)
}

/// Like [`raw_request`], with the body sent in chunked transfer encoding (no Content-Length).
fn raw_chunked_request(
    reg: &TestRegistry,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    chunks: &[&[u8]],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut all_headers = vec![("Transfer-Encoding", "chunked")];
    all_headers.extend_from_slice(headers);
    let mut request = request_head(reg, method, target, &all_headers);
    for chunk in chunks {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    raw_exchange(reg, &request)
}

fn request_head(
    reg: &TestRegistry,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> Vec<u8> {
    let host = reg.base.trim_start_matches("http://");
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// Sends `request` in one write and reads the answer until the server closes the connection.
/// A server may answer (413) before reading the whole body and then reset the connection;
/// what arrived before the reset is the answer.
fn raw_exchange(reg: &TestRegistry, request: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut stream =
        std::net::TcpStream::connect(reg.base.trim_start_matches("http://")).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .expect("read timeout");
    if let Err(e) = stream.write_all(request) {
        assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ),
            "write request: {e}"
        );
    }
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("read response: {e}"),
        }
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of response head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    (status, headers, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_text = String::from_utf8_lossy(&data[..line_end]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .expect("chunk size");
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

// ---------------------------------------------------------------------------------------------
// Registry-wide endpoints
// ---------------------------------------------------------------------------------------------

#[test]
fn root_describes_the_registry_and_counts_grow_after_a_publish() {
    let reg = TestRegistry::start();
    let before = get_json(&reg, "/");
    assert!(before["db_name"].is_string(), "{before}");
    assert_eq!(before["doc_count"], 0, "{before}");
    let seq_before = before["update_seq"]
        .as_u64()
        .expect("update_seq is a number");

    let token = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &token, "hello", "1.0.0"), 201);
    let after = get_json(&reg, "/");
    assert_eq!(after["doc_count"], 1, "{after}");
    let seq_after = after["update_seq"]
        .as_u64()
        .expect("update_seq is a number");
    assert!(
        seq_after > seq_before,
        "update_seq grows: {seq_before} → {seq_after}"
    );

    assert_eq!(publish(&reg, &token, "hello", "1.0.1"), 201);
    let again = get_json(&reg, "/");
    assert_eq!(again["doc_count"], 1, "a new version is not a new document");
    assert!(again["update_seq"].as_u64().expect("update_seq") > seq_after);
}

#[test]
fn ping_answers_200_json() {
    let reg = TestRegistry::start();
    let response = get(&reg, "/-/ping");
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        header_str(response.headers(), header::CONTENT_TYPE)
            .is_some_and(|t| t.starts_with("application/json")),
        "ping answers JSON"
    );
    assert!(json_of(response).is_object());
}

#[test]
fn whoami_with_a_token_names_its_user() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    let body = json_of(whoami(&reg, &token));
    assert_eq!(body["username"], "alice");
}

#[test]
fn whoami_without_credentials_is_401_with_a_bearer_challenge() {
    let reg = TestRegistry::start();
    let response = get(&reg, "/-/whoami");
    let challenge = header_str(response.headers(), header::WWW_AUTHENTICATE).unwrap_or_default();
    expect_error(response, 401);
    assert!(
        challenge.contains("Bearer"),
        "WWW-Authenticate: {challenge:?}"
    );
}

#[test]
fn whoami_with_a_bogus_token_is_401_with_a_bearer_challenge() {
    let reg = TestRegistry::start();
    let response = whoami(&reg, "npm_thisIsNotATokenThisRegistryIssued000");
    let challenge = header_str(response.headers(), header::WWW_AUTHENTICATE).unwrap_or_default();
    expect_error(response, 401);
    assert!(
        challenge.contains("Bearer"),
        "WWW-Authenticate: {challenge:?}"
    );
}

#[test]
fn whoami_accepts_basic_credentials() {
    let reg = TestRegistry::start();
    reg.add_user("alice", "alice-password");
    let response = client()
        .get(reg.url("/-/whoami"))
        .basic_auth("alice", Some("alice-password"))
        .send()
        .expect("whoami");
    assert_eq!(json_of(response)["username"], "alice");
}

#[test]
fn whoami_with_a_wrong_basic_password_is_401() {
    let reg = TestRegistry::start();
    reg.add_user("alice", "alice-password");
    let response = client()
        .get(reg.url("/-/whoami"))
        .basic_auth("alice", Some("not-the-password"))
        .send()
        .expect("whoami");
    expect_error(response, 401);
}

#[test]
fn unknown_endpoints_are_404_json() {
    let reg = TestRegistry::start();
    expect_error(get(&reg, "/-/no-such-endpoint"), 404);
}

// ---------------------------------------------------------------------------------------------
// Login, registration, logout
// ---------------------------------------------------------------------------------------------

#[test]
fn login_with_the_right_password_is_201_with_a_working_token() {
    let reg = TestRegistry::start();
    reg.add_user("alice", "alice-password");
    let response = couch_login(&reg, "alice", "alice-password", None);
    assert_eq!(response.status().as_u16(), 201);
    let body = json_of(response);
    let token = body["token"].as_str().expect("login answers a token");
    assert!(!token.is_empty());
    assert_eq!(json_of(whoami(&reg, token))["username"], "alice");
}

#[test]
fn login_with_a_wrong_password_is_401_with_a_basic_challenge() {
    let reg = TestRegistry::start();
    reg.add_user("alice", "alice-password");
    let response = couch_login(&reg, "alice", "wrong-password", None);
    let challenge = header_str(response.headers(), header::WWW_AUTHENTICATE).unwrap_or_default();
    let body = expect_error(response, 401);
    assert!(
        challenge.contains("Basic"),
        "WWW-Authenticate: {challenge:?}"
    );
    assert!(body.get("token").is_none());
}

#[test]
fn login_of_an_unknown_user_is_401() {
    let reg = TestRegistry::start();
    let response = couch_login(&reg, "nobody", "some-password", None);
    let challenge = header_str(response.headers(), header::WWW_AUTHENTICATE).unwrap_or_default();
    expect_error(response, 401);
    assert!(
        challenge.contains("Basic"),
        "WWW-Authenticate: {challenge:?}"
    );
}

#[test]
fn login_ignores_a_stale_token_in_the_authorization_header() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    let revoked = client()
        .delete(reg.url(&format!("/-/user/token/{token}")))
        .send()
        .expect("logout");
    assert_eq!(revoked.status().as_u16(), 200);
    // npm sends whatever token it still has when logging in again.
    let response = client()
        .put(reg.url("/-/user/org.couchdb.user:alice"))
        .bearer_auth(&token)
        .json(&json!({ "name": "alice", "password": "alice-password" }))
        .send()
        .expect("login");
    assert_eq!(response.status().as_u16(), 201);
    let fresh = json_of(response)["token"]
        .as_str()
        .expect("a new token")
        .to_string();
    assert_eq!(json_of(whoami(&reg, &fresh))["username"], "alice");
}

#[test]
fn adduser_when_registration_is_closed_is_403_naming_registry_user_add() {
    let reg = TestRegistry::start();
    let body = expect_error(
        couch_login(
            &reg,
            "newbie",
            "newbie-password",
            Some("newbie@example.com"),
        ),
        403,
    );
    assert!(
        error_text(&body).contains("registry user add"),
        "the error tells how to get an account: {body}"
    );
    // and nothing was created
    expect_error(couch_login(&reg, "newbie", "newbie-password", None), 401);
}

#[test]
fn adduser_when_registration_is_open_creates_a_user_who_can_log_in() {
    let reg = TestRegistry::start_with(|config| config.registration = Registration::Open);
    let response = couch_login(
        &reg,
        "newbie",
        "newbie-password",
        Some("newbie@example.com"),
    );
    assert_eq!(response.status().as_u16(), 201);
    let created = json_of(response);
    let token = created["token"].as_str().expect("adduser answers a token");
    assert_eq!(json_of(whoami(&reg, token))["username"], "newbie");

    let response = couch_login(&reg, "newbie", "newbie-password", None);
    assert_eq!(response.status().as_u16(), 201);
    let logged_in = json_of(response);
    let second = logged_in["token"].as_str().expect("login answers a token");
    assert_ne!(second, token, "each login issues a new token");
    assert_eq!(json_of(whoami(&reg, second))["username"], "newbie");
}

#[test]
fn login_with_a_name_in_the_body_different_from_the_url_is_400() {
    let reg = TestRegistry::start();
    reg.add_user("alice", "alice-password");
    let body = json!({
        "_id": "org.couchdb.user:mallory",
        "name": "mallory",
        "password": "alice-password",
    });
    expect_error(
        put_json(&reg, "/-/user/org.couchdb.user:alice", None, &body),
        400,
    );
}

#[test]
fn login_with_malformed_json_is_400() {
    let reg = TestRegistry::start();
    let response = client()
        .put(reg.url("/-/user/org.couchdb.user:alice"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(r#"{"name": "alice", "password": "#)
        .send()
        .expect("PUT");
    expect_error(response, 400);
}

#[test]
fn logout_revokes_the_token() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    assert_eq!(whoami(&reg, &token).status().as_u16(), 200);
    let response = client()
        .delete(reg.url(&format!("/-/user/token/{token}")))
        .bearer_auth(&token)
        .send()
        .expect("logout");
    assert_eq!(response.status().as_u16(), 200);
    let response = whoami(&reg, &token);
    let challenge = header_str(response.headers(), header::WWW_AUTHENTICATE).unwrap_or_default();
    expect_error(response, 401);
    assert!(challenge.contains("Bearer"));
}

#[test]
fn logout_of_a_revoked_or_unknown_token_still_succeeds() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    for _ in 0..2 {
        let response = client()
            .delete(reg.url(&format!("/-/user/token/{token}")))
            .send()
            .expect("logout");
        assert_eq!(response.status().as_u16(), 200);
    }
    let response = client()
        .delete(reg.url("/-/user/token/npm_neverIssuedByThisRegistry00000000000"))
        .send()
        .expect("logout");
    assert_eq!(response.status().as_u16(), 200);
}

#[test]
fn web_login_answers_login_and_done_urls() {
    let reg = TestRegistry::start();
    let response = client()
        .post(reg.url("/-/v1/login"))
        .json(&json!({}))
        .send()
        .expect("POST");
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().expect("json");
    // npm refuses anything but two http(s) URLs ("Invalid response from web login endpoint").
    for key in ["loginUrl", "doneUrl"] {
        let url = body[key].as_str().expect(key);
        assert!(url.starts_with(&reg.base), "{key}: {url}");
    }
}

// ---------------------------------------------------------------------------------------------
// Packuments
// ---------------------------------------------------------------------------------------------

#[test]
fn full_packument_has_what_npm_reads() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &token, "hello", "1.0.0"), 201);
    let response = get(&reg, "/hello");
    assert!(header_str(response.headers(), header::CONTENT_TYPE)
        .is_some_and(|t| t.starts_with("application/json")));
    let doc = json_of(response);
    assert_eq!(doc["_id"], "hello");
    let rev = doc["_rev"].as_str().expect("_rev");
    assert!(
        !rev.is_empty() && rev.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
        "_rev is URL-safe: {rev}"
    );
    assert_eq!(doc["name"], "hello");
    assert_eq!(doc["dist-tags"]["latest"], "1.0.0");
    assert_eq!(doc["versions"]["1.0.0"]["name"], "hello");
    assert_eq!(doc["versions"]["1.0.0"]["version"], "1.0.0");
    for key in ["created", "modified", "1.0.0"] {
        assert!(doc["time"][key].is_string(), "time.{key}: {doc}");
    }
    assert_eq!(doc["maintainers"][0]["name"], "alice");
    assert_eq!(doc["versions"]["1.0.0"]["_npmUser"]["name"], "alice");
    assert_eq!(doc["readme"], "# hello\n");
}

#[test]
fn abbreviated_packument_on_the_corgi_accept_header() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &token, "hello", "1.0.0"), 201);
    let response = client()
        .get(reg.url("/hello"))
        .header(header::ACCEPT, CORGI_ACCEPT)
        .send()
        .expect("GET");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        header_str(response.headers(), header::CONTENT_TYPE).as_deref(),
        Some(CORGI)
    );
    let doc = json_of(response);
    assert_eq!(doc["name"], "hello");
    assert!(doc["modified"].is_string(), "{doc}");
    assert!(doc["time"]["1.0.0"].is_string(), "{doc}");
    assert_eq!(doc["dist-tags"]["latest"], "1.0.0");
    assert!(doc.get("readme").is_none(), "no readme in corgis");
    assert!(doc.get("_rev").is_none(), "no _rev in corgis");
    let version = &doc["versions"]["1.0.0"];
    assert!(version["dist"]["tarball"].is_string());
    assert!(version.get("readme").is_none() && version.get("description").is_none());
}

#[test]
fn full_and_abbreviated_documents_have_different_etags() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &token, "hello", "1.0.0"), 201);
    let full = get(&reg, "/hello");
    let corgi = client()
        .get(reg.url("/hello"))
        .header(header::ACCEPT, CORGI_ACCEPT)
        .send()
        .expect("GET");
    let full_etag = header_str(full.headers(), header::ETAG).expect("full ETag");
    let corgi_etag = header_str(corgi.headers(), header::ETAG).expect("corgi ETag");
    assert_ne!(full_etag, corgi_etag);
    // The full ETag does not validate the abbreviated document.
    let response = client()
        .get(reg.url("/hello"))
        .header(header::ACCEPT, CORGI_ACCEPT)
        .header(header::IF_NONE_MATCH, &full_etag)
        .send()
        .expect("GET");
    assert_eq!(response.status().as_u16(), 200);
}

#[test]
fn if_none_match_with_the_current_etag_is_304() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &token, "hello", "1.0.0"), 201);
    for accept in ["application/json", CORGI_ACCEPT] {
        let first = client()
            .get(reg.url("/hello"))
            .header(header::ACCEPT, accept)
            .send()
            .expect("GET");
        let etag = header_str(first.headers(), header::ETAG).expect("ETag");
        let second = client()
            .get(reg.url("/hello"))
            .header(header::ACCEPT, accept)
            .header(header::IF_NONE_MATCH, &etag)
            .send()
            .expect("GET");
        assert_eq!(second.status().as_u16(), 304, "{accept}");
        assert_eq!(header_str(second.headers(), header::ETAG), Some(etag));
        assert!(second.bytes().expect("body").is_empty());
    }
}

#[test]
fn etag_changes_after_another_publish() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &token, "hello", "1.0.0"), 201);
    let etag_of = |accept: &str| {
        let response = client()
            .get(reg.url("/hello"))
            .header(header::ACCEPT, accept)
            .send()
            .expect("GET");
        header_str(response.headers(), header::ETAG).expect("ETag")
    };
    let full_before = etag_of("application/json");
    let corgi_before = etag_of(CORGI_ACCEPT);
    assert_eq!(publish(&reg, &token, "hello", "1.1.0"), 201);
    assert_ne!(etag_of("application/json"), full_before);
    assert_ne!(etag_of(CORGI_ACCEPT), corgi_before);
    // The old ETag no longer gets a 304: the new version is served.
    let response = client()
        .get(reg.url("/hello"))
        .header(header::IF_NONE_MATCH, &full_before)
        .send()
        .expect("GET");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(json_of(response)["dist-tags"]["latest"], "1.1.0");
}

#[test]
fn packuments_vary_on_accept() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &token, "hello", "1.0.0"), 201);
    for accept in ["application/json", CORGI_ACCEPT] {
        let response = client()
            .get(reg.url("/hello"))
            .header(header::ACCEPT, accept)
            .send()
            .expect("GET");
        let vary = header_str(response.headers(), header::VARY).unwrap_or_default();
        assert!(
            vary.split(',')
                .any(|v| v.trim().eq_ignore_ascii_case("accept")),
            "Vary: {vary:?}"
        );
    }
}

#[test]
fn packuments_are_gzipped_when_asked() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &token, "hello", "1.0.0"), 201);
    let plain = get_bytes(&reg, "/hello");
    let response = client()
        .get(reg.url("/hello"))
        .header(header::ACCEPT_ENCODING, "gzip,deflate")
        .send()
        .expect("GET");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        header_str(response.headers(), header::CONTENT_ENCODING).as_deref(),
        Some("gzip")
    );
    let body = response.bytes().expect("body");
    let inflated = gunzip(&body);
    assert_eq!(inflated, plain, "the gzip'd body is the same document");
    let doc: Value = serde_json::from_slice(&inflated).expect("JSON");
    assert_eq!(doc["name"], "hello");
}

#[test]
fn packuments_are_not_gzipped_unless_asked() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &token, "hello", "1.0.0"), 201);
    for accept_encoding in [None, Some("identity"), Some("gzip;q=0")] {
        let mut request = client().get(reg.url("/hello"));
        if let Some(value) = accept_encoding {
            request = request.header(header::ACCEPT_ENCODING, value);
        }
        let response = request.send().expect("GET");
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(
            header_str(response.headers(), header::CONTENT_ENCODING),
            None,
            "{accept_encoding:?}"
        );
        assert_eq!(json_of(response)["name"], "hello");
    }
}

#[test]
fn head_of_a_packument_is_200_without_a_body() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &token, "hello", "1.0.0"), 201);
    let get_etag = header_str(get(&reg, "/hello").headers(), header::ETAG);
    let response = client().head(reg.url("/hello")).send().expect("HEAD");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(header_str(response.headers(), header::ETAG), get_etag);
    assert!(response.bytes().expect("body").is_empty());
    let missing = client()
        .head(reg.url("/nothing-here"))
        .send()
        .expect("HEAD");
    assert_eq!(missing.status().as_u16(), 404);
}

#[test]
fn write_true_gets_the_full_uncached_document_whatever_the_accept() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &token, "hello", "1.0.0"), 201);
    let response = client()
        .get(reg.url("/hello?write=true"))
        .header(header::ACCEPT, CORGI_ACCEPT)
        .bearer_auth(&token)
        .send()
        .expect("GET");
    assert_eq!(response.status().as_u16(), 200);
    let cache_control = header_str(response.headers(), header::CACHE_CONTROL).unwrap_or_default();
    assert!(
        cache_control.contains("no-store"),
        "Cache-Control: {cache_control:?}"
    );
    let content_type = header_str(response.headers(), header::CONTENT_TYPE).unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let doc = json_of(response);
    assert!(doc["_rev"].is_string(), "the full document: {doc}");
    assert_eq!(doc["readme"], "# hello\n");
}

#[test]
fn scoped_packages_are_reachable_in_every_spelling() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &token, "@s/n", "1.0.0"), 201);
    for path in ["/@s%2fn", "/@s%2Fn", "/@s/n"] {
        let doc = get_json(&reg, path);
        assert_eq!(doc["name"], "@s/n", "{path}");
        assert_eq!(doc["dist-tags"]["latest"], "1.0.0", "{path}");
        assert_eq!(
            doc["versions"]["1.0.0"]["dist"]["tarball"],
            format!("{}/@s/n/-/n-1.0.0.tgz", reg.base),
            "{path}"
        );
    }
}

#[test]
fn version_and_tag_paths_return_the_version_manifest() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &token, "hello", "1.0.0"), 201);
    assert_eq!(publish(&reg, &token, "hello", "1.1.0"), 201);
    let exact = get_json(&reg, "/hello/1.0.0");
    assert_eq!(exact["name"], "hello");
    assert_eq!(exact["version"], "1.0.0");
    assert_eq!(
        exact["dist"]["tarball"],
        format!("{}/hello/-/hello-1.0.0.tgz", reg.base)
    );
    let latest = get_json(&reg, "/hello/latest");
    assert_eq!(latest["version"], "1.1.0");
    // The manifest is the document's own entry, and follows the document when it changes.
    let full = get_json(&reg, "/hello");
    assert_eq!(exact, full["versions"]["1.0.0"]);
    assert_eq!(latest, full["versions"]["1.1.0"]);
    assert_eq!(publish(&reg, &token, "hello", "1.2.0"), 201);
    assert_eq!(get_json(&reg, "/hello/latest")["version"], "1.2.0");
    assert_eq!(get_json(&reg, "/hello/1.0.0"), exact);
    let scoped_tgz = package_tarball("@s/n", "2.0.0");
    assert_eq!(
        put_publish(
            &reg,
            Some(&token),
            "@s/n",
            &publish_body("@s/n", "2.0.0", &scoped_tgz)
        )
        .status()
        .as_u16(),
        201
    );
    assert_eq!(get_json(&reg, "/@s%2fn/2.0.0")["version"], "2.0.0");
    assert_eq!(get_json(&reg, "/@s/n/latest")["version"], "2.0.0");
}

#[test]
fn unknown_version_tag_or_package_is_404() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &token, "hello", "1.0.0"), 201);
    expect_error(get(&reg, "/hello/9.9.9"), 404);
    expect_error(get(&reg, "/hello/no-such-tag"), 404);
    expect_error(get(&reg, "/no-such-package"), 404);
    expect_error(get(&reg, "/no-such-package/1.0.0"), 404);
    let corgi_missing = client()
        .get(reg.url("/no-such-package"))
        .header(header::ACCEPT, CORGI_ACCEPT)
        .send()
        .expect("GET");
    expect_error(corgi_missing, 404);
}

#[test]
fn dist_tarball_is_the_registry_url_not_the_clients() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    // publish_body sends http://wrong.example/… as dist.tarball
    assert_eq!(publish(&reg, &token, "hello", "1.0.0"), 201);
    let expected = format!("{}/hello/-/hello-1.0.0.tgz", reg.base);
    let full = get_json(&reg, "/hello");
    assert_eq!(full["versions"]["1.0.0"]["dist"]["tarball"], expected);
    let corgi = json_of(
        client()
            .get(reg.url("/hello"))
            .header(header::ACCEPT, CORGI_ACCEPT)
            .send()
            .expect("GET"),
    );
    assert_eq!(corgi["versions"]["1.0.0"]["dist"]["tarball"], expected);
    assert!(!full.to_string().contains("wrong.example"));
}

#[test]
fn dist_tarball_uses_the_configured_public_url() {
    let public = "https://npm.example.com/registry";
    let reg = TestRegistry::start_with(|config| config.public_url = Some(public.to_string()));
    let token = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &token, "hello", "1.0.0"), 201);
    assert_eq!(publish(&reg, &token, "@s/n", "1.0.0"), 201);
    let full = get_json(&reg, "/hello");
    assert_eq!(
        full["versions"]["1.0.0"]["dist"]["tarball"],
        format!("{public}/hello/-/hello-1.0.0.tgz")
    );
    let scoped = get_json(&reg, "/@s%2fn/1.0.0");
    assert_eq!(
        scoped["dist"]["tarball"],
        format!("{public}/@s/n/-/n-1.0.0.tgz")
    );
}

// ---------------------------------------------------------------------------------------------
// Tarballs
// ---------------------------------------------------------------------------------------------

fn check_tarball_served(reg: &TestRegistry, path: &str, tgz: &[u8]) {
    let response = get(reg, path);
    assert_eq!(response.status().as_u16(), 200, "GET {path}");
    assert_eq!(
        header_str(response.headers(), header::CONTENT_LENGTH),
        Some(tgz.len().to_string()),
        "GET {path}"
    );
    let etag = header_str(response.headers(), header::ETAG).expect("tarball ETag");
    let cache_control = header_str(response.headers(), header::CACHE_CONTROL).unwrap_or_default();
    assert!(
        cache_control.contains("immutable"),
        "Cache-Control: {cache_control:?}"
    );
    assert_eq!(
        response.bytes().expect("tarball").to_vec(),
        tgz,
        "GET {path}"
    );

    let head = client().head(reg.url(path)).send().expect("HEAD");
    assert_eq!(head.status().as_u16(), 200, "HEAD {path}");
    assert_eq!(
        header_str(head.headers(), header::CONTENT_LENGTH),
        Some(tgz.len().to_string()),
        "HEAD {path}"
    );
    assert_eq!(
        header_str(head.headers(), header::ETAG).as_deref(),
        Some(etag.as_str())
    );
    assert!(head.bytes().expect("HEAD body").is_empty());

    let revalidated = client()
        .get(reg.url(path))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .expect("GET");
    assert_eq!(revalidated.status().as_u16(), 304, "If-None-Match {path}");
    assert!(revalidated.bytes().expect("body").is_empty());
}

#[test]
fn tarballs_are_served_with_length_etag_and_immutable_caching() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    let tgz = package_tarball("hello", "1.0.0");
    assert_eq!(
        put_publish(
            &reg,
            Some(&token),
            "hello",
            &publish_body("hello", "1.0.0", &tgz)
        )
        .status()
        .as_u16(),
        201
    );
    check_tarball_served(&reg, "/hello/-/hello-1.0.0.tgz", &tgz);
}

#[test]
fn scoped_tarballs_are_served_in_both_spellings() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    let tgz = package_tarball("@s/n", "1.0.0");
    assert_eq!(
        put_publish(
            &reg,
            Some(&token),
            "@s/n",
            &publish_body("@s/n", "1.0.0", &tgz)
        )
        .status()
        .as_u16(),
        201
    );
    check_tarball_served(&reg, "/@s/n/-/n-1.0.0.tgz", &tgz);
    check_tarball_served(&reg, "/@s%2fn/-/n-1.0.0.tgz", &tgz);
}

#[test]
fn unknown_tarballs_are_404() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &token, "hello", "1.0.0"), 201);
    for path in [
        "/hello/-/hello-9.9.9.tgz",
        "/hello/-/other-1.0.0.tgz",
        "/hello/-/hello-1.0.0.tar",
        "/hello/-/hello-.tgz",
        "/nothing/-/nothing-1.0.0.tgz",
        "/@s/n/-/n-1.0.0.tgz",
    ] {
        expect_error(get(&reg, path), 404);
    }
    let head = client()
        .head(reg.url("/hello/-/hello-9.9.9.tgz"))
        .send()
        .expect("HEAD");
    assert_eq!(head.status().as_u16(), 404);
}

// ---------------------------------------------------------------------------------------------
// Publish: who may
// ---------------------------------------------------------------------------------------------

#[test]
fn publish_without_credentials_is_401() {
    let (reg, _token, tgz) = with_published_pkg();
    let body = publish_body("pkg", "1.0.1", &package_tarball("pkg", "1.0.1"));
    let response = put_publish(&reg, None, "pkg", &body);
    let challenge = header_str(response.headers(), header::WWW_AUTHENTICATE).unwrap_or_default();
    expect_error(response, 401);
    assert!(
        challenge.contains("Bearer"),
        "WWW-Authenticate: {challenge:?}"
    );
    // nor can a stranger create a package
    let body = publish_body("fresh", "1.0.0", &package_tarball("fresh", "1.0.0"));
    expect_error(put_publish(&reg, None, "fresh", &body), 401);
    expect_error(get(&reg, "/fresh"), 404);
    assert_pkg_intact(&reg, &tgz);
}

#[test]
fn publish_with_a_readonly_token_is_403() {
    let (reg, _token, tgz) = with_published_pkg();
    let readonly = reg.token(
        "alice",
        TokenOptions {
            readonly: true,
            ..Default::default()
        },
    );
    assert_eq!(json_of(whoami(&reg, &readonly))["username"], "alice");
    let body = publish_body("pkg", "1.0.1", &package_tarball("pkg", "1.0.1"));
    expect_error(put_publish(&reg, Some(&readonly), "pkg", &body), 403);
    assert_pkg_intact(&reg, &tgz);
}

#[test]
fn publish_by_a_non_maintainer_is_403() {
    let (reg, _token, tgz) = with_published_pkg();
    let bob = reg.user_with_token("bob");
    let body = publish_body("pkg", "1.0.1", &package_tarball("pkg", "1.0.1"));
    let error = expect_error(put_publish(&reg, Some(&bob), "pkg", &body), 403);
    assert!(error_text(&error).contains("maintainer"), "{error}");
    assert_pkg_intact(&reg, &tgz);
}

#[test]
fn identical_republish_by_a_non_maintainer_is_403() {
    let (reg, _token, tgz) = with_published_pkg();
    let bob = reg.user_with_token("bob");
    // The very bytes alice published: not a retry of bob's own publish.
    let body = publish_body("pkg", "1.0.0", &tgz);
    expect_error(put_publish(&reg, Some(&bob), "pkg", &body), 403);
    assert_pkg_intact(&reg, &tgz);
}

#[test]
fn maintainer_can_publish_new_versions() {
    let (reg, token, _tgz) = with_published_pkg();
    let tgz = package_tarball("pkg", "1.1.0");
    let response = put_publish(
        &reg,
        Some(&token),
        "pkg",
        &publish_body("pkg", "1.1.0", &tgz),
    );
    assert_eq!(response.status().as_u16(), 201);
    let doc = get_json(&reg, "/pkg");
    assert_eq!(doc["dist-tags"]["latest"], "1.1.0");
    assert!(doc["versions"]["1.0.0"].is_object() && doc["versions"]["1.1.0"].is_object());
    assert!(doc["time"]["1.0.0"].is_string() && doc["time"]["1.1.0"].is_string());
    assert_eq!(get_bytes(&reg, "/pkg/-/pkg-1.1.0.tgz"), tgz);
}

#[test]
fn admin_can_publish_a_new_version_of_someone_elses_package() {
    let (reg, _token, _tgz) = with_published_pkg();
    reg.add_user_with("root", "root-password", true);
    let admin = reg.token("root", TokenOptions::default());
    let tgz = package_tarball("pkg", "1.0.1");
    let response = put_publish(
        &reg,
        Some(&admin),
        "pkg",
        &publish_body("pkg", "1.0.1", &tgz),
    );
    assert_eq!(response.status().as_u16(), 201);
    let doc = get_json(&reg, "/pkg");
    assert_eq!(doc["dist-tags"]["latest"], "1.0.1");
    assert_eq!(doc["versions"]["1.0.1"]["_npmUser"]["name"], "root");
    assert_eq!(get_bytes(&reg, "/pkg/-/pkg-1.0.1.tgz"), tgz);
}

// ---------------------------------------------------------------------------------------------
// Publish: versions are immutable, retries are idempotent
// ---------------------------------------------------------------------------------------------

#[test]
fn republishing_a_version_with_a_different_tarball_is_403() {
    let (reg, token, tgz) = with_published_pkg();
    let other = tarball_with_index("pkg", "1.0.0", b"module.exports = 'something else';\n");
    assert_ne!(other, tgz);
    let error = expect_error(
        put_publish(
            &reg,
            Some(&token),
            "pkg",
            &publish_body("pkg", "1.0.0", &other),
        ),
        403,
    );
    assert!(error_text(&error).contains("1.0.0"), "{error}");
    assert_pkg_intact(&reg, &tgz);
}

#[test]
fn an_identical_retry_of_a_publish_succeeds() {
    let (reg, token, tgz) = with_published_pkg();
    let before = get_json(&reg, "/pkg");
    let response = put_publish(
        &reg,
        Some(&token),
        "pkg",
        &publish_body("pkg", "1.0.0", &tgz),
    );
    assert!(
        response.status().is_success(),
        "an identical retry is a success, got {}",
        response.status()
    );
    assert_pkg_intact(&reg, &tgz);
    let after = get_json(&reg, "/pkg");
    assert_eq!(after["_rev"], before["_rev"], "a retry changes nothing");
}

// ---------------------------------------------------------------------------------------------
// Publish: the attachment is verified
// ---------------------------------------------------------------------------------------------

/// A publish of `pkg@1.0.1` after `tweak` has changed its document must be refused with
/// `status`, leaving `pkg@1.0.0` as it was.
fn refused_publish(status: u16, tweak: impl FnOnce(&mut Value)) -> Value {
    let (reg, token, tgz) = with_published_pkg();
    let mut body = publish_body("pkg", "1.0.1", &package_tarball("pkg", "1.0.1"));
    tweak(&mut body);
    let error = expect_error(put_publish(&reg, Some(&token), "pkg", &body), status);
    assert_pkg_intact(&reg, &tgz);
    expect_error(get(&reg, "/pkg/-/pkg-1.0.1.tgz"), 404);
    error
}

#[test]
fn publish_with_a_wrong_shasum_is_400() {
    refused_publish(400, |body| {
        body["versions"]["1.0.1"]["dist"]["shasum"] = shasum(b"something else").into();
    });
}

#[test]
fn publish_with_a_wrong_integrity_is_400() {
    refused_publish(400, |body| {
        body["versions"]["1.0.1"]["dist"]["integrity"] = integrity(b"something else").into();
    });
}

#[test]
fn publish_with_a_wrong_attachment_length_is_400() {
    refused_publish(400, |body| {
        let length = body["_attachments"]["pkg-1.0.1.tgz"]["length"]
            .as_u64()
            .expect("length");
        body["_attachments"]["pkg-1.0.1.tgz"]["length"] = (length + 1).into();
    });
}

/// Replaces the tarball of a publish document, with matching hashes and length.
fn replace_tarball(body: &mut Value, version: &str, tgz: &[u8]) {
    use base64::Engine;
    let fresh = publish_body("pkg", version, tgz);
    body["versions"][version]["dist"] = fresh["versions"][version]["dist"].clone();
    body["_attachments"] = fresh["_attachments"].clone();
    let data = base64::engine::general_purpose::STANDARD.encode(tgz);
    assert_eq!(
        body["_attachments"][format!("pkg-{version}.tgz")]["data"],
        data
    );
}

#[test]
fn publish_of_a_tarball_for_another_package_name_is_400() {
    let error = refused_publish(400, |body| {
        replace_tarball(body, "1.0.1", &package_tarball("other", "1.0.1"));
    });
    assert!(error_text(&error).contains("other"), "{error}");
}

#[test]
fn publish_of_a_tarball_for_another_version_is_400() {
    refused_publish(400, |body| {
        replace_tarball(body, "1.0.1", &package_tarball("pkg", "1.0.0"));
    });
}

#[test]
fn publish_of_an_attachment_that_is_not_gzip_is_400() {
    refused_publish(400, |body| {
        replace_tarball(body, "1.0.1", b"this is not a gzip'd tarball at all");
    });
}

#[test]
fn publish_of_a_tarball_without_package_json_is_400() {
    refused_publish(400, |body| {
        let tgz = tarball(&[("package/index.js", b"module.exports = 1;\n")]);
        replace_tarball(body, "1.0.1", &tgz);
    });
}

#[test]
fn publish_of_a_tarball_with_an_escaping_path_is_400() {
    let error = refused_publish(400, |body| {
        let manifest = json!({ "name": "pkg", "version": "1.0.1" }).to_string();
        let tgz = tarball(&[
            ("package/package.json", manifest.as_bytes()),
            ("package/../../evil", b"pwned"),
        ]);
        replace_tarball(body, "1.0.1", &tgz);
    });
    assert!(error_text(&error).contains("outside"), "{error}");
}

#[test]
fn publish_with_attachment_data_that_is_not_base64_is_400() {
    refused_publish(400, |body| {
        body["_attachments"]["pkg-1.0.1.tgz"]["data"] = "*** not base64 ***".into();
    });
}

// ---------------------------------------------------------------------------------------------
// Publish: the document is validated
// ---------------------------------------------------------------------------------------------

#[test]
fn publish_whose_version_manifest_names_another_package_is_400() {
    refused_publish(400, |body| {
        body["versions"]["1.0.1"]["name"] = "other".into();
    });
}

#[test]
fn publish_with_two_versions_is_400() {
    refused_publish(400, |body| {
        let tgz = package_tarball("pkg", "1.0.2");
        let second = publish_body("pkg", "1.0.2", &tgz);
        body["versions"]["1.0.2"] = second["versions"]["1.0.2"].clone();
    });
}

#[test]
fn publish_of_an_invalid_version_is_400() {
    refused_publish(400, |body| {
        let tgz = package_tarball("pkg", "v1.0.1");
        *body = publish_body("pkg", "v1.0.1", &tgz);
    });
}

#[test]
fn publish_with_an_id_that_does_not_match_the_url_is_400() {
    refused_publish(400, |body| {
        body["_id"] = "other".into();
    });
}

#[test]
fn publish_with_a_semver_range_as_dist_tag_is_400() {
    refused_publish(400, |body| {
        body["dist-tags"] = json!({ "1.x": "1.0.1" });
    });
}

#[test]
fn put_without_attachments_is_400() {
    refused_publish(400, |body| {
        if let Some(doc) = body.as_object_mut() {
            doc.remove("_attachments");
        }
    });
}

#[test]
fn publish_with_invalid_package_names_in_the_url_is_400() {
    let (reg, token, tgz) = with_published_pkg();
    let body = publish_body("pkg", "1.0.1", &package_tarball("pkg", "1.0.1")).to_string();
    let auth = format!("Bearer {token}");
    for target in [
        "/Upper",
        "/..",
        "/%2e%2e",
        "/@scope",
        "/a%00b",
        "/@s%2f..%2fpkg",
    ] {
        let (status, headers, response) = raw_request(
            &reg,
            "PUT",
            target,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        );
        let text = String::from_utf8_lossy(&response);
        assert_eq!(status, 400, "PUT {target}: {text}");
        let content_type = headers
            .iter()
            .find(|(k, _)| k == "content-type")
            .map(|(_, v)| v.as_str());
        error_body(&text, content_type);
    }
    assert_pkg_intact(&reg, &tgz);
}

#[test]
fn reads_of_invalid_package_names_are_400() {
    let reg = TestRegistry::start();
    for target in ["/Upper", "/..", "/%2e%2e", "/@scope", "/a%00b", "/%zz"] {
        let (status, headers, response) = raw_request(&reg, "GET", target, &[], b"");
        let text = String::from_utf8_lossy(&response);
        assert_eq!(status, 400, "GET {target}: {text}");
        let content_type = headers
            .iter()
            .find(|(k, _)| k == "content-type")
            .map(|(_, v)| v.as_str());
        error_body(&text, content_type);
    }
}

#[test]
fn publish_body_over_the_size_limit_is_413() {
    let reg = TestRegistry::start_with(|config| config.max_body_bytes = 4096);
    let token = reg.user_with_token("alice");
    let tgz = package_tarball("pkg", "1.0.0");
    let small = publish_body("pkg", "1.0.0", &tgz);
    assert!(small.to_string().len() < 4096);
    assert_eq!(
        put_publish(&reg, Some(&token), "pkg", &small)
            .status()
            .as_u16(),
        201
    );
    // Incompressible content makes a tarball well over the limit.
    let noise: Vec<u8> = (0..16_384u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let big = tarball_with_index("pkg", "1.0.1", &noise);
    let body = publish_body("pkg", "1.0.1", &big);
    assert!(body.to_string().len() > 4096);
    expect_error(put_publish(&reg, Some(&token), "pkg", &body), 413);
    assert_pkg_intact(&reg, &tgz);
}

#[test]
fn streamed_body_over_the_size_limit_is_413() {
    let reg = TestRegistry::start_with(|config| config.max_body_bytes = 1024);
    let token = reg.user_with_token("alice");
    // Without a Content-Length (chunked), the limit applies as the body arrives.
    let chunk = vec![b' '; 512];
    let chunks: Vec<&[u8]> = std::iter::repeat_n(chunk.as_slice(), 16).collect();
    let auth = format!("Bearer {token}");
    let (status, headers, body) = raw_chunked_request(
        &reg,
        "PUT",
        "/pkg",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        &chunks,
    );
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 413, "{text}");
    let content_type = headers
        .iter()
        .find(|(k, _)| k == "content-type")
        .map(|(_, v)| v.as_str());
    error_body(&text, content_type);
}

#[test]
fn publish_body_that_is_not_json_is_400() {
    let (reg, token, tgz) = with_published_pkg();
    let response = client()
        .put(reg.url("/pkg"))
        .bearer_auth(&token)
        .header(header::CONTENT_TYPE, "application/json")
        .body("this is not JSON")
        .send()
        .expect("PUT");
    expect_error(response, 400);
    assert_pkg_intact(&reg, &tgz);
}

#[test]
fn publish_body_of_deeply_nested_json_is_400_not_500() {
    let (reg, token, tgz) = with_published_pkg();
    for body in [
        "[".repeat(10_000),
        format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
    ] {
        let response = client()
            .put(reg.url("/pkg"))
            .bearer_auth(&token)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .expect("PUT");
        expect_error(response, 400);
    }
    let nested = format!("{}{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    let response = client()
        .put(reg.url("/pkg"))
        .bearer_auth(&token)
        .header(header::CONTENT_TYPE, "application/json")
        .body(nested)
        .send()
        .expect("PUT");
    expect_error(response, 400);
    assert_pkg_intact(&reg, &tgz);
}

#[test]
fn publish_body_that_is_json_but_not_an_object_is_400() {
    let (reg, token, tgz) = with_published_pkg();
    for body in [
        json!([]),
        json!("pkg"),
        json!(null),
        json!({ "_attachments": [] }),
    ] {
        expect_error(put_publish(&reg, Some(&token), "pkg", &body), 400);
    }
    assert_pkg_intact(&reg, &tgz);
}

// ---------------------------------------------------------------------------------------------
// Publish: dist-tags
// ---------------------------------------------------------------------------------------------

#[test]
fn first_publish_with_only_a_beta_tag_also_sets_latest() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    let tgz = package_tarball("fresh", "2.0.0-beta.1");
    let mut body = publish_body("fresh", "2.0.0-beta.1", &tgz);
    body["dist-tags"] = json!({ "beta": "2.0.0-beta.1" });
    assert_eq!(
        put_publish(&reg, Some(&token), "fresh", &body)
            .status()
            .as_u16(),
        201
    );
    let doc = get_json(&reg, "/fresh");
    assert_eq!(
        doc["dist-tags"],
        json!({ "beta": "2.0.0-beta.1", "latest": "2.0.0-beta.1" })
    );
}

#[test]
fn publish_with_a_beta_tag_to_an_existing_package_keeps_latest() {
    let (reg, token, _tgz) = with_published_pkg();
    let tgz = package_tarball("pkg", "2.0.0-beta.1");
    let mut body = publish_body("pkg", "2.0.0-beta.1", &tgz);
    body["dist-tags"] = json!({ "beta": "2.0.0-beta.1" });
    assert_eq!(
        put_publish(&reg, Some(&token), "pkg", &body)
            .status()
            .as_u16(),
        201
    );
    let doc = get_json(&reg, "/pkg");
    assert_eq!(
        doc["dist-tags"],
        json!({ "beta": "2.0.0-beta.1", "latest": "1.0.0" })
    );
}

// ---------------------------------------------------------------------------------------------
// Publish: concurrent requests
// ---------------------------------------------------------------------------------------------

/// Sends every body as a publish of `pkg` at the same time; returns the statuses.
fn publish_concurrently(reg: &TestRegistry, token: &str, bodies: Vec<Value>) -> Vec<u16> {
    let url = reg.url("/pkg");
    let threads: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let url = url.clone();
            let token = token.to_string();
            std::thread::spawn(move || {
                client()
                    .put(url)
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .expect("PUT")
                    .status()
                    .as_u16()
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("publishing thread"))
        .collect()
}

#[test]
fn concurrent_identical_publishes_all_succeed_and_store_one_version() {
    let (reg, token, _tgz) = with_published_pkg();
    let tgz = package_tarball("pkg", "1.0.1");
    let bodies = vec![publish_body("pkg", "1.0.1", &tgz); 6];
    let statuses = publish_concurrently(&reg, &token, bodies);
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 201),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    let doc = get_json(&reg, "/pkg");
    assert_eq!(doc["versions"].as_object().map(|v| v.len()), Some(2));
    assert_eq!(get_bytes(&reg, "/pkg/-/pkg-1.0.1.tgz"), tgz);
}

#[test]
fn concurrent_publishes_of_one_version_with_different_tarballs_store_exactly_one() {
    let (reg, token, _tgz) = with_published_pkg();
    let tarballs: Vec<Vec<u8>> = (0..6)
        .map(|i| {
            tarball_with_index(
                "pkg",
                "1.0.1",
                format!("module.exports = {i};\n").as_bytes(),
            )
        })
        .collect();
    let bodies = tarballs
        .iter()
        .map(|tgz| publish_body("pkg", "1.0.1", tgz))
        .collect();
    let statuses = publish_concurrently(&reg, &token, bodies);
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 403).count(),
        5,
        "{statuses:?}"
    );
    let winner = statuses
        .iter()
        .position(|s| *s == 201)
        .expect("one publish won");
    let doc = get_json(&reg, "/pkg");
    assert_eq!(
        doc["versions"]["1.0.1"]["dist"]["shasum"],
        shasum(&tarballs[winner])
    );
    assert_eq!(get_bytes(&reg, "/pkg/-/pkg-1.0.1.tgz"), tarballs[winner]);
}

#[test]
fn every_answer_says_nosniff_and_has_a_content_type() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &token, "sniffy", "1.0.0"), 201);
    for path in [
        "/",
        "/-/ping",
        "/sniffy",
        "/sniffy/-/sniffy-1.0.0.tgz",
        "/nope",
        "/-/nope",
        "/Bad",
    ] {
        let response = client().get(reg.url(path)).send().expect("GET");
        let headers = response.headers();
        assert_eq!(
            headers
                .get("x-content-type-options")
                .and_then(|v| v.to_str().ok()),
            Some("nosniff"),
            "{path}"
        );
        assert!(
            headers.get("content-type").is_some(),
            "{path} has no Content-Type"
        );
    }
}

/// Anonymous package reads take a fast path past the routes; with credentials they go through
/// them. Both must answer the same bytes and headers.
#[test]
fn package_reads_answer_the_same_with_and_without_credentials() {
    let (reg, token, _) = with_published_pkg();
    let http = client();
    let cases: [(&str, &[(&str, &str)]); 6] = [
        ("/pkg", &[]),
        ("/pkg", &[("accept-encoding", "gzip")]),
        ("/pkg", &[("accept", "application/vnd.npm.install-v1+json")]),
        ("/pkg/-/pkg-1.0.0.tgz", &[]),
        ("/pkg/-/pkg-9.9.9.tgz", &[]),
        ("/no-such-package", &[]),
    ];
    for (path, extra) in cases {
        let fetch = |bearer: Option<&str>| {
            let mut request = http.get(reg.url(path));
            for (name, value) in extra {
                request = request.header(*name, *value);
            }
            if let Some(token) = bearer {
                request = request.bearer_auth(token);
            }
            let response = request.send().expect("request");
            let status = response.status().as_u16();
            let headers: Vec<(String, String)> = [
                header::CONTENT_TYPE,
                header::CONTENT_ENCODING,
                header::ETAG,
                header::CACHE_CONTROL,
                header::X_CONTENT_TYPE_OPTIONS,
            ]
            .into_iter()
            .map(|name| {
                let value = header_str(response.headers(), name.clone()).unwrap_or_default();
                (name.to_string(), value)
            })
            .collect();
            (status, headers, response.bytes().expect("body").to_vec())
        };
        let anonymous = fetch(None);
        let authenticated = fetch(Some(&token));
        assert_eq!(anonymous, authenticated, "GET {path} {extra:?}");
        assert!(
            anonymous.0 == 200 || anonymous.0 == 404,
            "GET {path}: {}",
            anonymous.0
        );
    }
}
