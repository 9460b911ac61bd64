//! The write side of the protocol at the HTTP level: dist-tags, document updates (star,
//! owners, deprecate, unpublish of versions), whole-package unpublish and its tombstone, and
//! who may do each.

mod common;

use common::*;
use registry_core::accounts::tokens::TokenOptions;
use reqwest::blocking::Response;
use serde_json::{json, Value};

fn status_and_error(response: Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().unwrap_or(Value::Null);
    let error = body["error"].as_str().unwrap_or_default().to_string();
    assert!(
        !error.is_empty() || status < 400,
        "a {status} without an error field: {body}"
    );
    (status, error)
}

fn get_json(reg: &TestRegistry, path: &str) -> (u16, Value) {
    let response = client().get(reg.url(path)).send().expect("GET");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

/// The full document as npm fetches it before a document update.
fn write_doc(reg: &TestRegistry, name: &str, token: &str) -> Value {
    client()
        .get(reg.url(&format!("/{}?write=true", escaped(name))))
        .bearer_auth(token)
        .send()
        .and_then(|r| r.json())
        .expect("write=true document")
}

fn put_doc(reg: &TestRegistry, path: &str, token: &str, body: &Value) -> (u16, String) {
    status_and_error(
        client()
            .put(reg.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .expect("PUT"),
    )
}

fn tags(reg: &TestRegistry, name: &str) -> Value {
    get_json(reg, &format!("/-/package/{}/dist-tags", escaped(name))).1
}

fn set_tag(
    reg: &TestRegistry,
    token: Option<&str>,
    name: &str,
    tag: &str,
    body: &Value,
) -> (u16, String) {
    let mut request = client()
        .put(reg.url(&format!("/-/package/{}/dist-tags/{tag}", escaped(name))))
        .json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    status_and_error(request.send().expect("PUT dist-tag"))
}

#[test]
fn dist_tags_can_be_listed_added_and_removed_but_latest_stays() {
    let reg = TestRegistry::start();
    let alice = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &alice, "@s/tagged", "1.0.0"), 201);
    assert_eq!(publish(&reg, &alice, "@s/tagged", "1.1.0"), 201);
    assert_eq!(tags(&reg, "@s/tagged"), json!({"latest": "1.1.0"}));

    assert_eq!(
        set_tag(&reg, Some(&alice), "@s/tagged", "stable", &json!("1.0.0")).0,
        201
    );
    assert_eq!(
        tags(&reg, "@s/tagged"),
        json!({"latest": "1.1.0", "stable": "1.0.0"})
    );
    let doc = get_json(&reg, "/@s%2ftagged").1;
    assert_eq!(
        doc["dist-tags"]["stable"], "1.0.0",
        "the packument sees the tag at once"
    );

    // The older spelling: PUT /:pkg/:tag with the version as a JSON string.
    let (status, _) = put_doc(&reg, "/@s%2ftagged/next", &alice, &json!("1.1.0"));
    assert_eq!(status, 201);
    assert_eq!(tags(&reg, "@s/tagged")["next"], "1.1.0");

    let delete = |tag: &str| {
        status_and_error(
            client()
                .delete(reg.url(&format!("/-/package/@s%2ftagged/dist-tags/{tag}")))
                .bearer_auth(&alice)
                .send()
                .expect("DELETE"),
        )
    };
    assert_eq!(delete("stable").0, 200);
    assert_eq!(
        tags(&reg, "@s/tagged"),
        json!({"latest": "1.1.0", "next": "1.1.0"})
    );
    let (status, error) = delete("latest");
    assert_eq!(status, 400);
    assert!(error.contains("latest"), "{error}");
    assert_eq!(delete("nope").0, 404);
}

