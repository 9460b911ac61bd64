//! Concurrency: publishers (two racing for the same version numbers), readers, a tagger and
//! an unpublisher at once, bounded in time. Afterwards: exactly one winner per version number,
//! every acknowledged publish readable with matching bytes, packuments in agreement with the
//! versions table, no 5xx and no request slower than a bound (no deadlock) — and `registry
//! doctor`'s check finds no missing or corrupt blob and no stale packument.
//!
//! CI runs it for a few seconds; `REGISTRY_STRESS_SECS=120 cargo test --test stress` for long.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use registry_core::packages::packument::PackumentFlavor;
use serde_json::{json, Value};

const SLOWEST_ALLOWED: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    server_errors: AtomicU64,
    slowest_ms: AtomicU64,
    /// (package, version) → sha1 of every acknowledged publish.
    acknowledged: Mutex<BTreeMap<(String, String), BTreeSet<String>>>,
    unpublished: Mutex<BTreeSet<(String, String)>>,
}

impl Tally {
    fn timed(&self, started: Instant, status: u16) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if status >= 500 {
            self.server_errors.fetch_add(1, Ordering::Relaxed);
        }
        let ms = started.elapsed().as_millis() as u64;
        self.slowest_ms.fetch_max(ms, Ordering::Relaxed);
    }
}

fn body_for(name: &str, version: &str, salt: u64) -> (Value, String) {
    let manifest = json!({ "name": name, "version": version }).to_string();
    let index = format!("module.exports = {salt};\n");
    let tgz = tarball(&[
        ("package/package.json", manifest.as_bytes()),
        ("package/index.js", index.as_bytes()),
    ]);
    (publish_body(name, version, &tgz), shasum(&tgz))
}

