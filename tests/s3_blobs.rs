//! The S3 blob store against a real S3-compatible server (s3s-fs, started by
//! `contrib/services.sh`; see `common/services.rs`): publish and install-shaped reads, a large
//! tarball streamed, gc and doctor on the bucket, an outage answered 503 with nothing committed,
//! and the real npm publishing and installing through it. Each test has a key prefix of its own.

mod common;

use std::io::Read;

use common::services::{self, S3Service};
use common::*;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as Key;
use object_store::{ObjectStoreExt, PutPayload};
use registry_core::blobs::{blob_relative_path, Blob};
use registry_core::maintenance::{delete_orphans, doctor, find_orphans, with_local_admin};
use serde_json::{json, Value};

fn start(tag: &str) -> TestRegistry {
    start_on_service(services::s3(), tag)
}

fn start_on_service(service: &S3Service, tag: &str) -> TestRegistry {
    TestRegistry::start_with(|config| service.configure(config, tag))
}

fn publish_tgz(reg: &TestRegistry, token: &str, name: &str, version: &str, tgz: &[u8]) -> u16 {
    client()
        .put(reg.url(&format!("/{}", escaped(name))))
        .bearer_auth(token)
        .json(&publish_body(name, version, tgz))
        .send()
        .expect("publish request")
        .status()
        .as_u16()
}

fn get_json(reg: &TestRegistry, path: &str, accept: &str) -> (u16, Value) {
    let response = client()
        .get(reg.url(path))
        .header("accept", accept)
        .send()
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

fn get_bytes(url: &str) -> (u16, Vec<u8>) {
    let response = client().get(url).send().expect("tarball request");
    let status = response.status().as_u16();
    (status, response.bytes().expect("body").to_vec())
}

/// The sha512 (hex) the registry names a blob by.
fn sha512_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha512};
    hex::encode(Sha512::digest(bytes))
}

/// The names of the objects in the registry's store (its prefix of the bucket).
fn object_names(reg: &TestRegistry) -> Vec<String> {
    let mut names: Vec<String> = reg
        .registry
        .blobs
        .list()
        .expect("list the bucket")
        .into_iter()
        .map(|o| o.name)
        .collect();
    names.sort();
    names
}

/// Files under the data directory's blob folder other than its temp directory: with the S3
/// store there must be none.
fn local_blob_files(reg: &TestRegistry) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![reg.registry.config.blobs_dir()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn a_published_tarball_is_stored_in_the_bucket_and_served_from_it_with_its_integrity() {
    let reg = start("install");
    let alice = reg.user_with_token("alice");
    let tgz = package_tarball("from-s3", "1.0.0");
    assert_eq!(publish_tgz(&reg, &alice, "from-s3", "1.0.0", &tgz), 201);

    assert_eq!(object_names(&reg), [sha512_hex(&tgz)]);
    assert!(
        local_blob_files(&reg).is_empty(),
        "nothing lands on the local disk: {:?}",
        local_blob_files(&reg)
    );

    // What npm install reads: the abbreviated document, then dist.tarball.
    let (status, doc) = get_json(&reg, "/from-s3", "application/vnd.npm.install-v1+json");
    assert_eq!(status, 200, "{doc}");
    let dist = &doc["versions"]["1.0.0"]["dist"];
    assert_eq!(dist["integrity"], json!(integrity(&tgz)));
    let url = dist["tarball"].as_str().expect("dist.tarball");
    let (status, bytes) = get_bytes(url);
    assert_eq!(status, 200);
    assert_eq!(bytes, tgz);
    assert_eq!(
        integrity(&bytes),
        dist["integrity"].as_str().unwrap_or_default()
    );

    // A HEAD has the length and no body; a conditional GET is a 304.
    let head = client().head(url).send().expect("HEAD");
    assert_eq!(head.status().as_u16(), 200);
    assert_eq!(
        head.headers()["content-length"].to_str().ok(),
        Some(tgz.len().to_string().as_str())
    );
    let etag = head.headers()["etag"].clone();
    let again = client()
        .get(url)
        .header("if-none-match", etag)
        .send()
        .expect("conditional GET");
    assert_eq!(again.status().as_u16(), 304);

    reg.registry.blobs.check().expect("the bucket is ready");
}

#[test]
fn a_20_mb_tarball_streams_from_the_bucket_byte_for_byte() {
    let reg = start("large");
    let alice = reg.user_with_token("alice");
    // Random bytes do not compress: the tarball itself is about 20 MB (more than two
    // multipart-sized parts of the S3 store's uploads, and many stream chunks).
    let mut noise = vec![0u8; 20 * 1024 * 1024];
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for byte in noise.iter_mut() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = state as u8;
    }
    let manifest = json!({"name": "big", "version": "1.0.0"}).to_string();
    let tgz = tarball(&[
        ("package/package.json", manifest.as_bytes()),
        ("package/noise.bin", &noise),
    ]);
    assert!(tgz.len() > 20_000_000, "{} bytes", tgz.len());
    assert_eq!(publish_tgz(&reg, &alice, "big", "1.0.0", &tgz), 201);

    let (status, bytes) = get_bytes(&reg.url("/big/-/big-1.0.0.tgz"));
    assert_eq!(status, 200);
    assert_eq!(bytes.len(), tgz.len());
    assert!(
        bytes == tgz,
        "the streamed bytes differ from the published ones"
    );

    // The blocking reader (doctor, backup) reads the same bytes.
    let (blob, len) = reg.registry.blobs.open(&sha512_hex(&tgz)).expect("open");
    assert!(matches!(blob, Blob::Stream(_)), "S3 blobs are streams");
    assert_eq!(len, tgz.len() as u64);
    let mut back = Vec::new();
    blob.into_reader().read_to_end(&mut back).expect("read");
    assert!(back == tgz);
}

