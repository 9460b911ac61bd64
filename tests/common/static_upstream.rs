//! A static copy of a registry served by a small HTTP server of the test's own, on
//! 127.0.0.1:0, that can be told to misbehave (slow answers, 500s, dropped connections, a
//! wrong tarball) and that records every request, so that a test can count what the proxy
//! asked. It answers `If-None-Match` with 304, as a real registry does.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{integrity, package_tarball, shasum};

/// What the server does with the next requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Answer every request with this status.
    Status(u16),
    /// Close the connection without answering.
    Drop,
    /// Answer normally, after this long.
    Delay(Duration),
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub if_none_match: Option<String>,
    pub status: u16,
}

struct File {
    content_type: &'static str,
    body: Vec<u8>,
}

struct State {
    files: HashMap<String, File>,
    fault: Fault,
    seen: Vec<Seen>,
}

pub struct StaticUpstream {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StaticUpstream {
    pub fn start() -> StaticUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("nonblocking");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(Mutex::new(State {
            files: HashMap::new(),
            fault: Fault::None,
            seen: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (served, stopping) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let state = served.clone();
                        std::thread::spawn(move || answer(stream, &state));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        StaticUpstream {
            base,
            state,
            stop,
            thread: Some(thread),
        }
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().expect("static upstream state"))
    }

    pub fn set_fault(&self, fault: Fault) {
        self.with_state(|s| s.fault = fault);
    }

    /// Serves `name` with these versions (each a minimal real tarball), `latest` the last.
    pub fn add_package(&self, name: &str, versions: &[&str]) {
        self.add_package_with(name, versions, json!({}));
    }

    /// [`add_package`](Self::add_package) with `extra`'s fields (dependencies, …) in every
    /// version's manifest.
    pub fn add_package_with(&self, name: &str, versions: &[&str], extra: Value) {
        let bare = name.rsplit('/').next().unwrap_or(name);
        let mut manifests = serde_json::Map::new();
        let mut times = serde_json::Map::new();
        for version in versions {
            let tgz = package_tarball(name, version);
            let tarball_path = format!("/{name}/-/{bare}-{version}.tgz");
            let mut manifest = json!({
                "name": name,
                "version": version,
                "main": "index.js",
                "dist": {
                    "tarball": format!("{}{tarball_path}", self.base),
                    "integrity": integrity(&tgz),
                    "shasum": shasum(&tgz),
                }
            });
            if let (Some(fields), Some(extra)) = (manifest.as_object_mut(), extra.as_object()) {
                fields.extend(extra.clone());
            }
            manifests.insert(version.to_string(), manifest);
            times.insert(version.to_string(), json!("2026-01-01T00:00:00.000Z"));
            self.put(&tarball_path, "application/octet-stream", tgz);
        }
        let latest = versions.last().copied().unwrap_or("0.0.0");
        let doc = json!({
            "_id": name,
            "name": name,
            "dist-tags": { "latest": latest },
            "versions": manifests,
            "time": times,
        });
        self.put(
            &format!("/{}", name.replacen('/', "%2f", 1)),
            "application/json",
            doc.to_string().into_bytes(),
        );
    }

    /// Replaces a tarball's bytes while the document keeps the old checksums.
    pub fn corrupt_tarball(&self, name: &str, version: &str) {
        let bare = name.rsplit('/').next().unwrap_or(name);
        let other = package_tarball(name, &format!("{version}-tampered"));
        self.put(
            &format!("/{name}/-/{bare}-{version}.tgz"),
            "application/octet-stream",
            other,
        );
    }

    pub fn put(&self, path: &str, content_type: &'static str, body: Vec<u8>) {
        self.with_state(|s| {
            s.files
                .insert(path.to_string(), File { content_type, body });
        });
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.with_state(|s| s.seen.clone())
    }

    /// Requests for `path` so far.
    pub fn count(&self, path: &str) -> usize {
        self.seen().iter().filter(|r| r.path == path).count()
    }

    /// 304s answered for `path` so far.
    pub fn not_modified(&self, path: &str) -> usize {
        self.seen()
            .iter()
            .filter(|r| r.path == path && r.status == 304)
            .count()
    }
}

impl Drop for StaticUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn etag_of(body: &[u8]) -> String {
    format!("\"s{}\"", hex::encode(&Sha256::digest(body)[..8]))
}

fn answer(mut stream: TcpStream, state: &Mutex<State>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 64 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request).to_string();
    let mut lines = text.split("\r\n");
    let path = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .unwrap_or("/")
        .to_string();
    let if_none_match = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(key, _)| key.eq_ignore_ascii_case("if-none-match"))
        .map(|(_, value)| value.trim().to_string());
    let (fault, file) = {
        let s = state.lock().expect("state");
        let file = s.files.get(&path).map(|f| (f.content_type, f.body.clone()));
        (s.fault, file)
    };
    let record = |status: u16| {
        state.lock().expect("state").seen.push(Seen {
            path: path.clone(),
            if_none_match: if_none_match.clone(),
            status,
        });
    };
    let (status, content_type, body, etag) = match fault {
        Fault::Drop => {
            record(0);
            return;
        }
        Fault::Status(status) => (status, "application/json", b"{}".to_vec(), None),
        Fault::Delay(_) | Fault::None => {
            if let Fault::Delay(pause) = fault {
                std::thread::sleep(pause);
            }
            match file {
                None => (
                    404,
                    "application/json",
                    br#"{"error":"not found"}"#.to_vec(),
                    None,
                ),
                Some((content_type, body)) => {
                    let etag = etag_of(&body);
                    if if_none_match.as_deref() == Some(etag.as_str()) {
                        (304, content_type, Vec::new(), Some(etag))
                    } else {
                        (200, content_type, body, Some(etag))
                    }
                }
            }
        }
    };
    record(status);
    let mut head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
         connection: close\r\n",
        body.len()
    );
    if let Some(etag) = etag {
        head.push_str(&format!("etag: {etag}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}

/// A document as the proxy serves it, parsed.
pub fn document(body: &str) -> Value {
    serde_json::from_str(body).expect("a JSON document")
}
