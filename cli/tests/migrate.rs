//! `registry migrate`: a single-node registry with real content (users and tokens, versions
//! and tags, a scoped package in an org with a team grant, a hook with an event queued,
//! download counts) copied into a fresh PostgreSQL schema and S3 prefix of the services
//! `contrib/services.sh` runs, then served from there as a node would serve it; and a target
//! that holds data refused and left as it was.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::Stdio;

use common::services;
use common::*;
use registry_core::accounts::auth::{authenticate, Identity};
use registry_core::accounts::authz::require_writer;
use registry_core::accounts::tokens::{create_token, TokenOptions};
use registry_core::accounts::users::{create_user, NewUser};
use registry_core::config::Config;
use registry_core::packages::names::PackageName;
use registry_core::packages::packument::PackumentFlavor;
use registry_core::packages::publish::{publish, PublishLimits};
use registry_core::packages::search::{search, SearchRequest};
use registry_core::Registry;
use serde_json::Value;
use sha2::{Digest, Sha512};

const FAILED: i32 = 1;

/// `registry migrate --to URL --blobs-url URL --json --data-dir DATA`, with the S3 service's
/// endpoint and credentials in the environment as an operator would set them.
fn migrate(data: &Path, to: &str, blobs_url: &str) -> Run {
    let service = services::s3();
    let output = registry()
        .args(["migrate", "--to", to, "--blobs-url", blobs_url, "--json"])
        .arg("--data-dir")
        .arg(data)
        .env("REGISTRY_S3_ENDPOINT", &service.endpoint)
        .env("REGISTRY_S3_REGION", &service.region)
        .env("REGISTRY_S3_PATH_STYLE", service.path_style.to_string())
        .env("AWS_ACCESS_KEY_ID", &service.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &service.secret_access_key)
        .stdin(Stdio::null())
        .output()
        .expect("run registry migrate");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).to_string(),
    }
}

/// The configuration of a node of the scaled-out registry: the migrated database and bucket
/// prefix, and a data directory of its own (nothing of the old one is needed).
fn node_config(dir: &Path, database_url: &str) -> Config {
    let mut config = Config {
        data_dir: dir.join("node"),
        ..Config::default()
    };
    config.database_url = Some(database_url.to_string());
    services::s3().configure(&mut config, "migrate");
    config
}

fn tarball_bytes(registry: &Registry, name: &str, file: &str) -> Vec<u8> {
    let package = PackageName::parse(name).expect("name");
    let tarball = registry
        .tarball(&package, file, None)
        .expect("read the tarball")
        .expect("a local package");
    let mut bytes = Vec::new();
    tarball
        .blob
        .into_reader()
        .read_to_end(&mut bytes)
        .expect("read the blob");
    bytes
}

fn packument(registry: &Registry, name: &str) -> Value {
    let package = PackageName::parse(name).expect("name");
    let document = registry
        .packument(&package, PackumentFlavor::Full)
        .expect("the packument");
    serde_json::from_slice(&document.json).expect("JSON")
}

fn user_names(registry: &Registry) -> Vec<String> {
    registry_core::maintenance::with_local_admin(|admin| {
        registry_core::maintenance::list_users(&registry.store, admin)
    })
    .expect("list users")
    .into_iter()
    .map(|u| u.name)
    .collect()
}

/// One number the target database answers, read past the registry (what the store's
/// interface does not show: a table's raw rows).
fn one_number(database_url: &str, sql: &str) -> i64 {
    let mut client =
        postgres::Client::connect(database_url, postgres::NoTls).expect("connect to the target");
    client.query_one(sql, &[]).expect(sql).get(0)
}

fn publish_as(registry: &Registry, user: &str, name: &str, version: &str) {
    let user = registry_core::accounts::users::find_user(&registry.store, user)
        .expect("read user")
        .expect("user exists");
    let identity = Identity { user, token: None };
    let writer = require_writer(Some(&identity)).expect("writer");
    let tgz = package_tarball(name, version);
    publish(
        &registry.store,
        registry.blobs.as_ref(),
        &writer,
        &PackageName::parse(name).expect("name"),
        &publish_body(name, version, &tgz),
        &PublishLimits::of(&registry.config),
    )
    .expect("publish");
}