#[test]
fn unpublish_then_gc_deletes_the_object_from_the_bucket() {
    let reg = start("gc");
    let alice = reg.user_with_token("alice");
    let kept = package_tarball("kept", "1.0.0");
    let gone = package_tarball("gone", "1.0.0");
    assert_eq!(publish_tgz(&reg, &alice, "kept", "1.0.0", &kept), 201);
    assert_eq!(publish_tgz(&reg, &alice, "gone", "1.0.0", &gone), 201);

    let (_, doc) = get_json(&reg, "/gone?write=true", "application/json");
    let rev = doc["_rev"].as_str().expect("_rev").to_string();
    let deleted = client()
        .delete(reg.url(&format!("/gone/-rev/{rev}")))
        .bearer_auth(&alice)
        .send()
        .expect("unpublish");
    assert_eq!(deleted.status().as_u16(), 200);

    let orphans = find_orphans(&reg.registry, std::time::Duration::ZERO).expect("find orphans");
    let names: Vec<&str> = orphans.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, [sha512_hex(&gone)]);
    assert!(
        orphans[0].location.starts_with("s3://") && orphans[0].location.ends_with(&names[0]),
        "{}",
        orphans[0].location
    );
    assert_eq!(orphans[0].size, gone.len() as u64);
    // A min age keeps what was just written (a publish may still be committing).
    let young = find_orphans(&reg.registry, std::time::Duration::from_secs(600)).expect("gc");
    assert!(young.is_empty(), "{young:?}");

    let freed = with_local_admin(|admin| delete_orphans(&reg.registry, admin, &orphans, |_| {}))
        .expect("delete orphans");
    assert_eq!(freed, gone.len() as u64);
    assert_eq!(object_names(&reg), [sha512_hex(&kept)]);
    let (status, bytes) = get_bytes(&reg.url("/kept/-/kept-1.0.0.tgz"));
    assert_eq!((status, bytes == kept), (200, true));
}

/// A client of the same bucket that writes under the registry's keys directly, as a fault
/// (or an operator) would.
fn write_behind_the_registry(service: &S3Service, reg: &TestRegistry, sha: &str, bytes: &[u8]) {
    let bucket = service.bucket();
    let prefix = reg
        .registry
        .config
        .blobs_url
        .as_deref()
        .and_then(|url| url.trim_start_matches("s3://").split_once('/'))
        .map(|(_, prefix)| prefix.to_string())
        .expect("the registry's prefix");
    let store = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(&service.region)
        .with_endpoint(&service.endpoint)
        .with_allow_http(true)
        .with_access_key_id(&service.access_key_id)
        .with_secret_access_key(&service.secret_access_key)
        .build()
        .expect("an S3 client");
    let key = Key::from(format!(
        "{prefix}/{}",
        blob_relative_path(sha).expect("blob id")
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime
        .block_on(store.put(&key, PutPayload::from(bytes.to_vec())))
        .expect("write the object");
}

#[test]
fn doctor_reports_a_missing_and_a_corrupted_object_in_the_bucket() {
    let service = services::s3();
    let reg = start_on_service(service, "doctor");
    let alice = reg.user_with_token("alice");
    for version in ["1.0.0", "1.0.1", "1.0.2"] {
        assert_eq!(publish(&reg, &alice, "checked", version), 201);
    }
    assert!(doctor(&reg.registry, || {}).expect("doctor").is_empty());

    let missing = sha512_hex(&package_tarball("checked", "1.0.0"));
    let corrupted = sha512_hex(&package_tarball("checked", "1.0.1"));
    let object = reg
        .registry
        .blobs
        .list()
        .expect("list")
        .into_iter()
        .find(|o| o.name == missing)
        .expect("the object of 1.0.0");
    reg.registry.blobs.delete(&object).expect("delete");
    write_behind_the_registry(service, &reg, &corrupted, b"not the tarball");

    let problems = doctor(&reg.registry, || {}).expect("doctor");
    let mut found: Vec<(&str, Option<&str>)> = problems
        .iter()
        .map(|p| (p.kind, p.version.as_deref()))
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("corrupt-blob", Some("1.0.1")),
            ("missing-blob", Some("1.0.0"))
        ],
        "{problems:?}"
    );
    // The missing one answers the clear 500 that names what to do, as on disk.
    let (status, body) = get_bytes(&reg.url("/checked/-/checked-1.0.0.tgz"));
    assert_eq!(status, 500);
    assert!(
        String::from_utf8_lossy(&body).contains("registry doctor"),
        "{}",
        String::from_utf8_lossy(&body)
    );
}

