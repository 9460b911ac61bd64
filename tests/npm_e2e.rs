//! End-to-end tests with the real `npm` binary against the daemon started in-process.
//!
//! Every test starts its own registry and its own isolated npm (HOME, user config and cache in a
//! temp dir), so they run in parallel and never touch the machine's `~/.npmrc`. npm caches
//! packuments for the registry's `max-age`, so reads after a publish pass `--prefer-online`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use serde_json::{json, Value};

/// stdout and stderr of a finished command, for assertions and failure messages.
fn transcript(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs npm and fails the test, showing its output, if it unexpectedly succeeds.
fn npm_fails(npm: &Npm, cwd: &Path, args: &[&str]) -> String {
    let output = npm.run(cwd, args);
    let all = transcript(&output);
    assert!(
        !output.status.success(),
        "npm {args:?} should have failed but succeeded:\n{all}"
    );
    all
}

/// What `npm pack --json` reports about a tarball it wrote.
struct Packed {
    file: PathBuf,
    integrity: String,
    shasum: String,
}

/// `npm pack --json` of the package in `dir`, written to `dest`.
fn npm_pack(npm: &Npm, cwd: &Path, args: &[&str], dest: &Path) -> Packed {
    std::fs::create_dir_all(dest).expect("mkdir pack destination");
    let dest_str = dest.to_str().expect("utf-8 temp path");
    let mut all_args = vec!["pack", "--json", "--pack-destination", dest_str];
    all_args.extend_from_slice(args);
    let out = npm.ok(cwd, &all_args);
    let report: Value = serde_json::from_str(&out).expect("npm pack --json prints JSON");
    let entry = &report[0];
    let text = |key: &str| {
        entry[key]
            .as_str()
            .unwrap_or_else(|| panic!("npm pack --json has no {key}: {out}"))
            .to_string()
    };
    let packed = Packed {
        file: dest.join(text("filename")),
        integrity: text("integrity"),
        shasum: text("shasum"),
    };
    assert!(packed.file.is_file(), "npm pack wrote no {:?}", packed.file);
    assert!(
        packed.integrity.starts_with("sha512-"),
        "integrity {}",
        packed.integrity
    );
    packed
}

/// Writes `name@version` under the npm's home and publishes it with `npm publish ARGS`;
/// asserts npm reported `+ name@version` and returns the package directory.
fn publish_new(npm: &Npm, name: &str, version: &str, args: &[&str]) -> PathBuf {
    let dir = npm.dir(&format!("src/{}-{version}", name.replace('/', "+")));
    write_package(&dir, name, version, json!({}));
    let mut all_args = vec!["publish"];
    all_args.extend_from_slice(args);
    let output = npm.run(&dir, &all_args);
    let all = transcript(&output);
    assert!(
        output.status.success(),
        "npm {all_args:?} of {name}@{version} failed:\n{all}"
    );
    assert!(
        all.contains(&format!("+ {name}@{version}")),
        "npm publish did not print `+ {name}@{version}`:\n{all}"
    );
    dir
}

/// A fresh consumer project (an empty private package.json) under the npm's home.
fn new_project(npm: &Npm, name: &str) -> PathBuf {
    let dir = npm.dir(&format!("projects/{name}"));
    std::fs::write(
        dir.join("package.json"),
        json!({ "name": name, "version": "0.0.0", "private": true }).to_string(),
    )
    .expect("write project package.json");
    dir
}

/// `node -p "require('NAME')"` in `project`: what the installed module exports.
fn node_require(project: &Path, name: &str) -> String {
    let output = Command::new("node")
        .arg("-p")
        .arg(format!("require({name:?})"))
        .current_dir(project)
        .output()
        .expect("node runs");
    assert!(
        output.status.success(),
        "node could not require {name}:\n{}",
        transcript(&output)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// The entry for `node_modules/NAME` in the project's package-lock.json.
fn lock_entry(project: &Path, name: &str) -> Value {
    let text =
        std::fs::read_to_string(project.join("package-lock.json")).expect("package-lock.json");
    let lock: Value = serde_json::from_str(&text).expect("package-lock.json is JSON");
    let entry = lock["packages"][format!("node_modules/{name}")].clone();
    assert!(
        entry.is_object(),
        "no node_modules/{name} in package-lock.json:\n{text}"
    );
    entry
}

fn installed_version(project: &Path, name: &str) -> String {
    let path = project.join("node_modules").join(name).join("package.json");
    let text = std::fs::read_to_string(&path).expect("installed package.json");
    let manifest: Value = serde_json::from_str(&text).expect("installed package.json is JSON");
    manifest["version"].as_str().expect("version").to_string()
}

fn dependency_spec(project: &Path, name: &str) -> String {
    let text = std::fs::read_to_string(project.join("package.json")).expect("project package.json");
    let manifest: Value = serde_json::from_str(&text).expect("project package.json is JSON");
    manifest["dependencies"][name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} not saved in dependencies: {text}"))
        .to_string()
}

fn user_config(npm: &Npm) -> String {
    std::fs::read_to_string(npm.userconfig()).unwrap_or_default()
}

/// Runs a command under a pseudo-terminal and types the answers to npm's login prompts
/// (`Username:`, `Password:`, `Email:`), each once, in the order they appear. npm only prompts
/// when stdin and stdout are TTYs. Prints the transcript; exits with the command's status (124
/// after 60 s). Arguments: USERNAME PASSWORD EMAIL CMD [ARGS...].
/// `npm ARGS` on a pseudo-terminal, answering the login prompts with `user` and `password`.
fn login_on_tty(npm: &Npm, args: &[&str], user: &str, password: &str) -> (Option<i32>, String) {
    let email = format!("{user}@example.com");
    npm.on_tty(
        npm.home.path(),
        args,
        &[
            ("Username:", user),
            ("Password:", password),
            ("Email[^:]*:", &email),
        ],
    )
}

/// Logs in with `npm ARGS` on a TTY and checks the result: a saved token that `npm whoami`
/// accepts. Returns the transcript.
fn assert_tty_login_works(args: &[&str]) -> String {
    let reg = TestRegistry::start();
    reg.add_user("carol", "Carol-pw-123");
    let npm = Npm::new(&reg);
    let (status, out) = login_on_tty(&npm, args, "carol", "Carol-pw-123");
    assert_eq!(status, Some(0), "npm {args:?} failed:\n{out}");
    assert!(
        out.contains(&format!("Logged in on {}/", reg.base)),
        "npm {args:?} did not report the login:\n{out}"
    );
    let rc = user_config(&npm);
    let nerf = format!("{}/:_authToken=", reg.base.trim_start_matches("http:"));
    assert!(rc.contains(&nerf), "no {nerf} in .npmrc after login:\n{rc}");
    let whoami = npm.ok(npm.home.path(), &["whoami"]);
    assert_eq!(whoami.trim(), "carol");
    out
}

// 1. ping and whoami

#[test]
fn npm_ping_prints_pong() {
    let reg = TestRegistry::start();
    let npm = Npm::new(&reg);
    let output = npm.run(npm.home.path(), &["ping"]);
    let all = transcript(&output);
    assert!(output.status.success(), "npm ping failed:\n{all}");
    assert!(all.contains("PONG"), "npm ping printed no PONG:\n{all}");
}

#[test]
fn npm_whoami_prints_the_token_owner_and_fails_without_a_token() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    let npm = Npm::new(&reg).with_token(&token);
    assert_eq!(npm.ok(npm.home.path(), &["whoami"]).trim(), "alice");

    let anonymous = Npm::new(&reg);
    let all = npm_fails(&anonymous, anonymous.home.path(), &["whoami"]);
    assert!(
        all.contains("E401") || all.contains("ENEEDAUTH"),
        "unexpected error:\n{all}"
    );
}

// 2. login

#[test]
fn npm_login_legacy_prompts_for_credentials_and_saves_a_working_token() {
    let out = assert_tty_login_works(&["login", "--auth-type=legacy", "--loglevel", "http"]);
    assert!(
        !out.contains("/-/v1/login"),
        "legacy login tried the web flow:\n{out}"
    );
}

// npm's default (web) login is answered now, so it no longer falls back to the prompts: the
// whole web flow, with a real browser, is in tests/browser_login.rs.

#[test]
fn npm_login_with_a_wrong_password_fails_and_saves_no_token() {
    let reg = TestRegistry::start();
    reg.add_user("carol", "Carol-pw-123");
    let npm = Npm::new(&reg);
    let (status, out) = login_on_tty(
        &npm,
        &["login", "--auth-type=legacy"],
        "carol",
        "not-the-password",
    );
    assert_ne!(
        status,
        Some(0),
        "npm login with a wrong password succeeded:\n{out}"
    );
    assert!(
        out.contains("401"),
        "npm login did not report a 401:\n{out}"
    );
    let rc = user_config(&npm);
    assert!(
        !rc.contains("_authToken"),
        "a token was saved after a failed login:\n{rc}"
    );
    npm_fails(&npm, npm.home.path(), &["whoami"]);
}

#[test]
fn npm_install_needs_a_login_when_only_users_may_read() {
    let reg = TestRegistry::start_with(|config| {
        config.read_access = registry_core::config::ReadAccess::Authenticated;
    });
    reg.add_user("carol", "Carol-pw-123");
    let publisher = Npm::new(&reg).with_token(&reg.user_with_token("alice"));
    publish_new(&publisher, "members-only", "1.0.0", &[]);

    let npm = Npm::new(&reg);
    let project = new_project(&npm, "reader");
    let all = npm_fails(&npm, &project, &["install", "members-only"]);
    assert!(
        all.contains("E401"),
        "anonymous install did not fail with E401:\n{all}"
    );
    assert!(
        all.contains("npm login"),
        "npm did not show the login hint:\n{all}"
    );
    let (status, out) = login_on_tty(
        &npm,
        &["login", "--auth-type=legacy"],
        "carol",
        "Carol-pw-123",
    );
    assert_eq!(status, Some(0), "npm login failed:\n{out}");
    npm.ok(&project, &["install", "members-only"]);
    assert_eq!(installed_version(&project, "members-only"), "1.0.0");
}

// 3. publish and view

#[test]
fn npm_publish_unscoped_then_npm_view_shows_versions_and_tags() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    let npm = Npm::new(&reg).with_token(&token);
    publish_new(&npm, "hello-e2e", "1.0.0", &[]);
    let cwd = npm.home.path();

    let view = npm.ok(cwd, &["view", "hello-e2e", "--prefer-online"]);
    assert!(view.contains("hello-e2e@1.0.0"), "npm view:\n{view}");
    assert!(
        view.contains("hello-e2e for tests"),
        "npm view lacks the description:\n{view}"
    );
    assert!(
        view.contains("latest: 1.0.0"),
        "npm view lacks the latest tag:\n{view}"
    );
    assert!(
        view.contains("alice"),
        "npm view lacks the maintainer:\n{view}"
    );
    assert!(
        view.contains(&format!("{}/hello-e2e/-/hello-e2e-1.0.0.tgz", reg.base)),
        "npm view lacks the tarball URL on this registry:\n{view}"
    );

    let version = npm.ok(
        cwd,
        &["view", "hello-e2e@1.0.0", "version", "--prefer-online"],
    );
    assert_eq!(version.trim(), "1.0.0");

    let tags = npm.ok(
        cwd,
        &[
            "view",
            "hello-e2e",
            "dist-tags",
            "--json",
            "--prefer-online",
        ],
    );
    let tags: Value = serde_json::from_str(&tags).expect("dist-tags --json is JSON");
    assert_eq!(tags, json!({ "latest": "1.0.0" }));
}

#[test]
fn npm_publish_scoped_with_access_public_then_npm_view_shows_it() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    let npm = Npm::new(&reg).with_token(&token);
    publish_new(&npm, "@acme/widget", "1.0.0", &["--access", "public"]);
    let cwd = npm.home.path();

    let view = npm.ok(cwd, &["view", "@acme/widget", "--prefer-online"]);
    assert!(view.contains("@acme/widget@1.0.0"), "npm view:\n{view}");
    assert!(
        view.contains(&format!("{}/@acme/widget/-/widget-1.0.0.tgz", reg.base)),
        "npm view lacks the scoped tarball URL:\n{view}"
    );

    let version = npm.ok(
        cwd,
        &["view", "@acme/widget@1.0.0", "version", "--prefer-online"],
    );
    assert_eq!(version.trim(), "1.0.0");

    let tags = npm.ok(
        cwd,
        &[
            "view",
            "@acme/widget",
            "dist-tags",
            "--json",
            "--prefer-online",
        ],
    );
    let tags: Value = serde_json::from_str(&tags).expect("dist-tags --json is JSON");
    assert_eq!(tags, json!({ "latest": "1.0.0" }));
}

