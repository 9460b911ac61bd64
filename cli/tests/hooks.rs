//! `registry hook …` in both modes, and the outbox across a crash: `kill -9` the daemon with
//! deliveries pending and their receiver down, restart it, and every event still arrives,
//! signed.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{serve, Fixture, Remote, Target};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

const DEADLINE: Duration = Duration::from_secs(60);
const SECRET: &str = "crash-secret";

/// Hooks may call 127.0.0.1 (the test's receiver) and retry within a second.
fn config_file(fixture: &Fixture) -> String {
    let path = fixture.dir.path().join("registry.toml");
    std::fs::write(
        &path,
        "hooks_allow_private = true\nhooks_retry_base_ms = 100\nhooks_retry_cap_secs = 1\n",
    )
    .expect("write config");
    path.to_str().expect("utf-8 path").to_string()
}

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A receiver on `addr` answering 200 to every request, until the process ends.
fn receive_on(addr: SocketAddr) -> Arc<Mutex<Vec<Received>>> {
    let listener = TcpListener::bind(addr).expect("bind the receiver's port again");
    let received = Arc::new(Mutex::new(Vec::new()));
    let list = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let list = list.clone();
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let Ok(mut writer) = stream.try_clone() else {
                    return;
                };
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    return;
                }
                let mut headers = Vec::new();
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).is_err() {
                        return;
                    }
                    let header = header.trim_end();
                    if header.is_empty() {
                        break;
                    }
                    if let Some((name, value)) = header.split_once(':') {
                        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
                    }
                }
                let length = headers
                    .iter()
                    .find(|(n, _)| n == "content-length")
                    .and_then(|(_, v)| v.parse::<usize>().ok())
                    .unwrap_or(0);
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                if let Ok(mut list) = list.lock() {
                    list.push(Received { headers, body });
                }
                let _ = writer.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            });
        }
    });
    received
}

fn signed(request: &Received) -> bool {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()) else {
        return false;
    };
    mac.update(&request.body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    request.header("x-npm-signature") == Some(expected.as_str())
}

fn alice_token(fixture: &Fixture) -> String {
    fixture
        .run(&["token", "create", "--user", "alice"])
        .ok()
        .stdout
        .trim()
        .to_string()
}

