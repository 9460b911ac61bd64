//! Slow and idle clients cannot take the registry down: half-open connections are closed
//! after `header_timeout` while real npm installs go on, an idle keep-alive connection after
//! `idle_timeout`, and connections past `max_connections` get a 503 with a reason at once.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// The attack of the issue: a request line and one header, never finished.
const HALF_A_HEAD: &[u8] = b"GET /-/ping HTTP/1.1\r\nhost: 127.0.0.1\r\n";
const HALF_OPEN: usize = 5_000;

fn address(reg: &TestRegistry) -> String {
    reg.url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

fn half_open(addr: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.write_all(HALF_A_HEAD).expect("half a head");
    stream
}

/// Whether the server has closed `stream`, waiting at most `wait`.
fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).expect("read timeout");
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == ErrorKind::ConnectionReset => true,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
        Err(e) => panic!("read: {e}"),
    }
}

#[test]
fn half_open_connections_are_closed_after_the_header_timeout_while_npm_installs() {
    let header_timeout = Duration::from_secs(3);
    let reg = TestRegistry::start_with(|c| c.header_timeout = header_timeout);
    let token = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &token, "under-attack", "1.0.0"), 201);

    let addr = address(&reg);
    let opened = Instant::now();
    let mut attack: Vec<TcpStream> = (0..HALF_OPEN).map(|_| half_open(&addr)).collect();
    let opened_in = opened.elapsed();

    // Held open while the timeout runs, and real clients are still served meanwhile.
    if opened_in < header_timeout / 2 {
        assert!(
            !closed_within(&mut attack[HALF_OPEN - 1], Duration::from_millis(200)),
            "closed before its header timeout"
        );
    }
    let npm = Npm::new(&reg);
    let project = npm.dir("project");
    std::fs::write(
        project.join("package.json"),
        r#"{"name":"p","version":"1.0.0"}"#,
    )
    .expect("package.json");
    npm.ok(&project, &["install", "under-attack"]);
    assert!(project
        .join("node_modules/under-attack/package.json")
        .exists());

    // Every half-open connection is closed once its timeout has passed.
    let deadline = opened + header_timeout + Duration::from_secs(20);
    let mut still_open = 0;
    for stream in &mut attack {
        let left = deadline.saturating_duration_since(Instant::now());
        if !closed_within(stream, left.max(Duration::from_millis(1))) {
            still_open += 1;
        }
    }
    assert_eq!(still_open, 0, "of {HALF_OPEN} half-open connections");

    // A finished request on a fresh connection is still answered.
    assert_eq!(
        client()
            .get(reg.url("/-/ping"))
            .send()
            .expect("ping")
            .status(),
        200
    );
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout_and_a_busy_one_is_not() {
    let reg = TestRegistry::start_with(|c| {
        c.idle_timeout = Duration::from_secs(2);
        c.header_timeout = Duration::from_secs(1);
    });
    let addr = address(&reg);
    let mut stream = TcpStream::connect(&addr).expect("connect");
    // Requests less than the idle timeout apart keep the connection.
    let mut answers = Vec::new();
    for _ in 0..3 {
        stream
            .write_all(b"GET /-/ping HTTP/1.1\r\nhost: x\r\n\r\n")
            .expect("request");
        let mut buffer = vec![0u8; 64 * 1024];
        let n = stream.read(&mut buffer).expect("answer");
        answers.push(String::from_utf8_lossy(&buffer[..n]).to_string());
        std::thread::sleep(Duration::from_millis(1200));
    }
    for answer in &answers {
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    let quiet = Instant::now();
    assert!(closed_within(&mut stream, Duration::from_secs(10)));
    let after = quiet.elapsed();
    assert!(after < Duration::from_secs(8), "closed after {after:?}");
}

#[test]
fn connections_over_max_connections_get_a_503_with_a_reason_at_once() {
    let reg = TestRegistry::start_with(|c| {
        c.max_connections = Some(3);
        c.header_timeout = Duration::from_secs(30);
    });
    let addr = address(&reg);
    let held: Vec<TcpStream> = (0..3).map(|_| half_open(&addr)).collect();
    // The daemon takes the three before the fourth comes (accepting is quick, but not instant).
    let refused = (0..50).find_map(|_| {
        std::thread::sleep(Duration::from_millis(20));
        let response = client().get(reg.url("/-/ping")).send().ok()?;
        (response.status() == 503).then_some(response)
    });
    let refused = refused.expect("a 503 once three connections are held");
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = refused.json().expect("json");
    assert_eq!(body["error"], json!("too many connections"));
    assert!(
        body["reason"]
            .as_str()
            .is_some_and(|r| r.contains("max_connections")),
        "{body}"
    );
    // Room again once they go.
    drop(held);
    let served = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        client()
            .get(reg.url("/-/ping"))
            .send()
            .is_ok_and(|r| r.status() == 200)
    });
    assert!(served, "no room after the held connections closed");
}
