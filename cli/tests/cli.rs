//! The `registry` binary as users and scripts run it: generated docs are current, commands
//! read passwords safely, exit codes follow the documented table, and `serve` runs and stops.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{registry, serve};

use registry_core::accounts::auth::{authenticate, CredentialCache};
use registry_core::config::Config;
use registry_core::Registry;

fn run_with_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = registry()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn registry");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

const REFRESH: &str =
    "cargo run -- completions --out-dir completions && cargo run -- man --out-dir man";

#[test]
fn completions_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (shell, file) in [
        ("bash", "registry.bash"),
        ("zsh", "_registry"),
        ("fish", "registry.fish"),
    ] {
        let output = registry()
            .args(["completions", shell])
            .output()
            .expect("run");
        assert!(output.status.success());
        let committed =
            std::fs::read_to_string(root.join("completions").join(file)).unwrap_or_default();
        assert!(
            text(&output.stdout) == committed,
            "completions/{file} is stale: run `{REFRESH}`"
        );
    }
}

#[test]
fn man_pages_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let fresh = tempfile::tempdir().expect("tempdir");
    let status = registry()
        .args(["man", "--out-dir"])
        .arg(fresh.path())
        .status()
        .expect("run");
    assert!(status.success());
    let list = |dir: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    let expected = list(fresh.path());
    assert!(expected.contains(&"registry.1".to_string()));
    assert_eq!(
        list(&root.join("man")),
        expected,
        "man/ is stale: run `{REFRESH}`"
    );
    for name in expected {
        let want = std::fs::read(fresh.path().join(&name)).unwrap_or_default();
        let have = std::fs::read(root.join("man").join(&name)).unwrap_or_default();
        assert!(want == have, "man/{name} is stale: run `{REFRESH}`");
    }
}

#[test]
fn the_man_page_documents_exit_codes() {
    let output = registry().arg("man").output().expect("run");
    let page = text(&output.stdout);
    for line in [
        "0  success",
        "2  usage error",
        "3  not found",
        "4  permission denied",
    ] {
        assert!(page.contains(line), "man page lacks {line:?}");
    }
}

#[test]
fn user_add_reads_the_password_from_stdin_and_refuses_duplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data = data.to_str().expect("utf-8 path");
    let first = run_with_stdin(
        &[
            "user",
            "add",
            "alice",
            "--admin",
            "--password-stdin",
            "--data-dir",
            data,
        ],
        "s3cret-password\n",
    );
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert_eq!(text(&first.stdout).trim(), "created admin alice");

    let again = run_with_stdin(
        &[
            "user",
            "add",
            "alice",
            "--password-stdin",
            "--data-dir",
            data,
        ],
        "another-password\n",
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("already exists"),
        "{}",
        text(&again.stderr)
    );

    let registry = open(data);
    let user = registry
        .store
        .read(|db| db.user_by_name("alice"))
        .expect("read")
        .expect("alice exists");
    assert!(user.is_admin);
    assert!(registry_core::accounts::password::verify_password(
        "s3cret-password",
        &user.password_hash
    ));
}

#[test]
fn user_add_without_a_terminal_asks_for_password_stdin_instead_of_prompting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = run_with_stdin(
        &[
            "user",
            "add",
            "bob",
            "--data-dir",
            dir.path().to_str().expect("utf-8"),
        ],
        "",
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("--password-stdin"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn user_add_refuses_invalid_names_and_short_passwords_as_usage_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    let bad_name = run_with_stdin(
        &[
            "user",
            "add",
            "Bad Name",
            "--password-stdin",
            "--data-dir",
            data,
        ],
        "long-enough-pw\n",
    );
    assert_eq!(
        bad_name.status.code(),
        Some(2),
        "{}",
        text(&bad_name.stderr)
    );
    let short = run_with_stdin(
        &[
            "user",
            "add",
            "carol",
            "--password-stdin",
            "--data-dir",
            data,
        ],
        "short\n",
    );
    assert_eq!(short.status.code(), Some(2), "{}", text(&short.stderr));
    assert!(text(&short.stderr).contains("too short"));
}

#[test]
fn token_create_prints_only_a_token_that_authenticates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    let added = run_with_stdin(
        &[
            "user",
            "add",
            "dave",
            "--password-stdin",
            "--data-dir",
            data,
        ],
        "dave-password\n",
    );
    assert!(added.status.success());
    let output = registry()
        .args([
            "token",
            "create",
            "--user",
            "dave",
            "--readonly",
            "--expires",
            "30d",
            "--data-dir",
            data,
        ])
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let token = stdout.trim();
    assert_eq!(
        stdout.lines().count(),
        1,
        "only the token on stdout: {stdout:?}"
    );
    assert!(token.starts_with("npm_"));

    let registry = open(data);
    let identity = authenticate(
        &registry.store,
        &CredentialCache::default(),
        Some(&format!("Bearer {token}")),
    )
    .expect("token authenticates")
    .expect("an identity");
    assert_eq!(identity.user.name, "dave");
    assert!(identity.readonly());
    assert!(identity.token.and_then(|t| t.expires_at).is_some());
}

#[test]
fn token_create_for_an_unknown_user_exits_3_and_bad_flags_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    let unknown = registry()
        .args(["token", "create", "--user", "nobody", "--data-dir", data])
        .output()
        .expect("run");
    assert_eq!(unknown.status.code(), Some(3), "{}", text(&unknown.stderr));
    let bad_expiry = registry()
        .args([
            "token",
            "create",
            "--user",
            "nobody",
            "--expires",
            "forever",
            "--data-dir",
            data,
        ])
        .output()
        .expect("run");
    assert_eq!(bad_expiry.status.code(), Some(2));
    let unknown_flag = registry()
        .args(["token", "create", "--nope"])
        .output()
        .expect("run");
    assert_eq!(unknown_flag.status.code(), Some(2));
}

fn open(data_dir: &str) -> Registry {
    let config = Config {
        data_dir: data_dir.into(),
        ..Config::default()
    };
    Registry::open(config).expect("open registry")
}

#[test]
fn serve_answers_sees_users_added_meanwhile_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data = data.to_str().expect("utf-8");
    let mut daemon = serve(data, &[]);
    let http = reqwest::blocking::Client::new();
    let ping = http
        .get(format!("{}/-/ping", daemon.base))
        .send()
        .expect("ping");
    assert_eq!(ping.status().as_u16(), 200);

    // An admin adds a user with the CLI while the daemon runs on the same data directory.
    let added = run_with_stdin(
        &[
            "user",
            "add",
            "erin",
            "--password-stdin",
            "--data-dir",
            data,
        ],
        "erin-password\n",
    );
    assert!(added.status.success(), "{}", text(&added.stderr));
    let whoami: serde_json::Value = http
        .get(format!("{}/-/whoami", daemon.base))
        .basic_auth("erin", Some("erin-password"))
        .send()
        .and_then(|r| r.json())
        .expect("whoami");
    assert_eq!(whoami["username"], "erin");

    let pid = daemon.child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = daemon.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the daemon did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
    assert!(
        !Path::new(data).join("registry.db-wal").exists()
            || std::fs::metadata(Path::new(data).join("registry.db-wal"))
                .map(|m| m.len())
                .unwrap_or(0)
                == 0,
        "the WAL is checkpointed on shutdown"
    );
}
