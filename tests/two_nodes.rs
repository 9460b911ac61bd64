//! Two daemons on one PostgreSQL database and one S3 bucket (`contrib/services.sh`'s) behave
//! as one registry: requests alternate between them, and what one node writes the other
//! serves at once, whatever either had in memory.

mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::fake_http::{Canned, FakeHttp};
use common::*;
use registry_core::config::Config;
use serde_json::{json, Value};

/// A and B, on the same schema and the same bucket prefix.
fn two_nodes(configure: impl Fn(&mut Config)) -> (TestRegistry, TestRegistry, tempfile::TempDir) {
    let shared = tempfile::tempdir().expect("temp dir");
    let database_url = services::postgres_schema_url(shared.path());
    let mut blobs = Config::default();
    services::s3().configure(&mut blobs, "two-nodes");
    let node = || {
        TestRegistry::start_with(|c| {
            c.database_url = Some(database_url.clone());
            c.blobs_url = blobs.blobs_url.clone();
            c.s3_endpoint = blobs.s3_endpoint.clone();
            c.s3_region = blobs.s3_region.clone();
            c.s3_path_style = blobs.s3_path_style;
            c.s3_access_key_id = blobs.s3_access_key_id.clone();
            c.s3_secret_access_key = blobs.s3_secret_access_key.clone();
            configure(c);
        })
    };
    let a = node();
    let b = node();
    (a, b, shared)
}

fn get(reg: &TestRegistry, path: &str) -> (u16, Vec<u8>) {
    let response = client().get(reg.url(path)).send().expect("GET");
    let status = response.status().as_u16();
    (status, response.bytes().expect("body").to_vec())
}