#[test]
fn dist_tag_changes_are_checked() {
    let reg = TestRegistry::start();
    let alice = reg.user_with_token("alice");
    let bob = reg.user_with_token("bob");
    let readonly = reg.token(
        "alice",
        TokenOptions {
            readonly: true,
            ..TokenOptions::default()
        },
    );
    assert_eq!(publish(&reg, &alice, "checked", "1.0.0"), 201);

    assert_eq!(
        set_tag(&reg, Some(&alice), "checked", "beta", &json!("9.9.9")).0,
        400
    );
    assert_eq!(
        set_tag(&reg, Some(&alice), "checked", "1.x", &json!("1.0.0")).0,
        400
    );
    assert_eq!(
        set_tag(
            &reg,
            Some(&alice),
            "checked",
            "beta",
            &json!({"v": "1.0.0"})
        )
        .0,
        400
    );
    assert_eq!(
        set_tag(&reg, None, "checked", "beta", &json!("1.0.0")).0,
        401
    );
    assert_eq!(
        set_tag(&reg, Some(&readonly), "checked", "beta", &json!("1.0.0")).0,
        403
    );
    let (status, error) = set_tag(&reg, Some(&bob), "checked", "beta", &json!("1.0.0"));
    assert_eq!(status, 403);
    assert!(error.contains("not a maintainer"), "{error}");
    assert_eq!(
        set_tag(&reg, Some(&alice), "missing-pkg", "beta", &json!("1.0.0")).0,
        404
    );
    assert_eq!(
        tags(&reg, "checked"),
        json!({"latest": "1.0.0"}),
        "nothing changed"
    );
}

/// The package's web page (its version list shows deprecations).
fn package_page(reg: &TestRegistry, name: &str) -> String {
    client()
        .get(reg.url(&format!("/-/web/package/{name}")))
        .header("accept", "text/html")
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.text())
        .expect("package page")
}

fn deprecate(doc: &mut Value, version: &str, message: &str) {
    doc["versions"][version]["deprecated"] = json!(message);
}

#[test]
fn deprecation_sets_and_clears_only_the_deprecated_field() {
    let reg = TestRegistry::start();
    let alice = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &alice, "old-thing", "1.0.0"), 201);
    let before = get_json(&reg, "/old-thing").1;

    let mut doc = write_doc(&reg, "old-thing", &alice);
    deprecate(&mut doc, "1.0.0", "use new-thing");
    doc["versions"]["1.0.0"]["description"] = json!("sneaky rewrite");
    assert_eq!(put_doc(&reg, "/old-thing", &alice, &doc).0, 200);
    let after = get_json(&reg, "/old-thing").1;
    assert_eq!(after["versions"]["1.0.0"]["deprecated"], "use new-thing");
    assert_eq!(
        after["versions"]["1.0.0"]["description"], before["versions"]["1.0.0"]["description"],
        "only `deprecated` may change"
    );
    let corgi: Value = client()
        .get(reg.url("/old-thing"))
        .header("accept", "application/vnd.npm.install-v1+json")
        .send()
        .and_then(|r| r.json())
        .expect("corgi");
    assert_eq!(corgi["versions"]["1.0.0"]["deprecated"], "use new-thing");
    assert!(package_page(&reg, "old-thing").contains("use new-thing"));

    let mut doc = write_doc(&reg, "old-thing", &alice);
    deprecate(&mut doc, "1.0.0", "");
    assert_eq!(put_doc(&reg, "/old-thing", &alice, &doc).0, 200);
    let cleared = get_json(&reg, "/old-thing").1;
    assert!(cleared["versions"]["1.0.0"].get("deprecated").is_none());
    let page = package_page(&reg, "old-thing");
    assert!(page.contains("old-thing"), "{page}");
    assert!(!page.contains("use new-thing"), "{page}");

    let bob = reg.user_with_token("bob");
    let mut doc = write_doc(&reg, "old-thing", &alice);
    deprecate(&mut doc, "1.0.0", "hijack");
    assert_eq!(put_doc(&reg, "/old-thing", &bob, &doc).0, 403);
}