// 4. install

#[test]
fn npm_install_gets_latest_and_locks_the_integrity_npm_pack_computed() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    let npm = Npm::new(&reg).with_token(&token);
    let src = publish_new(&npm, "hello-e2e", "1.0.0", &[]);
    let packed = npm_pack(&npm, &src, &[], &npm.dir("packs"));

    let project = new_project(&npm, "consumer");
    npm.ok(&project, &["install", "hello-e2e", "--prefer-online"]);
    assert_eq!(node_require(&project, "hello-e2e"), "hello-e2e@1.0.0");
    assert!(project.join("node_modules/hello-e2e/README.md").is_file());
    assert_eq!(dependency_spec(&project, "hello-e2e"), "^1.0.0");
    let entry = lock_entry(&project, "hello-e2e");
    assert_eq!(entry["version"], "1.0.0");
    assert_eq!(entry["integrity"], packed.integrity.as_str());
    assert_eq!(
        entry["resolved"],
        format!("{}/hello-e2e/-/hello-e2e-1.0.0.tgz", reg.base)
    );
}

#[test]
fn npm_install_of_a_scoped_package_works_and_locks_its_integrity() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    let npm = Npm::new(&reg).with_token(&token);
    let src = publish_new(&npm, "@acme/widget", "1.0.0", &["--access", "public"]);
    let packed = npm_pack(&npm, &src, &[], &npm.dir("packs"));

    let project = new_project(&npm, "consumer");
    npm.ok(&project, &["install", "@acme/widget", "--prefer-online"]);
    assert_eq!(node_require(&project, "@acme/widget"), "@acme/widget@1.0.0");
    let entry = lock_entry(&project, "@acme/widget");
    assert_eq!(entry["integrity"], packed.integrity.as_str());
    assert_eq!(
        entry["resolved"],
        format!("{}/@acme/widget/-/widget-1.0.0.tgz", reg.base)
    );
}

