//! Crash safety: `kill -9` the daemon at arbitrary moments of a publish storm, restart it on
//! the same data directory, and check that every publish it acknowledged is still there, with
//! a tarball whose bytes match, and that nothing half-written is visible. After every kill,
//! and again with the restarted daemon running, `registry doctor --json` must find nothing
//! wrong (no missing or corrupt blob, no stale packument).
//!
//! The CI version runs 3 kill cycles; `REGISTRY_CRASH_CYCLES=50 cargo test --test crash`
//! runs the long one.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};
use sha1::Digest as _;

use common::{registry, serve};

/// The request log is of no use here; the listening line is all the test reads.
const QUIET: &[&str] = &["--log-level", "warn,registry=info"];

fn tarball(name: &str, version: &str, salt: u64) -> Vec<u8> {
    let manifest = json!({ "name": name, "version": version }).to_string();
    let index = format!("module.exports = {salt};\n");
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (path, content) in [
        ("package/package.json", manifest.as_bytes()),
        ("package/index.js", index.as_bytes()),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_path(path).expect("path");
        header.set_cksum();
        builder.append(&header, content).expect("append");
    }
    builder.into_inner().expect("tar").finish().expect("gzip")
}

fn publish_body(name: &str, version: &str, tgz: &[u8]) -> Value {
    let integrity = format!("sha512-{}", B64.encode(sha2::Sha512::digest(tgz)));
    let shasum = hex::encode(sha1::Sha1::digest(tgz));
    json!({
        "_id": name, "name": name, "dist-tags": { "latest": version },
        "versions": { version: { "name": name, "version": version,
            "dist": { "integrity": integrity, "shasum": shasum, "tarball": "x" } } },
        "_attachments": { format!("{name}-{version}.tgz"): { "data": B64.encode(tgz), "length": tgz.len() } }
    })
}

/// (name, version, sha1 of the tarball) of every publish answered 2xx.
type Acknowledged = Arc<Mutex<Vec<(String, String, String)>>>;

fn storm(
    base: &str,
    token: &str,
    cycle: u32,
    acknowledged: &Acknowledged,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..4u64)
        .map(|worker| {
            let (base, token, acknowledged, stop) = (
                base.to_string(),
                token.to_string(),
                acknowledged.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .expect("client");
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // Two workers race for the same version numbers of one package; the
                    // others publish their own packages.
                    let (name, version) = if worker < 2 {
                        ("contended".to_string(), format!("{cycle}.{n}.0"))
                    } else {
                        (format!("solo-{worker}"), format!("{cycle}.{n}.0"))
                    };
                    let tgz = tarball(&name, &version, worker << 32 | n);
                    let sha1 = hex::encode(sha1::Sha1::digest(&tgz));
                    let sent = http
                        .put(format!("{base}/{name}"))
                        .bearer_auth(&token)
                        .json(&publish_body(&name, &version, &tgz))
                        .send();
                    match sent {
                        Ok(response) if response.status().is_success() => {
                            if let Ok(mut list) = acknowledged.lock() {
                                list.push((name, version, sha1));
                            }
                        }
                        Ok(response) => {
                            let status = response.status().as_u16();
                            assert!(status < 500, "a publish got {status}");
                        }
                        Err(_) => {} // the daemon died mid-request: not acknowledged
                    }
                    n += 1;
                }
            })
        })
        .collect()
}

fn verify(base: &str, acknowledged: &Acknowledged) -> usize {
    let http = reqwest::blocking::Client::new();
    let list = acknowledged.lock().expect("lock").clone();
    let mut winners = std::collections::HashMap::new();
    for (name, version, sha1) in &list {
        // Exactly one tarball per version number, even when two publishers raced for it.
        if let Some(previous) = winners.insert((name.clone(), version.clone()), sha1.clone()) {
            assert_eq!(
                &previous, sha1,
                "{name}@{version} acknowledged with two different tarballs"
            );
        }
        let doc: Value = http
            .get(format!("{base}/{name}"))
            .send()
            .and_then(|r| r.json())
            .expect("packument");
        assert_eq!(
            doc["versions"][version]["dist"]["shasum"].as_str(),
            Some(sha1.as_str()),
            "acknowledged {name}@{version} is missing or changed after a crash"
        );
        let bytes = http
            .get(format!("{base}/{name}/-/{name}-{version}.tgz"))
            .send()
            .and_then(|r| r.bytes())
            .expect("tarball");
        assert_eq!(
            hex::encode(sha1::Sha1::digest(&bytes)),
            *sha1,
            "{name}@{version} tarball bytes"
        );
    }
    list.len()
}

/// `registry doctor --json` on the data directory exits 0 and reports no problem.
#[track_caller]
fn doctor_finds_nothing(data: &str, when: &str) {
    let output = registry()
        .args(["doctor", "--json", "--data-dir", data])
        .output()
        .expect("run registry doctor");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "registry doctor {when} exited {}:\n{stdout}\n{stderr}",
        output.status
    );
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("registry doctor {when}: not JSON ({e}): {stdout}\n{stderr}"));
    assert_eq!(
        report,
        json!({"ok": true, "problems": [], "repaired": []}),
        "registry doctor {when}"
    );
}

#[test]
fn acknowledged_publishes_survive_kill_9() {
    let cycles: u32 = std::env::var("REGISTRY_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data = data.to_str().expect("utf-8");
    let mut add = registry()
        .args([
            "user",
            "add",
            "storm",
            "--password-stdin",
            "--data-dir",
            data,
        ])
        .stdin(Stdio::piped())
        .spawn()
        .expect("user add");
    add.stdin
        .take()
        .expect("stdin")
        .write_all(b"storm-password\n")
        .expect("write");
    assert!(add.wait().expect("wait").success());
    let token_out = registry()
        .args(["token", "create", "--user", "storm", "--data-dir", data])
        .output()
        .expect("token create");
    let token = String::from_utf8_lossy(&token_out.stdout)
        .trim()
        .to_string();

    let acknowledged: Acknowledged = Arc::default();
    let started = Instant::now();
    for cycle in 1..=cycles {
        let daemon = serve(data, QUIET);
        let stop = Arc::new(AtomicBool::new(false));
        let workers = storm(&daemon.base, &token, cycle, &acknowledged, &stop);
        // Kill at a different moment each cycle.
        std::thread::sleep(Duration::from_millis(300 + u64::from(cycle * 137 % 500)));
        drop(daemon); // SIGKILL: no graceful anything
        stop.store(true, Ordering::Relaxed);
        for worker in workers {
            worker.join().expect("worker");
        }
        doctor_finds_nothing(data, &format!("after kill -9 #{cycle}, daemon stopped"));
        let restarted = serve(data, QUIET);
        let checked = verify(&restarted.base, &acknowledged);
        assert!(
            checked > 0 || cycle > 1,
            "the storm published nothing before the kill"
        );
        doctor_finds_nothing(data, &format!("after kill -9 #{cycle}, daemon restarted"));
    }
    eprintln!(
        "crash test: {cycles} kill -9 cycles, {} acknowledged publishes all intact, {:.1}s",
        acknowledged.lock().map(|l| l.len()).unwrap_or(0),
        started.elapsed().as_secs_f64()
    );
}