#[test]
fn a_document_update_with_a_stale_rev_is_a_conflict() {
    let reg = TestRegistry::start();
    let alice = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &alice, "racy", "1.0.0"), 201);
    let stale = write_doc(&reg, "racy", &alice);
    assert_eq!(publish(&reg, &alice, "racy", "1.1.0"), 201);
    let mut doc = stale.clone();
    deprecate(&mut doc, "1.0.0", "late");
    let (status, error) = put_doc(&reg, "/racy", &alice, &doc);
    assert_eq!(status, 409);
    assert!(error.contains("conflict"), "{error}");
    let rev = stale["_rev"].as_str().expect("_rev");
    assert_eq!(
        put_doc(&reg, &format!("/racy/-rev/{rev}"), &alice, &doc).0,
        409
    );
}

#[test]
fn a_document_cannot_add_versions_without_tarballs() {
    let reg = TestRegistry::start();
    let alice = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &alice, "sneaky", "1.0.0"), 201);
    let mut doc = write_doc(&reg, "sneaky", &alice);
    doc["versions"]["6.6.6"] = doc["versions"]["1.0.0"].clone();
    let (status, error) = put_doc(&reg, "/sneaky", &alice, &doc);
    assert_eq!(status, 400);
    assert!(error.contains("6.6.6"), "{error}");
    assert!(get_json(&reg, "/sneaky").1["versions"]
        .get("6.6.6")
        .is_none());
}

#[test]
fn unpublishing_a_version_burns_its_number_and_moves_latest() {
    let reg = TestRegistry::start();
    let alice = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &alice, "@s/shrink", "1.0.0"), 201);
    assert_eq!(publish(&reg, &alice, "@s/shrink", "1.1.0"), 201);

    // npm's sequence: PUT the document without the version, then DELETE its tarball.
    let mut doc = write_doc(&reg, "@s/shrink", &alice);
    doc["versions"]
        .as_object_mut()
        .expect("versions")
        .remove("1.1.0");
    doc["dist-tags"] = json!({"latest": "1.0.0"});
    doc.as_object_mut().expect("doc").remove("_attachments");
    let rev = doc["_rev"].as_str().expect("_rev").to_string();
    assert_eq!(
        put_doc(&reg, &format!("/@s%2fshrink/-rev/{rev}"), &alice, &doc).0,
        200
    );
    let after = write_doc(&reg, "@s/shrink", &alice);
    let new_rev = after["_rev"].as_str().expect("_rev");
    assert_ne!(new_rev, rev);
    let deleted = client()
        .delete(reg.url(&format!("/@s/shrink/-/shrink-1.1.0.tgz/-rev/{new_rev}")))
        .bearer_auth(&alice)
        .send()
        .expect("DELETE tarball");
    assert!(deleted.status().is_success());

    assert_eq!(after["dist-tags"], json!({"latest": "1.0.0"}));
    assert!(after["versions"].get("1.1.0").is_none());
    assert!(
        after["time"].get("1.1.0").is_some(),
        "the burnt version keeps its time"
    );
    let tarball = client()
        .get(reg.url("/@s/shrink/-/shrink-1.1.0.tgz"))
        .send()
        .expect("GET");
    assert_eq!(tarball.status().as_u16(), 404);
    let kept = client()
        .get(reg.url("/@s/shrink/-/shrink-1.0.0.tgz"))
        .send()
        .expect("GET");
    assert_eq!(kept.status().as_u16(), 200);

    assert_eq!(
        publish(&reg, &alice, "@s/shrink", "1.1.0"),
        403,
        "1.1.0 stays burnt"
    );
}

