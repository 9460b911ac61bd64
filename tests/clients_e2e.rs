//! The other clients: pnpm and yarn (berry) install from the registry, and yarn publishes to
//! it. Pinned versions are installed with npm into `target/test-clients` on first use, so
//! `cargo test` needs nothing beyond node and npm.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::*;
use serde_json::json;

const PNPM: &str = "pnpm@12.21.0";
const YARN: &str = "@yarnpkg/cli-dist@4.18.1";

/// `target/test-clients/node_modules/.bin`, with pnpm and yarn installed once per test run.
fn client_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let prefix = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join("test-clients");
        let bin = prefix.join("node_modules").join(".bin");
        let pinned = prefix.join(format!("{PNPM} {YARN}").replace(['/', '@', ' '], "_"));
        if !pinned.exists() {
            std::fs::create_dir_all(&prefix).expect("mkdir test-clients");
            let output = Command::new("npm")
                .args([
                    "install",
                    "--no-save",
                    "--no-audit",
                    "--no-fund",
                    "--prefix",
                ])
                .arg(&prefix)
                .args([PNPM, YARN])
                .output()
                .expect("npm runs");
            assert!(
                output.status.success(),
                "installing {PNPM} and {YARN} failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            std::fs::write(&pinned, "").expect("mark installed");
        }
        bin
    })
}

