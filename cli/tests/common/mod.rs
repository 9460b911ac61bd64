//! The harness of the admin CLI tests: a temp data directory with users and published
//! packages, the built `registry` binary run against it (local mode) or against a
//! `registry serve` child on the same directory (remote mode).
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use registry_core::accounts::auth::Identity;
use registry_core::accounts::authz::require_writer;
use registry_core::config::Config;
use registry_core::packages::names::PackageName;
use registry_core::Registry;
use serde_json::{json, Value};
use sha1::Sha1;
use sha2::{Digest, Sha512};

#[path = "../../../tests/common/services.rs"]
pub mod services;

/// Whether this test binary runs its suite on the PostgreSQL backend: a binary named
/// `<suite>_on_postgres` (see `admin_on_postgres.rs`) does, with a schema of its own per data
/// directory, as the root crate's harness does; every other binary uses SQLite, the default.
pub fn on_postgres() -> bool {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_name().map(|n| n.to_string_lossy().into_owned()))
        .is_some_and(|name| name.contains("_on_postgres"))
}

/// The `database_url` of `data_dir` on this binary's backend: on PostgreSQL, a schema named
/// after the directory, so that every command, daemon and in-process `Registry` of one
/// fixture share it; `None` on SQLite (the data directory's own file).
pub fn database_url(data_dir: &Path) -> Option<String> {
    on_postgres().then(|| services::postgres_schema_url(data_dir))
}

/// Gives `command` the backend of the data directory its arguments name (`--data-dir DIR`):
/// on PostgreSQL, `REGISTRY_DATABASE_URL` set to that directory's schema. A command without
/// `--data-dir` (remote mode, usage errors) is left as it is.
pub fn with_test_backend(command: &mut Command) -> &mut Command {
    let mut args = command.get_args();
    let mut data_dir = None;
    while let Some(arg) = args.next() {
        if arg == OsStr::new("--data-dir") {
            data_dir = args.next().map(PathBuf::from);
        } else if let Some(dir) = arg.to_str().and_then(|a| a.strip_prefix("--data-dir=")) {
            data_dir = Some(PathBuf::from(dir));
        }
    }
    if let Some(url) = data_dir.as_deref().and_then(database_url) {
        command.env("REGISTRY_DATABASE_URL", url);
    }
    command
}

/// The `registry` binary, its environment cleared of `REGISTRY_*` settings. Give it the test
/// backend with `with_test_backend` once its arguments are in (`run_in` and `serve` do).
pub fn registry() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_registry"));
    for (key, _) in std::env::vars() {
        if key.starts_with("REGISTRY_") {
            command.env_remove(key);
        }
    }
    // No ~/.npmrc of the machine running the tests.
    command.env(
        "HOME",
        std::env::temp_dir().join("registry-cli-tests-no-home"),
    );
    command
}

/// A finished command: status code, stdout, stderr.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("stdout is not JSON ({e}): {}\n{}", self.stdout, self.stderr)
        })
    }
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
    #[track_caller]
    pub fn fails(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert!(!self.stderr.trim().is_empty(), "an error says why");
        assert_eq!(
            self.stderr.trim().lines().count(),
            1,
            "one line: {}",
            self.stderr
        );
        self
    }
}

fn finish(output: Output) -> Run {
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).to_string(),
    }
}

pub fn run_in(args: &[&str], stdin: &str) -> Run {
    let mut child = with_test_backend(registry().args(args))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn registry");
    let mut input = child.stdin.take().expect("stdin");
    let _ = input.write_all(stdin.as_bytes());
    drop(input);
    finish(child.wait_with_output().expect("wait"))
}

/// Where commands act: `--data-dir DIR` or `--registry URL --token T`.
pub trait Target {
    fn args(&self) -> Vec<String>;

    fn run_with(&self, args: &[&str], stdin: &str) -> Run {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend(self.args());
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        run_in(&refs, stdin)
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, "")
    }
}

/// A data directory with an admin `root` (token `root_token`), a user `alice` who published
/// `left-pad` 1.0.0, 1.1.0, 2.0.0-beta.1 and `@acme/widget` 1.0.0, and a user `bob`.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub data: PathBuf,
    pub root_token: String,
}

