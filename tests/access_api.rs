//! npm's org, team and access endpoints over HTTP (`/-/org/…`, `/-/team/…`,
//! `/-/package/:pkg/{access,visibility,collaborators}`, `/-/user/:user/package`) and the
//! administrator's org routes: each answer's shape, each refusal's status and sentence, and
//! that a restricted package stays invisible (404) to whoever may not read it.

mod common;

use common::*;
use registry_core::accounts::tokens::TokenOptions;
use reqwest::Method;
use serde_json::{json, Value};

/// Who is who in the org `acme` that [`acme`] sets up.
struct Acme {
    reg: TestRegistry,
    /// A registry administrator, in no org.
    root: String,
    /// The org's owner.
    olivia: String,
    /// An admin of the org.
    adam: String,
    /// A developer of the org.
    dev: String,
    /// A user in no org.
    stranger: String,
}

/// The org `acme`: created by the administrator with olivia as its owner; adam joins as an
/// admin and dev as a developer.
fn acme() -> Acme {
    let reg = TestRegistry::start();
    reg.add_user_with("root", "root-password", true);
    let root = reg.token("root", TokenOptions::default());
    let olivia = reg.user_with_token("olivia");
    let adam = reg.user_with_token("adam");
    let dev = reg.user_with_token("dev");
    let stranger = reg.user_with_token("stranger");
    let created = ok(
        &reg,
        Method::POST,
        "/-/registry/admin/orgs",
        Some(&root),
        Some(json!({"name": "acme", "owner": "olivia"})),
        201,
    );
    assert_eq!(created["name"], "acme");
    for (user, role) in [("adam", "admin"), ("dev", "developer")] {
        ok(
            &reg,
            Method::PUT,
            "/-/org/acme/user",
            Some(&olivia),
            Some(json!({"user": user, "role": role})),
            200,
        );
    }
    Acme {
        reg,
        root,
        olivia,
        adam,
        dev,
        stranger,
    }
}

