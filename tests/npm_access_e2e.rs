//! The real `npm` (11) against the daemon for orgs, teams and private packages: `npm org`,
//! `npm team`, `npm access`, `npm publish --access restricted` and what `npm view` shows to
//! members, strangers and anonymous readers. Each assertion is on npm's exit status and on
//! what it printed.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;
use registry_core::accounts::tokens::TokenOptions;
use serde_json::json;

fn transcript(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs npm, asserts that it failed, and returns what it printed.
fn npm_fails(npm: &Npm, cwd: &Path, args: &[&str]) -> String {
    let output = npm.run(cwd, args);
    let all = transcript(&output);
    assert!(!output.status.success(), "npm {args:?} should fail:\n{all}");
    all
}

/// The lines npm printed on stdout, trimmed, without empty ones.
fn lines(out: &str) -> Vec<&str> {
    out.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

/// A registry with the org `acme` (created by an administrator over the admin API, owned by
/// olivia), olivia's npm, and the registry's users `names` each with a token.
fn acme(names: &[&str]) -> (TestRegistry, Npm, Vec<String>) {
    let reg = TestRegistry::start();
    reg.add_user_with("root", "root-password", true);
    let root = reg.token("root", TokenOptions::default());
    let olivia = reg.user_with_token("olivia");
    let created = client()
        .post(reg.url("/-/registry/admin/orgs"))
        .bearer_auth(&root)
        .json(&json!({"name": "acme", "owner": "olivia"}))
        .send()
        .expect("create the org");
    assert_eq!(created.status().as_u16(), 201, "{:?}", created.text());
    let tokens = names.iter().map(|name| reg.user_with_token(name)).collect();
    let npm = Npm::new(&reg).with_token(&olivia);
    (reg, npm, tokens)
}

fn publish_restricted(npm: &Npm, name: &str) {
    let dir = write_package(
        &npm.dir(&format!("src-{}", name.replace('/', "-"))),
        name,
        "1.0.0",
        json!({}),
    );
    let out = npm.ok(&dir, &["publish", "--access", "restricted"]);
    assert!(out.contains(&format!("+ {name}@1.0.0")), "{out}");
}

#[test]
fn npm_org_and_npm_team_manage_members_and_teams() {
    let (reg, olivia, tokens) = acme(&["dev", "bob", "stranger"]);
    // A directory of no npm's home, so that no project .npmrc is in the way.
    let work = tempfile::tempdir().expect("working directory");
    let cwd = work.path();
    let dev = Npm::new(&reg).with_token(&tokens[0]);
    let bob = Npm::new(&reg).with_token(&tokens[1]);
    let stranger = Npm::new(&reg).with_token(&tokens[2]);

    let out = olivia.ok(cwd, &["org", "set", "acme", "dev", "developer"]);
    assert_eq!(
        out.trim(),
        "Added dev as developer to acme. You now have 2 members in this org."
    );
    let out = olivia.ok(cwd, &["org", "set", "@acme", "bob", "admin"]);
    assert_eq!(
        out.trim(),
        "Added bob as admin to acme. You now have 3 members in this org."
    );
    let out = dev.ok(cwd, &["org", "ls", "acme"]);
    assert_eq!(
        lines(&out),
        ["bob - admin", "dev - developer", "olivia - owner"]
    );
    let out = olivia.ok(cwd, &["org", "ls", "acme", "dev"]);
    assert_eq!(lines(&out), ["dev - developer"]);
    let out = olivia.ok(cwd, &["org", "ls", "acme", "--json"]);
    let roster: serde_json::Value = serde_json::from_str(&out).expect("npm org ls --json");
    assert_eq!(
        roster,
        json!({"bob": "admin", "dev": "developer", "olivia": "owner"})
    );

    // Teams: an admin of the org manages them too.
    let out = olivia.ok(cwd, &["team", "create", "@acme:core"]);
    assert_eq!(out.trim(), "+@acme:core");
    let out = bob.ok(cwd, &["team", "add", "@acme:core", "dev"]);
    assert_eq!(out.trim(), "dev added to @acme:core");
    let out = dev.ok(cwd, &["team", "ls", "@acme"]);
    assert_eq!(
        lines(&out),
        ["@acme has 2 teams:", "@acme:core", "@acme:developers"]
    );
    let out = dev.ok(cwd, &["team", "ls", "@acme:core"]);
    assert_eq!(lines(&out), ["@acme:core has 1 user:", "dev"]);
    let out = olivia.ok(cwd, &["team", "ls", "@acme:developers"]);
    assert_eq!(
        lines(&out),
        ["@acme:developers has 3 users:", "bob", "dev", "olivia"]
    );

    // Refusals, printed by npm with the registry's reason.
    let all = npm_fails(&dev, cwd, &["team", "create", "@acme:rogue"]);
    assert!(all.contains("E403"), "{all}");
    assert!(
        all.contains("dev is not an owner or admin of the org acme"),
        "{all}"
    );
    let all = npm_fails(&stranger, cwd, &["org", "ls", "acme"]);
    assert!(
        all.contains("E404") && all.contains("no org named acme"),
        "{all}"
    );
    let all = npm_fails(&olivia, cwd, &["team", "create", "@acme:core"]);
    assert!(
        all.contains("E409") && all.contains("already exists"),
        "{all}"
    );
    let all = npm_fails(&olivia, cwd, &["org", "set", "acme", "nobody"]);
    assert!(
        all.contains("E404") && all.contains("no user named nobody"),
        "{all}"
    );
    let all = npm_fails(&bob, cwd, &["org", "set", "acme", "dev", "owner"]);
    assert!(
        all.contains("E403") && all.contains("only an owner"),
        "{all}"
    );
    let all = npm_fails(&olivia, cwd, &["org", "rm", "acme", "olivia"]);
    assert!(all.contains("E409") && all.contains("last owner"), "{all}");

    let out = olivia.ok(cwd, &["team", "rm", "@acme:core", "dev"]);
    assert_eq!(out.trim(), "dev removed from @acme:core");
    let out = olivia.ok(cwd, &["team", "ls", "@acme:core"]);
    assert_eq!(lines(&out), ["@acme:core has 0 users"]);
    let out = olivia.ok(cwd, &["team", "destroy", "@acme:core"]);
    assert_eq!(out.trim(), "-@acme:core");
    let out = olivia.ok(cwd, &["team", "ls", "@acme"]);
    assert_eq!(lines(&out), ["@acme has 1 team:", "@acme:developers"]);

    let out = olivia.ok(cwd, &["org", "rm", "acme", "bob"]);
    assert_eq!(
        out.trim(),
        "Successfully removed bob from acme. You now have 2 members in this org."
    );
    let out = olivia.ok(cwd, &["org", "ls", "acme"]);
    assert_eq!(lines(&out), ["dev - developer", "olivia - owner"]);
    let all = npm_fails(&bob, cwd, &["team", "ls", "@acme"]);
    assert!(all.contains("E404"), "bob left the org: {all}");
}

#[test]
fn npm_access_on_a_restricted_org_package() {
    let (reg, olivia, tokens) = acme(&["dev", "tess", "stranger"]);
    // A directory of no npm's home, so that no project .npmrc is in the way.
    let work = tempfile::tempdir().expect("working directory");
    let cwd = work.path();
    let dev = Npm::new(&reg).with_token(&tokens[0]);
    let tess = Npm::new(&reg).with_token(&tokens[1]);
    let stranger = Npm::new(&reg).with_token(&tokens[2]);
    let anonymous = Npm::new(&reg);

    // dev is a developer (in the developers team); tess is in the org but only in `readers`.
    olivia.ok(cwd, &["org", "set", "acme", "dev", "developer"]);
    olivia.ok(cwd, &["org", "set", "acme", "tess", "developer"]);
    olivia.ok(cwd, &["team", "rm", "@acme:developers", "tess"]);
    olivia.ok(cwd, &["team", "create", "@acme:readers"]);
    olivia.ok(cwd, &["team", "add", "@acme:readers", "tess"]);

    publish_restricted(&olivia, "@acme/secret");
    let out = olivia.ok(cwd, &["access", "get", "status", "@acme/secret"]);
    assert_eq!(out.trim(), "@acme/secret: private");

    // Only those who may read it see it; to everyone else it does not exist.
    let view = ["view", "@acme/secret", "version", "--prefer-online"];
    assert_eq!(dev.ok(cwd, &view).trim(), "1.0.0");
    for (who, npm) in [
        ("anonymous", &anonymous),
        ("stranger", &stranger),
        ("tess", &tess),
    ] {
        let all = npm_fails(npm, cwd, &view);
        assert!(all.contains("E404"), "{who}: {all}");
    }
    let all = npm_fails(&stranger, cwd, &["access", "get", "status", "@acme/secret"]);
    assert!(all.contains("E404"), "{all}");
    let all = npm_fails(
        &stranger,
        cwd,
        &["access", "list", "collaborators", "@acme/secret"],
    );
    assert!(all.contains("E404"), "{all}");

    // npm access grant
    olivia.ok(
        cwd,
        &[
            "access",
            "grant",
            "read-only",
            "@acme:readers",
            "@acme/secret",
        ],
    );
    assert_eq!(tess.ok(cwd, &view).trim(), "1.0.0");
    let out = olivia.ok(cwd, &["access", "list", "packages", "@acme:readers"]);
    assert_eq!(lines(&out), ["@acme/secret: read-only"]);
    let out = olivia.ok(cwd, &["access", "list", "packages", "@acme"]);
    assert_eq!(lines(&out), ["@acme/secret: read-write"]);
    let out = tess.ok(cwd, &["access", "list", "packages", "tess"]);
    assert_eq!(lines(&out), ["@acme/secret: read-only"]);
    let out = olivia.ok(cwd, &["access", "list", "packages", "olivia"]);
    assert_eq!(lines(&out), ["@acme/secret: read-write"]);
    let out = olivia.ok(cwd, &["access", "list", "packages"]);
    assert_eq!(
        lines(&out),
        ["@acme/secret: read-write"],
        "whoami's packages"
    );
    for npm in [&anonymous, &stranger] {
        let out = npm.ok(cwd, &["access", "list", "packages", "@acme"]);
        assert!(lines(&out).is_empty(), "{out}");
        let out = npm.ok(cwd, &["access", "list", "packages", "olivia"]);
        assert!(lines(&out).is_empty(), "{out}");
    }
    let out = tess.ok(cwd, &["access", "list", "collaborators", "@acme/secret"]);
    assert_eq!(
        lines(&out),
        ["dev: read-write", "olivia: read-write", "tess: read-only"]
    );

    // npm access set status=public|private, seen at once by anonymous readers.
    let out = olivia.ok(cwd, &["access", "set", "status=public", "@acme/secret"]);
    assert_eq!(out.trim(), "@acme/secret: public");
    assert_eq!(anonymous.ok(cwd, &view).trim(), "1.0.0");
    let out = anonymous.ok(cwd, &["access", "get", "status", "@acme/secret"]);
    assert_eq!(out.trim(), "@acme/secret: public");
    let out = olivia.ok(cwd, &["access", "set", "status=private", "@acme/secret"]);
    assert_eq!(out.trim(), "@acme/secret: private");
    let all = npm_fails(&anonymous, cwd, &view);
    assert!(all.contains("E404"), "{all}");
    let all = npm_fails(
        &dev,
        cwd,
        &["access", "set", "status=public", "@acme/secret"],
    );
    assert!(
        all.contains("E403") && all.contains("dev is not a maintainer of @acme/secret"),
        "{all}"
    );

    // npm access revoke
    olivia.ok(cwd, &["access", "revoke", "@acme:readers", "@acme/secret"]);
    let all = npm_fails(&tess, cwd, &view);
    assert!(all.contains("E404"), "{all}");
    let out = olivia.ok(cwd, &["access", "list", "packages", "@acme:readers"]);
    assert!(lines(&out).is_empty(), "{out}");
    let out = olivia.ok(cwd, &["access", "list", "collaborators", "@acme/secret"]);
    assert_eq!(lines(&out), ["dev: read-write", "olivia: read-write"]);
}

/// What npm cannot do here fails at once with a 4xx and the reason (a 5xx would be retried).
#[test]
fn unsupported_access_commands_fail_with_a_4xx_and_the_reason() {
    let (reg, olivia, _) = acme(&[]);
    // A directory of no npm's home, so that no project .npmrc is in the way.
    let work = tempfile::tempdir().expect("working directory");
    let cwd = work.path();
    publish_restricted(&olivia, "@acme/lib");

    let all = npm_fails(&olivia, cwd, &["access", "set", "mfa=none", "@acme/lib"]);
    assert!(all.contains("E400"), "{all}");
    assert!(all.contains("no two-factor authentication"), "{all}");
    let all = npm_fails(&olivia, cwd, &["access", "set", "mfa=publish", "@acme/lib"]);
    assert!(all.contains("E400"), "{all}");

    let all = npm_fails(&olivia, cwd, &["trust", "list", "@acme/lib"]);
    assert!(all.contains("E400"), "{all}");
    assert!(all.contains("not supported by this registry yet"), "{all}");

    // npm 11 dropped `npm hook` (npm/cli#7835): it knows no such command and asks nothing.
    let all = npm_fails(&olivia, cwd, &["hook", "ls"]);
    assert!(all.contains("Unknown command: \"hook\""), "{all}");
    // What libnpmhook would send, through npm's own npm-registry-fetch with npm's default
    // retries (a 5xx would be retried, a 4xx is reported at once): hooks are served (the
    // hooks tests cover them), and without a token the answer is a 401 at once.
    let root = olivia.ok(cwd, &["root", "-g"]);
    let fetch = Path::new(root.trim()).join("npm/node_modules/npm-registry-fetch");
    assert!(
        fetch.is_dir(),
        "npm's npm-registry-fetch at {}",
        fetch.display()
    );
    let script = format!(
        "require({fetch:?}).json('/-/npm/v1/hooks', {{ registry: {registry:?}, \
         query: {{ package: '@acme/lib' }} }}).then(\
           r => {{ console.log('unexpected success', JSON.stringify(r)) }},\
           e => {{ console.error(e.code, e.message); process.exit(1) }})",
        fetch = fetch.display().to_string(),
        registry = format!("{}/", reg.base),
    );
    let output = Command::new("node")
        .arg("-e")
        .arg(script)
        .current_dir(cwd)
        .env("HOME", olivia.home.path())
        .output()
        .expect("node runs");
    let all = transcript(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(all.contains("E401"), "{all}");
}
