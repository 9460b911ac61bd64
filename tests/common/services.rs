//! Real services for the tests that need them. When `REGISTRY_BLOBS_URL` is set (a CI job that
//! started the services itself), its S3 settings are used; otherwise the first test that asks
//! runs `contrib/services.sh up target/test-services/run`, once per test binary. The script is
//! idempotent and locks its directory, so binaries running at the same time share one set of
//! services, which later runs reuse; `.ci/run` stops them at its end (`down`).

#![allow(dead_code)] // each test binary uses a different part of it

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use registry_core::config::{Config, Secret};

/// What `contrib/services.sh up` exports, for the S3 blob store.
#[derive(Debug, Clone)]
pub struct S3Service {
    pub blobs_url: String,
    pub endpoint: String,
    pub region: String,
    pub path_style: bool,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl S3Service {
    fn from_vars(get: impl Fn(&str) -> Option<String>) -> Option<S3Service> {
        Some(S3Service {
            blobs_url: get("REGISTRY_BLOBS_URL")?,
            endpoint: get("REGISTRY_S3_ENDPOINT")?,
            region: get("REGISTRY_S3_REGION").unwrap_or_else(|| "us-east-1".to_string()),
            path_style: get("REGISTRY_S3_PATH_STYLE").is_some_and(|v| v == "true" || v == "1"),
            access_key_id: get("AWS_ACCESS_KEY_ID")?,
            secret_access_key: get("AWS_SECRET_ACCESS_KEY")?,
        })
    }

    /// The bucket of `blobs_url`.
    pub fn bucket(&self) -> &str {
        let rest = self.blobs_url.trim_start_matches("s3://");
        rest.split_once('/').map_or(rest, |(bucket, _)| bucket)
    }

    /// Points `config` at this store's bucket, under a prefix of its own (`tag` plus a random
    /// part), so that tests sharing the bucket never see each other's objects. Short: s3s-fs
    /// names a metadata file by the base64 of the key, which caps keys near 160 bytes there
    /// (S3's own limit is 1024), and a blob's key is the prefix plus 135.
    pub fn configure(&self, config: &mut Config, tag: &str) {
        let unique = format!("{tag}-{:08x}", unique_u32());
        config.blobs_url = Some(format!("s3://{}/{unique}", self.bucket()));
        config.s3_endpoint = Some(self.endpoint.clone());
        config.s3_region = self.region.clone();
        config.s3_path_style = self.path_style;
        config.s3_access_key_id = Some(self.access_key_id.clone());
        config.s3_secret_access_key = Some(Secret::new(self.secret_access_key.clone()));
    }
}

/// The repository's root (this file is also compiled into `cli/tests`, one level down).
/// Different for every call in this process and, very likely, across processes (the clock's
/// nanoseconds and the pid); without a random-number crate, which `cli/tests` does not have.
fn unique_u32() -> u32 {
    static CALLS: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    nanos
        ^ std::process::id().rotate_left(16)
        ^ CALLS.fetch_add(1, Ordering::Relaxed).rotate_left(28)
}

fn repo() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .find(|dir| dir.join("contrib/services.sh").is_file())
        .unwrap_or(here)
        .to_path_buf()
}

/// Runs `contrib/services.sh ACTION DIR`; for `up`, the exports it printed.
pub fn services_sh(action: &str, dir: &Path) -> String {
    let output = Command::new("bash")
        .arg(repo().join("contrib/services.sh"))
        .arg(action)
        .arg(dir)
        .output()
        .expect("bash runs contrib/services.sh");
    assert!(
        output.status.success(),
        "contrib/services.sh {action} {} failed ({}):\n{}",
        dir.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `export KEY=value` lines as a lookup.
pub fn parse_exports(text: &str) -> impl Fn(&str) -> Option<String> + '_ {
    move |key: &str| {
        text.lines().find_map(|line| {
            let (k, v) = line.strip_prefix("export ")?.split_once('=')?;
            (k == key).then(|| v.to_string())
        })
    }
}

/// Services started in `dir` by the script, with the S3 settings they export.
pub fn start_in(dir: &Path) -> S3Service {
    let exports = services_sh("up", dir);
    S3Service::from_vars(parse_exports(&exports))
        .unwrap_or_else(|| panic!("contrib/services.sh printed no S3 settings:\n{exports}"))
}

/// The shared S3 service: the environment's, or the one this binary started.
pub fn s3() -> &'static S3Service {
    static SHARED: OnceLock<S3Service> = OnceLock::new();
    SHARED.get_or_init(|| {
        S3Service::from_vars(|key| std::env::var(key).ok().filter(|v| !v.is_empty()))
            .unwrap_or_else(|| start_in(&repo().join("target/test-services/run")))
    })
}

/// The PostgreSQL server of `contrib/services.sh`: `REGISTRY_DATABASE_URL` when the
/// environment has it, else the one this binary started (with the S3 store).
pub fn postgres_url() -> &'static str {
    static SHARED: OnceLock<String> = OnceLock::new();
    SHARED.get_or_init(|| {
        std::env::var("REGISTRY_DATABASE_URL")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| {
                let exports = services_sh("up", &repo().join("target/test-services/run"));
                let url = parse_exports(&exports)("REGISTRY_DATABASE_URL");
                url.unwrap_or_else(|| {
                    panic!("contrib/services.sh printed no REGISTRY_DATABASE_URL:\n{exports}")
                })
            })
    })
}

/// A `database_url` for a schema of its own, named after `owner` (a data directory, say), so
/// that a registry restarted on the same directory finds its data again and tests sharing
/// the server never see each other's rows. The schema is created when missing.
pub fn postgres_schema_url(owner: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    owner.hash(&mut hasher);
    let schema = format!("test_{:016x}", hasher.finish());
    let base = postgres_url();
    let mut client = postgres::Client::connect(base, postgres::NoTls)
        .unwrap_or_else(|e| panic!("connect to {base}: {e}"));
    client
        .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .unwrap_or_else(|e| panic!("create schema {schema}: {e}"));
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}options=-csearch_path%3D{schema}")
}
