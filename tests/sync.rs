//! Sync tasks and the registries API, between two in-process registries: an upstream with
//! packages published to it, and a downstream that has it configured (or added over HTTP).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use registry_core::accounts::authz::require_writer;
use registry_core::config::Config;
use registry_core::maintenance::local_admin;
use registry_core::packages::names::PackageName;
use registry_core::upstream::config::{NamePattern, UpstreamConfig};
use registry_core::upstream::sync::{self, SyncOptions};
use registry_core::Registry;
use serde_json::{json, Value};

const DEADLINE: Duration = Duration::from_secs(60);

/// Publishes `name@version` depending on `dependencies` (a JSON object).
fn publish_with_deps(reg: &TestRegistry, token: &str, name: &str, version: &str, deps: Value) {
    let tgz = package_tarball(name, version);
    let mut body = publish_body(name, version, &tgz);
    body["versions"][version]["dependencies"] = deps;
    let status = client()
        .put(reg.url(&format!("/{}", escaped(name))))
        .bearer_auth(token)
        .json(&body)
        .send()
        .expect("publish")
        .status()
        .as_u16();
    assert_eq!(status, 201, "publish {name}@{version}");
}

/// An upstream with `dep-a@1.0.0`, `app@1.0.0` and `app@1.1.0` (both depending on dep-a).
fn upstream_with_app() -> TestRegistry {
    let upstream = TestRegistry::start();
    let token = upstream.user_with_token("alice");
    assert_eq!(publish(&upstream, &token, "dep-a", "1.0.0"), 201);
    publish_with_deps(
        &upstream,
        &token,
        "app",
        "1.0.0",
        json!({"dep-a": "^1.0.0"}),
    );
    publish_with_deps(
        &upstream,
        &token,
        "app",
        "1.1.0",
        json!({"dep-a": "^1.0.0"}),
    );
    upstream
}

fn downstream_of(upstream: &TestRegistry) -> TestRegistry {
    let url = upstream.base.clone();
    TestRegistry::start_with(move |config| {
        config.upstreams = vec![UpstreamConfig::shortcut(&url).expect("upstream config")];
    })
}