impl Target for Fixture {
    fn args(&self) -> Vec<String> {
        vec!["--data-dir".into(), self.data_str().into()]
    }
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let mut fixture = Fixture {
            dir,
            data,
            root_token: String::new(),
        };
        for (user, admin) in [("root", true), ("alice", false), ("bob", false)] {
            let mut args = vec!["user", "add", user, "--password-stdin", "--email"];
            let email = format!("{user}@example.com");
            args.push(&email);
            if admin {
                args.push("--admin");
            }
            fixture.run_with(&args, &format!("{user}-password\n")).ok();
        }
        fixture.root_token = fixture
            .run(&["token", "create", "--user", "root"])
            .ok()
            .stdout
            .trim()
            .to_string();
        for (name, version) in [
            ("left-pad", "1.0.0"),
            ("left-pad", "1.1.0"),
            ("left-pad", "2.0.0-beta.1"),
            ("@acme/widget", "1.0.0"),
        ] {
            fixture.publish("alice", name, version);
        }
        fixture
    }

    pub fn data_str(&self) -> &str {
        self.data.to_str().expect("utf-8 path")
    }

    pub fn open(&self) -> Registry {
        let config = Config {
            data_dir: self.data.clone(),
            database_url: database_url(&self.data),
            ..Config::default()
        };
        Registry::open(config).expect("open registry")
    }

    /// Records downloads of `name` today, as the daemon's counter flushes them.
    pub fn count_downloads(&self, name: &str, counts: &[(&str, u64)]) {
        let registry = self.open();
        let counter = registry_core::packages::downloads::DownloadCounter::default();
        let package = PackageName::parse(name).expect("name");
        for (version, count) in counts {
            counter.record_on(
                &package,
                version,
                registry_core::packages::downloads::today(),
                *count,
            );
        }
        counter.flush(&registry.store).expect("flush");
    }

    /// Publishes through the core as `user` (the same operation `npm publish` reaches).
    pub fn publish(&self, user: &str, name: &str, version: &str) {
        let registry = self.open();
        let user = registry_core::accounts::users::find_user(&registry.store, user)
            .expect("read user")
            .expect("user exists");
        let identity = Identity { user, token: None };
        let writer = require_writer(Some(&identity)).expect("writer");
        let tgz = package_tarball(name, version);
        let package = PackageName::parse(name).expect("name");
        registry_core::packages::publish::publish(
            &registry.store,
            registry.blobs.as_ref(),
            &writer,
            &package,
            &publish_body(name, version, &tgz),
            &registry_core::packages::publish::PublishLimits::of(&registry.config),
        )
        .expect("publish");
    }
}

/// A `registry serve` child process on a data directory; killed (SIGKILL) when dropped.
pub struct Served {
    pub child: Child,
    /// `http://127.0.0.1:PORT`, as the daemon logged it.
    pub base: String,
}

/// Starts `registry serve` on an ephemeral loopback port and waits for the address it logs.
pub fn serve(data_dir: &str, extra_args: &[&str]) -> Served {
    let mut child = with_test_backend(
        registry()
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir])
            .args(extra_args),
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn registry serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on ").nth(1) {
                let address = rest.split_whitespace().next().unwrap_or_default();
                let _ = tx.send(address.to_string());
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the daemon logs the address it listens on");
    Served { child, base }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `registry serve` child on a fixture's data directory, and the remote target.
pub struct Daemon {
    process: Served,
    pub base: String,
    pub token: String,
}

impl Target for Daemon {
    fn args(&self) -> Vec<String> {
        self.as_token(&self.token).args()
    }
}

impl Daemon {
    pub fn start(fixture: &Fixture) -> Daemon {
        let process = serve(fixture.data_str(), &[]);
        Daemon {
            base: process.base.clone(),
            process,
            token: fixture.root_token.clone(),
        }
    }

    /// The same daemon with another token.
    pub fn as_token(&self, token: &str) -> Remote {
        Remote {
            base: self.base.clone(),
            token: token.to_string(),
        }
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        let response = reqwest::blocking::Client::new()
            .get(format!("{}{path}", self.base))
            .send()
            .expect("GET");
        let status = response.status().as_u16();
        (status, response.json().unwrap_or(Value::Null))
    }
}

pub struct Remote {
    pub base: String,
    pub token: String,
}

impl Target for Remote {
    fn args(&self) -> Vec<String> {
        vec![
            "--registry".into(),
            self.base.clone(),
            "--token".into(),
            self.token.clone(),
        ]
    }
}

pub fn package_tarball(name: &str, version: &str) -> Vec<u8> {
    use flate2::write::GzEncoder;
    let manifest = json!({ "name": name, "version": version, "main": "index.js" }).to_string();
    let index = format!("module.exports = {:?};\n", format!("{name}@{version}"));
    let files: [(&str, &[u8]); 2] = [
        ("package/package.json", manifest.as_bytes()),
        ("package/index.js", index.as_bytes()),
    ];
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        let name = path.as_bytes();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_cksum();
        builder.append(&header, content).expect("append");
    }
    builder.into_inner().expect("tar").finish().expect("gzip")
}

pub fn publish_body(name: &str, version: &str, tgz: &[u8]) -> Value {
    let bare = name.rsplit('/').next().unwrap_or(name);
    let tag = if version.contains('-') {
        "next"
    } else {
        "latest"
    };
    json!({
        "_id": name,
        "name": name,
        "description": format!("the {name} package"),
        "dist-tags": { tag: version },
        "versions": {
            version: {
                "name": name,
                "version": version,
                "main": "index.js",
                "_id": format!("{name}@{version}"),
                "dist": {
                    "integrity": format!("sha512-{}", B64.encode(Sha512::digest(tgz))),
                    "shasum": hex::encode(Sha1::digest(tgz)),
                    "tarball": format!("http://wrong.example/{name}/-/{bare}-{version}.tgz"),
                }
            }
        },
        "access": null,
        "_attachments": {
            format!("{name}-{version}.tgz"): {
                "content_type": "application/octet-stream",
                "data": B64.encode(tgz),
                "length": tgz.len(),
            }
        }
    })
}