#[test]
fn npm_install_of_a_caret_range_picks_the_highest_matching_version() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    let npm = Npm::new(&reg).with_token(&token);
    publish_new(&npm, "ranged", "1.0.0", &[]);
    publish_new(&npm, "ranged", "1.2.0", &[]);
    // published last among the 1.x, but not the highest of them
    publish_new(&npm, "ranged", "1.1.0", &["--tag", "maintenance"]);
    publish_new(&npm, "ranged", "2.0.0", &[]);
    let project = new_project(&npm, "consumer");
    npm.ok(&project, &["install", "ranged@^1.0.0", "--prefer-online"]);
    assert_eq!(node_require(&project, "ranged"), "ranged@1.2.0");
    assert_eq!(installed_version(&project, "ranged"), "1.2.0");
    assert_eq!(lock_entry(&project, "ranged")["version"], "1.2.0");
    // npm saves the range rebased on the version it picked
    assert_eq!(dependency_spec(&project, "ranged"), "^1.2.0");
}

#[test]
fn npm_install_by_dist_tag_gets_the_version_published_with_that_tag() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    let npm = Npm::new(&reg).with_token(&token);
    publish_new(&npm, "tagged", "1.0.0", &[]);
    let beta = publish_new(&npm, "tagged", "2.0.0-beta.1", &["--tag", "beta"]);
    let packed = npm_pack(&npm, &beta, &[], &npm.dir("packs"));

    let tags = npm.ok(
        npm.home.path(),
        &["view", "tagged", "dist-tags", "--json", "--prefer-online"],
    );
    let tags: Value = serde_json::from_str(&tags).expect("dist-tags --json is JSON");
    assert_eq!(tags, json!({ "latest": "1.0.0", "beta": "2.0.0-beta.1" }));

    let project = new_project(&npm, "consumer");
    npm.ok(&project, &["install", "tagged@beta", "--prefer-online"]);
    assert_eq!(node_require(&project, "tagged"), "tagged@2.0.0-beta.1");
    let entry = lock_entry(&project, "tagged");
    assert_eq!(entry["version"], "2.0.0-beta.1");
    assert_eq!(entry["integrity"], packed.integrity.as_str());

    // and the plain name still means latest
    let plain = new_project(&npm, "plain");
    npm.ok(&plain, &["install", "tagged", "--prefer-online"]);
    assert_eq!(node_require(&plain, "tagged"), "tagged@1.0.0");
}

