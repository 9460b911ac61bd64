//! The real `npm` on the write side: dist-tag, deprecate, unpublish, owner and star.

mod common;

use std::path::Path;

use common::*;
use serde_json::{json, Value};

fn combined(output: &std::process::Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn npm_publish(npm: &Npm, name: &str, version: &str) {
    let dir = write_package(
        &npm.dir(&format!("src-{}-{version}", name.replace('/', "-"))),
        name,
        version,
        json!({}),
    );
    let mut args = vec!["publish"];
    if name.starts_with('@') {
        args.extend(["--access", "public"]);
    }
    if semver_prerelease(version) {
        args.extend(["--tag", "next"]);
    }
    let out = npm.ok(&dir, &args);
    assert!(out.contains(&format!("+ {name}@{version}")), "{out}");
}

fn semver_prerelease(version: &str) -> bool {
    version.contains('-')
}

fn view_json(npm: &Npm, cwd: &Path, args: &[&str]) -> Value {
    let mut all = vec!["view"];
    all.extend_from_slice(args);
    all.extend(["--json", "--prefer-online"]);
    let out = npm.ok(cwd, &all);
    serde_json::from_str(out.trim()).unwrap_or(Value::Null)
}

#[test]
fn npm_dist_tag_ls_add_and_rm() {
    let reg = TestRegistry::start();
    let npm = Npm::new(&reg).with_token(&reg.user_with_token("alice"));
    let cwd = npm.dir("work");
    npm_publish(&npm, "tagme", "1.0.0");
    npm_publish(&npm, "tagme", "1.1.0");

    let out = npm.ok(&cwd, &["dist-tag", "add", "tagme@1.0.0", "stable"]);
    assert!(out.contains("+stable: tagme@1.0.0"), "{out}");
    let out = npm.ok(&cwd, &["dist-tag", "ls", "tagme"]);
    assert!(
        out.contains("latest: 1.1.0") && out.contains("stable: 1.0.0"),
        "{out}"
    );
    let project = npm.dir("project");
    std::fs::write(
        project.join("package.json"),
        r#"{"name":"p","version":"1.0.0"}"#,
    )
    .expect("write");
    npm.ok(&project, &["install", "tagme@stable", "--prefer-online"]);
    let installed: Value = serde_json::from_str(
        &std::fs::read_to_string(project.join("node_modules/tagme/package.json"))
            .expect("installed"),
    )
    .expect("json");
    assert_eq!(installed["version"], "1.0.0");

    let out = npm.ok(&cwd, &["dist-tag", "rm", "tagme", "stable"]);
    assert!(out.contains("-stable: tagme@1.0.0"), "{out}");
    assert_eq!(
        view_json(&npm, &cwd, &["tagme", "dist-tags"]),
        json!({"latest": "1.1.0"})
    );

    let refused = npm.run(&cwd, &["dist-tag", "rm", "tagme", "latest"]);
    assert!(!refused.status.success(), "removing latest must fail");
    assert!(
        combined(&refused).contains("latest"),
        "{}",
        combined(&refused)
    );
    let missing = npm.run(&cwd, &["dist-tag", "add", "tagme@9.9.9", "nope"]);
    assert!(!missing.status.success());
    assert!(
        combined(&missing).contains("9.9.9"),
        "{}",
        combined(&missing)
    );
}

#[test]
fn npm_deprecate_and_undeprecate() {
    let reg = TestRegistry::start();
    let npm = Npm::new(&reg).with_token(&reg.user_with_token("alice"));
    let cwd = npm.dir("work");
    npm_publish(&npm, "@acme/legacy", "1.0.0");
    npm_publish(&npm, "@acme/legacy", "2.0.0");

    npm.ok(&cwd, &["deprecate", "@acme/legacy@<2", "please use 2.x"]);
    assert_eq!(
        view_json(&npm, &cwd, &["@acme/legacy@1.0.0", "deprecated"]),
        json!("please use 2.x")
    );
    assert_eq!(
        view_json(&npm, &cwd, &["@acme/legacy@2.0.0", "deprecated"]),
        Value::Null
    );

    let project = npm.dir("project");
    std::fs::write(
        project.join("package.json"),
        r#"{"name":"p","version":"1.0.0"}"#,
    )
    .expect("write");
    let install = npm.run(
        &project,
        &["install", "@acme/legacy@1.0.0", "--prefer-online"],
    );
    assert!(install.status.success());
    assert!(
        combined(&install).contains("please use 2.x"),
        "npm warns about the deprecation: {}",
        combined(&install)
    );

    npm.ok(&cwd, &["deprecate", "@acme/legacy@1.0.0", ""]);
    assert_eq!(
        view_json(&npm, &cwd, &["@acme/legacy@1.0.0", "deprecated"]),
        Value::Null
    );

    let bob = Npm::new(&reg).with_token(&reg.user_with_token("bob"));
    let refused = bob.run(&cwd, &["deprecate", "@acme/legacy@1.0.0", "hijacked"]);
    assert!(!refused.status.success());
    assert!(combined(&refused).contains("403"), "{}", combined(&refused));
}

#[test]
fn npm_unpublish_of_one_version_then_of_the_whole_package() {
    let reg = TestRegistry::start();
    let npm = Npm::new(&reg).with_token(&reg.user_with_token("alice"));
    let cwd = npm.dir("work");
    npm_publish(&npm, "@acme/fleeting", "1.0.0");
    npm_publish(&npm, "@acme/fleeting", "1.1.0");

    let out = npm.ok(&cwd, &["unpublish", "@acme/fleeting@1.1.0"]);
    assert!(out.contains("- @acme/fleeting@1.1.0"), "{out}");
    assert_eq!(
        view_json(&npm, &cwd, &["@acme/fleeting", "versions"]),
        json!(["1.0.0"])
    );
    assert_eq!(
        view_json(&npm, &cwd, &["@acme/fleeting", "dist-tags.latest"]),
        json!("1.0.0")
    );
    let gone = client()
        .get(reg.url("/@acme/fleeting/-/fleeting-1.1.0.tgz"))
        .send()
        .expect("GET");
    assert_eq!(gone.status().as_u16(), 404);

    let again = npm.run(
        &write_package(&npm.dir("again"), "@acme/fleeting", "1.1.0", json!({})),
        &["publish", "--access", "public"],
    );
    assert!(
        !again.status.success(),
        "an unpublished version number is burnt"
    );

    npm.ok(&cwd, &["unpublish", "@acme/fleeting", "--force"]);
    let view = npm.run(&cwd, &["view", "@acme/fleeting", "--prefer-online"]);
    assert!(!view.status.success());
    assert!(combined(&view).contains("E404"), "{}", combined(&view));
    let tarball = client()
        .get(reg.url("/@acme/fleeting/-/fleeting-1.0.0.tgz"))
        .send()
        .expect("GET");
    assert_eq!(tarball.status().as_u16(), 404);
}

#[test]
fn npm_unpublish_by_a_stranger_is_refused() {
    let reg = TestRegistry::start();
    let alice = Npm::new(&reg).with_token(&reg.user_with_token("alice"));
    let bob = Npm::new(&reg).with_token(&reg.user_with_token("bob"));
    let cwd = alice.dir("work");
    npm_publish(&alice, "keepme", "1.0.0");
    let refused = bob.run(&cwd, &["unpublish", "keepme", "--force"]);
    assert!(!refused.status.success());
    assert!(combined(&refused).contains("403"), "{}", combined(&refused));
    assert_eq!(
        view_json(&alice, &cwd, &["keepme", "version"]),
        json!("1.0.0")
    );
}

#[test]
fn npm_owner_ls_add_and_rm() {
    let reg = TestRegistry::start();
    let alice = Npm::new(&reg).with_token(&reg.user_with_token("alice"));
    let bob = Npm::new(&reg).with_token(&reg.user_with_token("bob"));
    let cwd = alice.dir("work");
    npm_publish(&alice, "@acme/team", "1.0.0");

    let out = alice.ok(&cwd, &["owner", "ls", "@acme/team"]);
    assert!(out.contains("alice <alice@example.com>"), "{out}");
    let out = alice.ok(&cwd, &["owner", "add", "bob", "@acme/team"]);
    assert!(out.contains("+ bob (@acme/team)"), "{out}");
    let out = alice.ok(&cwd, &["owner", "ls", "@acme/team"]);
    assert!(out.contains("bob <bob@example.com>"), "{out}");
    npm_publish(&bob, "@acme/team", "1.1.0");

    let out = alice.ok(&cwd, &["owner", "rm", "bob", "@acme/team"]);
    assert!(out.contains("- bob (@acme/team)"), "{out}");
    let out = alice.ok(&cwd, &["owner", "ls", "@acme/team"]);
    assert!(!out.contains("bob"), "{out}");
    let dir = write_package(&bob.dir("late"), "@acme/team", "1.2.0", json!({}));
    let refused = bob.run(&dir, &["publish", "--access", "public"]);
    assert!(!refused.status.success(), "a removed owner cannot publish");

    let unknown = alice.run(&cwd, &["owner", "add", "nobody", "@acme/team"]);
    assert!(!unknown.status.success());
}

#[test]
fn npm_star_stars_and_unstar() {
    let reg = TestRegistry::start();
    let alice = Npm::new(&reg).with_token(&reg.user_with_token("alice"));
    let cwd = alice.dir("work");
    npm_publish(&alice, "shiny", "1.0.0");

    alice.ok(&cwd, &["star", "shiny"]);
    let out = alice.ok(&cwd, &["stars"]);
    assert!(out.contains("shiny"), "{out}");
    assert_eq!(
        view_json(&alice, &cwd, &["shiny", "users"]),
        json!({"alice": true})
    );
    alice.ok(&cwd, &["unstar", "shiny"]);
    let out = alice.run(&cwd, &["stars"]);
    assert!(!combined(&out).contains("shiny"), "{}", combined(&out));
}
