//! `registry doctor`, `gc` and `backup` in local mode against the S3 blob store (a real
//! s3s-fs from `contrib/services.sh`), configured through the environment as an operator
//! would; and a bad S3 setting stopping the binary with exit 2.

mod common;

use std::process::Stdio;

use common::services;
use common::*;
use registry_core::accounts::auth::Identity;
use registry_core::accounts::authz::require_writer;
use registry_core::accounts::users::{create_user, NewUser};
use registry_core::config::Config;
use registry_core::packages::names::PackageName;
use registry_core::packages::publish::{publish, PublishLimits};
use registry_core::Registry;
use serde_json::Value;

const FAILED: i32 = 1;
const USAGE: i32 = 2;

/// `registry ARGS --data-dir DATA` with the S3 settings of `config` in its environment.
fn run_with_s3(config: &Config, args: &[&str]) -> (i32, Value, String) {
    let service = services::s3();
    let output = registry()
        .args(args)
        .arg("--data-dir")
        .arg(&config.data_dir)
        .env(
            "REGISTRY_BLOBS_URL",
            config.blobs_url.as_deref().unwrap_or_default(),
        )
        .env("REGISTRY_S3_ENDPOINT", &service.endpoint)
        .env("REGISTRY_S3_REGION", &service.region)
        .env("REGISTRY_S3_PATH_STYLE", service.path_style.to_string())
        .env("AWS_ACCESS_KEY_ID", &service.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &service.secret_access_key)
        .stdin(Stdio::null())
        .output()
        .expect("run registry");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (output.status.code().unwrap_or(-1), json, stderr)
}

#[test]
fn doctor_gc_and_backup_work_on_the_bucket_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config {
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    services::s3().configure(&mut config, "cli");
    let registry = Registry::open(config.clone()).expect("open the registry on S3");
    let user = create_user(
        &registry.store,
        &NewUser {
            name: "alice",
            email: "alice@example.com",
            password: "alice-password",
            admin: false,
        },
    )
    .expect("create user");
    let identity = Identity { user, token: None };
    let writer = require_writer(Some(&identity)).expect("writer");
    let tgz = package_tarball("on-s3", "1.0.0");
    publish(
        &registry.store,
        registry.blobs.as_ref(),
        &writer,
        &PackageName::parse("on-s3").expect("name"),
        &publish_body("on-s3", "1.0.0", &tgz),
        &PublishLimits::of(&registry.config),
    )
    .expect("publish");

    let (code, healthy, stderr) = run_with_s3(&config, &["doctor", "--json"]);
    assert_eq!(
        (code, &healthy["ok"]),
        (0, &Value::Bool(true)),
        "{healthy} {stderr}"
    );
    let (code, gc, stderr) = run_with_s3(&config, &["gc", "--json"]);
    assert_eq!((code, &gc["count"]), (0, &Value::from(0)), "{gc} {stderr}");

    let dest = dir.path().join("backup");
    let dest_str = dest.to_str().expect("utf-8");
    let (code, report, stderr) = run_with_s3(&config, &["backup", dest_str, "--json"]);
    assert_eq!(
        (code, &report["blobs"]),
        (0, &Value::from(1)),
        "{report} {stderr}"
    );
    let sha = {
        use sha2::{Digest, Sha512};
        hex::encode(Sha512::digest(&tgz))
    };
    let copied = dest
        .join("blobs")
        .join(registry_core::blobs::blob_relative_path(&sha).expect("blob id"));
    assert_eq!(
        std::fs::read(copied).expect("the backup holds the object"),
        tgz
    );

    let object = registry.blobs.list().expect("list").remove(0);
    registry
        .blobs
        .delete(&object)
        .expect("delete behind the registry");
    let (code, sick, stderr) = run_with_s3(&config, &["doctor", "--json"]);
    assert_eq!(code, FAILED, "{sick} {stderr}");
    assert_eq!(sick["problems"][0]["kind"], "missing-blob", "{sick}");
}

#[test]
fn a_bad_s3_setting_stops_the_binary_with_a_usage_error_that_names_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config {
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    config.blobs_url = Some("https://not-s3.example/bucket".to_string());
    let (code, _, stderr) = run_with_s3(&config, &["doctor"]);
    assert_eq!(code, USAGE, "{stderr}");
    assert!(
        stderr.contains("blobs_url") && stderr.contains("env REGISTRY_BLOBS_URL"),
        "{stderr}"
    );
}