// 5. pack

#[test]
fn npm_pack_of_a_published_version_downloads_the_identical_tarball() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    let npm = Npm::new(&reg).with_token(&token);
    let src = publish_new(&npm, "packed", "1.0.0", &[]);
    let local = npm_pack(&npm, &src, &[], &npm.dir("local-pack"));

    let downloads = npm.dir("downloads");
    let remote = npm_pack(
        &npm,
        &downloads,
        &["packed@1.0.0", "--prefer-online"],
        &downloads,
    );
    assert_eq!(remote.integrity, local.integrity);
    assert_eq!(remote.shasum, local.shasum);
    let published = std::fs::read(&local.file).expect("local tarball");
    let downloaded = std::fs::read(&remote.file).expect("downloaded tarball");
    assert!(
        published == downloaded,
        "the downloaded tarball differs from the published one ({} vs {} bytes)",
        downloaded.len(),
        published.len()
    );
}

// 6. refused publishes

#[test]
fn npm_publish_over_an_existing_version_is_refused() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    let npm = Npm::new(&reg).with_token(&token);
    let dir = publish_new(&npm, "once", "1.0.0", &[]);
    // different content under the same version number
    std::fs::write(dir.join("index.js"), "module.exports = 'changed';\n").expect("edit index.js");

    let all = npm_fails(&npm, &dir, &["publish"]);
    assert!(
        all.to_lowercase().contains("cannot publish over") && all.contains("1.0.0"),
        "npm publish over 1.0.0 gave an unexpected error:\n{all}"
    );

    // --force skips npm's own pre-check, so the server must refuse it
    let all = npm_fails(&npm, &dir, &["publish", "--force"]);
    assert!(
        all.contains("403") && all.to_lowercase().contains("cannot publish over"),
        "the server did not refuse a forced publish over 1.0.0:\n{all}"
    );

    let project = new_project(&npm, "consumer");
    npm.ok(&project, &["install", "once", "--prefer-online"]);
    assert_eq!(node_require(&project, "once"), "once@1.0.0");
}

