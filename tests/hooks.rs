//! Hooks end to end: the Hook Management API against an in-process daemon, and deliveries to
//! a receiver on 127.0.0.1 that checks every signature. Changes are made over HTTP as npm
//! makes them; the receiver's requests are polled for with a deadline, never slept for.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fake_http::{Canned, FakeHttp, Recorded};
use common::*;
use hmac::{Hmac, KeyInit, Mac};
use registry_core::accounts::tokens::TokenOptions;
use serde_json::{json, Value};
use sha2::Sha256;

const DEADLINE: Duration = Duration::from_secs(30);
const SECRET: &str = "s3cret-shared";

/// A registry whose hooks may call 127.0.0.1 and retry quickly.
fn registry() -> TestRegistry {
    TestRegistry::start_with(|c| {
        c.hooks_allow_private = true;
        c.hooks_retry_base_ms = 50;
    })
}

/// A receiver answering 200 to everything.
fn receiver() -> FakeHttp {
    FakeHttp::start(|_| Canned::new(200, "text/plain", "ok"))
}

fn status_and_body(response: reqwest::blocking::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

fn create_hook(reg: &TestRegistry, token: &str, body: &Value) -> (u16, Value) {
    status_and_body(
        client()
            .post(reg.url("/-/npm/v1/hooks/hook"))
            .bearer_auth(token)
            .json(body)
            .send()
            .expect("POST hook"),
    )
}

/// A package hook of `token`'s user on `name`; answers its id.
fn hook_on(reg: &TestRegistry, token: &str, kind: &str, name: &str, endpoint: &str) -> String {
    let (status, hook) = create_hook(
        reg,
        token,
        &json!({"type": kind, "name": name, "endpoint": endpoint, "secret": SECRET}),
    );
    assert_eq!(status, 201, "{hook}");
    hook["id"].as_str().expect("hook id").to_string()
}

fn get(reg: &TestRegistry, token: &str, path: &str) -> (u16, Value) {
    status_and_body(
        client()
            .get(reg.url(path))
            .bearer_auth(token)
            .send()
            .expect("GET"),
    )
}

fn signature_ok(request: &Recorded) -> bool {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()) else {
        return false;
    };
    mac.update(&request.body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    request.header("x-npm-signature") == Some(expected.as_str())
}

/// Waits until the receiver has `count` requests; answers their bodies, each signature and
/// header checked.
fn received(receiver: &FakeHttp, count: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let requests = receiver.requests();
        if requests.len() >= count {
            return requests
                .iter()
                .map(|r| {
                    assert_eq!(r.method, "POST");
                    assert!(
                        signature_ok(r),
                        "signature of {:?}",
                        r.header("x-npm-signature")
                    );
                    assert!(r
                        .header("x-registry-delivery")
                        .is_some_and(|id| id.len() == 32));
                    let body: Value = serde_json::from_slice(&r.body).expect("JSON body");
                    assert_eq!(r.header("x-npm-event"), body["event"].as_str());
                    body
                })
                .collect();
        }
        assert!(
            started.elapsed() < DEADLINE,
            "only {} of {count} deliveries arrived",
            requests.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The document's current `_rev`.
fn rev(reg: &TestRegistry, token: &str, name: &str) -> String {
    let (_, doc) = get(reg, token, &format!("/{}?write=true", escaped(name)));
    doc["_rev"].as_str().expect("_rev").to_string()
}

fn put(reg: &TestRegistry, token: &str, path: &str, body: &Value) -> u16 {
    client()
        .put(reg.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .expect("PUT")
        .status()
        .as_u16()
}

fn delete(reg: &TestRegistry, token: &str, path: &str) -> u16 {
    client()
        .delete(reg.url(path))
        .bearer_auth(token)
        .send()
        .expect("DELETE")
        .status()
        .as_u16()
}

fn set_deprecated(reg: &TestRegistry, token: &str, name: &str, message: &str) -> u16 {
    let r = rev(reg, token, name);
    let (_, doc) = get(reg, token, &format!("/{name}?write=true"));
    let mut versions = doc["versions"].clone();
    if let Some(map) = versions.as_object_mut() {
        for manifest in map.values_mut() {
            manifest["deprecated"] = json!(message);
        }
    }
    put(
        reg,
        token,
        &format!("/{name}/-rev/{r}"),
        &json!({"_id": name, "_rev": r, "versions": versions}),
    )
}

fn set_owners(reg: &TestRegistry, token: &str, name: &str, owners: &[&str]) -> u16 {
    let r = rev(reg, token, name);
    let maintainers: Vec<Value> = owners.iter().map(|n| json!({"name": n})).collect();
    put(
        reg,
        token,
        &format!("/{name}/-rev/{r}"),
        &json!({"_id": name, "_rev": r, "maintainers": maintainers}),
    )
}

fn set_star(reg: &TestRegistry, token: &str, user: &str, name: &str, on: bool) -> u16 {
    let r = rev(reg, token, name);
    put(
        reg,
        token,
        &format!("/{name}"),
        &json!({"_id": name, "_rev": r, "users": {user: on}}),
    )
}

#[test]
fn every_change_is_delivered_once_in_order_signed_with_npms_payload() {
    let reg = registry();
    let alice = reg.user_with_token("alice");
    let bob = reg.user_with_token("bob");
    let hooks = receiver();
    assert_eq!(publish(&reg, &alice, "hooked", "1.0.0"), 201);
    let id = hook_on(&reg, &alice, "package", "hooked", &hooks.url("/hook"));

    assert_eq!(publish(&reg, &alice, "hooked", "1.1.0"), 201);
    let tag_path = "/-/package/hooked/dist-tags/beta";
    assert_eq!(put(&reg, &alice, tag_path, &json!("1.1.0")), 201);
    assert_eq!(delete(&reg, &alice, tag_path), 200);
    assert_eq!(set_deprecated(&reg, &alice, "hooked", "use 2"), 200);
    assert_eq!(set_deprecated(&reg, &alice, "hooked", ""), 200);
    assert_eq!(set_owners(&reg, &alice, "hooked", &["alice", "bob"]), 200);
    assert_eq!(set_owners(&reg, &alice, "hooked", &["alice"]), 200);
    assert_eq!(set_star(&reg, &bob, "bob", "hooked", true), 200);
    assert_eq!(set_star(&reg, &bob, "bob", "hooked", false), 200);
    let r = rev(&reg, &alice, "hooked");
    assert_eq!(
        delete(
            &reg,
            &alice,
            &format!("/hooked/-/hooked-1.1.0.tgz/-rev/{r}")
        ),
        200
    );
    let r = rev(&reg, &alice, "hooked");
    assert_eq!(delete(&reg, &alice, &format!("/hooked/-rev/{r}")), 200);

    let expected = [
        (
            "package:publish",
            json!({"version": "1.1.0", "dist-tag": "latest"}),
        ),
        ("package:dist-tag", json!({"dist-tag": "beta"})),
        ("package:dist-tag-rm", json!({"dist-tag": "beta"})),
        (
            "package:deprecated",
            json!({"version": "1.0.0", "deprecated": "use 2"}),
        ),
        (
            "package:deprecated",
            json!({"version": "1.1.0", "deprecated": "use 2"}),
        ),
        (
            "package:undeprecated",
            json!({"version": "1.0.0", "deprecated": ""}),
        ),
        (
            "package:undeprecated",
            json!({"version": "1.1.0", "deprecated": ""}),
        ),
        ("package:owner", json!({"maintainer": "bob"})),
        ("package:owner-rm", json!({"maintainer": "bob"})),
        ("package:star", json!({"user": "bob"})),
        ("package:unstar", json!({"user": "bob"})),
        ("package:unpublish", json!({"version": "1.1.0"})),
        ("package:unpublish", json!({"version": null})),
    ];
    let bodies = received(&hooks, expected.len());
    let seen: Vec<(&str, &Value)> = bodies
        .iter()
        .map(|b| (b["event"].as_str().unwrap_or_default(), &b["change"]))
        .collect();
    let wanted: Vec<(&str, &Value)> = expected.iter().map(|(e, c)| (*e, c)).collect();
    assert_eq!(seen, wanted, "each event once, in order");
    for body in &bodies {
        assert_eq!(body["name"], "hooked");
        assert_eq!(body["type"], "package");
        assert_eq!(body["version"], "1.0.0");
        assert_eq!(body["hookOwner"], json!({"username": "alice"}));
        assert!(body["time"].as_u64().is_some_and(|t| t > 1_600_000_000_000));
        assert_eq!(body["payload"]["name"], "hooked");
    }
    let payload_keys: Vec<&String> = bodies[0]["payload"]
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    assert_eq!(
        payload_keys,
        [
            "name",
            "dist-tags",
            "versions",
            "maintainers",
            "time",
            "unpublished"
        ]
    );
    assert!(bodies[0]["payload"]["time"]["created"].is_string());
    assert!(bodies[0]["payload"]["time"]["modified"].is_string());
    assert_eq!(bodies[0]["payload"]["unpublished"], false);
    assert_eq!(
        bodies[0]["payload"]["maintainers"],
        json!([{"name": "alice"}])
    );
    assert_eq!(bodies[0]["payload"]["versions"], json!(["1.0.0", "1.1.0"]));
    assert_eq!(bodies[0]["payload"]["dist-tags"]["latest"], "1.1.0");
    assert_eq!(
        bodies[7]["payload"]["maintainers"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(bodies[12]["payload"]["unpublished"], true);
    // Nothing more comes: every event exactly once.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(hooks.requests().len(), expected.len());

    // The hook and its deliveries say so.
    let started = Instant::now();
    let (status, hook) = loop {
        let (status, hook) = get(&reg, &alice, &format!("/-/npm/v1/hooks/hook/{id}"));
        if hook["delivered"] == true || started.elapsed() > DEADLINE {
            break (status, hook);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status, 200);
    assert_eq!(hook["delivered"], true);
    assert!(hook["last_delivery"].is_string());
    assert_eq!(hook["response_code"], 200);
    assert!(hook.get("secret").is_none(), "the secret is never shown");
    let (status, list) = get(
        &reg,
        &alice,
        &format!("/-/npm/v1/hooks/hook/{id}/deliveries?limit=100"),
    );
    assert_eq!(status, 200);
    let deliveries = list["objects"].as_array().expect("deliveries");
    assert_eq!(deliveries.len(), expected.len());
    assert_eq!(deliveries[0]["event"], "package:unpublish", "newest first");
    for delivery in deliveries {
        assert_eq!(delivery["status"], "delivered", "{delivery}");
        assert_eq!(delivery["attempts"], 1);
        assert_eq!(delivery["response_code"], 200);
        assert!(delivery["duration_ms"].is_u64());
    }
}

#[test]
fn scope_and_owner_hooks_hear_of_their_packages_only() {
    let reg = registry();
    let alice = reg.user_with_token("alice");
    let bob = reg.user_with_token("bob");
    let scope_receiver = receiver();
    let owner_receiver = receiver();
    hook_on(&reg, &bob, "scope", "@team", &scope_receiver.url("/scope"));
    // npm's spelling of an owner hook's name.
    hook_on(&reg, &bob, "owner", "~alice", &owner_receiver.url("/owner"));

    assert_eq!(publish(&reg, &alice, "@team/one", "1.0.0"), 201);
    assert_eq!(publish(&reg, &alice, "@other/two", "1.0.0"), 201);
    assert_eq!(publish(&reg, &bob, "@team/three", "1.0.0"), 201);

    let scoped = received(&scope_receiver, 2);
    let names: Vec<&str> = scoped.iter().filter_map(|b| b["name"].as_str()).collect();
    assert_eq!(names, ["@team/one", "@team/three"]);
    let owned = received(&owner_receiver, 2);
    let names: Vec<&str> = owned.iter().filter_map(|b| b["name"].as_str()).collect();
    assert_eq!(names, ["@team/one", "@other/two"]);
    assert!(owned.iter().all(|b| b["hookOwner"]["username"] == "bob"));
}

#[test]
fn a_receiver_failing_twice_gets_the_event_on_the_third_try() {
    let reg = registry();
    let alice = reg.user_with_token("alice");
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let flaky = FakeHttp::start(move |_| {
        if counted.fetch_add(1, Ordering::SeqCst) < 2 {
            Canned::new(500, "text/plain", "down")
        } else {
            Canned::new(200, "text/plain", "ok")
        }
    });
    assert_eq!(publish(&reg, &alice, "flaky", "1.0.0"), 201);
    let id = hook_on(&reg, &alice, "package", "flaky", &flaky.url("/"));
    assert_eq!(publish(&reg, &alice, "flaky", "2.0.0"), 201);

    let bodies = received(&flaky, 3);
    assert!(bodies.iter().all(|b| b["change"]["version"] == "2.0.0"));
    let ids: Vec<String> = flaky
        .requests()
        .iter()
        .filter_map(|r| r.header("x-registry-delivery").map(str::to_string))
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] == w[1]),
        "one delivery id: {ids:?}"
    );
    let started = Instant::now();
    let delivery = loop {
        let (_, list) = get(
            &reg,
            &alice,
            &format!("/-/npm/v1/hooks/hook/{id}/deliveries"),
        );
        let first = list["objects"][0].clone();
        if first["status"] == "delivered" || started.elapsed() > DEADLINE {
            break first;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(delivery["status"], "delivered");
    assert_eq!(delivery["attempts"], 3);
    assert_eq!(delivery["response_code"], 200);
    assert_eq!(delivery["event"], "package:publish");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(calls.load(Ordering::SeqCst), 3, "nothing after the success");
}

#[test]
fn a_refused_change_delivers_nothing() {
    let reg = registry();
    let alice = reg.user_with_token("alice");
    let bob = reg.user_with_token("bob");
    let hooks = receiver();
    assert_eq!(publish(&reg, &alice, "guarded", "1.0.0"), 201);
    hook_on(&reg, &alice, "package", "guarded", &hooks.url("/"));

    // A different tarball for a published version, a stranger's publish, a bad token, a
    // dist-tag on a version that does not exist.
    let tgz = tarball(&[(
        "package/package.json",
        br#"{"name":"guarded","version":"1.0.0","description":"other"}"#,
    )]);
    let other = publish_body("guarded", "1.0.0", &tgz);
    let refused = put(&reg, &alice, "/guarded", &other);
    assert!((400..500).contains(&refused), "{refused}");
    assert_eq!(publish(&reg, &bob, "guarded", "1.1.0"), 403);
    assert_eq!(publish(&reg, "npm_not-a-token", "guarded", "1.2.0"), 401);
    assert_eq!(
        put(
            &reg,
            &alice,
            "/-/package/guarded/dist-tags/x",
            &json!("9.9.9")
        ),
        400
    );

    // Then one real change: it is the first and only thing the receiver gets.
    assert_eq!(publish(&reg, &alice, "guarded", "1.3.0"), 201);
    let bodies = received(&hooks, 1);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(hooks.requests().len(), 1);
    assert_eq!(bodies[0]["change"]["version"], "1.3.0");
}

#[test]
fn private_endpoints_are_refused_unless_allowed() {
    let reg = TestRegistry::start();
    let alice = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &alice, "inside", "1.0.0"), 201);
    for endpoint in [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://[::1]/",
        "http://10.0.0.8/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:192.168.0.1]/",
    ] {
        let (status, body) = create_hook(
            &reg,
            &alice,
            &json!({"type": "package", "name": "inside", "endpoint": endpoint, "secret": "s"}),
        );
        assert_eq!(status, 400, "{endpoint}: {body}");
        let reason = body["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("private") || reason.contains("resolve"),
            "{endpoint}: {reason}"
        );
    }
    let (_, list) = get(&reg, &alice, "/-/npm/v1/hooks");
    assert_eq!(list["objects"], json!([]));
}

#[test]
fn hooks_are_seen_only_by_their_owner_and_administrators() {
    let reg = registry();
    let alice = reg.user_with_token("alice");
    let bob = reg.user_with_token("bob");
    reg.add_user_with("root", "root-password", true);
    let root = reg.token("root", TokenOptions::default());
    let hooks = receiver();
    assert_eq!(publish(&reg, &alice, "mine", "1.0.0"), 201);
    assert_eq!(publish(&reg, &alice, "yours", "1.0.0"), 201);
    let id = hook_on(&reg, &alice, "package", "mine", &hooks.url("/a"));
    hook_on(&reg, &alice, "package", "yours", &hooks.url("/b"));

    let (status, list) = get(&reg, &alice, "/-/npm/v1/hooks");
    assert_eq!(status, 200);
    assert_eq!(list["total"], 2);
    let (_, filtered) = get(&reg, &alice, "/-/npm/v1/hooks?package=mine");
    assert_eq!(filtered["objects"][0]["id"], id.as_str());
    assert_eq!(filtered["objects"].as_array().map(Vec::len), Some(1));
    let (_, paged) = get(&reg, &alice, "/-/npm/v1/hooks?limit=1&offset=1");
    assert_eq!(paged["objects"].as_array().map(Vec::len), Some(1));
    assert_ne!(paged["objects"][0]["id"], id.as_str());

    let (_, theirs) = get(&reg, &bob, "/-/npm/v1/hooks");
    assert_eq!(theirs["objects"], json!([]));
    assert_eq!(theirs["total"], 0);
    let path = format!("/-/npm/v1/hooks/hook/{id}");
    assert_eq!(get(&reg, &bob, &path).0, 404);
    assert_eq!(get(&reg, &bob, &format!("{path}/deliveries")).0, 404);
    assert_eq!(
        put(&reg, &bob, &path, &json!({"endpoint": hooks.url("/x")})),
        404
    );
    assert_eq!(delete(&reg, &bob, &path), 404);
    let anonymous = client()
        .get(reg.url("/-/npm/v1/hooks"))
        .send()
        .expect("GET");
    assert_eq!(anonymous.status().as_u16(), 401);

    let (_, all) = get(&reg, &root, "/-/npm/v1/hooks");
    assert_eq!(all["total"], 2);
    assert_eq!(all["objects"][0]["username"], "alice");

    // The owner updates and deletes it.
    let updated = client()
        .put(reg.url(&path))
        .bearer_auth(&alice)
        .json(&json!({"endpoint": hooks.url("/new"), "secret": "other"}))
        .send()
        .expect("PUT");
    let (status, hook) = status_and_body(updated);
    assert_eq!(status, 200);
    assert_eq!(hook["endpoint"], hooks.url("/new"));
    let deleted = client()
        .delete(reg.url(&path))
        .bearer_auth(&alice)
        .send()
        .expect("DELETE");
    let (status, gone) = status_and_body(deleted);
    assert_eq!(status, 200);
    assert_eq!(gone["id"], id.as_str());
    assert!(gone["deleted"].is_string());
    assert!(gone.get("secret").is_none());
    assert_eq!(get(&reg, &alice, &path).0, 404);
}

#[test]
fn a_hook_on_a_package_needs_the_right_to_read_it() {
    let reg = registry();
    let alice = reg.user_with_token("alice");
    let bob = reg.user_with_token("bob");
    let hooks = receiver();
    let tgz = package_tarball("@alice/secret", "1.0.0");
    let mut body = publish_body("@alice/secret", "1.0.0", &tgz);
    body["access"] = json!("restricted");
    assert_eq!(put(&reg, &alice, "/@alice%2fsecret", &body), 201);

    for name in ["@alice/secret", "no-such-package"] {
        let (status, answer) = create_hook(
            &reg,
            &bob,
            &json!({"type": "package", "name": name, "endpoint": hooks.url("/"),
                    "secret": "s"}),
        );
        assert_eq!(status, 404, "{name}: {answer}");
        assert_eq!(answer["error"], json!(format!("package {name} not found")));
    }
    // bob's scope hook on @alice hears nothing of the package he may not read; alice's does.
    hook_on(&reg, &bob, "scope", "@alice", &hooks.url("/bob"));
    hook_on(
        &reg,
        &alice,
        "package",
        "@alice/secret",
        &hooks.url("/alice"),
    );
    assert_eq!(
        put(
            &reg,
            &alice,
            "/-/package/@alice%2fsecret/dist-tags/next",
            &json!("1.0.0")
        ),
        201
    );
    let bodies = received(&hooks, 1);
    std::thread::sleep(Duration::from_millis(300));
    let requests = hooks.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/alice");
    assert_eq!(bodies[0]["event"], "package:dist-tag");
}

#[test]
fn bad_input_is_a_400_with_a_reason() {
    let reg = TestRegistry::start_with(|c| {
        c.hooks_allow_private = true;
        c.hooks_per_user = 2;
    });
    let alice = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &alice, "target", "1.0.0"), 201);
    let ok = json!({"type": "package", "name": "target", "endpoint": "http://127.0.0.1:9/",
                    "secret": "s"});
    let with = |key: &str, value: Value| {
        let mut body = ok.clone();
        body[key] = value;
        body
    };
    for (body, reason) in [
        (json!("a string"), "JSON object"),
        (with("type", json!("team")), "type must be"),
        (with("name", json!("")), "name must be 1 to 428 characters"),
        (
            with("endpoint", json!("gopher://127.0.0.1/")),
            "http or https",
        ),
        (with("endpoint", json!("x".repeat(2049))), "1 to 2048"),
        (
            with("secret", json!("")),
            "secret must be 1 to 200 characters",
        ),
        (
            with("secret", json!("x".repeat(201))),
            "secret must be 1 to 200 characters",
        ),
        (
            json!({"name": "target", "endpoint": "http://127.0.0.1:9/", "secret": "s"}),
            "type is required",
        ),
    ] {
        let (status, answer) = create_hook(&reg, &alice, &body);
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(
            answer["reason"]
                .as_str()
                .is_some_and(|r| r.contains(reason)),
            "{body}: {answer}"
        );
        assert_eq!(answer["error"], answer["reason"]);
    }
    let (status, _) = create_hook(&reg, &alice, &with("type", json!("owner")));
    assert_eq!(
        status, 404,
        "an owner hook on a user named target, who does not exist"
    );

    hook_on(&reg, &alice, "package", "target", "http://127.0.0.1:9/a");
    hook_on(&reg, &alice, "scope", "@any", "http://127.0.0.1:9/b");
    let (status, answer) = create_hook(&reg, &alice, &ok);
    assert_eq!(status, 400);
    assert!(answer["reason"]
        .as_str()
        .is_some_and(|r| r.contains("hooks_per_user")));

    for (path, code) in [
        ("/-/npm/v1/hooks?limit=0", 400),
        ("/-/npm/v1/hooks?limit=x", 400),
        ("/-/npm/v1/hooks?offset=-1", 400),
        ("/-/npm/v1/hooks/hook/nope", 404),
    ] {
        assert_eq!(get(&reg, &alice, path).0, code, "{path}");
    }
    let anonymous = client()
        .post(reg.url("/-/npm/v1/hooks/hook"))
        .json(&ok)
        .send()
        .expect("POST");
    assert_eq!(anonymous.status().as_u16(), 401);
    let readonly = reg.token(
        "alice",
        TokenOptions {
            readonly: true,
            ..TokenOptions::default()
        },
    );
    assert_eq!(create_hook(&reg, &readonly, &ok).0, 403);
}

#[test]
fn a_ping_is_delivered_signed() {
    let reg = registry();
    let alice = reg.user_with_token("alice");
    let hooks = receiver();
    let id = hook_on(&reg, &alice, "scope", "@pings", &hooks.url("/"));
    let pinged = client()
        .post(reg.url(&format!("/-/npm/v1/hooks/hook/{id}/ping")))
        .bearer_auth(&alice)
        .send()
        .expect("POST ping");
    let (status, answer) = status_and_body(pinged);
    assert_eq!(status, 202);
    let bodies = received(&hooks, 1);
    assert_eq!(bodies[0]["event"], "ping");
    assert_eq!(bodies[0]["name"], "@pings");
    assert_eq!(bodies[0]["type"], "scope");
    assert_eq!(
        hooks.requests()[0].header("x-registry-delivery"),
        answer["delivery"].as_str()
    );
}
