//! Every admin command in both modes: local (`--data-dir`) and remote (`--registry` against a
//! `registry serve` child on the same data directory). The same assertions run against both,
//! since both modes promise the same arguments and the same output.

mod common;

use common::{run_in, Daemon, Fixture, Target};
use serde_json::{json, Value};

const NOT_FOUND: i32 = 3;
const USAGE: i32 = 2;
const DENIED: i32 = 4;
const FAILED: i32 = 1;

fn dist_tags_work(target: &dyn Target) {
    let tags = target
        .run(&["dist-tag", "ls", "left-pad", "--json"])
        .ok()
        .json();
    assert_eq!(tags, json!({"latest": "1.1.0", "next": "2.0.0-beta.1"}));
    target
        .run(&["dist-tag", "add", "left-pad@1.0.0", "legacy"])
        .ok();
    let tags = target
        .run(&["dist-tag", "ls", "left-pad", "--json"])
        .ok()
        .json();
    assert_eq!(tags["legacy"], "1.0.0");
    let text = target.run(&["dist-tag", "ls", "left-pad"]).ok().stdout;
    assert!(text.contains("legacy: 1.0.0"), "{text}");
    target.run(&["dist-tag", "rm", "left-pad", "legacy"]).ok();
    let tags = target
        .run(&["dist-tag", "ls", "left-pad", "--json"])
        .ok()
        .json();
    assert!(tags.get("legacy").is_none());
    // Scoped names, errors and their exit codes.
    let tags = target
        .run(&["dist-tag", "ls", "@acme/widget", "--json"])
        .ok()
        .json();
    assert_eq!(tags, json!({"latest": "1.0.0"}));
    target
        .run(&["dist-tag", "ls", "no-such-package"])
        .fails(NOT_FOUND);
    target
        .run(&["dist-tag", "add", "left-pad", "x"])
        .fails(USAGE);
    target
        .run(&["dist-tag", "add", "left-pad@9.9.9", "x"])
        .fails(USAGE);
    target
        .run(&["dist-tag", "rm", "left-pad", "nope"])
        .fails(NOT_FOUND);
    target
        .run(&["dist-tag", "rm", "left-pad", "latest"])
        .fails(USAGE);
}

fn owners_work(target: &dyn Target) {
    let owners = target
        .run(&["owner", "ls", "left-pad", "--json"])
        .ok()
        .json();
    assert_eq!(owners, json!(["alice"]));
    target.run(&["owner", "add", "bob", "left-pad"]).ok();
    let owners = target
        .run(&["owner", "ls", "left-pad", "--json"])
        .ok()
        .json();
    assert_eq!(owners, json!(["alice", "bob"]));
    target.run(&["owner", "rm", "bob", "left-pad"]).ok();
    assert_eq!(
        target.run(&["owner", "ls", "left-pad"]).ok().stdout.trim(),
        "alice"
    );
    target
        .run(&["owner", "rm", "bob", "left-pad"])
        .fails(NOT_FOUND);
    target
        .run(&["owner", "add", "nobody", "left-pad"])
        .fails(USAGE);
    target
        .run(&["owner", "rm", "alice", "left-pad"])
        .fails(USAGE);
    target.run(&["owner", "ls", "nope"]).fails(NOT_FOUND);
}

fn deprecate_works(target: &dyn Target) {
    let done = target
        .run(&["deprecate", "left-pad@<1.1.0", "use 1.1", "--json"])
        .ok()
        .json();
    assert_eq!(done["versions"], json!(["1.0.0"]));
    let info = target
        .run(&["package", "info", "left-pad", "--json"])
        .ok()
        .json();
    let deprecated: Vec<(String, Value)> = info["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| {
            (
                v["version"].as_str().unwrap_or_default().to_string(),
                v["deprecated"].clone(),
            )
        })
        .collect();
    assert_eq!(
        deprecated,
        vec![
            ("1.0.0".to_string(), json!("use 1.1")),
            ("1.1.0".to_string(), Value::Null),
            ("2.0.0-beta.1".to_string(), Value::Null),
        ]
    );
    // An empty message undeprecates.
    target.run(&["deprecate", "left-pad@1.0.0", ""]).ok();
    let info = target
        .run(&["package", "info", "left-pad", "--json"])
        .ok()
        .json();
    assert_eq!(info["versions"][0]["deprecated"], Value::Null);
    target
        .run(&["deprecate", "left-pad@>5", "x"])
        .fails(NOT_FOUND);
    target
        .run(&["deprecate", "left-pad@not a range!", "x"])
        .fails(USAGE);
}