#[test]
fn npm_publish_by_a_user_who_is_not_a_maintainer_is_refused_with_403() {
    let reg = TestRegistry::start();
    let alice = reg.user_with_token("alice");
    let bob = reg.user_with_token("bob");
    let alice_npm = Npm::new(&reg).with_token(&alice);
    publish_new(&alice_npm, "owned", "1.0.0", &[]);

    let bob_npm = Npm::new(&reg).with_token(&bob);
    let dir = bob_npm.dir("owned-1.1.0");
    write_package(&dir, "owned", "1.1.0", json!({}));
    let all = npm_fails(&bob_npm, &dir, &["publish"]);
    assert!(
        all.contains("E403") || all.contains("403 Forbidden"),
        "expected a 403:\n{all}"
    );

    let versions = bob_npm.ok(
        bob_npm.home.path(),
        &["view", "owned", "versions", "--json", "--prefer-online"],
    );
    let versions: Value = serde_json::from_str(&versions).expect("versions --json is JSON");
    assert!(
        versions == json!("1.0.0") || versions == json!(["1.0.0"]),
        "bob's refused version was stored: {versions}"
    );
}

// 7. logout

#[test]
fn npm_logout_revokes_the_token_on_the_server() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    let npm = Npm::new(&reg).with_token(&token);
    assert_eq!(npm.ok(npm.home.path(), &["whoami"]).trim(), "alice");

    npm.ok(npm.home.path(), &["logout"]);
    let rc = user_config(&npm);
    assert!(
        !rc.contains("_authToken"),
        "npm logout left the token in .npmrc:\n{rc}"
    );

    let response = client()
        .get(reg.url("/-/whoami"))
        .bearer_auth(&token)
        .send()
        .expect("whoami request");
    assert_eq!(
        response.status().as_u16(),
        401,
        "the logged-out token still works"
    );
    // and npm with the old token is refused too
    let stale = Npm::new(&reg).with_token(&token);
    npm_fails(&stale, stale.home.path(), &["whoami"]);
}