#[test]
fn unpublishing_a_whole_package_leaves_a_tombstone() {
    let reg = TestRegistry::start();
    let alice = reg.user_with_token("alice");
    let bob = reg.user_with_token("bob");
    assert_eq!(publish(&reg, &alice, "gone", "1.0.0"), 201);
    assert_eq!(publish(&reg, &alice, "gone", "1.1.0-rc.1"), 201);
    let rev = write_doc(&reg, "gone", &alice)["_rev"]
        .as_str()
        .expect("_rev")
        .to_string();

    let by_bob = client()
        .delete(reg.url(&format!("/gone/-rev/{rev}")))
        .bearer_auth(&bob)
        .send()
        .expect("DELETE");
    assert_eq!(status_and_error(by_bob).0, 403);
    let anonymous = client()
        .delete(reg.url(&format!("/gone/-rev/{rev}")))
        .send()
        .expect("DELETE");
    assert_eq!(status_and_error(anonymous).0, 401);

    let deleted = client()
        .delete(reg.url(&format!("/gone/-rev/{rev}")))
        .bearer_auth(&alice)
        .send()
        .expect("DELETE");
    assert_eq!(deleted.status().as_u16(), 200);

    for accept in ["application/json", "application/vnd.npm.install-v1+json"] {
        let response = client()
            .get(reg.url("/gone"))
            .header("accept", accept)
            .send()
            .expect("GET");
        assert_eq!(response.status().as_u16(), 404, "{accept}");
        let body: Value = response.json().expect("tombstone JSON");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("unpublished")),
            "{body}"
        );
        assert_eq!(
            body["time"]["unpublished"]["versions"],
            json!(["1.0.0", "1.1.0-rc.1"])
        );
        assert!(body["time"]["unpublished"]["time"].is_string());
        assert!(body.get("versions").is_none());
    }
    let tarball = client()
        .get(reg.url("/gone/-/gone-1.0.0.tgz"))
        .send()
        .expect("GET");
    assert_eq!(tarball.status().as_u16(), 404);
    assert_eq!(get_json(&reg, "/gone/1.0.0").0, 404);

    assert_eq!(
        publish(&reg, &bob, "gone", "2.0.0"),
        403,
        "only its maintainers may revive it"
    );
    assert_eq!(
        publish(&reg, &alice, "gone", "1.0.0"),
        403,
        "burnt versions stay burnt"
    );
    assert_eq!(publish(&reg, &alice, "gone", "2.0.0"), 201);
    let revived = get_json(&reg, "/gone");
    assert_eq!(revived.0, 200);
    assert_eq!(revived.1["dist-tags"], json!({"latest": "2.0.0"}));
}

#[test]
fn owners_can_be_added_and_removed_but_not_the_last_one() {
    let reg = TestRegistry::start();
    let alice = reg.user_with_token("alice");
    let bob = reg.user_with_token("bob");
    assert_eq!(publish(&reg, &alice, "shared", "1.0.0"), 201);
    let owners = |list: &[&str], rev: &str| {
        json!({
            "_id": "shared", "_rev": rev,
            "maintainers": list.iter().map(|n| json!({"name": n, "email": format!("{n}@example.com")})).collect::<Vec<_>>(),
        })
    };
    let rev = |reg: &TestRegistry| {
        write_doc(reg, "shared", &alice)["_rev"]
            .as_str()
            .expect("_rev")
            .to_string()
    };

    let r = rev(&reg);
    assert_eq!(
        put_doc(
            &reg,
            &format!("/shared/-rev/{r}"),
            &bob,
            &owners(&["alice", "bob"], &r)
        )
        .0,
        403
    );
    assert_eq!(
        put_doc(
            &reg,
            &format!("/shared/-rev/{r}"),
            &alice,
            &owners(&["alice", "ghost"], &r)
        )
        .0,
        400
    );
    assert_eq!(
        put_doc(
            &reg,
            &format!("/shared/-rev/{r}"),
            &alice,
            &owners(&["alice", "bob"], &r)
        )
        .0,
        200
    );
    let doc = get_json(&reg, "/shared").1;
    let names: Vec<&str> = doc["maintainers"]
        .as_array()
        .expect("maintainers")
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(
        publish(&reg, &bob, "shared", "1.1.0"),
        201,
        "a new owner may publish"
    );

    let r = rev(&reg);
    let (status, error) = put_doc(&reg, &format!("/shared/-rev/{r}"), &alice, &owners(&[], &r));
    assert_eq!(status, 400);
    assert!(error.contains("last owner"), "{error}");
    assert_eq!(
        put_doc(
            &reg,
            &format!("/shared/-rev/{r}"),
            &alice,
            &owners(&["alice"], &r)
        )
        .0,
        200
    );
    assert_eq!(
        publish(&reg, &bob, "shared", "1.2.0"),
        403,
        "a removed owner may not"
    );
}