#[test]
fn with_the_bucket_down_a_publish_answers_503_and_commits_nothing() {
    // A set of services of its own, stopped halfway: the shared one stays up for the others.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/test-services")
        .join(format!("outage-{}", std::process::id()));
    let service = services::start_in(&dir);
    let reg = start_on_service(&service, "outage");
    let alice = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &alice, "fragile", "1.0.0"), 201);
    reg.registry.blobs.check().expect("ready while up");

    services::services_sh("down", &dir);
    let started = std::time::Instant::now();
    let tgz = package_tarball("fragile", "1.1.0");
    let response = client()
        .put(reg.url("/fragile"))
        .bearer_auth(&alice)
        .json(&publish_body("fragile", "1.1.0", &tgz))
        .send()
        .expect("publish request");
    assert_eq!(response.status().as_u16(), 503);
    let body: Value = response.json().expect("JSON error body");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("blob store") && error.contains("retry"),
        "{body}"
    );
    assert_eq!(body["reason"], body["error"]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "an outage is reported within the retry budget, not after minutes: {:?}",
        started.elapsed()
    );

    let (status, doc) = get_json(&reg, "/fragile", "application/json");
    assert_eq!(status, 200);
    let versions: Vec<&String> = doc["versions"]
        .as_object()
        .map(|v| v.keys().collect())
        .unwrap_or_default();
    assert_eq!(versions, ["1.0.0"], "nothing of 1.1.0 was committed");
    assert_eq!(doc["dist-tags"]["latest"], "1.0.0");
    let not_ready = reg
        .registry
        .blobs
        .check()
        .expect_err("not ready while down");
    assert_eq!(not_ready.status(), 503, "{not_ready}");
    let (status, _) = get_bytes(&reg.url("/fragile/-/fragile-1.0.0.tgz"));
    assert_eq!(status, 503, "a tarball read during the outage is a 503 too");

    // Back up where it was (services.sh keeps the port): the retried publish succeeds, as
    // npm's retry of a 5xx would.
    let back = services::start_in(&dir);
    assert_eq!(back.endpoint, service.endpoint);
    reg.registry.blobs.check().expect("ready again");
    assert_eq!(publish(&reg, &alice, "fragile", "1.1.0"), 201);
    let (status, bytes) = get_bytes(&reg.url("/fragile/-/fragile-1.1.0.tgz"));
    assert_eq!((status, bytes == tgz), (200, true));
    services::services_sh("down", &dir);
}

#[test]
fn npm_publishes_and_installs_through_the_s3_store() {
    let reg = start("npm");
    let token = reg.user_with_token("alice");
    let npm = Npm::new(&reg).with_token(&token);
    let src = npm.dir("src/s3-npm");
    write_package(&src, "s3-npm", "1.0.0", json!({}));
    npm.ok(&src, &["publish"]);
    let tgz_names = object_names(&reg);
    assert_eq!(tgz_names.len(), 1, "npm's tarball is in the bucket");

    let app = npm.dir("app");
    std::fs::write(
        app.join("package.json"),
        json!({"name": "app", "version": "0.0.0", "private": true}).to_string(),
    )
    .expect("write package.json");
    npm.ok(&app, &["install", "s3-npm@1.0.0", "--prefer-online"]);
    let installed: Value = serde_json::from_slice(
        &std::fs::read(app.join("node_modules/s3-npm/package.json")).expect("installed"),
    )
    .expect("JSON");
    assert_eq!(installed["version"], "1.0.0");
    let lock: Value =
        serde_json::from_slice(&std::fs::read(app.join("package-lock.json")).expect("lockfile"))
            .expect("JSON");
    let (_, doc) = get_json(&reg, "/s3-npm", "application/json");
    assert_eq!(
        lock["packages"]["node_modules/s3-npm"]["integrity"],
        doc["versions"]["1.0.0"]["dist"]["integrity"]
    );
}