fn get_json(reg: &TestRegistry, path: &str) -> (u16, Value) {
    let (status, body) = get(reg, path);
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn publish_bytes(reg: &TestRegistry, token: &str, name: &str, version: &str, tgz: &[u8]) -> u16 {
    client()
        .put(reg.url(&format!("/{}", escaped(name))))
        .bearer_auth(token)
        .json(&publish_body(name, version, tgz))
        .send()
        .expect("PUT")
        .status()
        .as_u16()
}

#[test]
fn what_one_node_writes_the_other_serves_at_once() {
    let (a, b, _shared) = two_nodes(|_| {});
    // A user made through A's database is B's user too: one database.
    let token = a.user_with_token("alice");
    let (status, who) = {
        let response = client()
            .get(b.url("/-/whoami"))
            .bearer_auth(&token)
            .send()
            .expect("whoami");
        (
            response.status().as_u16(),
            response.json::<Value>().unwrap_or(Value::Null),
        )
    };
    assert_eq!((status, who["username"].as_str()), (200, Some("alice")));

    // B has answered "not found" (and may remember it) before A publishes.
    assert_eq!(get(&b, "/shared-pkg").0, 404);
    assert_eq!(get(&b, "/shared-pkg/-/shared-pkg-1.0.0.tgz").0, 404);
    for (round, writer, reader) in [(0, &a, &b), (1, &b, &a), (2, &a, &b), (3, &b, &a)] {
        let version = format!("1.{round}.0");
        // The reader has served the package as it was just before this publish.
        let (status, before) = get_json(reader, "/shared-pkg");
        assert_eq!(status, if round == 0 { 404 } else { 200 });
        assert!(before["versions"].get(&version).is_none());

        let tgz = package_tarball("shared-pkg", &version);
        assert_eq!(
            publish_bytes(writer, &token, "shared-pkg", &version, &tgz),
            201
        );

        let (status, doc) = get_json(reader, "/shared-pkg");
        assert_eq!(status, 200, "round {round}");
        assert_eq!(
            doc["dist-tags"]["latest"],
            json!(version),
            "round {round}: {doc}"
        );
        let (status, bytes) = get(reader, &format!("/shared-pkg/-/shared-pkg-{version}.tgz"));
        assert_eq!(status, 200, "round {round}");
        assert_eq!(
            bytes, tgz,
            "round {round}: the other node serves the same bytes"
        );
    }

    // A block set through one node holds on the other at once.
    let admin = {
        a.add_user_with("root", "root-password-1", true);
        a.token("root", Default::default())
    };
    let blocked = client()
        .put(a.url("/-/package/shared-pkg/blocks"))
        .bearer_auth(&admin)
        .json(&json!({"reason": "two-node check"}))
        .send()
        .expect("block")
        .status()
        .as_u16();
    assert!((200..300).contains(&blocked), "block answered {blocked}");
    assert_ne!(get(&b, "/shared-pkg/-/shared-pkg-1.3.0.tgz").0, 200);
    assert_ne!(get(&b, "/shared-pkg").0, 200);
}

#[test]
fn two_nodes_publishing_one_version_at_once_store_it_once() {
    let (a, b, _shared) = two_nodes(|_| {});
    let token = a.user_with_token("alice");
    assert_eq!(
        publish_bytes(
            &a,
            &token,
            "race",
            "0.0.1",
            &package_tarball("race", "0.0.1")
        ),
        201
    );
    for round in 0..8 {
        let version = format!("1.0.{round}");
        let barrier = Arc::new(Barrier::new(2));
        let racers: Vec<_> = [&a, &b]
            .into_iter()
            .enumerate()
            .map(|(node, reg)| {
                let url = reg.url("/race");
                let token = token.clone();
                let barrier = Arc::clone(&barrier);
                let version = version.clone();
                std::thread::spawn(move || {
                    // Each node gets a different tarball: which one is stored tells who won.
                    let tgz = tarball(&[(
                        "package/package.json",
                        format!(r#"{{"name":"race","version":"{version}","node":{node}}}"#)
                            .as_bytes(),
                    )]);
                    let body = publish_body("race", &version, &tgz);
                    barrier.wait();
                    let response = client()
                        .put(url)
                        .bearer_auth(token)
                        .json(&body)
                        .send()
                        .expect("PUT");
                    let status = response.status().as_u16();
                    if status != 201 {
                        eprintln!(
                            "node {node}: {status} {}",
                            response.text().unwrap_or_default()
                        );
                    }
                    (status, tgz)
                })
            })
            .collect();
        let outcomes: Vec<(u16, Vec<u8>)> = racers
            .into_iter()
            .map(|racer| racer.join().expect("racer"))
            .collect();
        let winners: Vec<&Vec<u8>> = outcomes
            .iter()
            .filter(|(status, _)| *status == 201)
            .map(|(_, tgz)| tgz)
            .collect();
        assert_eq!(
            winners.len(),
            1,
            "round {round}: {:?}",
            outcomes.iter().map(|o| o.0).collect::<Vec<_>>()
        );
        for (status, _) in &outcomes {
            assert!(
                *status == 201 || *status == 403 || *status == 409,
                "round {round}: the loser is refused, not failed: {status}"
            );
        }
        for reader in [&a, &b] {
            let (status, bytes) = get(reader, &format!("/race/-/race-{version}.tgz"));
            assert_eq!(status, 200);
            assert_eq!(&bytes, winners[0], "round {round}: the winner's bytes");
        }
    }
    let (_, doc) = get_json(&b, "/race");
    assert_eq!(doc["versions"].as_object().map(|v| v.len()), Some(9));
}

#[test]
fn download_counts_from_both_nodes_add_up() {
    let (a, b, _shared) = two_nodes(|c| c.download_flush_secs = 1);
    let token = a.user_with_token("alice");
    let tgz = package_tarball("counted", "1.0.0");
    assert_eq!(publish_bytes(&a, &token, "counted", "1.0.0", &tgz), 201);
    for (reg, times) in [(&a, 3), (&b, 2)] {
        for _ in 0..times {
            assert_eq!(get(reg, "/counted/-/counted-1.0.0.tgz").0, 200);
        }
    }
    let started = Instant::now();
    loop {
        let counts: Vec<Value> = [&a, &b]
            .iter()
            .map(|reg| get_json(reg, "/downloads/point/last-day/counted").1["downloads"].clone())
            .collect();
        if counts.iter().all(|c| *c == json!(5)) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "both nodes should count 5 downloads: {counts:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_hook_fires_once_though_both_nodes_deliver() {
    let (a, b, _shared) = two_nodes(|c| {
        c.hooks_allow_private = true;
        c.hooks_retry_base_ms = 50;
    });
    let receiver = FakeHttp::start(|_| Canned::new(200, "text/plain", "ok"));
    let token = a.user_with_token("alice");
    let first = package_tarball("hooked", "0.1.0");
    assert_eq!(publish_bytes(&a, &token, "hooked", "0.1.0", &first), 201);
    let created = client()
        .post(b.url("/-/npm/v1/hooks/hook"))
        .bearer_auth(&token)
        .json(&json!({"type": "package", "name": "hooked", "endpoint": receiver.url("/hook"), "secret": "s3cret"}))
        .send()
        .expect("POST hook")
        .status()
        .as_u16();
    assert_eq!(created, 201);
    for (round, reg) in [&a, &b, &a, &b].into_iter().enumerate() {
        let version = format!("1.0.{round}");
        let tgz = package_tarball("hooked", &version);
        assert_eq!(publish_bytes(reg, &token, "hooked", &version, &tgz), 201);
    }
    let started = Instant::now();
    while receiver.requests().len() < 4 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "only {} of 4 deliveries arrived",
            receiver.requests().len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Both dispatchers had time to take any delivery twice; none did.
    std::thread::sleep(Duration::from_millis(1500));
    let ids: Vec<String> = receiver
        .requests()
        .iter()
        .filter_map(|r| r.header("x-registry-delivery").map(str::to_string))
        .collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        (ids.len(), unique.len()),
        (4, 4),
        "each delivery once: {ids:?}"
    );
}