#[test]
fn a_migrated_registry_serves_everything_from_postgresql_and_s3_and_takes_new_writes() {
    // root, alice and bob; root's token; left-pad 1.0.0, 1.1.0, 2.0.0-beta.1 (latest and
    // next) and @acme/widget 1.0.0, all published by alice.
    let fixture = Fixture::new();
    let alice_token = fixture
        .run(&["token", "create", "--user", "alice"])
        .ok()
        .stdout
        .trim()
        .to_string();
    fixture
        .run(&["dist-tag", "add", "left-pad@1.0.0", "stable"])
        .ok();
    fixture
        .run(&["org", "create", "acme", "--owner", "alice"])
        .ok();
    fixture.run(&["org", "set", "acme", "bob"]).ok();
    fixture.run(&["team", "create", "acme:devs"]).ok();
    fixture.run(&["team", "add", "acme:devs", "bob"]).ok();
    fixture
        .run(&["access", "set", "@acme/widget", "restricted"])
        .ok();
    fixture
        .run(&["access", "grant", "read-only", "acme:devs", "@acme/widget"])
        .ok();
    fixture
        .run(&[
            "hook",
            "add",
            "left-pad",
            "https://93.184.216.34/hook",
            "hook-secret",
            "--user",
            "alice",
        ])
        .ok();
    // After the hook: its event waits in the outbox, and goes along.
    fixture.publish("alice", "left-pad", "1.2.0");
    fixture.count_downloads("left-pad", &[("1.0.0", 3), ("1.2.0", 2)]);

    let source = fixture.open();
    let expected_packuments: Vec<Value> = ["left-pad", "@acme/widget"]
        .iter()
        .map(|name| packument(&source, name))
        .collect();
    let expected_tarball = tarball_bytes(&source, "left-pad", "left-pad-1.1.0.tgz");
    drop(source);

    let target_url = services::postgres_schema_url(&fixture.dir.path().join("target"));
    let config = node_config(fixture.dir.path(), &target_url);
    let blobs_url = config.blobs_url.clone().expect("an S3 prefix");
    let run = migrate(&fixture.data, &target_url, &blobs_url).ok();
    let report = run.json();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["doctor"]["problems"], serde_json::json!([]));
    let tables = &report["tables"];
    for (table, rows) in [
        ("users", 3),
        ("tokens", 2),
        ("packages", 2),
        ("versions", 5),
        ("dist_tags", 4),
        ("maintainers", 2),
        ("orgs", 1),
        ("org_members", 2),
        ("teams", 2),
        ("team_members", 3),
        ("team_packages", 1),
        ("hooks", 1),
        ("downloads", 2),
        ("search_docs", 2),
        ("search_fts", 2),
        ("search_generation", 1),
    ] {
        assert_eq!(tables[table], rows, "{table}: {report}");
    }
    assert!(tables["changes"].as_u64() > Some(5), "{report}");
    assert!(tables["hook_events"].as_u64() >= Some(1), "{report}");
    assert_eq!(
        report["rows"].as_u64(),
        Some(
            tables
                .as_object()
                .expect("tables")
                .values()
                .filter_map(Value::as_u64)
                .sum()
        )
    );
    assert_eq!(report["blobs"]["copied"], 5, "{report}");
    assert_eq!(report["blobs"]["present"], 0, "{report}");
    assert!(report["to"]
        .as_str()
        .is_some_and(|to| to.starts_with("postgres://")));

    // A node on the migrated stores sees what the single node had.
    let node = Registry::open(config.clone()).expect("open the migrated registry");
    assert_eq!(
        node.store.dialect(),
        registry_core::store::Dialect::Postgres
    );
    assert_eq!(user_names(&node), ["alice", "bob", "root"]);
    for (name, expected) in ["left-pad", "@acme/widget"]
        .iter()
        .zip(&expected_packuments)
    {
        assert_eq!(&packument(&node, name), expected, "{name}");
    }
    let tarball = tarball_bytes(&node, "left-pad", "left-pad-1.1.0.tgz");
    assert_eq!(
        hex::encode(Sha512::digest(&tarball)),
        hex::encode(Sha512::digest(&expected_tarball))
    );
    assert_eq!(
        one_number(&target_url, "SELECT count(*) FROM search_generation"),
        1,
        "the seeded row was replaced by the source's, not added to"
    );
    for (token, user) in [(&fixture.root_token, "root"), (&alice_token, "alice")] {
        let identity = authenticate(
            &node.store,
            &node.credentials,
            Some(&format!("Bearer {token}")),
        )
        .expect("the token authenticates")
        .expect("an identity");
        assert_eq!(identity.user.name, user);
    }
    let found = search(
        &node.store,
        &SearchRequest::parse(Some("left-pad"), None, None).expect("request"),
        None,
    )
    .expect("search");
    assert_eq!(found.total, 1, "{:?}", found.objects);

    // New rows get new ids: every identity sequence was moved past the copied ones.
    let carol = create_user(
        &node.store,
        &NewUser {
            name: "carol",
            email: "carol@example.com",
            password: "carol-password",
            admin: false,
        },
    )
    .expect("a new user");
    create_token(&node.store, carol.id, &TokenOptions::default()).expect("a new token");
    publish_as(&node, "alice", "left-pad", "1.3.0");
    publish_as(&node, "carol", "after-migrate", "1.0.0");
    let after = packument(&node, "after-migrate");
    assert_eq!(after["dist-tags"]["latest"], "1.0.0", "{after}");
    assert_eq!(packument(&node, "left-pad")["dist-tags"]["latest"], "1.3.0");
    assert_eq!(
        tarball_bytes(&node, "after-migrate", "after-migrate-1.0.0.tgz"),
        package_tarball("after-migrate", "1.0.0")
    );
    let problems = registry_core::maintenance::doctor(&node, || {}).expect("doctor");
    assert!(problems.is_empty(), "{problems:?}");
    drop(node);

    // Into a target that holds data: refused, and nothing written anywhere.
    let mut second = node_config(fixture.dir.path(), &target_url);
    second.data_dir = fixture.dir.path().join("second");
    let other_prefix = second.blobs_url.clone().expect("an S3 prefix");
    let refused = migrate(&fixture.data, &target_url, &other_prefix).fails(FAILED);
    assert!(
        refused.stderr.contains("not empty") && refused.stderr.contains("users"),
        "{}",
        refused.stderr
    );
    let node = Registry::open(config).expect("reopen");
    assert_eq!(user_names(&node), ["alice", "bob", "carol", "root"]);
    assert_eq!(packument(&node, "left-pad")["dist-tags"]["latest"], "1.3.0");
    let untouched = Registry::open(second).expect("open the other prefix");
    assert!(
        untouched.blobs.list().expect("list").is_empty(),
        "no tarball is uploaded for a refused target"
    );
}
