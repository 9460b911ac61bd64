//! Repeated failed logins lock the account (and a guessing address) out for a growing delay,
//! answered 429 with `Retry-After`, whichever door the password is tried at.

mod common;

use std::time::Duration;

use common::*;
use reqwest::blocking::Response;
use serde_json::{json, Value};

fn login(reg: &TestRegistry, name: &str, password: &str) -> Response {
    client()
        .put(reg.url(&format!("/-/user/org.couchdb.user:{name}")))
        .json(
            &json!({ "_id": format!("org.couchdb.user:{name}"), "name": name, "password": password,
                       "type": "user", "roles": [] }),
        )
        .send()
        .expect("login request")
}

fn retry_after(response: &Response) -> u64 {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After header in seconds")
}

#[test]
fn repeated_wrong_logins_lock_the_account_then_it_recovers() {
    let reg = TestRegistry::start();
    reg.add_user("alice", "alice-password");
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(login(&reg, "alice", "guess").status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 401, 429]);

    let locked = login(&reg, "alice", "alice-password");
    assert_eq!(
        locked.status().as_u16(),
        429,
        "even the right password waits"
    );
    let wait = retry_after(&locked);
    assert!((1..=900).contains(&wait), "Retry-After {wait}");
    let body: Value = locked.json().expect("JSON");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("too many failed logins")),
        "{body}"
    );

    std::thread::sleep(Duration::from_secs(wait) + Duration::from_millis(100));
    let recovered = login(&reg, "alice", "alice-password");
    assert_eq!(recovered.status().as_u16(), 201);
    assert!(
        login(&reg, "bob-unknown", "x").status().as_u16() == 401,
        "others are unaffected"
    );
}

#[test]
fn basic_credentials_are_guess_limited_too() {
    let reg = TestRegistry::start();
    reg.add_user("carol", "carol-password");
    let whoami = |password: &str| {
        client()
            .get(reg.url("/-/whoami"))
            .basic_auth("carol", Some(password))
            .send()
            .expect("whoami")
    };
    let statuses: Vec<u16> = (0..7).map(|_| whoami("guess").status().as_u16()).collect();
    assert_eq!(statuses, [401, 401, 401, 401, 401, 401, 429]);
    let locked = whoami("carol-password");
    assert_eq!(locked.status().as_u16(), 429);
    assert!(retry_after(&locked) >= 1);
}

#[test]
fn an_address_trying_many_accounts_is_locked_out() {
    let reg = TestRegistry::start();
    reg.add_user("dave", "dave-password");
    let mut last = 0;
    for i in 0..25 {
        last = login(&reg, &format!("someone-{i}"), "guess")
            .status()
            .as_u16();
        if last == 429 {
            break;
        }
    }
    assert_eq!(last, 429, "20 free failures per address, then a lockout");
    assert_eq!(
        login(&reg, "dave", "dave-password").status().as_u16(),
        429,
        "the address waits"
    );
}

#[test]
fn a_wrong_password_when_creating_a_token_counts_as_a_failed_login() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("erin");
    let create = |password: &str| {
        client()
            .post(reg.url("/-/npm/v1/tokens"))
            .bearer_auth(&token)
            .json(&json!({ "password": password, "readonly": false, "cidr_whitelist": [] }))
            .send()
            .expect("token create")
            .status()
            .as_u16()
    };
    let statuses: Vec<u16> = (0..7).map(|_| create("guess")).collect();
    assert_eq!(statuses, [401, 401, 401, 401, 401, 401, 429]);
}