#[test]
fn stars_are_each_users_own() {
    let reg = TestRegistry::start();
    let alice = reg.user_with_token("alice");
    let bob = reg.user_with_token("bob");
    assert_eq!(publish(&reg, &alice, "starry", "1.0.0"), 201);
    let star = |token: &str, users: Value| {
        let rev = write_doc(&reg, "starry", token)["_rev"].clone();
        put_doc(
            &reg,
            "/starry",
            token,
            &json!({"_id": "starry", "_rev": rev, "users": users}),
        )
    };
    assert_eq!(star(&bob, json!({"bob": true})).0, 200);
    assert_eq!(star(&alice, json!({"bob": true, "alice": true})).0, 200);
    assert_eq!(
        get_json(&reg, "/starry").1["users"],
        json!({"alice": true, "bob": true})
    );
    let (status, _) = star(&alice, json!({"alice": true}));
    assert_eq!(status, 403, "alice cannot unstar for bob");
    let (_, view) = get_json(&reg, "/-/_view/starredByUser?key=%22bob%22");
    assert_eq!(view, json!({"rows": [{"value": "starry"}]}));
    assert_eq!(star(&bob, json!({"alice": true})).0, 200, "bob unstars");
    assert_eq!(
        get_json(&reg, "/-/_view/starredByUser?key=%22bob%22").1,
        json!({"rows": []})
    );
    assert_eq!(get_json(&reg, "/-/_view/starredByUser?key=bob").0, 400);
    let readonly = reg.token(
        "bob",
        TokenOptions {
            readonly: true,
            ..TokenOptions::default()
        },
    );
    assert_eq!(star(&readonly, json!({"alice": true, "bob": true})).0, 403);
}

#[test]
fn document_updates_on_unknown_packages_and_bad_bodies_are_4xx() {
    let reg = TestRegistry::start();
    let alice = reg.user_with_token("alice");
    assert_eq!(
        put_doc(&reg, "/nothing-here", &alice, &json!({"users": {}})).0,
        404
    );
    assert_eq!(publish(&reg, &alice, "body-checks", "1.0.0"), 201);
    for body in [
        json!({}),
        json!([]),
        json!("x"),
        json!({"_id": "other", "users": {}}),
    ] {
        let (status, _) = put_doc(&reg, "/body-checks", &alice, &body);
        assert_eq!(status, 400, "{body}");
    }
    let delete = client()
        .delete(reg.url("/body-checks"))
        .bearer_auth(&alice)
        .send()
        .expect("DELETE");
    assert_eq!(status_and_error(delete).0, 400);
    assert_eq!(get_json(&reg, "/body-checks").0, 200, "still there");
}

#[test]
fn a_blocked_package_refuses_tag_document_and_unpublish_changes() {
    let reg = TestRegistry::start();
    let alice = reg.user_with_token("alice");
    reg.add_user_with("root", "root-password", true);
    let admin = reg.token("root", TokenOptions::default());
    assert_eq!(publish(&reg, &alice, "frozen", "1.0.0"), 201);
    let rev = write_doc(&reg, "frozen", &alice)["_rev"].clone();
    let blocked = client()
        .put(reg.url("/-/package/frozen/blocks"))
        .bearer_auth(&admin)
        .json(&json!({"reason": "legal hold"}))
        .send()
        .expect("block");
    assert!(blocked.status().is_success());

    let (status, error) = set_tag(&reg, Some(&alice), "frozen", "beta", &json!("1.0.0"));
    assert_eq!(status, 451);
    assert!(error.contains("legal hold"), "{error}");
    let star = json!({"_id": "frozen", "_rev": rev, "users": {"alice": true}});
    assert_eq!(put_doc(&reg, "/frozen", &alice, &star).0, 451);
    let rev = rev.as_str().expect("_rev");
    let delete = client()
        .delete(reg.url(&format!("/frozen/-rev/{rev}")))
        .bearer_auth(&alice)
        .send()
        .expect("DELETE");
    assert_eq!(status_and_error(delete).0, 451);
}