#[test]
fn hooks_are_managed_alike_in_both_modes() {
    let fixture = Fixture::new();
    let config = config_file(&fixture);
    let alice = alice_token(&fixture);
    let local = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--config", config.as_str()]);
        fixture.run(&all)
    };

    // Locally a hook needs its owner named; the type is guessed from the name as npm does.
    local(&["hook", "add", "left-pad", "http://127.0.0.1:9/", SECRET]).fails(2);
    let added = local(&[
        "hook",
        "add",
        "left-pad",
        "http://127.0.0.1:9/",
        SECRET,
        "--user",
        "alice",
        "--json",
    ])
    .ok()
    .json();
    assert_eq!(added["type"], "package");
    assert_eq!(added["username"], "alice");
    assert!(added.get("secret").is_none());
    let id = added["id"].as_str().expect("id").to_string();

    let served = serve(fixture.data_str(), &["--config", &config]);
    let remote = Remote {
        base: served.base.clone(),
        token: alice.clone(),
    };
    let scope = remote
        .run(&[
            "hook",
            "add",
            "@acme",
            "http://127.0.0.1:9/scope",
            SECRET,
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(scope["type"], "scope");
    assert_eq!(scope["name"], "@acme");
    remote
        .run(&[
            "hook",
            "add",
            "x",
            "http://127.0.0.1:9/",
            SECRET,
            "--user",
            "bob",
        ])
        .fails(2);

    // The same list, and the same table, from either side.
    let listed_locally = local(&["hook", "ls", "--json"]).ok().json();
    let listed_remotely = remote.run(&["hook", "ls", "--json"]).ok().json();
    assert_eq!(listed_locally, listed_remotely);
    assert_eq!(listed_locally.as_array().map(Vec::len), Some(2));
    assert_eq!(
        local(&["hook", "ls"]).ok().stdout,
        remote.run(&["hook", "ls"]).ok().stdout
    );
    let only = remote
        .run(&["hook", "ls", "left-pad", "--json"])
        .ok()
        .json();
    assert_eq!(only, json!([added.clone()]));
    let bob = fixture
        .run(&["token", "create", "--user", "bob"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let as_bob = Remote {
        base: served.base.clone(),
        token: bob,
    };
    assert_eq!(as_bob.run(&["hook", "ls", "--json"]).ok().json(), json!([]));
    as_bob.run(&["hook", "rm", &id]).fails(3);

    // A ping is queued (port 9 refuses it; it stays pending) and listed as a delivery.
    let delivery = remote
        .run(&["hook", "test", &id])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert_eq!(delivery.len(), 32);
    let deliveries = local(&["hook", "deliveries", &id, "--json"]).ok().json();
    assert_eq!(deliveries[0]["id"], delivery.as_str());
    assert_eq!(deliveries[0]["event"], "ping");
    // The daemon keeps retrying it meanwhile, so only what does not change is compared.
    let remotely = remote
        .run(&["hook", "deliveries", &id, "--json"])
        .ok()
        .json();
    for key in ["id", "event", "package", "created"] {
        assert_eq!(deliveries[0][key], remotely[0][key], "{key}");
    }

    let removed = remote.run(&["hook", "rm", &id, "--json"]).ok().json();
    assert_eq!(removed["id"], id.as_str());
    local(&["hook", "rm", &id]).fails(3);
    let left = local(&["hook", "ls", "--json"]).ok().json();
    assert_eq!(left.as_array().map(Vec::len), Some(1));
}

#[test]
fn deliveries_pending_at_a_kill_9_all_arrive_after_the_restart() {
    let fixture = Fixture::new();
    let config = config_file(&fixture);
    let alice = alice_token(&fixture);
    // A port nothing listens on until the receiver comes up (after the crash).
    let addr = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let endpoint = format!("http://{addr}/hook");
    fixture
        .run(&[
            "hook", "add", "left-pad", &endpoint, SECRET, "--user", "alice", "--config", &config,
        ])
        .ok();

    let mut served = serve(fixture.data_str(), &["--config", &config]);
    let client = reqwest::blocking::Client::new();
    let tags: Vec<String> = (0..5).map(|n| format!("tag{n}")).collect();
    for tag in &tags {
        let status = client
            .put(format!(
                "{}/-/package/left-pad/dist-tags/{tag}",
                served.base
            ))
            .bearer_auth(&alice)
            .json(&json!("1.0.0"))
            .send()
            .expect("PUT dist-tag")
            .status()
            .as_u16();
        assert_eq!(status, 201, "{tag}");
    }
    // Acknowledged, then killed while the receiver is down (the first attempts fail).
    served.child.kill().expect("kill -9");
    served.child.wait().expect("reap");

    let received = receive_on(addr);
    let _restarted = serve(fixture.data_str(), &["--config", &config]);
    let started = Instant::now();
    let requests = loop {
        let requests = received.lock().map(|r| r.clone()).unwrap_or_default();
        let ids: BTreeSet<&str> = requests
            .iter()
            .filter_map(|r| r.header("x-registry-delivery"))
            .collect();
        if ids.len() >= tags.len() {
            break requests;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{} of {} deliveries after the restart",
            ids.len(),
            tags.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(requests.iter().all(signed), "every delivery is signed");
    let bodies: Vec<Value> = requests
        .iter()
        .map(|r| serde_json::from_slice(&r.body).expect("JSON"))
        .collect();
    let got: BTreeSet<String> = bodies
        .iter()
        .filter(|b| b["event"] == "package:dist-tag")
        .filter_map(|b| b["change"]["dist-tag"].as_str().map(str::to_string))
        .collect();
    assert_eq!(got, tags.iter().cloned().collect::<BTreeSet<_>>());
}
