//! npm's web login across two daemons on one PostgreSQL database, as behind a load balancer:
//! npm opens its login on one node and polls wherever it lands, the browser approves on
//! another, and the token is handed out once whichever node is asked.

mod common;

use std::sync::{Arc, Barrier};

use common::web_form::*;
use common::*;
use serde_json::{json, Value};

/// A and B on the same schema (the blobs, which a login never touches, stay each node's own).
fn two_nodes() -> (TestRegistry, TestRegistry, tempfile::TempDir) {
    let shared = tempfile::tempdir().expect("temp dir");
    let database_url = services::postgres_schema_url(shared.path());
    let node = || TestRegistry::start_with(|c| c.database_url = Some(database_url.clone()));
    let a = node();
    let b = node();
    (a, b, shared)
}

/// `POST /-/v1/login` on `reg`: the paths (not the URLs) of its login page and done URL, so
/// that the test can send them to either node.
fn open_login_paths(reg: &TestRegistry) -> (String, String) {
    let (login, done) = open_login(reg, json!({}));
    let path = |url: String| {
        url.strip_prefix(&reg.base)
            .unwrap_or_else(|| panic!("{url} is not on {}", reg.base))
            .to_string()
    };
    (path(login), path(done))
}

/// Approves a web login on `reg`'s page, in the browser of `session`.
fn approve_on(reg: &TestRegistry, login_path: &str, session: &str) {
    let approved = approve(&reg.url(login_path), session);
    assert_eq!(approved.status(), 200);
    assert!(approved.text().expect("page").contains("npm is logged in"));
}

fn poll(reg: &TestRegistry, done_path: &str) -> (u16, Value) {
    let response = client().get(reg.url(done_path)).send().expect("poll");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

fn whoami(reg: &TestRegistry, token: &str) -> Option<String> {
    let body: Value = client()
        .get(reg.url("/-/whoami"))
        .bearer_auth(token)
        .send()
        .expect("whoami")
        .json()
        .ok()?;
    body["username"].as_str().map(str::to_string)
}

#[test]
fn a_login_opened_on_one_node_is_approved_on_the_other_and_collected_once() {
    let (a, b, _shared) = two_nodes();
    a.add_user("alice", "alice-password");
    let (login, done) = open_login_paths(&a);
    // Both nodes know the login at once.
    assert_eq!(poll(&a, &done).0, 202);
    assert_eq!(poll(&b, &done).0, 202);

    let session = sign_in(&b, "alice", "alice-password");
    approve_on(&b, &login, &session);
    // A's page sees B's approval.
    let page = browser()
        .get(a.url(&login))
        .header("cookie", &session)
        .send()
        .expect("page");
    assert_eq!(page.status(), 200);
    assert!(page.text().expect("page").contains("npm is logged in"));

    let (status, body) = poll(&a, &done);
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().expect("a token").to_string();
    // Collected on A: B has no second token to give, and the page is gone on both.
    assert_eq!(poll(&b, &done).0, 404);
    assert_eq!(poll(&a, &done).0, 404);
    for node in [&a, &b] {
        let page = browser()
            .get(node.url(&login))
            .header("cookie", &session)
            .send()
            .expect("page");
        assert_eq!(page.status(), 404);
    }
    // The token is the cluster's: B knows it.
    assert_eq!(whoami(&b, &token).as_deref(), Some("alice"));
}

#[test]
fn two_nodes_polling_an_approved_login_at_once_hand_out_one_token() {
    let (a, b, _shared) = two_nodes();
    a.add_user("bob", "bob-password");
    let sessions = [
        sign_in(&a, "bob", "bob-password"),
        sign_in(&b, "bob", "bob-password"),
    ];
    let nodes = [&a, &b];
    for round in 0..6 {
        let (opener, approver) = (nodes[round % 2], nodes[(round + 1) % 2]);
        let (login, done) = open_login_paths(opener);
        approve_on(approver, &login, &sessions[(round + 1) % 2]);
        let barrier = Arc::new(Barrier::new(2));
        let polls: Vec<_> = nodes
            .iter()
            .map(|node| {
                let url = node.url(&done);
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    barrier.wait();
                    let response = client().get(url).send().expect("poll");
                    let status = response.status().as_u16();
                    (status, response.json::<Value>().unwrap_or(Value::Null))
                })
            })
            .collect();
        let mut answers: Vec<(u16, Value)> = polls
            .into_iter()
            .map(|p| p.join().expect("poller"))
            .collect();
        answers.sort_by_key(|(status, _)| *status);
        let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
        assert_eq!(statuses, [200, 404], "round {round}: {answers:?}");
        let token = answers[0].1["token"].as_str().expect("a token");
        assert_eq!(whoami(approver, token).as_deref(), Some("bob"));
    }
}
