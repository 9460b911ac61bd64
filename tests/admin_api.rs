//! The administrator API below `/-/registry/admin/` (what `registry --registry URL` uses for
//! accounts, tokens and package listings): who may call it, and each status it answers.

mod common;

use common::*;
use registry_core::accounts::tokens::TokenOptions;
use serde_json::{json, Value};

fn admin_registry() -> (TestRegistry, String, String) {
    let reg = TestRegistry::start();
    reg.add_user_with("root", "root-password", true);
    let root = reg.token("root", TokenOptions::default());
    let alice = reg.user_with_token("alice");
    (reg, root, alice)
}

fn send(
    reg: &TestRegistry,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client().request(method, reg.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().expect("request");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

#[test]
fn only_administrators_reach_the_admin_api() {
    use reqwest::Method;
    let (reg, _root, alice) = admin_registry();
    for (method, path, body) in [
        (Method::GET, "/-/registry/admin/users", None),
        (Method::DELETE, "/-/registry/admin/users/alice", None),
        (
            Method::PUT,
            "/-/registry/admin/users/alice/admin",
            Some(json!({"admin": true})),
        ),
        (
            Method::PUT,
            "/-/registry/admin/users/alice/password",
            Some(json!({"password": "another-password"})),
        ),
        (
            Method::POST,
            "/-/registry/admin/users/alice/tokens",
            Some(json!({})),
        ),
        (Method::GET, "/-/registry/admin/tokens", None),
        (Method::GET, "/-/registry/admin/packages", None),
    ] {
        let (status, answer) = send(&reg, method.clone(), path, None, body.clone());
        assert_eq!(status, 401, "{method} {path} anonymously: {answer}");
        let (status, body) = send(&reg, method.clone(), path, Some(&alice), body.clone());
        assert_eq!(status, 403, "{method} {path} as a user: {body}");
        assert!(body["error"]
            .as_str()
            .is_some_and(|e| e.contains("administrator")));
    }
}

#[test]
fn administrators_manage_accounts_and_tokens() {
    use reqwest::Method;
    let (reg, root, _alice) = admin_registry();
    let (status, users) = send(
        &reg,
        Method::GET,
        "/-/registry/admin/users",
        Some(&root),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(users[0]["name"], "alice");
    assert_eq!(
        users[1],
        json!({"name": "root", "email": "root@example.com", "admin": true,
                                "created": users[1]["created"]})
    );

    let (status, alice) = send(
        &reg,
        Method::PUT,
        "/-/registry/admin/users/alice/admin",
        Some(&root),
        Some(json!({"admin": true})),
    );
    assert_eq!((status, alice["admin"].clone()), (200, json!(true)));
    let (status, _) = send(
        &reg,
        Method::PUT,
        "/-/registry/admin/users/alice/admin",
        Some(&root),
        Some(json!({"admin": "yes"})),
    );
    assert_eq!(status, 400);
    let (status, _) = send(
        &reg,
        Method::PUT,
        "/-/registry/admin/users/alice/password",
        Some(&root),
        Some(json!({"password": "short"})),
    );
    assert_eq!(status, 400, "the password policy applies");

    let (status, token) = send(
        &reg,
        Method::POST,
        "/-/registry/admin/users/alice/tokens",
        Some(&root),
        Some(json!({"readonly": true, "cidr_whitelist": ["10.0.0.0/8"],
                    "expires": "2099-01-01T00:00:00Z", "name": "ci"})),
    );
    assert_eq!(status, 201, "{token}");
    assert!(token["token"]
        .as_str()
        .is_some_and(|t| t.starts_with("npm_")));
    assert_eq!(token["kind"], "readonly");
    assert_eq!(token["expires"], "2099-01-01T00:00:00.000Z");
    for bad in [
        json!({"cidr_whitelist": ["nonsense"]}),
        json!({"cidr_whitelist": "10.0.0.0/8"}),
        json!({"expires": "tomorrow"}),
    ] {
        let (status, _) = send(
            &reg,
            Method::POST,
            "/-/registry/admin/users/alice/tokens",
            Some(&root),
            Some(bad.clone()),
        );
        assert_eq!(status, 400, "{bad}");
    }
    let (status, tokens) = send(
        &reg,
        Method::GET,
        "/-/registry/admin/tokens?user=alice",
        Some(&root),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(tokens.as_array().map(Vec::len), Some(2));
    assert!(!tokens
        .to_string()
        .contains(token["token"].as_str().unwrap_or("-")));

    for (method, path) in [
        (Method::DELETE, "/-/registry/admin/users/nobody"),
        (Method::GET, "/-/registry/admin/tokens?user=nobody"),
        (Method::POST, "/-/registry/admin/users/nobody/tokens"),
    ] {
        let (status, _) = send(&reg, method.clone(), path, Some(&root), Some(json!({})));
        assert_eq!(status, 404, "{method} {path}");
    }
    let (status, _) = send(
        &reg,
        Method::DELETE,
        "/-/registry/admin/users/alice",
        Some(&root),
        None,
    );
    assert_eq!(status, 200);
    let (_, users) = send(
        &reg,
        Method::GET,
        "/-/registry/admin/users",
        Some(&root),
        None,
    );
    assert_eq!(users.as_array().map(Vec::len), Some(1));
}

#[test]
fn administrators_list_every_package_with_its_size_and_state() {
    use reqwest::Method;
    let (reg, root, alice) = admin_registry();
    assert_eq!(publish(&reg, &alice, "hello", "1.0.0"), 201);
    let (status, packages) = send(
        &reg,
        Method::GET,
        "/-/registry/admin/packages",
        Some(&root),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(packages[0]["name"], "hello");
    assert_eq!(packages[0]["latest"], "1.0.0");
    assert_eq!(packages[0]["versions"], 1);
    assert_eq!(packages[0]["state"], "live");
    assert!(packages[0]["size"].as_u64().is_some_and(|s| s > 0));
}