// 8. warm cache

#[test]
fn npm_install_with_a_warm_cache_revalidates_the_packument_with_304() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    let npm = Npm::new(&reg).with_token(&token);
    let src = publish_new(&npm, "cached", "1.0.0", &[]);
    let packed = npm_pack(&npm, &src, &[], &npm.dir("packs"));

    let first = new_project(&npm, "first");
    npm.ok(&first, &["install", "cached", "--prefer-online"]);
    assert_eq!(node_require(&first, "cached"), "cached@1.0.0");

    // same npm, so the same cache: the packument is revalidated with If-None-Match
    let second = new_project(&npm, "second");
    let output = npm.run(
        &second,
        &["install", "cached", "--prefer-online", "--loglevel", "http"],
    );
    let all = transcript(&output);
    assert!(output.status.success(), "second install failed:\n{all}");
    assert_eq!(node_require(&second, "cached"), "cached@1.0.0");
    assert_eq!(
        lock_entry(&second, "cached")["integrity"],
        packed.integrity.as_str()
    );
    let packument_url = format!("{}/cached ", reg.base);
    let line = all
        .lines()
        .find(|line| line.contains("GET") && line.contains(&packument_url))
        .unwrap_or_else(|| panic!("no packument request logged:\n{all}"));
    // make-fetch-happen says "(cache revalidated)" only when the conditional GET got a 304
    assert!(
        line.contains("(cache revalidated)"),
        "the packument was not answered 304: {line}"
    );
}

/// The registry reads an oversized body before refusing it; otherwise the connection is reset
/// mid-upload and npm fails without a word about why.
#[test]
fn npm_publish_over_the_body_limit_shows_the_413_reason() {
    let reg = TestRegistry::start_with(|config| config.max_body_bytes = 4096);
    let npm = Npm::new(&reg).with_token(&reg.user_with_token("alice"));
    let dir = write_package(&npm.dir("big"), "too-big", "1.0.0", serde_json::json!({}));
    let noise: String = (0..4_000_000u32)
        .map(|i| char::from(b'a' + (i.wrapping_mul(2_654_435_761) >> 27) as u8 % 26))
        .collect();
    std::fs::write(dir.join("noise.txt"), noise).expect("write noise");
    let output = npm.run(&dir, &["publish"]);
    let text = transcript(&output);
    assert!(!output.status.success());
    assert!(text.contains("E413"), "npm must see the 413: {text}");
    assert!(text.contains("max_body_bytes"), "and its reason: {text}");
}