/// Sends a request; the status and the body (JSON, or `Value::String` of the text).
fn call(
    reg: &TestRegistry,
    method: Method,
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
    let text = response.text().expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// The JSON answer of a request that must answer `status`.
fn ok(
    reg: &TestRegistry,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    status: u16,
) -> Value {
    let (actual, answer) = call(reg, method.clone(), path, token, body);
    assert_eq!(actual, status, "{method} {path}: {answer}");
    answer
}

/// Asserts an `{error, reason}` answer with `status`; returns the `error` sentence.
fn refused(
    reg: &TestRegistry,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    status: u16,
) -> String {
    let (actual, answer) = call(reg, method.clone(), path, token, body);
    assert_eq!(actual, status, "{method} {path}: {answer}");
    let error = answer["error"].as_str().unwrap_or_default().to_string();
    assert!(!error.is_empty(), "{method} {path}: no error in {answer}");
    assert_eq!(answer["reason"].as_str(), Some(error.as_str()), "{answer}");
    error
}

/// Sends a raw (not necessarily JSON) body.
fn send_raw(
    reg: &TestRegistry,
    method: Method,
    path: &str,
    token: &str,
    body: &str,
) -> (u16, Value) {
    let response = client()
        .request(method, reg.url(path))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

/// Publishes `name@1.0.0` with `access` ("public", "restricted" or null).
fn publish_access(reg: &TestRegistry, token: &str, name: &str, access: Value) {
    let tgz = package_tarball(name, "1.0.0");
    let mut body = publish_body(name, "1.0.0", &tgz);
    body["access"] = access;
    let response = client()
        .put(reg.url(&format!("/{}", escaped(name))))
        .bearer_auth(token)
        .json(&body)
        .send()
        .expect("publish");
    let status = response.status().as_u16();
    assert_eq!(status, 201, "publish {name}: {:?}", response.text());
}

fn get_status(reg: &TestRegistry, path: &str, token: Option<&str>) -> u16 {
    call(reg, Method::GET, path, token, None).0
}

// ---------------------------------------------------------------------------------------------
// The administrator's org routes
// ---------------------------------------------------------------------------------------------

#[test]
fn administrators_create_and_list_orgs() {
    let reg = TestRegistry::start();
    reg.add_user_with("root", "root-password", true);
    let root = reg.token("root", TokenOptions::default());
    let alice = reg.user_with_token("alice");
    let path = "/-/registry/admin/orgs";

    let created = ok(
        &reg,
        Method::POST,
        path,
        Some(&root),
        Some(json!({"name": "@acme", "owner": "alice"})),
        201,
    );
    assert_eq!(created["name"], "acme", "{created}");
    assert_eq!(created["members"], 1, "{created}");
    assert!(created["created"].as_str().is_some_and(|t| t.contains('T')));
    ok(
        &reg,
        Method::POST,
        path,
        Some(&root),
        Some(json!({"name": "beta", "owner": "root"})),
        201,
    );
    let listed = ok(&reg, Method::GET, path, Some(&root), None, 200);
    let names: Vec<&str> = listed
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|o| o["name"].as_str())
        .collect();
    assert_eq!(names, ["acme", "beta"]);
    assert_eq!(listed[0], created);

    // The first owner is the org's owner, in its developers team.
    assert_eq!(
        ok(
            &reg,
            Method::GET,
            "/-/org/acme/user",
            Some(&alice),
            None,
            200
        ),
        json!({"alice": "owner"})
    );
    assert_eq!(
        ok(
            &reg,
            Method::GET,
            "/-/org/acme/team",
            Some(&alice),
            None,
            200
        ),
        json!(["acme:developers"])
    );

    let body = Some(json!({"name": "gamma", "owner": "alice"}));
    let error = refused(&reg, Method::POST, path, None, body.clone(), 401);
    assert!(error.contains("logged in"), "{error}");
    let error = refused(&reg, Method::POST, path, Some(&alice), body.clone(), 403);
    assert!(error.contains("administrator"), "{error}");
    refused(&reg, Method::GET, path, None, None, 401);
    refused(&reg, Method::GET, path, Some(&alice), None, 403);

    let error = refused(
        &reg,
        Method::POST,
        path,
        Some(&root),
        Some(json!({"name": "acme", "owner": "alice"})),
        409,
    );
    assert!(error.contains("already exists"), "{error}");
    let error = refused(
        &reg,
        Method::POST,
        path,
        Some(&root),
        Some(json!({"name": "alice", "owner": "root"})),
        409,
    );
    assert!(error.contains("user name"), "{error}");
    let error = refused(
        &reg,
        Method::POST,
        path,
        Some(&root),
        Some(json!({"name": "gamma", "owner": "nobody"})),
        404,
    );
    assert!(error.contains("nobody"), "{error}");
    let error = refused(
        &reg,
        Method::POST,
        path,
        Some(&root),
        Some(json!({"name": "Not Valid", "owner": "alice"})),
        400,
    );
    assert!(error.contains("not a valid org name"), "{error}");
    let error = refused(
        &reg,
        Method::POST,
        path,
        Some(&root),
        Some(json!({"owner": "alice"})),
        400,
    );
    assert!(error.contains("\"name\""), "{error}");
    let error = refused(
        &reg,
        Method::POST,
        path,
        Some(&root),
        Some(json!({"name": "gamma", "owner": 7})),
        400,
    );
    assert!(error.contains("\"owner\""), "{error}");
    let (status, answer) = send_raw(&reg, Method::POST, path, &root, "{not json");
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"]
        .as_str()
        .is_some_and(|e| e.contains("not valid JSON")));
    // Nothing was created by the refusals.
    assert_eq!(
        ok(&reg, Method::GET, path, Some(&root), None, 200)
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}

// ---------------------------------------------------------------------------------------------
// npm org: /-/org/:org/user
// ---------------------------------------------------------------------------------------------

#[test]
fn org_members_are_set_listed_and_removed() {
    let a = acme();
    let reg = &a.reg;
    let path = "/-/org/acme/user";

    // npm org set answers the membership, which npm prints.
    reg.add_user("erin", "erin-password");
    let set = ok(
        reg,
        Method::PUT,
        path,
        Some(&a.olivia),
        Some(json!({"user": "erin"})),
        200,
    );
    assert_eq!(
        set,
        json!({"org": {"name": "acme", "size": 4}, "user": "erin", "role": "developer"})
    );
    assert_eq!(
        ok(reg, Method::GET, path, Some(&a.dev), None, 200),
        json!({"adam": "admin", "dev": "developer", "erin": "developer", "olivia": "owner"})
    );
    // A new member is in the developers team.
    assert_eq!(
        ok(
            reg,
            Method::GET,
            "/-/team/acme/developers/user",
            Some(&a.dev),
            None,
            200
        ),
        json!(["adam", "dev", "erin", "olivia"])
    );

    // An admin of the org manages developers and admins, not owners.
    let set = ok(
        reg,
        Method::PUT,
        path,
        Some(&a.adam),
        Some(json!({"user": "erin", "role": "admin"})),
        200,
    );
    assert_eq!(set["role"], "admin");
    assert_eq!(set["org"]["size"], 4, "a role change adds nobody");
    let error = refused(
        reg,
        Method::PUT,
        path,
        Some(&a.adam),
        Some(json!({"user": "erin", "role": "owner"})),
        403,
    );
    assert!(error.contains("only an owner"), "{error}");
    refused(
        reg,
        Method::PUT,
        path,
        Some(&a.adam),
        Some(json!({"user": "olivia", "role": "developer"})),
        403,
    );
    refused(
        reg,
        Method::DELETE,
        path,
        Some(&a.adam),
        Some(json!({"user": "olivia"})),
        403,
    );
    // Developers and strangers manage nothing.
    for token in [&a.dev, &a.stranger] {
        let error = refused(
            reg,
            Method::PUT,
            path,
            Some(token),
            Some(json!({"user": "erin", "role": "developer"})),
            403,
        );
        assert!(error.contains("not an owner or admin"), "{error}");
        refused(
            reg,
            Method::DELETE,
            path,
            Some(token),
            Some(json!({"user": "erin"})),
            403,
        );
    }
    refused(
        reg,
        Method::PUT,
        path,
        None,
        Some(json!({"user": "erin"})),
        401,
    );
    // The registry's administrator may do what an owner may.
    let set = ok(
        reg,
        Method::PUT,
        path,
        Some(&a.root),
        Some(json!({"user": "erin", "role": "owner"})),
        200,
    );
    assert_eq!(set["role"], "owner");

    // Owners leave only while another owner stays.
    ok(
        reg,
        Method::PUT,
        path,
        Some(&a.olivia),
        Some(json!({"user": "erin", "role": "developer"})),
        200,
    );
    let error = refused(
        reg,
        Method::PUT,
        path,
        Some(&a.olivia),
        Some(json!({"user": "olivia", "role": "admin"})),
        409,
    );
    assert!(error.contains("last owner"), "{error}");
    let error = refused(
        reg,
        Method::DELETE,
        path,
        Some(&a.olivia),
        Some(json!({"user": "olivia"})),
        409,
    );
    assert!(error.contains("last owner"), "{error}");

    // npm org rm.
    assert_eq!(
        ok(
            reg,
            Method::DELETE,
            path,
            Some(&a.adam),
            Some(json!({"user": "erin"})),
            200
        ),
        json!({"ok": true})
    );
    assert_eq!(
        ok(reg, Method::GET, path, Some(&a.olivia), None, 200),
        json!({"adam": "admin", "dev": "developer", "olivia": "owner"})
    );
    assert_eq!(
        ok(
            reg,
            Method::GET,
            "/-/team/acme/developers/user",
            Some(&a.olivia),
            None,
            200
        ),
        json!(["adam", "dev", "olivia"]),
        "removed from the org's teams too"
    );
    let error = refused(
        reg,
        Method::DELETE,
        path,
        Some(&a.olivia),
        Some(json!({"user": "erin"})),
        404,
    );
    assert!(error.contains("not a member"), "{error}");

    // Who may see the roster: members and the registry's administrators.
    ok(reg, Method::GET, path, Some(&a.root), None, 200);
    let error = refused(reg, Method::GET, path, Some(&a.stranger), None, 404);
    assert_eq!(error, "no org named acme", "the same as for no org at all");
    refused(reg, Method::GET, path, None, None, 401);
}

#[test]
fn bad_org_membership_requests_are_refused_with_a_reason() {
    let a = acme();
    let reg = &a.reg;
    let path = "/-/org/acme/user";
    let put = |body: Value, status: u16| {
        refused(reg, Method::PUT, path, Some(&a.olivia), Some(body), status)
    };

    let error = put(json!({"user": "dev", "role": "boss"}), 400);
    assert!(error.contains("role must be"), "{error}");
    let error = put(json!({"role": "admin"}), 400);
    assert!(error.contains("\"user\""), "{error}");
    put(json!({"user": ""}), 400);
    put(json!({"user": ["dev"]}), 400);
    put(json!({"user": "dev", "role": 3}), 400);
    put(json!(["dev"]), 400);
    let error = put(json!({"user": "nobody"}), 404);
    assert!(error.contains("no user named nobody"), "{error}");
    let error = refused(
        reg,
        Method::PUT,
        "/-/org/nowhere/user",
        Some(&a.olivia),
        Some(json!({"user": "dev"})),
        404,
    );
    assert!(error.contains("no org named nowhere"), "{error}");
    let error = refused(
        reg,
        Method::PUT,
        "/-/org/Bad%20Org/user",
        Some(&a.olivia),
        Some(json!({"user": "dev"})),
        400,
    );
    assert!(error.contains("not a valid org name"), "{error}");
    refused(
        reg,
        Method::DELETE,
        path,
        Some(&a.olivia),
        Some(json!({})),
        400,
    );
    for (method, text) in [
        (Method::PUT, "{\"user\": "),
        (Method::DELETE, "not json"),
        (Method::PUT, ""),
    ] {
        let (status, answer) = send_raw(reg, method.clone(), path, &a.olivia, text);
        assert_eq!(status, 400, "{method} {text:?}: {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    // `@acme`, escaped as encodeURIComponent does, is the same org.
    assert_eq!(
        ok(
            reg,
            Method::GET,
            "/-/org/%40acme/user",
            Some(&a.dev),
            None,
            200
        )["olivia"],
        "owner"
    );
    // Nothing above changed the roster.
    assert_eq!(
        ok(reg, Method::GET, path, Some(&a.olivia), None, 200),
        json!({"adam": "admin", "dev": "developer", "olivia": "owner"})
    );
}

// ---------------------------------------------------------------------------------------------
// npm team: /-/org/:org/team and /-/team/:org/:team[/user]
// ---------------------------------------------------------------------------------------------

#[test]
fn teams_are_created_filled_listed_and_destroyed() {
    let a = acme();
    let reg = &a.reg;

    let created = ok(
        reg,
        Method::PUT,
        "/-/org/acme/team",
        Some(&a.adam),
        Some(json!({"name": "core", "description": "the core team"})),
        201,
    );
    assert_eq!(created["name"], "acme:core");
    assert_eq!(created["description"], "the core team");
    assert!(created["created"].is_string(), "{created}");
    // libnpmteam passes npm's boolean `description` option through: no description.
    let created = ok(
        reg,
        Method::PUT,
        "/-/org/acme/team",
        Some(&a.olivia),
        Some(json!({"name": "docs", "description": true})),
        201,
    );
    assert_eq!(created["description"], "");
    let error = refused(
        reg,
        Method::PUT,
        "/-/org/acme/team",
        Some(&a.olivia),
        Some(json!({"name": "core"})),
        409,
    );
    assert!(error.contains("already exists"), "{error}");

    // npm team ls ORG (npm adds ?format=cli)
    let teams = json!(["acme:core", "acme:developers", "acme:docs"]);
    assert_eq!(
        ok(
            reg,
            Method::GET,
            "/-/org/acme/team?format=cli",
            Some(&a.dev),
            None,
            200
        ),
        teams
    );
    assert_eq!(
        ok(
            reg,
            Method::GET,
            "/-/org/acme/team",
            Some(&a.root),
            None,
            200
        ),
        teams
    );
    refused(
        reg,
        Method::GET,
        "/-/org/acme/team",
        Some(&a.stranger),
        None,
        404,
    );
    refused(reg, Method::GET, "/-/org/acme/team", None, None, 401);
    refused(
        reg,
        Method::GET,
        "/-/org/nowhere/team",
        Some(&a.dev),
        None,
        404,
    );

    // npm team add / ls ORG:TEAM / rm
    let members = "/-/team/acme/core/user";
    assert_eq!(
        ok(
            reg,
            Method::PUT,
            members,
            Some(&a.adam),
            Some(json!({"user": "dev"})),
            201
        ),
        json!({"ok": true})
    );
    ok(
        reg,
        Method::PUT,
        members,
        Some(&a.olivia),
        Some(json!({"user": "dev"})),
        201,
    );
    ok(
        reg,
        Method::PUT,
        "/-/team/%40acme/core/user",
        Some(&a.olivia),
        Some(json!({"user": "olivia"})),
        201,
    );
    assert_eq!(
        ok(
            reg,
            Method::GET,
            &format!("{members}?format=cli"),
            Some(&a.dev),
            None,
            200
        ),
        json!(["dev", "olivia"])
    );
    refused(reg, Method::GET, members, Some(&a.stranger), None, 404);
    let error = refused(
        reg,
        Method::PUT,
        members,
        Some(&a.olivia),
        Some(json!({"user": "stranger"})),
        400,
    );
    assert!(error.contains("not a member of the org"), "{error}");
    refused(
        reg,
        Method::PUT,
        members,
        Some(&a.olivia),
        Some(json!({"user": "nobody"})),
        404,
    );
    refused(
        reg,
        Method::PUT,
        members,
        Some(&a.olivia),
        Some(json!({"name": "dev"})),
        400,
    );
    let error = refused(
        reg,
        Method::PUT,
        "/-/team/acme/nothing/user",
        Some(&a.olivia),
        Some(json!({"user": "dev"})),
        404,
    );
    assert!(error.contains("no team acme:nothing"), "{error}");
    refused(
        reg,
        Method::PUT,
        "/-/team/acme/Bad%20Team/user",
        Some(&a.olivia),
        Some(json!({"user": "dev"})),
        400,
    );
    for token in [&a.dev, &a.stranger] {
        refused(
            reg,
            Method::PUT,
            members,
            Some(token),
            Some(json!({"user": "adam"})),
            403,
        );
        refused(
            reg,
            Method::DELETE,
            members,
            Some(token),
            Some(json!({"user": "dev"})),
            403,
        );
    }
    assert_eq!(
        ok(
            reg,
            Method::DELETE,
            members,
            Some(&a.adam),
            Some(json!({"user": "dev"})),
            200
        ),
        json!({"ok": true})
    );
    refused(
        reg,
        Method::DELETE,
        members,
        Some(&a.adam),
        Some(json!({"user": "dev"})),
        404,
    );
    assert_eq!(
        ok(reg, Method::GET, members, Some(&a.dev), None, 200),
        json!(["olivia"])
    );

    // Team creation: who and what.
    for token in [&a.dev, &a.stranger] {
        refused(
            reg,
            Method::PUT,
            "/-/org/acme/team",
            Some(token),
            Some(json!({"name": "rogue"})),
            403,
        );
    }
    refused(
        reg,
        Method::PUT,
        "/-/org/acme/team",
        None,
        Some(json!({"name": "rogue"})),
        401,
    );
    refused(
        reg,
        Method::PUT,
        "/-/org/acme/team",
        Some(&a.olivia),
        Some(json!({"description": "no name"})),
        400,
    );
    refused(
        reg,
        Method::PUT,
        "/-/org/acme/team",
        Some(&a.olivia),
        Some(json!({"name": "Has Spaces"})),
        400,
    );
    refused(
        reg,
        Method::PUT,
        "/-/org/acme/team",
        Some(&a.olivia),
        Some(json!({"name": "x", "description": 12})),
        400,
    );
    refused(
        reg,
        Method::PUT,
        "/-/org/nowhere/team",
        Some(&a.olivia),
        Some(json!({"name": "x"})),
        404,
    );

    // npm team destroy
    for token in [&a.dev, &a.stranger] {
        refused(
            reg,
            Method::DELETE,
            "/-/team/acme/docs",
            Some(token),
            None,
            403,
        );
    }
    refused(reg, Method::DELETE, "/-/team/acme/docs", None, None, 401);
    assert_eq!(
        ok(
            reg,
            Method::DELETE,
            "/-/team/acme/docs",
            Some(&a.adam),
            None,
            200
        ),
        json!({"ok": true})
    );
    refused(
        reg,
        Method::DELETE,
        "/-/team/acme/docs",
        Some(&a.adam),
        None,
        404,
    );
    assert_eq!(
        ok(
            reg,
            Method::GET,
            "/-/org/acme/team",
            Some(&a.dev),
            None,
            200
        ),
        json!(["acme:core", "acme:developers"])
    );
}

// ---------------------------------------------------------------------------------------------
// npm access grant|revoke|list packages: /-/team/:org/:team/package, /-/org/:org/package,
// /-/user/:user/package
// ---------------------------------------------------------------------------------------------

#[test]
fn teams_are_granted_packages_and_listings_hide_what_the_reader_may_not_see() {
    let a = acme();
    let reg = &a.reg;
    publish_access(reg, &a.olivia, "@acme/secret", json!("restricted"));
    publish_access(reg, &a.olivia, "@acme/open", json!("public"));
    let alice = reg.user_with_token("alice");
    publish_access(reg, &alice, "mine", Value::Null);

    // A reader who is in the org but not in its developers team (which every new package of
    // the org is granted to): only a team grant lets them read the restricted package.
    reg.add_user("tess", "tess-password");
    let tess = reg.token("tess", TokenOptions::default());
    ok(
        reg,
        Method::PUT,
        "/-/org/acme/user",
        Some(&a.olivia),
        Some(json!({"user": "tess"})),
        200,
    );
    ok(
        reg,
        Method::DELETE,
        "/-/team/acme/developers/user",
        Some(&a.olivia),
        Some(json!({"user": "tess"})),
        200,
    );
    ok(
        reg,
        Method::PUT,
        "/-/org/acme/team",
        Some(&a.olivia),
        Some(json!({"name": "readers"})),
        201,
    );
    ok(
        reg,
        Method::PUT,
        "/-/team/acme/readers/user",
        Some(&a.olivia),
        Some(json!({"user": "tess"})),
        201,
    );
    assert_eq!(get_status(reg, "/@acme%2fsecret", Some(&tess)), 404);

    let grants = "/-/team/acme/readers/package";
    let grant = json!({"package": "@acme/secret", "permissions": "read-only"});
    assert_eq!(
        ok(
            reg,
            Method::PUT,
            grants,
            Some(&a.adam),
            Some(grant.clone()),
            201
        ),
        json!({"ok": true})
    );
    assert_eq!(get_status(reg, "/@acme%2fsecret", Some(&tess)), 200);
    assert_eq!(
        ok(reg, Method::GET, grants, Some(&tess), None, 200),
        json!({"@acme/secret": "read"})
    );
    ok(
        reg,
        Method::PUT,
        grants,
        Some(&a.olivia),
        Some(json!({"package": "@acme/open", "permissions": "read-write"})),
        201,
    );
    assert_eq!(
        ok(reg, Method::GET, grants, Some(&a.root), None, 200),
        json!({"@acme/open": "write", "@acme/secret": "read"})
    );
    refused(reg, Method::GET, grants, Some(&a.stranger), None, 404);
    refused(reg, Method::GET, grants, None, None, 401);
    refused(
        reg,
        Method::GET,
        "/-/team/acme/nothing/package",
        Some(&a.dev),
        None,
        404,
    );

    // Bad grants.
    let put = |token: &str, body: Value, status: u16| {
        refused(reg, Method::PUT, grants, Some(token), Some(body), status)
    };
    let error = put(
        &a.olivia,
        json!({"package": "@acme/secret", "permissions": "admin"}),
        400,
    );
    assert!(error.contains("permissions must be"), "{error}");
    put(&a.olivia, json!({"package": "@acme/secret"}), 400);
    let error = put(&a.olivia, json!({"permissions": "read-only"}), 400);
    assert!(error.contains("\"package\""), "{error}");
    put(
        &a.olivia,
        json!({"package": "Not A Name", "permissions": "read-only"}),
        400,
    );
    put(
        &a.olivia,
        json!({"package": "@acme/none", "permissions": "read-only"}),
        404,
    );
    // Only the org's owners and admins grant; outside the org's scope, only who may change
    // the package's access.
    put(&a.dev, grant.clone(), 403);
    put(&a.stranger, grant.clone(), 403);
    put(&tess, grant.clone(), 403);
    let error = put(
        &a.olivia,
        json!({"package": "mine", "permissions": "read-only"}),
        403,
    );
    assert!(error.contains("not a maintainer of mine"), "{error}");
    put(
        &alice,
        json!({"package": "mine", "permissions": "read-only"}),
        403,
    );
    refused(reg, Method::PUT, grants, None, Some(grant.clone()), 401);
    let readonly = reg.token(
        "olivia",
        TokenOptions {
            readonly: true,
            ..TokenOptions::default()
        },
    );
    let error = put(&readonly, grant.clone(), 403);
    assert!(error.contains("read-only"), "{error}");

    // npm access list packages ORG: the org's packages, as the reader may see them.
    let org_packages = "/-/org/acme/package";
    assert_eq!(
        ok(reg, Method::GET, org_packages, None, None, 200),
        json!({"@acme/open": "write"})
    );
    assert_eq!(
        ok(reg, Method::GET, org_packages, Some(&a.stranger), None, 200),
        json!({"@acme/open": "write"})
    );
    let both = json!({"@acme/open": "write", "@acme/secret": "write"});
    for token in [&a.olivia, &a.adam, &a.dev, &tess, &a.root] {
        assert_eq!(
            ok(reg, Method::GET, org_packages, Some(token), None, 200),
            both
        );
    }
    // No such org: 404, on which npm asks for the user's packages instead.
    let error = refused(reg, Method::GET, "/-/org/alice/package", None, None, 404);
    assert!(error.contains("no org named alice"), "{error}");

    // npm access list packages USER
    assert_eq!(
        ok(reg, Method::GET, "/-/user/alice/package", None, None, 200),
        json!({"mine": "write"})
    );
    assert_eq!(
        ok(reg, Method::GET, "/-/user/olivia/package", None, None, 200),
        json!({"@acme/open": "write"})
    );
    assert_eq!(
        ok(
            reg,
            Method::GET,
            "/-/user/olivia/package",
            Some(&a.stranger),
            None,
            200
        ),
        json!({"@acme/open": "write"})
    );
    assert_eq!(
        ok(
            reg,
            Method::GET,
            "/-/user/olivia/package",
            Some(&tess),
            None,
            200
        ),
        both
    );
    assert_eq!(
        ok(
            reg,
            Method::GET,
            "/-/user/tess/package",
            Some(&tess),
            None,
            200
        ),
        json!({"@acme/open": "write", "@acme/secret": "read"})
    );
    assert_eq!(
        ok(reg, Method::GET, "/-/user/tess/package", None, None, 200),
        json!({"@acme/open": "write"})
    );
    let error = refused(reg, Method::GET, "/-/user/nobody/package", None, None, 404);
    assert!(error.contains("no user named nobody"), "{error}");
    // The user document next door is still the user routes'.
    assert_eq!(
        ok(
            reg,
            Method::GET,
            "/-/user/org.couchdb.user:alice",
            None,
            None,
            200
        )["name"],
        "alice"
    );

    // npm access revoke
    let revoke = json!({"package": "@acme/secret"});
    refused(
        reg,
        Method::DELETE,
        grants,
        Some(&a.dev),
        Some(revoke.clone()),
        403,
    );
    refused(
        reg,
        Method::DELETE,
        grants,
        Some(&a.olivia),
        Some(json!({})),
        400,
    );
    assert_eq!(
        ok(
            reg,
            Method::DELETE,
            grants,
            Some(&a.olivia),
            Some(revoke.clone()),
            200
        ),
        json!({"ok": true})
    );
    let error = refused(
        reg,
        Method::DELETE,
        grants,
        Some(&a.olivia),
        Some(revoke),
        404,
    );
    assert!(error.contains("has no access"), "{error}");
    assert_eq!(get_status(reg, "/@acme%2fsecret", Some(&tess)), 404);
    assert_eq!(
        ok(reg, Method::GET, grants, Some(&tess), None, 200),
        json!({"@acme/open": "write"})
    );
}

// ---------------------------------------------------------------------------------------------
// npm access get|set status and list collaborators: /-/package/:pkg/…
// ---------------------------------------------------------------------------------------------

#[test]
fn access_status_is_read_and_set_and_shows_on_every_read_at_once() {
    let a = acme();
    let reg = &a.reg;
    publish_access(reg, &a.olivia, "@acme/lib", json!("public"));

    for path in [
        "/-/package/@acme%2flib/visibility",
        "/-/package/@acme/lib/visibility",
        "/-/package/%40acme%2Flib/visibility",
    ] {
        assert_eq!(
            ok(reg, Method::GET, path, None, None, 200),
            json!({"public": true}),
            "{path}"
        );
    }
    assert_eq!(
        ok(
            reg,
            Method::GET,
            "/-/package/@acme%2flib/access",
            None,
            None,
            200
        ),
        json!({"access": "public"})
    );

    // npm access set status=private
    let access = "/-/package/@acme%2flib/access";
    assert_eq!(
        ok(
            reg,
            Method::POST,
            access,
            Some(&a.olivia),
            Some(json!({"access": "restricted"})),
            200
        ),
        json!({"ok": true})
    );
    assert_eq!(get_status(reg, "/@acme%2flib", None), 404);
    assert_eq!(get_status(reg, "/@acme/lib", Some(&a.stranger)), 404);
    assert_eq!(
        get_status(reg, "/@acme/lib/-/lib-1.0.0.tgz", Some(&a.stranger)),
        404
    );
    for token in [&a.olivia, &a.dev, &a.root] {
        assert_eq!(get_status(reg, "/@acme%2flib", Some(token)), 200);
    }
    assert_eq!(
        ok(
            reg,
            Method::GET,
            "/-/package/@acme%2flib/visibility",
            Some(&a.dev),
            None,
            200
        ),
        json!({"public": false})
    );
    assert_eq!(
        ok(reg, Method::GET, access, Some(&a.dev), None, 200),
        json!({"access": "restricted"})
    );

    // Who may not see it is told it does not exist, on every access path.
    for token in [None, Some(a.stranger.as_str())] {
        for path in [
            "/-/package/@acme%2flib/visibility",
            "/-/package/@acme%2flib/access",
            "/-/package/@acme%2flib/collaborators",
        ] {
            let error = refused(reg, Method::GET, path, token, None, 404);
            assert!(error.contains("@acme/lib not found"), "{error}");
        }
    }
    let error = refused(
        reg,
        Method::POST,
        access,
        Some(&a.stranger),
        Some(json!({"access": "public"})),
        404,
    );
    assert!(error.contains("not found"), "{error}");
    refused(
        reg,
        Method::POST,
        access,
        None,
        Some(json!({"access": "public"})),
        401,
    );
    // A developer reads and publishes it (their team), but its access is for its
    // maintainers, the org's owners and admins, and the registry's administrators.
    let error = refused(
        reg,
        Method::POST,
        access,
        Some(&a.dev),
        Some(json!({"access": "public"})),
        403,
    );
    assert!(error.contains("not a maintainer"), "{error}");

    // npm access set status=public (`private` is npm's other word for restricted).
    ok(
        reg,
        Method::POST,
        access,
        Some(&a.adam),
        Some(json!({"access": "public"})),
        200,
    );
    assert_eq!(get_status(reg, "/@acme%2flib", None), 200);
    ok(
        reg,
        Method::POST,
        access,
        Some(&a.root),
        Some(json!({"access": "private"})),
        200,
    );
    assert_eq!(get_status(reg, "/@acme%2flib", None), 404);
    ok(
        reg,
        Method::POST,
        access,
        Some(&a.olivia),
        Some(json!({"access": "public"})),
        200,
    );
    // On a public package, a stranger is refused as a non-maintainer.
    refused(
        reg,
        Method::POST,
        access,
        Some(&a.stranger),
        Some(json!({"access": "restricted"})),
        403,
    );
    assert_eq!(get_status(reg, "/@acme%2flib", None), 200);
}

#[test]
fn bad_access_requests_are_refused_with_a_reason() {
    let a = acme();
    let reg = &a.reg;
    publish_access(reg, &a.olivia, "@acme/lib", json!("public"));
    let access = "/-/package/@acme%2flib/access";
    let post = |body: Value, status: u16| {
        refused(
            reg,
            Method::POST,
            access,
            Some(&a.olivia),
            Some(body),
            status,
        )
    };

    // npm access set mfa=none|publish|automation
    for body in [
        json!({"publish_requires_tfa": false}),
        json!({"publish_requires_tfa": true, "automation_token_overrides_tfa": false}),
        json!({"publish_requires_tfa": true, "automation_token_overrides_tfa": true}),
    ] {
        let error = post(body, 400);
        assert!(error.contains("no two-factor authentication"), "{error}");
    }
    let error = post(json!({"access": "secret"}), 400);
    assert!(error.contains("access must be"), "{error}");
    let error = post(json!({}), 400);
    assert!(error.contains("\"access\""), "{error}");
    post(json!({"access": true}), 400);
    post(json!("restricted"), 400);
    let (status, answer) = send_raw(reg, Method::POST, access, &a.olivia, "{\"access\":");
    assert_eq!(status, 400, "{answer}");
    let readonly = reg.token(
        "olivia",
        TokenOptions {
            readonly: true,
            ..TokenOptions::default()
        },
    );
    refused(
        reg,
        Method::POST,
        access,
        Some(&readonly),
        Some(json!({"access": "restricted"})),
        403,
    );
    // Nothing above changed it.
    assert_eq!(get_status(reg, "/@acme%2flib", None), 200);

    // Unknown and invalid packages.
    for path in [
        "/-/package/@acme%2fnone/visibility",
        "/-/package/none/collaborators",
        "/-/package/none/access",
    ] {
        refused(reg, Method::GET, path, Some(&a.olivia), None, 404);
    }
    refused(
        reg,
        Method::POST,
        "/-/package/@acme%2fnone/access",
        Some(&a.olivia),
        Some(json!({"access": "public"})),
        404,
    );
    refused(
        reg,
        Method::GET,
        "/-/package/Bad/visibility",
        None,
        None,
        400,
    );
    refused(
        reg,
        Method::GET,
        "/-/package/bad%zz/access",
        None,
        None,
        400,
    );
    // A package whose name ends like a resource is a package, not a resource.
    refused(reg, Method::GET, "/-/package/@acme/access", None, None, 404);
}

#[test]
fn collaborators_are_maintainers_and_members_of_granted_teams() {
    let a = acme();
    let reg = &a.reg;
    publish_access(reg, &a.olivia, "@acme/secret", json!("restricted"));
    reg.add_user("tess", "tess-password");
    ok(
        reg,
        Method::PUT,
        "/-/org/acme/user",
        Some(&a.olivia),
        Some(json!({"user": "tess"})),
        200,
    );
    ok(
        reg,
        Method::DELETE,
        "/-/team/acme/developers/user",
        Some(&a.olivia),
        Some(json!({"user": "tess"})),
        200,
    );
    ok(
        reg,
        Method::PUT,
        "/-/org/acme/team",
        Some(&a.olivia),
        Some(json!({"name": "readers"})),
        201,
    );
    ok(
        reg,
        Method::PUT,
        "/-/team/acme/readers/user",
        Some(&a.olivia),
        Some(json!({"user": "tess"})),
        201,
    );
    ok(
        reg,
        Method::PUT,
        "/-/team/acme/readers/package",
        Some(&a.olivia),
        Some(json!({"package": "@acme/secret", "permissions": "read-only"})),
        201,
    );
    let expected = json!({"adam": "write", "dev": "write", "olivia": "write", "tess": "read"});
    for path in [
        "/-/package/@acme%2fsecret/collaborators",
        "/-/package/@acme/secret/collaborators",
    ] {
        assert_eq!(
            ok(reg, Method::GET, path, Some(&a.dev), None, 200),
            expected
        );
    }
    let tess = reg.token("tess", TokenOptions::default());
    assert_eq!(
        ok(
            reg,
            Method::GET,
            "/-/package/@acme%2fsecret/collaborators",
            Some(&tess),
            None,
            200
        ),
        expected
    );
}

#[test]
fn proxied_packages_are_read_only_here() {
    let reg = TestRegistry::start_with(|config| {
        // Never asked: the refusal comes before any upstream request.
        proxy_to(config, "http://127.0.0.1:9", |_| {});
    });
    let alice = reg.user_with_token("alice");
    let error = refused(
        &reg,
        Method::POST,
        "/-/package/lodash/access",
        Some(&alice),
        Some(json!({"access": "restricted"})),
        403,
    );
    assert!(
        error.contains("read-only") && error.contains("proxied"),
        "{error}"
    );
    reg.add_user_with("root", "root-password", true);
    let root = reg.token("root", TokenOptions::default());
    ok(
        &reg,
        Method::POST,
        "/-/registry/admin/orgs",
        Some(&root),
        Some(json!({"name": "acme", "owner": "alice"})),
        201,
    );
    let error = refused(
        &reg,
        Method::PUT,
        "/-/team/acme/developers/package",
        Some(&alice),
        Some(json!({"package": "lodash", "permissions": "read-only"})),
        403,
    );
    assert!(error.contains("proxied"), "{error}");
}

#[test]
fn no_input_makes_these_routes_fail_with_a_5xx() {
    let a = acme();
    let reg = &a.reg;
    let bodies = [
        "[]",
        "{\"user\": {\"nested\": [1, 2]}, \"name\": 17}",
        "{\"user\": \"\\u0000\", \"owner\": \"..\"}",
        "{\"name\": \"../../etc\", \"package\": \"../x\", \"permissions\": null}",
        "{\"access\": null, \"role\": []}",
        "",
    ];
    let paths = [
        "/-/org/acme/user",
        "/-/org/acme/team",
        "/-/org/acme/package",
        "/-/org/%ff/user",
        "/-/org/..%2f..%2fx/team",
        "/-/team/acme/developers",
        "/-/team/acme/developers/user",
        "/-/team/acme/developers/package",
        "/-/team/acme/%2e%2e/user",
        "/-/team/acme/developers/other",
        "/-/package/@acme%2fx/access",
        "/-/package/x/visibility",
        "/-/package/x/collaborators",
        "/-/user/%00/package",
        "/-/user/..%2f/package",
        "/-/registry/admin/orgs",
    ];
    for path in paths {
        for method in [Method::GET, Method::PUT, Method::POST, Method::DELETE] {
            for body in bodies {
                // The registry's administrator for the admin route, the org's owner elsewhere.
                let token = if path.contains("admin") {
                    &a.root
                } else {
                    &a.olivia
                };
                let (status, answer) = send_raw(reg, method.clone(), path, token, body);
                assert!(
                    (200..500).contains(&status),
                    "{method} {path} {body:?}: {status} {answer}"
                );
                if status >= 400 {
                    assert!(
                        answer["error"].is_string(),
                        "{method} {path} {body:?}: {status} {answer}"
                    );
                }
            }
        }
    }
}

#[test]
fn blocks_win_developers_stay_and_access_changes_move_the_etag() {
    let acme = acme();
    let reg = &acme.reg;
    publish_access(reg, &acme.olivia, "@acme/app", json!("restricted"));

    // Every org keeps its developers team.
    let error = refused(
        reg,
        Method::DELETE,
        "/-/team/acme/developers",
        Some(&acme.olivia),
        None,
        409,
    );
    assert!(error.contains("developers"), "{error}");
    assert_eq!(
        ok(
            reg,
            Method::GET,
            "/-/org/acme/team",
            Some(&acme.olivia),
            None,
            200
        ),
        json!(["acme:developers"])
    );

    // Changing the access level gives the document a new ETag, so clients revalidate.
    let etag = |token: &str| {
        client()
            .get(reg.url("/@acme%2fapp"))
            .bearer_auth(token)
            .send()
            .expect("packument")
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .expect("an ETag")
    };
    let before = etag(&acme.olivia);
    ok(
        reg,
        Method::POST,
        "/-/package/@acme%2fapp/access",
        Some(&acme.olivia),
        Some(json!({"access": "public"})),
        200,
    );
    assert_ne!(
        etag(&acme.olivia),
        before,
        "the access change made a new revision"
    );
    assert_eq!(get_status(reg, "/@acme%2fapp", None), 200);

    // A blocked package answers 451 on the access routes too, and its access cannot change.
    ok(
        reg,
        Method::PUT,
        "/-/package/@acme%2fapp/blocks",
        Some(&acme.root),
        Some(json!({"reason": "malware"})),
        201,
    );
    for path in [
        "/-/package/@acme%2fapp/visibility",
        "/-/package/@acme%2fapp/access",
        "/-/package/@acme%2fapp/collaborators",
    ] {
        assert_eq!(get_status(reg, path, Some(&acme.olivia)), 451, "GET {path}");
    }
    refused(
        reg,
        Method::POST,
        "/-/package/@acme%2fapp/access",
        Some(&acme.olivia),
        Some(json!({"access": "restricted"})),
        451,
    );
    refused(
        reg,
        Method::PUT,
        "/-/team/acme/developers/package",
        Some(&acme.olivia),
        Some(json!({"package": "@acme/app", "permissions": "read-only"})),
        451,
    );
}