fn put_json(reg: &TestRegistry, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut request = client().put(reg.url(path)).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().expect("PUT");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

fn get_json(reg: &TestRegistry, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = client().get(reg.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().expect("GET");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

/// Queues a sync; returns the task id.
fn start_sync(reg: &TestRegistry, token: &str, name: &str, body: Value) -> String {
    let (status, answer) = put_json(
        reg,
        &format!("/-/package/{}/syncs", escaped(name)),
        Some(token),
        &body,
    );
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["ok"], true);
    assert_eq!(answer["type"], "sync_package");
    assert_eq!(answer["state"], "waiting");
    answer["id"].as_str().expect("task id").to_string()
}

/// Polls the task until it and every task it queued have ended.
fn wait_for_tree(reg: &TestRegistry, name: &str, id: &str) -> Value {
    let started = Instant::now();
    loop {
        let (status, task) = get_json(reg, &format!("/-/package/{name}/syncs/{id}"), None);
        assert_eq!(status, 200, "{task}");
        let tree = &task["tree"];
        let done = (task["state"] == "success" || task["state"] == "error")
            && tree["finished"] == tree["total"];
        if done {
            return task;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "sync {id} of {name} did not finish: {task}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn log_of(reg: &TestRegistry, name: &str, id: &str) -> String {
    let response = client()
        .get(reg.url(&format!("/-/package/{name}/syncs/{id}/log")))
        .send()
        .expect("GET log");
    assert_eq!(response.status().as_u16(), 200);
    assert!(response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain")));
    response.text().expect("log text")
}

fn cached(reg: &TestRegistry, name: &str, version: &str) -> bool {
    reg.registry
        .store
        .read(|db| db.cached_tarball(name, version))
        .expect("read cache")
        .is_some()
}

fn assert_error_body(status: u16, body: &Value, expected: u16) {
    assert_eq!(status, expected, "{body}");
    assert!(
        body["error"].is_string() && body["reason"].is_string(),
        "{body}"
    );
}

#[test]
fn a_sync_stores_every_version_and_dependency_and_they_install_with_the_upstream_down() {
    let upstream = upstream_with_app();
    let original = client()
        .get(upstream.url("/app/-/app-1.0.0.tgz"))
        .send()
        .expect("tarball")
        .bytes()
        .expect("bytes");
    let down = downstream_of(&upstream);
    let token = down.user_with_token("bob");

    let id = start_sync(&down, &token, "app", json!({"tips": "for the test"}));
    let task = wait_for_tree(&down, "app", &id);
    assert_eq!(task["state"], "success", "{task}");
    assert_eq!(
        task["tree"],
        json!({"total": 2, "finished": 2, "errors": 0})
    );
    assert_eq!(
        task["logUrl"],
        format!("{}/-/package/app/syncs/{id}/log", down.base)
    );
    for (name, version) in [("app", "1.0.0"), ("app", "1.1.0"), ("dep-a", "1.0.0")] {
        assert!(cached(&down, name, version), "{name}@{version} stored");
    }

    let log = log_of(&down, "app", &id);
    assert!(
        log.contains("[queued] sync of app requested by bob: for the test"),
        "{log}"
    );
    assert!(log.contains("[tarball] app@1.0.0"), "{log}");
    assert!(log.contains("[tarball] app@1.1.0"), "{log}");
    assert!(log.contains("1 queued (dep-a)"), "{log}");
    for line in log.lines() {
        // `[2026-12-01T12:00:00.000Z] …`
        assert!(
            line.len() > 27 && line.starts_with("[20") && &line[25..27] == "] ",
            "timestamped: {line}"
        );
    }

    upstream.stop();
    let (status, doc) = get_json(&down, "/app", None);
    assert_eq!(status, 200, "{doc}");
    assert!(doc["versions"]["1.1.0"].is_object());
    let served = client()
        .get(down.url("/app/-/app-1.0.0.tgz"))
        .send()
        .expect("tarball");
    assert_eq!(served.status().as_u16(), 200);
    assert_eq!(served.bytes().expect("bytes"), original);

    let npm = Npm::new(&down);
    let project = write_package(&npm.dir("project"), "project", "1.0.0", json!({}));
    npm.ok(&project, &["install", "app@1.1.0"]);
    let installed = |p: &str| project.join("node_modules").join(p).join("package.json");
    assert!(installed("app").is_file());
    assert!(installed("dep-a").is_file(), "the dependency installs too");
}

#[test]
fn specific_versions_and_skip_dependencies_limit_the_sync() {
    let upstream = upstream_with_app();
    let down = downstream_of(&upstream);
    let token = down.user_with_token("bob");

    let id = start_sync(
        &down,
        &token,
        "app",
        json!({"specificVersions": "[\"1.1.0\"]", "skipDependencies": true}),
    );
    let task = wait_for_tree(&down, "app", &id);
    assert_eq!(task["state"], "success", "{task}");
    assert_eq!(task["tree"]["total"], 1, "no dependency queued");
    assert!(cached(&down, "app", "1.1.0"));
    assert!(!cached(&down, "app", "1.0.0"), "only the version asked for");
    assert!(!cached(&down, "dep-a", "1.0.0"));
    assert!(log_of(&down, "app", &id).contains("[deps] skipped (skipDependencies)"));

    // A version published upstream since is found by the next sync, though the cached
    // document is still fresh for the proxy.
    let alice = upstream.token("alice", Default::default());
    publish_with_deps(&upstream, &alice, "app", "1.2.0", json!({}));
    let id = start_sync(
        &down,
        &token,
        "app",
        json!({"specificVersions": ["1.2.0"], "skipDependencies": true}),
    );
    let task = wait_for_tree(&down, "app", &id);
    assert_eq!(task["state"], "success", "{task}");
    assert!(cached(&down, "app", "1.2.0"));

    // A version the upstream does not have: the others are synced, the task fails saying so.
    let id = start_sync(
        &down,
        &token,
        "app",
        json!({"specificVersions": ["1.0.0", "9.9.9"], "skipDependencies": true}),
    );
    let task = wait_for_tree(&down, "app", &id);
    assert_eq!(task["state"], "error", "{task}");
    assert!(
        task["error"].as_str().unwrap_or_default().contains("9.9.9"),
        "{task}"
    );
    assert!(cached(&down, "app", "1.0.0"));
}

#[test]
fn refusals_are_4xx_json_and_local_names_are_not_synced() {
    let upstream = upstream_with_app();
    let down = downstream_of(&upstream);
    let bob = down.user_with_token("bob");
    down.add_user_with("root", "root-password", true);
    let root = down.token("root", Default::default());

    let path = "/-/package/app/syncs";
    let (status, body) = put_json(&down, path, Some(&bob), &json!({"force": true}));
    assert_error_body(status, &body, 403);
    let (status, body) = put_json(&down, path, Some(&bob), &json!({"forceSyncHistory": true}));
    assert_error_body(status, &body, 403);
    let (status, body) = put_json(&down, path, None, &json!({}));
    assert_error_body(status, &body, 401);
    let (status, body) = put_json(&down, path, Some(&root), &json!({"force": true}));
    assert_eq!(status, 201, "an admin may force: {body}");

    for bad in [
        json!({"specificVersions": "not json"}),
        json!({"specificVersions": ["not a version"]}),
        json!({"skipDependencies": "maybe"}),
        json!([1, 2]),
    ] {
        let (status, body) = put_json(&down, path, Some(&bob), &bad);
        assert_error_body(status, &body, 400);
    }
    let (status, body) = put_json(&down, "/-/package/Bad%20Name/syncs", Some(&bob), &json!({}));
    assert_error_body(status, &body, 400);
    let (status, body) = put_json(&down, path, Some(&bob), &json!({"registryName": "nope"}));
    assert_error_body(status, &body, 404);
    assert!(body["error"].as_str().unwrap_or_default().contains("nope"));

    let (status, body) = get_json(&down, "/-/package/app/syncs/0123456789abcdef", None);
    assert_error_body(status, &body, 404);
    let id = start_sync(&down, &bob, "app", json!({"skipDependencies": true}));
    let (status, body) = get_json(&down, &format!("/-/package/dep-a/syncs/{id}"), None);
    assert_error_body(status, &body, 404);

    // Blocked: refused at once.
    let block = client()
        .put(down.url("/-/package/dep-a/blocks"))
        .bearer_auth(&root)
        .json(&json!({"reason": "not here"}))
        .send()
        .expect("block");
    assert!(block.status().is_success());
    let (status, body) = put_json(&down, "/-/package/dep-a/syncs", Some(&bob), &json!({}));
    assert_error_body(status, &body, 451);

    // Published here: the task ends at once, saying why.
    assert_eq!(publish(&down, &bob, "local-only", "1.0.0"), 201);
    let id = start_sync(&down, &bob, "local-only", json!({}));
    let task = wait_for_tree(&down, "local-only", &id);
    assert_eq!(task["state"], "success", "{task}");
    assert!(log_of(&down, "local-only", &id)
        .contains("[skip] local-only is published on this registry"));

    // No upstream at all: nothing to sync from, said at once.
    let lonely = TestRegistry::start();
    let token = lonely.user_with_token("carol");
    let (status, body) = put_json(&lonely, path, Some(&token), &json!({}));
    assert_error_body(status, &body, 400);
    assert!(body["error"]
        .as_str()
        .unwrap_or_default()
        .contains("no upstream serves app"));
}

fn config_with_upstream(data_dir: &Path, upstream: &str) -> Config {
    let mut config = Config {
        data_dir: data_dir.to_path_buf(),
        upstreams: vec![UpstreamConfig::shortcut(upstream).expect("upstream config")],
        ..Config::default()
    };
    // Opened without the harness too: on the binary's backend all the same.
    common::use_test_backend(&mut config);
    config
}

#[test]
fn a_task_interrupted_by_a_restart_resumes() {
    let upstream = upstream_with_app();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let id = {
        // A task that a worker had claimed when the registry stopped.
        let registry = Registry::open(config_with_upstream(&data, &upstream.base)).expect("open");
        let admin = local_admin();
        let writer = require_writer(Some(&admin)).expect("writer");
        let name = PackageName::parse("app").expect("name");
        let options = SyncOptions {
            skip_dependencies: true,
            ..SyncOptions::default()
        };
        let task = sync::create(&registry, &writer, &name, &options).expect("create");
        let now = registry_core::clock::now_iso();
        let claimed = registry
            .store
            .write(|db| db.claim_sync_task(&now))
            .expect("claim")
            .expect("a task to claim");
        assert_eq!(claimed.id, task.id);
        assert_eq!(claimed.state, "processing");
        task.id
    };
    let url = upstream.base.clone();
    let down = TestRegistry::start_with(move |config| *config = config_with_upstream(&data, &url));
    let task = wait_for_tree(&down, "app", &id);
    assert_eq!(task["state"], "success", "{task}");
    assert_eq!(task["attempts"], 2);
    assert!(cached(&down, "app", "1.0.0") && cached(&down, "app", "1.1.0"));
    assert!(log_of(&down, "app", &id).contains("[resume] attempt 2"));
}

#[test]
fn the_registries_api_lists_adds_and_removes_registries_and_a_sync_can_pick_one() {
    let upstream = upstream_with_app();
    let second = TestRegistry::start();
    let token = second.user_with_token("dave");
    assert_eq!(publish(&second, &token, "@other/only-there", "2.0.0"), 201);
    // The configured upstream serves unscoped names only.
    let url = upstream.base.clone();
    let down = TestRegistry::start_with(move |config| {
        let mut upstream = UpstreamConfig::shortcut(&url).expect("upstream config");
        upstream.packages = vec![NamePattern::Unscoped];
        config.upstreams = vec![upstream];
    });
    let bob = down.user_with_token("bob");
    down.add_user_with("root", "root-password", true);
    let root = down.token("root", Default::default());

    let (status, list) = get_json(&down, "/-/registry", None);
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["total"], 1);
    assert_eq!(list["data"][0]["registryId"], "upstream");
    assert_eq!(list["data"][0]["host"], upstream.base);
    assert_eq!(list["data"][0]["configured"], true);
    let (status, one) = get_json(&down, "/-/registry/upstream", None);
    assert_eq!((status, one["name"].clone()), (200, json!("upstream")));

    let post = |token: Option<&str>, body: Value| {
        let mut request = client().post(down.url("/-/registry")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().expect("POST");
        let status = response.status().as_u16();
        (status, response.json::<Value>().unwrap_or(Value::Null))
    };
    let new = json!({"name": "second", "host": second.base, "type": "cnpm",
                     "changeStream": format!("{}/_changes", second.base)});
    let (status, body) = post(Some(&bob), new.clone());
    assert_error_body(status, &body, 403);
    let (status, body) = post(None, new.clone());
    assert_error_body(status, &body, 401);
    let (status, created) = post(Some(&root), new.clone());
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["type"], "cnpm");
    let id = created["registryId"].as_str().expect("id").to_string();
    let (status, body) = post(Some(&root), new);
    assert_error_body(status, &body, 409);
    let (status, body) = post(
        Some(&root),
        json!({"name": "upstream", "host": second.base}),
    );
    assert_error_body(status, &body, 409);
    let (status, body) = post(Some(&root), json!({"name": "x", "host": "ftp://nope"}));
    assert_error_body(status, &body, 400);
    let (status, body) = post(Some(&root), json!({"host": second.base}));
    assert_error_body(status, &body, 400);

    let (_, list) = get_json(&down, "/-/registry", None);
    assert_eq!(list["total"], 2);
    let (_, page) = get_json(&down, "/-/registry?pageSize=1&pageIndex=1", None);
    assert_eq!(page["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(page["data"][0]["registryId"], id.as_str());
    assert_eq!(page["total"], 2);
    let (status, body) = get_json(&down, "/-/registry?pageSize=0", None);
    assert_error_body(status, &body, 400);
    let (status, shown) = get_json(&down, &format!("/-/registry/{id}"), None);
    assert_eq!((status, shown["name"].clone()), (200, json!("second")));

    // A sync from the registry added over HTTP, of a name only it has.
    let name = "@other/only-there";
    let task = start_sync(&down, &bob, name, json!({"registryName": "second"}));
    let done = wait_for_tree(&down, name, &task);
    assert_eq!(done["state"], "success", "{done}");
    assert_eq!(done["registryName"], "second");
    assert!(cached(&down, name, "2.0.0"));
    assert!(log_of(&down, name, &task).contains(&format!("from second ({})", second.base)));
    // Served from what was synced, though no configured upstream serves the name.
    second.stop();
    let (status, doc) = get_json(&down, "/@other%2fonly-there", None);
    assert_eq!(status, 200, "{doc}");
    assert!(doc["versions"]["2.0.0"].is_object());
    let tarball = client()
        .get(down.url("/@other/only-there/-/only-there-2.0.0.tgz"))
        .send()
        .expect("tarball");
    assert_eq!(tarball.status().as_u16(), 200);
    let (status, _) = get_json(&down, "/@other%2fnever-synced", None);
    assert_eq!(status, 404);

    let delete = |path: &str, token: &str| {
        let response = client()
            .delete(down.url(path))
            .bearer_auth(token)
            .send()
            .expect("DELETE");
        let status = response.status().as_u16();
        (status, response.json::<Value>().unwrap_or(Value::Null))
    };
    let (status, body) = delete("/-/registry/upstream", &root);
    assert_error_body(status, &body, 409);
    let (status, body) = delete(&format!("/-/registry/{id}"), &bob);
    assert_error_body(status, &body, 403);
    let (status, body) = delete(&format!("/-/registry/{id}"), &root);
    assert_eq!((status, body), (200, json!({"ok": true})));
    let (status, body) = get_json(&down, &format!("/-/registry/{id}"), None);
    assert_error_body(status, &body, 404);
    let (status, body) = delete(&format!("/-/registry/{id}"), &root);
    assert_error_body(status, &body, 404);
    let (_, list) = get_json(&down, "/-/registry", None);
    assert_eq!(list["total"], 1);

    // The admin API below /-/registry/admin/ is untouched.
    let (status, users) = get_json(&down, "/-/registry/admin/users", Some(&root));
    assert_eq!(status, 200, "{users}");
    assert!(users.as_array().is_some_and(|u| u.len() == 2), "{users}");
}

#[test]
fn the_legacy_endpoints_queue_and_report_a_sync_for_both_spellings_of_a_scoped_name() {
    let upstream = upstream_with_app();
    let token = upstream.user_with_token("erin");
    assert_eq!(publish(&upstream, &token, "@scope/lib", "0.1.0"), 201);
    let down = downstream_of(&upstream);
    let bob = down.user_with_token("bob");

    let (status, body) = put_json(&down, "/app/sync?nodeps=true", Some(&bob), &Value::Null);
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["ok"], true);
    let id = body["logId"].as_str().expect("logId").to_string();
    let started = Instant::now();
    let answer = loop {
        let (status, answer) = get_json(&down, &format!("/app/sync/log/{id}"), None);
        assert_eq!(status, 200, "{answer}");
        if answer["syncDone"] == true {
            break answer;
        }
        assert!(started.elapsed() < DEADLINE, "not done: {answer}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(answer["ok"], true);
    assert!(answer["log"]
        .as_str()
        .unwrap_or_default()
        .contains("[done] synced app"));
    assert_eq!(
        answer["logUrl"],
        format!("{}/-/package/app/syncs/{id}/log", down.base)
    );
    assert!(!cached(&down, "dep-a", "1.0.0"), "nodeps=true");

    let (status, body) = put_json(&down, "/@scope%2flib/sync", Some(&bob), &Value::Null);
    assert_eq!(status, 201, "{body}");
    let id = body["logId"].as_str().expect("logId").to_string();
    let task = wait_for_tree(&down, "@scope%2flib", &id);
    assert_eq!(task["state"], "success", "{task}");
    let (status, answer) = get_json(&down, &format!("/@scope/lib/sync/log/{id}"), None);
    assert_eq!((status, answer["syncDone"].clone()), (200, json!(true)));
    let (status, task) = get_json(&down, &format!("/-/package/@scope/lib/syncs/{id}"), None);
    assert_eq!(
        (status, task["package"].clone()),
        (200, json!("@scope/lib"))
    );
    assert!(cached(&down, "@scope/lib", "0.1.0"));

    // An anonymous legacy sync is refused like the new one.
    let (status, body) = put_json(&down, "/app/sync", None, &Value::Null);
    assert_error_body(status, &body, 401);
}