#[test]
fn concurrent_publishes_reads_tags_and_unpublishes_keep_every_invariant() {
    let seconds: u64 = std::env::var("REGISTRY_STRESS_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let reg = TestRegistry::start();
    let token = reg.user_with_token("stress");
    let base = reg.base.clone();
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();

    // Publishers: 0 and 1 race for the same versions of `raced`; 2 and 3 own a package each.
    for worker in 0..4u64 {
        let (base, token, tally, stop) = (base.clone(), token.clone(), tally.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            let http = client();
            let name = if worker < 2 {
                "raced".to_string()
            } else {
                format!("@stress/own-{worker}")
            };
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let version = format!("1.{n}.0");
                let (body, sha1) = body_for(&name, &version, worker << 32 | n);
                let started = Instant::now();
                let response = http
                    .put(format!("{base}/{}", escaped(&name)))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .expect("publish");
                let status = response.status().as_u16();
                tally.timed(started, status);
                if response.status().is_success() {
                    tally
                        .acknowledged
                        .lock()
                        .expect("lock")
                        .entry((name.clone(), version))
                        .or_default()
                        .insert(sha1);
                } else {
                    assert!(
                        status == 403 || status == 409,
                        "publish {name}@1.{n}.0 got {status}"
                    );
                }
                n += 1;
            }
        }));
    }

    // Readers: every version a packument lists must have its tarball (none half-written).
    for _ in 0..2 {
        let (base, tally, stop) = (base.clone(), tally.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            let http = client();
            while !stop.load(Ordering::Relaxed) {
                for name in ["raced", "@stress/own-2"] {
                    let started = Instant::now();
                    let response = http
                        .get(format!("{base}/{}", escaped(name)))
                        .send()
                        .expect("GET");
                    let status = response.status().as_u16();
                    tally.timed(started, status);
                    if status != 200 {
                        assert_eq!(status, 404, "GET {name}");
                        continue;
                    }
                    let doc: Value = response.json().expect("packument JSON");
                    let latest = doc["dist-tags"]["latest"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    assert!(
                        doc["versions"].get(&latest).is_some(),
                        "latest {latest} of {name} is not a listed version"
                    );
                    if let Some(url) = doc["versions"][&latest]["dist"]["tarball"].as_str() {
                        let started = Instant::now();
                        let tarball = http.get(url).send().expect("tarball");
                        let status = tarball.status().as_u16();
                        tally.timed(started, status);
                        // An unpublisher may remove it between the two reads; nothing else may.
                        assert!(status == 200 || status == 404, "tarball {url}: {status}");
                    }
                }
            }
        }));
    }

    // A tagger moves `stable` around on `raced`; an unpublisher removes versions of own-3.
    {
        let (base, token, tally, stop) = (base.clone(), token.clone(), tally.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            let http = client();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let status = http
                    .put(format!("{base}/-/package/raced/dist-tags/stable"))
                    .bearer_auth(&token)
                    .json(&json!(format!("1.{}.0", n / 2)))
                    .send()
                    .expect("tag")
                    .status()
                    .as_u16();
                tally.timed(started, status);
                assert!(status < 500, "dist-tag got {status}");
                n += 1;
            }
        }));
    }
    {
        let (base, token, tally, stop) = (base.clone(), token.clone(), tally.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            let http = client();
            let name = "@stress/own-3";
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
                let version = format!("1.{n}.0");
                let started = Instant::now();
                let doc = http
                    .get(format!("{base}/{}?write=true", escaped(name)))
                    .bearer_auth(&token)
                    .send()
                    .expect("GET");
                tally.timed(started, doc.status().as_u16());
                let Ok(mut doc) = doc.json::<Value>() else {
                    continue;
                };
                let Some(versions) = doc["versions"].as_object_mut() else {
                    continue;
                };
                if versions.len() < 2 || versions.remove(&version).is_none() {
                    continue;
                }
                let rev = doc["_rev"].as_str().unwrap_or_default().to_string();
                let started = Instant::now();
                let status = http
                    .put(format!("{base}/{}/-rev/{rev}", escaped(name)))
                    .bearer_auth(&token)
                    .json(&doc)
                    .send()
                    .expect("unpublish")
                    .status()
                    .as_u16();
                tally.timed(started, status);
                assert!(status == 200 || status == 409, "unpublish got {status}");
                if status == 200 {
                    tally
                        .unpublished
                        .lock()
                        .expect("lock")
                        .insert((name.to_string(), version));
                }
                n += 1;
            }
        }));
    }

    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().expect("a worker failed");
    }

    assert_eq!(tally.server_errors.load(Ordering::Relaxed), 0, "no 5xx");
    let slowest = Duration::from_millis(tally.slowest_ms.load(Ordering::Relaxed));
    assert!(
        slowest < SLOWEST_ALLOWED,
        "slowest request took {slowest:?}"
    );

    let acknowledged = tally.acknowledged.lock().expect("lock").clone();
    let unpublished = tally.unpublished.lock().expect("lock").clone();
    let http = client();
    for ((name, version), shas) in &acknowledged {
        assert_eq!(
            shas.len(),
            1,
            "{name}@{version} was acknowledged with {} different tarballs",
            shas.len()
        );
        let sha1 = shas.iter().next().expect("one");
        let tarball = http
            .get(reg.url(&format!(
                "/{name}/-/{}-{version}.tgz",
                name.rsplit('/').next().unwrap_or(name)
            )))
            .send()
            .expect("GET");
        if unpublished.contains(&(name.clone(), version.clone())) {
            assert_eq!(
                tarball.status().as_u16(),
                404,
                "{name}@{version} was unpublished"
            );
            continue;
        }
        assert_eq!(tarball.status().as_u16(), 200, "{name}@{version}");
        assert_eq!(
            &shasum(&tarball.bytes().expect("bytes")),
            sha1,
            "{name}@{version} bytes"
        );
    }

    // Packuments agree with the versions table.
    for name in ["raced", "@stress/own-2", "@stress/own-3"] {
        let (stored_live, doc) = reg
            .registry
            .store
            .read(|db| {
                let package = db.package_by_name(name)?.expect("package exists");
                let live: BTreeSet<String> = db
                    .versions(package.id)?
                    .into_iter()
                    .filter(|v| v.deleted_at.is_none())
                    .map(|v| v.version)
                    .collect();
                let body = registry_core::packages::packument::build_current(
                    db,
                    name,
                    PackumentFlavor::Full,
                )?
                .expect("packument");
                Ok((live, body.json))
            })
            .expect("read");
        let doc: Value = serde_json::from_slice(&doc).expect("JSON");
        let listed: BTreeSet<String> = doc["versions"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        assert_eq!(
            listed, stored_live,
            "{name}: packument and versions table disagree"
        );
    }
    // And `registry doctor`'s check: every live version's blob present with its sha512, every
    // stored packument what the tables say it should be.
    let doctor_started = Instant::now();
    let problems = registry_core::maintenance::doctor(&reg.registry, || {}).expect("doctor runs");
    assert!(problems.is_empty(), "doctor found problems: {problems:?}");
    let doctor_took = doctor_started.elapsed();
    eprintln!(
        "stress: {} requests in {seconds}s, {} acknowledged publishes, {} unpublished, slowest \
         {slowest:?}, doctor {doctor_took:?}",
        tally.requests.load(Ordering::Relaxed),
        acknowledged.len(),
        unpublished.len()
    );
}