fn packages_are_listed(target: &dyn Target) {
    let list = target.run(&["package", "list", "--json"]).ok().json();
    let names: Vec<&str> = list
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["@acme/widget", "left-pad"]);
    assert_eq!(list[1]["latest"], "1.1.0");
    assert_eq!(list[1]["state"], "live");
    for key in ["name", "latest", "versions", "size", "modified", "state"] {
        assert!(list[1].get(key).is_some(), "package list has {key}");
    }
    let table = target.run(&["package", "list"]).ok().stdout;
    assert!(
        table.contains("left-pad") && table.contains("NAME"),
        "{table}"
    );
    let info = target
        .run(&["package", "info", "@acme/widget", "--json"])
        .ok()
        .json();
    assert_eq!(info["name"], "@acme/widget");
    assert_eq!(info["dist_tags"], json!({"latest": "1.0.0"}));
    assert_eq!(info["maintainers"], json!(["alice"]));
    let size = info["versions"][0]["size"]
        .as_u64()
        .expect("a tarball size");
    assert!(size > 0);
    assert_eq!(info["size"].as_u64(), Some(size));
    assert_eq!(info["downloads_last_month"], 0);
    let text = target.run(&["package", "info", "left-pad"]).ok().stdout;
    assert!(text.contains("maintainers: alice"), "{text}");
    target.run(&["package", "info", "nope"]).fails(NOT_FOUND);
    target.run(&["package", "info", "Not Valid"]).fails(USAGE);
}

fn blocks_work(target: &dyn Target, daemon: &Daemon) {
    // Read first, so that the daemon holds these answers when the block comes.
    let tarball = "/left-pad/-/left-pad-1.0.0.tgz";
    assert_eq!(daemon.get("/left-pad").0, 200);
    assert_eq!(daemon.get(tarball).0, 200);
    let status = target
        .run(&["block", "left-pad", "--reason", "malware", "--json"])
        .ok()
        .json();
    assert_eq!(
        status,
        json!({"name": "left-pad", "blocked": true, "reason": "malware"})
    );
    assert_eq!(daemon.get("/left-pad").0, 451);
    assert_eq!(daemon.get(tarball).0, 451);
    target.run(&["unblock", "left-pad"]).ok();
    assert_eq!(daemon.get("/left-pad").0, 200);
    assert_eq!(daemon.get(tarball).0, 200);
    target.run(&["unblock", "left-pad"]).fails(NOT_FOUND);
}

fn unpublish_works(target: &dyn Target) {
    let refused = target.run(&["unpublish", "left-pad@1.0.0"]).fails(USAGE);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    target.run(&["unpublish", "left-pad@1.0.0", "--yes"]).ok();
    let info = target
        .run(&["package", "info", "left-pad", "--json"])
        .ok()
        .json();
    assert_eq!(info["versions"].as_array().map(Vec::len), Some(2));
    target
        .run(&["unpublish", "left-pad@1.0.0", "--yes"])
        .fails(NOT_FOUND);
    target.run(&["unpublish", "@acme/widget", "--yes"]).ok();
    target
        .run(&["package", "info", "@acme/widget"])
        .fails(NOT_FOUND);
}