fn run(program: &str, cwd: &Path, home: &Path, args: &[&str]) -> Output {
    let path = format!(
        "{}:{}",
        client_bin().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new(client_bin().join(program))
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", path)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("YARN_ENABLE_GLOBAL_CACHE", "0")
        .env("YARN_ENABLE_TELEMETRY", "0")
        .env("YARN_ENABLE_PROGRESS_BARS", "0")
        .env("COREPACK_ENABLE_STRICT", "0")
        .env("YARN_ENABLE_IMMUTABLE_INSTALLS", "false")
        .env("CI", "true")
        .output()
        .expect("client runs")
}

fn ok(program: &str, cwd: &Path, home: &Path, args: &[&str]) -> String {
    let output = run(program, cwd, home, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "{program} {args:?} failed:\n{text}"
    );
    text
}

fn node_require(project: &Path, name: &str) -> String {
    let output = Command::new("node")
        .args(["-p", &format!("require({name:?})")])
        .current_dir(project)
        .output()
        .expect("node runs");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Publishes `@acme/lib@1.0.0` and `app-lib@2.0.0` (which depends on it) with the real npm.
fn publish_pair(reg: &TestRegistry) -> Npm {
    let npm = Npm::new(reg).with_token(&reg.user_with_token("alice"));
    let lib = write_package(&npm.dir("lib"), "@acme/lib", "1.0.0", json!({}));
    npm.ok(&lib, &["publish", "--access", "public"]);
    let app = write_package(
        &npm.dir("app"),
        "app-lib",
        "2.0.0",
        json!({ "dependencies": { "@acme/lib": "^1.0.0" } }),
    );
    npm.ok(&app, &["publish"]);
    npm
}

fn new_project(home: &Path, name: &str) -> PathBuf {
    let dir = home.join(name);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("package.json"),
        r#"{"name":"proj","version":"1.0.0","private":true}"#,
    )
    .expect("package.json");
    dir
}

/// `pnpm add app-lib` in a new project against `reg`; checks what was installed and returns
/// the lockfile.
fn pnpm_add_app_lib(reg: &TestRegistry) -> String {
    let home = tempfile::tempdir().expect("home");
    let project = new_project(home.path(), "pnpm-project");
    std::fs::write(project.join(".npmrc"), format!("registry={}/\n", reg.base)).expect(".npmrc");
    let store = home.path().join("pnpm-store");
    ok(
        "pnpm",
        &project,
        home.path(),
        &[
            "add",
            "app-lib",
            "--store-dir",
            store.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(node_require(&project, "app-lib"), "app-lib@2.0.0");
    let lock = std::fs::read_to_string(project.join("pnpm-lock.yaml")).expect("pnpm-lock.yaml");
    assert!(lock.contains("'@acme/lib@1.0.0'"), "{lock}");
    lock
}

#[test]
fn pnpm_installs_a_package_and_its_scoped_dependency() {
    let reg = TestRegistry::start();
    publish_pair(&reg);
    let lock = pnpm_add_app_lib(&reg);
    assert!(
        lock.contains("integrity: sha512-"),
        "pnpm verified integrity:\n{lock}"
    );
}

fn yarnrc(reg: &TestRegistry, token: Option<&str>) -> String {
    let mut rc = format!(
        "npmRegistryServer: \"{}\"\nunsafeHttpWhitelist: [\"127.0.0.1\"]\nnpmMinimalAgeGate: 0\n\
         enableTelemetry: false\nnodeLinker: node-modules\nenableGlobalCache: false\n",
        reg.base
    );
    if let Some(token) = token {
        rc.push_str(&format!("npmAuthToken: \"{token}\"\n"));
    }
    rc
}

#[test]
fn yarn_installs_a_package_and_its_scoped_dependency() {
    let reg = TestRegistry::start();
    publish_pair(&reg);
    let home = tempfile::tempdir().expect("home");
    let project = new_project(home.path(), "yarn-project");
    std::fs::write(project.join(".yarnrc.yml"), yarnrc(&reg, None)).expect(".yarnrc.yml");
    ok("yarn", &project, home.path(), &["add", "app-lib"]);
    assert_eq!(node_require(&project, "app-lib"), "app-lib@2.0.0");
    let lock = std::fs::read_to_string(project.join("yarn.lock")).expect("yarn.lock");
    assert!(lock.contains("\"@acme/lib@npm:1.0.0\""), "{lock}");
}

#[test]
fn yarn_npm_publish_of_a_scoped_package_then_npm_installs_it() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("bob");
    let home = tempfile::tempdir().expect("home");
    let source = write_package(&home.path().join("ylib"), "@acme/ylib", "3.0.0", json!({}));
    std::fs::write(source.join(".yarnrc.yml"), yarnrc(&reg, Some(&token))).expect(".yarnrc.yml");
    std::fs::write(source.join("yarn.lock"), "").expect("yarn.lock");
    ok("yarn", &source, home.path(), &["install"]);
    let out = ok(
        "yarn",
        &source,
        home.path(),
        &["npm", "publish", "--access", "public"],
    );
    assert!(out.contains("Package archive published"), "{out}");

    let doc: serde_json::Value = client()
        .get(reg.url("/@acme%2fylib"))
        .send()
        .and_then(|r| r.json())
        .expect("packument");
    assert_eq!(doc["dist-tags"]["latest"], "3.0.0");
    assert_eq!(doc["versions"]["3.0.0"]["_npmUser"]["name"], "bob");
    let npm = Npm::new(&reg);
    let project = npm.dir("consumer");
    std::fs::write(
        project.join("package.json"),
        r#"{"name":"c","version":"1.0.0"}"#,
    )
    .expect("write");
    npm.ok(&project, &["install", "@acme/ylib", "--prefer-online"]);
    assert_eq!(node_require(&project, "@acme/ylib"), "@acme/ylib@3.0.0");
}

/// A registry that proxies `upstream` (which holds the pair), for the clients to install from.
fn proxy_of(upstream: &TestRegistry) -> TestRegistry {
    let base = upstream.base.clone();
    TestRegistry::start_with(move |c| proxy_to(c, &base, |_| {}))
}

#[test]
fn pnpm_installs_through_the_upstream_proxy() {
    let upstream = TestRegistry::start();
    publish_pair(&upstream);
    let proxy = proxy_of(&upstream);
    let lock = pnpm_add_app_lib(&proxy);
    assert!(lock.contains("integrity: sha512-"), "{lock}");
}

#[test]
fn yarn_installs_through_the_upstream_proxy() {
    let upstream = TestRegistry::start();
    publish_pair(&upstream);
    let proxy = proxy_of(&upstream);
    let home = tempfile::tempdir().expect("home");
    let project = new_project(home.path(), "yarn-proxied");
    std::fs::write(project.join(".yarnrc.yml"), yarnrc(&proxy, None)).expect(".yarnrc.yml");
    ok("yarn", &project, home.path(), &["add", "app-lib"]);
    assert_eq!(node_require(&project, "app-lib"), "app-lib@2.0.0");
    let lock = std::fs::read_to_string(project.join("yarn.lock")).expect("yarn.lock");
    assert!(lock.contains("\"@acme/lib@npm:1.0.0\""), "{lock}");
}

/// `@corp/private-lib@1.0.0`, published restricted with npm by alice, who owns the org corp;
/// carol is a member of corp (so of its developers team, which gets new packages), bob is
/// not. Returns carol's and bob's tokens.
fn restricted_in_org(reg: &TestRegistry) -> (String, String) {
    let alice = reg.user_with_token("alice");
    let carol = reg.user_with_token("carol");
    let bob = reg.user_with_token("bob");
    reg.add_user_with("root", "root-password", true);
    let store = &reg.registry.store;
    let identity = |name: &str| registry_core::accounts::auth::Identity {
        user: store
            .read(|db| db.user_by_name(name))
            .expect("read user")
            .expect("user exists"),
        token: None,
    };
    let root = identity("root");
    let admin = registry_core::accounts::authz::require_admin(Some(&root)).expect("admin");
    registry_core::access::orgs::create_org(store, &admin, "corp", "alice").expect("org");
    registry_core::access::orgs::set_member(store, Some(&identity("alice")), "corp", "carol", None)
        .expect("carol joins corp");
    let npm = Npm::new(reg).with_token(&alice);
    let lib = write_package(
        &npm.dir("private-lib"),
        "@corp/private-lib",
        "1.0.0",
        json!({}),
    );
    npm.ok(&lib, &["publish", "--access", "restricted"]);
    (carol, bob)
}

fn pnpm_add_with_token(
    reg: &TestRegistry,
    home: &Path,
    token: &str,
    package: &str,
) -> (Output, PathBuf) {
    let project = new_project(home, "pnpm-private");
    let nerf = reg.base.trim_start_matches("http:");
    std::fs::write(
        project.join(".npmrc"),
        format!("registry={}/\n{nerf}/:_authToken={token}\n", reg.base),
    )
    .expect(".npmrc");
    let store = home.join("pnpm-store");
    let output = run(
        "pnpm",
        &project,
        home,
        &[
            "add",
            package,
            "--store-dir",
            store.to_str().expect("utf-8"),
        ],
    );
    (output, project)
}

#[test]
fn pnpm_installs_a_restricted_package_with_a_members_token_only() {
    let reg = TestRegistry::start();
    let (carol, bob) = restricted_in_org(&reg);
    let member_home = tempfile::tempdir().expect("home");
    let (output, project) =
        pnpm_add_with_token(&reg, member_home.path(), &carol, "@corp/private-lib");
    assert!(
        output.status.success(),
        "pnpm add with a member's token failed:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(
        node_require(&project, "@corp/private-lib"),
        "@corp/private-lib@1.0.0"
    );
    let stranger_home = tempfile::tempdir().expect("home");
    let (output, project) =
        pnpm_add_with_token(&reg, stranger_home.path(), &bob, "@corp/private-lib");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !output.status.success(),
        "pnpm add as a non-member worked:\n{text}"
    );
    assert!(text.contains("404"), "pnpm did not report a 404:\n{text}");
    assert!(!project.join("node_modules/@corp/private-lib").exists());
}

#[test]
fn yarn_installs_a_restricted_package_with_a_members_token_only() {
    let reg = TestRegistry::start();
    let (carol, bob) = restricted_in_org(&reg);
    let attempt = |home: &Path, token: &str| {
        let project = new_project(home, "yarn-private");
        let rc = format!("{}npmAlwaysAuth: true\n", yarnrc(&reg, Some(token)));
        std::fs::write(project.join(".yarnrc.yml"), rc).expect(".yarnrc.yml");
        let output = run("yarn", &project, home, &["add", "@corp/private-lib"]);
        (output, project)
    };
    let member_home = tempfile::tempdir().expect("home");
    let (output, project) = attempt(member_home.path(), &carol);
    assert!(
        output.status.success(),
        "yarn add with a member's token failed:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(
        node_require(&project, "@corp/private-lib"),
        "@corp/private-lib@1.0.0"
    );
    let stranger_home = tempfile::tempdir().expect("home");
    let (output, project) = attempt(stranger_home.path(), &bob);
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        !output.status.success(),
        "yarn add as a non-member worked:\n{text}"
    );
    assert!(text.contains("404"), "yarn did not report a 404:\n{text}");
    assert!(!project.join("node_modules/@corp/private-lib").exists());
}