fn downloads_are_reported(target: &dyn Target) {
    let report = target.run(&["downloads", "left-pad", "--json"]).ok().json();
    assert_eq!(report["package"], "left-pad");
    assert_eq!(report["total"], 5);
    assert_eq!(report["days"].as_array().map(Vec::len), Some(30));
    assert!(report["days"][29]["day"].is_string());
    assert_eq!(
        report["versions"],
        json!([{"version": "1.1.0", "downloads": 3}, {"version": "1.0.0", "downloads": 2}])
    );
    let text = target
        .run(&["downloads", "left-pad", "--by-version"])
        .ok()
        .stdout;
    assert!(text.contains("VERSION") && text.contains("1.1.0"), "{text}");
    let week = target
        .run(&[
            "downloads",
            "left-pad",
            "--range",
            "2020-01-01:2020-01-31",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(week["total"], 0);
    let info = target
        .run(&["package", "info", "left-pad", "--json"])
        .ok()
        .json();
    assert_eq!(info["downloads_last_month"], 5);
    assert_eq!(info["downloads_last_week"], 5);
    let chart = target.run(&["downloads", "left-pad"]).ok().stdout;
    assert!(chart.contains("left-pad: 5 downloads"), "{chart}");
    let full_bar = format!(" 5 {}", "█".repeat(50));
    assert!(
        chart.lines().any(|l| l.ends_with(&full_bar)),
        "the busiest day's bar is full width:
{chart}"
    );
    let top = target
        .run(&["downloads", "--top", "5", "--json"])
        .ok()
        .json();
    assert_eq!(
        top["packages"],
        json!([{"package": "left-pad", "downloads": 5}])
    );
    let table = target
        .run(&["downloads", "--top", "5", "--range", "last-week"])
        .ok()
        .stdout;
    assert!(table.contains("left-pad") && table.contains('5'), "{table}");
    // clap's own usage errors are several lines (with the usage), so only the code is ours.
    assert_eq!(target.run(&["downloads"]).code, USAGE);
    assert_eq!(
        target.run(&["downloads", "left-pad", "--top", "3"]).code,
        USAGE
    );
    target.run(&["downloads", "nope"]).fails(NOT_FOUND);
    target
        .run(&["downloads", "left-pad", "--range", "yesterday"])
        .fails(USAGE);
}

#[test]
fn dist_tags_locally_and_remotely() {
    let fixture = Fixture::new();
    dist_tags_work(&fixture);
    let daemon = Daemon::start(&fixture);
    dist_tags_work(&daemon);
}

#[test]
fn owners_locally_and_remotely() {
    let fixture = Fixture::new();
    owners_work(&fixture);
    let daemon = Daemon::start(&fixture);
    owners_work(&daemon);
    // Over HTTP the caller's own rights apply: bob maintains nothing.
    let bob = fixture
        .run(&["token", "create", "--user", "bob"])
        .ok()
        .stdout;
    daemon
        .as_token(bob.trim())
        .run(&["owner", "add", "bob", "left-pad"])
        .fails(DENIED);
    daemon
        .as_token("npm_not-a-token")
        .run(&["dist-tag", "add", "left-pad@1.0.0", "x"])
        .fails(DENIED);
}

#[test]
fn deprecate_locally_and_remotely() {
    let fixture = Fixture::new();
    deprecate_works(&fixture);
    let daemon = Daemon::start(&fixture);
    deprecate_works(&daemon);
}

#[test]
fn packages_locally_and_remotely() {
    let fixture = Fixture::new();
    packages_are_listed(&fixture);
    let daemon = Daemon::start(&fixture);
    packages_are_listed(&daemon);
    // A token without administrator rights lists the live packages from the public feed.
    let bob = fixture
        .run(&["token", "create", "--user", "bob"])
        .ok()
        .stdout;
    let list = daemon
        .as_token(bob.trim())
        .run(&["package", "list", "--json"])
        .ok()
        .json();
    assert_eq!(list[1]["name"], "left-pad");
    assert_eq!(list[1]["latest"], "1.1.0");
}

#[test]
fn blocks_locally_and_remotely_take_effect_on_the_daemon_at_once() {
    let fixture = Fixture::new();
    let daemon = Daemon::start(&fixture);
    blocks_work(&fixture, &daemon);
    blocks_work(&daemon, &daemon);
}

#[test]
fn unpublish_locally() {
    let fixture = Fixture::new();
    unpublish_works(&fixture);
}

#[test]
fn unpublish_remotely() {
    let fixture = Fixture::new();
    let daemon = Daemon::start(&fixture);
    unpublish_works(&daemon);
}

#[test]
fn downloads_locally_and_remotely() {
    let fixture = Fixture::new();
    fixture.count_downloads("left-pad", &[("1.0.0", 2), ("1.1.0", 3)]);
    downloads_are_reported(&fixture);
    let daemon = Daemon::start(&fixture);
    downloads_are_reported(&daemon);
}

fn users_work(target: &dyn Target, fixture: &Fixture) {
    let carol = target
        .run_with(
            &[
                "user",
                "add",
                "carol",
                "--email",
                "c@example.com",
                "--password-stdin",
                "--json",
            ],
            "carol-password\n",
        )
        .ok()
        .json();
    assert_eq!(
        carol,
        json!({"name": "carol", "email": "c@example.com", "admin": false,
               "created": carol["created"]})
    );
    assert!(carol["created"].is_string());
    target
        .run_with(
            &[
                "user",
                "add",
                "carol",
                "--email",
                "c@example.com",
                "--password-stdin",
            ],
            "carol-password\n",
        )
        .fails(FAILED);
    let users = target.run(&["user", "list", "--json"]).ok().json();
    let names: Vec<&str> = users
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|u| u["name"].as_str())
        .collect();
    assert_eq!(names, ["alice", "bob", "carol", "root"]);
    assert_eq!(users[3]["admin"], true);
    for key in ["name", "email", "admin", "created"] {
        assert!(users[0].get(key).is_some(), "user list has {key}");
    }
    let table = target.run(&["user", "list"]).ok().stdout;
    assert!(table.contains("ROLE") && table.contains("carol"), "{table}");
    let bob = target.run(&["user", "show", "bob", "--json"]).ok().json();
    assert_eq!(bob["email"], "bob@example.com");
    assert_eq!(bob["admin"], false);
    let carol = target
        .run(&["user", "admin", "carol", "--json"])
        .ok()
        .json();
    assert_eq!(carol["admin"], true);
    let carol = target
        .run(&["user", "admin", "carol", "--revoke", "--json"])
        .ok()
        .json();
    assert_eq!(carol["admin"], false);
    target
        .run_with(
            &["user", "passwd", "carol", "--password-stdin"],
            "a-new-password\n",
        )
        .ok();
    let registry = fixture.open();
    registry_core::accounts::users::check_credentials(&registry.store, "carol", "a-new-password")
        .expect("the new password works");
    drop(registry);
    let refused = target.run(&["user", "passwd", "carol"]).fails(USAGE);
    assert!(refused.stderr.contains("--password-stdin"));
    // alice is the only maintainer of her packages: she cannot be removed before an owner
    // is added.
    target.run(&["user", "rm", "alice"]).fails(FAILED);
    target.run(&["user", "rm", "carol"]).ok();
    target.run(&["user", "show", "carol"]).fails(NOT_FOUND);
    target.run(&["user", "rm", "carol"]).fails(NOT_FOUND);
    target.run(&["user", "admin", "nobody"]).fails(NOT_FOUND);
    target
        .run_with(
            &["user", "passwd", "nobody", "--password-stdin"],
            "long-enough-pw\n",
        )
        .fails(NOT_FOUND);
}

#[test]
fn users_locally() {
    let fixture = Fixture::new();
    users_work(&fixture, &fixture);
}

#[test]
fn users_remotely() {
    let fixture = Fixture::new();
    let daemon = Daemon::start(&fixture);
    users_work(&daemon, &fixture);
    daemon
        .run_with(
            &["user", "add", "dave", "--password-stdin"],
            "dave-password\n",
        )
        .fails(USAGE);
    // Without an administrator's token: the public document, and no account administration.
    let bob = fixture
        .run(&["token", "create", "--user", "bob"])
        .ok()
        .stdout;
    let bob = daemon.as_token(bob.trim());
    let shown = bob.run(&["user", "show", "alice", "--json"]).ok().json();
    assert_eq!(shown["admin"], Value::Null);
    assert_eq!(shown["email"], "alice@example.com");
    bob.run(&["user", "list"]).fails(DENIED);
    bob.run(&["user", "rm", "alice"]).fails(DENIED);
    bob.run(&["user", "admin", "bob"]).fails(DENIED);
    bob.run_with(
        &[
            "user",
            "add",
            "dave",
            "--email",
            "d@x.io",
            "--password-stdin",
        ],
        "dave-password\n",
    )
    .fails(DENIED);
}

fn tokens_work(target: &dyn Target) {
    let created = target
        .run(&[
            "token",
            "create",
            "--user",
            "bob",
            "--readonly",
            "--cidr",
            "10.0.0.0/8",
            "--expires",
            "30d",
            "--name",
            "ci",
            "--json",
        ])
        .ok()
        .json();
    assert!(created["token"]
        .as_str()
        .is_some_and(|t| t.starts_with("npm_")));
    assert_eq!(created["user"], "bob");
    assert_eq!(created["readonly"], true);
    assert!(created["expires"].is_string());
    let key = created["key"].as_str().expect("key").to_string();
    let listed = target
        .run(&["token", "list", "--user", "bob", "--json"])
        .ok()
        .json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    let token = &listed[0];
    assert_eq!(token["key"], key.as_str());
    assert_eq!(token["kind"], "readonly");
    assert_eq!(token["name"], "ci");
    assert_eq!(token["user"], "bob");
    assert_eq!(token["cidr_whitelist"], json!(["10.0.0.0/8"]));
    for field in ["created", "last_used", "expires"] {
        assert!(token.get(field).is_some(), "token list has {field}");
    }
    assert!(!listed
        .to_string()
        .contains(created["token"].as_str().unwrap_or("-")));
    let everyone = target.run(&["token", "list", "--json"]).ok().json();
    assert_eq!(
        everyone.as_array().map(Vec::len),
        Some(2),
        "root's and bob's"
    );
    let table = target.run(&["token", "list"]).ok().stdout;
    assert!(table.contains("KEY") && table.contains("root"), "{table}");
    target.run(&["token", "revoke", &key]).ok();
    target.run(&["token", "revoke", &key]).fails(NOT_FOUND);
    target
        .run(&["token", "create", "--user", "nobody"])
        .fails(NOT_FOUND);
    target
        .run(&["token", "list", "--user", "nobody"])
        .fails(NOT_FOUND);
    target
        .run(&["token", "create", "--user", "bob", "--cidr", "x"])
        .fails(USAGE);
    target
        .run(&["token", "create", "--user", "bob", "--expires", "soon"])
        .fails(USAGE);
    // Piped, create prints only the token.
    let plain = target
        .run(&["token", "create", "--user", "bob"])
        .ok()
        .stdout;
    assert!(
        plain.starts_with("npm_") && plain.trim().lines().count() == 1,
        "{plain}"
    );
}

#[test]
fn tokens_locally() {
    let fixture = Fixture::new();
    tokens_work(&fixture);
}

#[test]
fn tokens_remotely() {
    let fixture = Fixture::new();
    let daemon = Daemon::start(&fixture);
    tokens_work(&daemon);
    // Without an administrator's token, only one's own tokens.
    let bob = fixture
        .run(&[
            "token", "create", "--user", "bob", "--name", "mine", "--json",
        ])
        .ok()
        .json();
    let bob = daemon.as_token(bob["token"].as_str().expect("token"));
    let mine = bob.run(&["token", "list", "--json"]).ok().json();
    assert!(mine
        .as_array()
        .is_some_and(|l| !l.is_empty() && l.iter().all(|t| t["user"] == "bob")));
    bob.run(&["token", "list", "--user", "root"]).fails(DENIED);
    bob.run(&["token", "create", "--user", "bob"]).fails(DENIED);
}

#[test]
fn gc_finds_and_deletes_orphan_blobs_locally_only() {
    let fixture = Fixture::new();
    let clean = fixture.run(&["gc", "--json"]).ok().json();
    assert_eq!(clean["count"], 0);
    // An unpublished version leaves its blob; an old one becomes collectable.
    fixture.run(&["unpublish", "left-pad@1.0.0", "--yes"]).ok();
    let young = fixture.run(&["gc", "--json"]).ok().json();
    assert_eq!(
        young["count"], 0,
        "blobs younger than 15 minutes are left alone"
    );
    let blobs = fixture.data.join("blobs");
    let status = std::process::Command::new("find")
        .arg(&blobs)
        .args([
            "-type",
            "f",
            "-exec",
            "touch",
            "-d",
            "2020-01-01",
            "{}",
            "+",
        ])
        .status()
        .expect("touch");
    assert!(status.success());
    let dry = fixture.run(&["gc", "--json"]).ok().json();
    assert_eq!(dry["count"], 1);
    assert_eq!(dry["applied"], false);
    assert!(dry["bytes"].as_u64().is_some_and(|b| b > 0));
    let text = fixture.run(&["gc"]).ok().stdout;
    assert!(text.contains("--apply"), "{text}");
    let applied = fixture.run(&["gc", "--apply", "--json"]).ok().json();
    assert_eq!(applied["freed_bytes"], dry["bytes"]);
    assert_eq!(fixture.run(&["gc", "--json"]).ok().json()["count"], 0);
    fixture.run(&["doctor"]).ok();
    let daemon = Daemon::start(&fixture);
    let run = daemon.run(&["gc"]).fails(FAILED);
    assert!(
        run.stderr.contains("only on the data directory"),
        "{}",
        run.stderr
    );
}

#[test]
fn doctor_reports_missing_and_corrupt_tarballs_with_a_repair_hint() {
    let fixture = Fixture::new();
    let healthy = fixture.run(&["doctor", "--json"]).ok().json();
    assert_eq!(healthy, json!({"ok": true, "problems": [], "repaired": []}));
    let mut files = Vec::new();
    let mut stack = vec![fixture.data.join("blobs")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir)
            .expect("read dir")
            .map_while(Result::ok)
        {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    std::fs::write(&files[0], b"not the tarball").expect("corrupt");
    std::fs::remove_file(&files[1]).expect("remove");
    let sick = fixture.run(&["doctor", "--json"]);
    assert_eq!(sick.code, FAILED);
    let report = sick.json();
    let kinds: Vec<&str> = report["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter_map(|p| p["kind"].as_str())
        .collect();
    assert_eq!(kinds.len(), 2, "{report}");
    assert!(
        kinds.contains(&"missing-blob") && kinds.contains(&"corrupt-blob"),
        "{report}"
    );
    assert!(report["problems"][0]["repair"]
        .as_str()
        .is_some_and(|r| r.contains("registry")));
    let text = fixture.run(&["doctor"]);
    assert_eq!(text.code, FAILED);
    assert!(text.stderr.contains("registry restore"), "{}", text.stderr);
    let daemon = Daemon::start(&fixture);
    daemon.run(&["doctor"]).fails(FAILED);
}

#[test]
fn backup_while_serving_and_restore_into_a_new_directory() {
    let fixture = Fixture::new();
    let daemon = Daemon::start(&fixture);
    let dest = fixture.dir.path().join("backup");
    let dest_str = dest.to_str().expect("utf-8");
    if common::on_postgres() {
        // `registry backup` copies a SQLite registry; PostgreSQL's metadata is pg_dump's.
        let refused = fixture.run(&["backup", dest_str]).fails(USAGE);
        assert!(refused.stderr.contains("pg_dump"), "{}", refused.stderr);
        daemon.run(&["backup", dest_str]).fails(FAILED);
        return;
    }
    let report = fixture.run(&["backup", dest_str, "--json"]).ok().json();
    assert_eq!(report["blobs"], 4);
    assert!(report["database_bytes"].as_u64().is_some_and(|b| b > 0));
    fixture.run(&["backup", dest_str]).fails(FAILED);
    daemon.run(&["backup", dest_str]).fails(FAILED);

    let restored = fixture.dir.path().join("restored");
    let restored_str = restored.to_str().expect("utf-8");
    let report = run_in(
        &["restore", dest_str, "--data-dir", restored_str, "--json"],
        "",
    )
    .ok()
    .json();
    assert_eq!(report["blobs"], 4);
    run_in(&["doctor", "--data-dir", restored_str], "").ok();
    let list = run_in(
        &["package", "list", "--json", "--data-dir", restored_str],
        "",
    )
    .ok()
    .json();
    assert_eq!(list.as_array().map(Vec::len), Some(2));
    // Never over an existing registry.
    run_in(&["restore", dest_str, "--data-dir", fixture.data_str()], "").fails(FAILED);
    run_in(
        &["restore", "/nonexistent/backup", "--data-dir", restored_str],
        "",
    )
    .fails(NOT_FOUND);
}

#[test]
fn config_show_says_where_each_value_came_from() {
    let fixture = Fixture::new();
    let shown = fixture.run(&["config", "show", "--json"]).ok().json();
    assert_eq!(shown["data_dir"]["value"], fixture.data_str());
    assert_eq!(shown["data_dir"]["source"], "flag");
    assert_eq!(
        shown["listen"],
        json!({"value": "127.0.0.1:4873", "source": "default"})
    );
    let table = fixture.run(&["config", "show"]).ok().stdout;
    assert!(
        table.contains("SOURCE") && table.contains("registration"),
        "{table}"
    );
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let fixture = Fixture::new();
    let mut child = common::with_test_backend(common::registry().args([
        "package",
        "info",
        "left-pad",
        "--data-dir",
        fixture.data_str(),
    ]))
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("spawn");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("wait");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_local_change_is_served_by_the_running_daemon_at_once_and_npm_sees_it() {
    let fixture = Fixture::new();
    let daemon = Daemon::start(&fixture);
    // Warm the daemon's packument cache first.
    let (status, before) = daemon.get("/left-pad");
    assert_eq!(status, 200);
    assert!(before["dist-tags"].get("stable").is_none());
    fixture
        .run(&["dist-tag", "add", "left-pad@1.0.0", "stable"])
        .ok();
    let (_, after) = daemon.get("/left-pad");
    assert_eq!(after["dist-tags"]["stable"], "1.0.0");

    let home = tempfile::tempdir().expect("home");
    let npmrc = home.path().join(".npmrc");
    std::fs::write(&npmrc, format!("registry={}/\n", daemon.base)).expect("npmrc");
    let npm = |args: &[&str]| {
        std::process::Command::new("npm")
            .args(args)
            .env("HOME", home.path())
            .env("npm_config_userconfig", &npmrc)
            .env("npm_config_cache", home.path().join("cache"))
            .env("npm_config_update_notifier", "false")
            .current_dir(home.path())
            .output()
            .expect("run npm")
    };
    let view = npm(&["view", "left-pad", "dist-tags", "--json", "--prefer-online"]);
    assert!(
        view.status.success(),
        "{}",
        String::from_utf8_lossy(&view.stderr)
    );
    let tags: Value = serde_json::from_slice(&view.stdout).expect("npm's JSON");
    assert_eq!(tags["stable"], "1.0.0");
    fixture
        .run(&["dist-tag", "add", "left-pad@1.1.0", "stable"])
        .ok();
    fixture
        .run(&["deprecate", "left-pad@1.0.0", "too old"])
        .ok();
    let view = npm(&["view", "left-pad", "dist-tags.stable", "--prefer-online"]);
    assert_eq!(String::from_utf8_lossy(&view.stdout).trim(), "1.1.0");
    let view = npm(&["view", "left-pad@1.0.0", "deprecated", "--prefer-online"]);
    assert_eq!(String::from_utf8_lossy(&view.stdout).trim(), "too old");

    // A version unpublished here is gone from the daemon's answers at once, tarball too.
    let tarball = "/left-pad/-/left-pad-1.0.0.tgz";
    assert_eq!(daemon.get(tarball).0, 200);
    fixture.run(&["unpublish", "left-pad@1.0.0", "--yes"]).ok();
    assert_eq!(daemon.get(tarball).0, 404);
    let (_, after) = daemon.get("/left-pad");
    assert!(after["versions"].get("1.0.0").is_none(), "{after}");
}

#[test]
fn remote_mode_takes_the_url_and_token_from_the_environment_or_npmrc() {
    let fixture = Fixture::new();
    let daemon = Daemon::start(&fixture);
    let from_env = common::registry()
        .args(["dist-tag", "add", "left-pad@1.0.0", "env", "--json"])
        .env("REGISTRY_URL", &daemon.base)
        .env("REGISTRY_TOKEN", &fixture.root_token)
        .output()
        .expect("run");
    assert!(
        from_env.status.success(),
        "{}",
        String::from_utf8_lossy(&from_env.stderr)
    );

    let home = tempfile::tempdir().expect("home");
    let host = daemon.base.trim_start_matches("http:");
    std::fs::write(
        home.path().join(".npmrc"),
        format!(
            "registry={}/\n{host}/:_authToken={}\n",
            daemon.base, fixture.root_token
        ),
    )
    .expect("npmrc");
    let from_npmrc = common::registry()
        .args([
            "dist-tag",
            "rm",
            "left-pad",
            "env",
            "--registry",
            &daemon.base,
        ])
        .env("HOME", home.path())
        .output()
        .expect("run");
    assert!(
        from_npmrc.status.success(),
        "{}",
        String::from_utf8_lossy(&from_npmrc.stderr)
    );
    // Without any token, a write is refused with a hint.
    let anonymous = run_in(
        &[
            "dist-tag",
            "add",
            "left-pad@1.0.0",
            "x",
            "--registry",
            &daemon.base,
        ],
        "",
    )
    .fails(DENIED);
    assert!(anonymous.stderr.contains("--token"), "{}", anonymous.stderr);
    run_in(&["package", "list", "--registry", "ftp://x"], "").fails(USAGE);
    run_in(&["package", "list", "--registry", "http://127.0.0.1:9"], "").fails(FAILED);
}

#[test]
fn doctor_finds_a_stale_packument_and_repairs_it() {
    let fixture = Fixture::new();
    let stale = "UPDATE versions SET abbrev_manifest = '{}' \
                 WHERE package_id = (SELECT id FROM packages WHERE name = 'left-pad')";
    if let Some(url) = common::database_url(&fixture.data) {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        assert_eq!(client.execute(stale, &[]).expect("UPDATE"), 3);
    } else {
        let db = fixture.data.join("registry.db");
        let status = std::process::Command::new("sqlite3")
            .arg(&db)
            .arg(stale)
            .status();
        let Ok(status) = status else {
            eprintln!("sqlite3 is not installed: skipping");
            return;
        };
        assert!(status.success());
    }
    let sick = fixture.run(&["doctor", "--json"]);
    assert_eq!(sick.code, FAILED);
    let report = sick.json();
    assert_eq!(report["problems"][0]["kind"], "stale-packument");
    assert_eq!(report["problems"][0]["package"], "left-pad");
    assert!(report["problems"][0]["repair"]
        .as_str()
        .is_some_and(|r| r.contains("--repair")));
    let repaired = fixture.run(&["doctor", "--repair", "--json"]).ok().json();
    assert_eq!(repaired["repaired"], json!(["left-pad"]));
    fixture.run(&["doctor"]).ok();
}

#[test]
fn unpublish_asks_on_a_terminal_and_only_yes_goes_ahead() {
    let fixture = Fixture::new();
    let exe = env!("CARGO_BIN_EXE_registry");
    let on_a_terminal = |answer: &str| {
        let command = format!(
            "{exe} unpublish left-pad@1.0.0 --data-dir '{}'",
            fixture.data_str()
        );
        let mut script = std::process::Command::new("script");
        // The registry's own settings only: this fixture's backend, nothing of the caller's.
        match common::database_url(&fixture.data) {
            Some(url) => script.env("REGISTRY_DATABASE_URL", url),
            None => script.env_remove("REGISTRY_DATABASE_URL"),
        };
        let script = script
            .args(["-qec", &command, "/dev/null"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn();
        let Ok(mut child) = script else {
            return None;
        };
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            std::thread::sleep(std::time::Duration::from_millis(500));
            let _ = stdin.write_all(answer.as_bytes());
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        child.wait_with_output().ok()
    };
    let Some(declined) = on_a_terminal("n") else {
        eprintln!("`script` is not installed: skipping");
        return;
    };
    assert!(!declined.status.success());
    let shown = String::from_utf8_lossy(&declined.stdout);
    assert!(shown.contains("Unpublish left-pad@1.0.0?"), "{shown}");
    assert!(shown.contains("cancelled"), "{shown}");
    let info = fixture
        .run(&["package", "info", "left-pad", "--json"])
        .ok()
        .json();
    assert_eq!(info["versions"].as_array().map(Vec::len), Some(3));
    let accepted = on_a_terminal("y").expect("script");
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stdout)
    );
    let info = fixture
        .run(&["package", "info", "left-pad", "--json"])
        .ok()
        .json();
    assert_eq!(info["versions"].as_array().map(Vec::len), Some(2));
}
