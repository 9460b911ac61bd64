//! Private packages over HTTP: every reader × every kind of package × every path that could
//! reveal a package, asserting the status and that listings and totals leave out what the
//! reader may not see; writes through team grants and org-limited tokens; the byte cache
//! across an access boundary; `read_access = "authenticated"`.

mod common;

use common::{client, escaped, package_tarball, publish_body, TestRegistry};
use registry_core::access::orgs::create_org;
use registry_core::access::teams::{self, TeamName};
use registry_core::access::TeamPermission;
use registry_core::accounts::auth::Identity;
use registry_core::accounts::authz::require_admin;
use registry_core::accounts::tokens::TokenOptions;
use registry_core::config::ReadAccess;
use registry_core::packages::names::PackageName;
use serde_json::{json, Value};

const PUBLIC: &str = "open-pkg";
const MINE: &str = "@mia/secret";
const ORGS: &str = "@acme/secret";

struct World {
    reg: TestRegistry,
    /// (reader, Authorization header or none)
    readers: Vec<(&'static str, Option<String>)>,
}

fn bearer(token: &str) -> Option<String> {
    Some(format!("Bearer {token}"))
}

fn identity_of(reg: &TestRegistry, user: &str) -> Identity {
    let user = reg
        .registry
        .store
        .read(|db| db.user_by_name(user))
        .expect("read user")
        .expect("user exists");
    Identity { user, token: None }
}

fn publish_as(reg: &TestRegistry, token: &str, name: &str, version: &str, access: Value) -> u16 {
    let tgz = package_tarball(name, version);
    let mut body = publish_body(name, version, &tgz);
    body["access"] = access;
    client()
        .put(reg.url(&format!("/{}", escaped(name))))
        .bearer_auth(token)
        .json(&body)
        .send()
        .expect("publish")
        .status()
        .as_u16()
}

fn get(reg: &TestRegistry, auth: Option<&str>, path: &str) -> (u16, Value) {
    let mut request = client().get(reg.url(path));
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let response = request.send().expect("request");
    let status = response.status().as_u16();
    let body = response.json().unwrap_or(Value::Null);
    (status, body)
}

/// An org token for `user`, made the way `npm token create --orgs acme` asks for it.
fn org_token(reg: &TestRegistry, user: &str, password: &str) -> String {
    let response = client()
        .post(reg.url("/-/npm/v1/tokens"))
        .basic_auth(user, Some(password))
        .json(&json!({
            "password": password,
            "orgs": ["acme"],
            "orgs_permission": "read-only",
            "packages_and_scopes_permission": "read-write",
        }))
        .send()
        .expect("token request");
    assert_eq!(response.status().as_u16(), 201, "org token");
    let body: Value = response.json().expect("token JSON");
    body["token"].as_str().expect("token").to_string()
}

/// mia maintains a public package and a restricted one in her own scope; the org acme
/// (owned by olga) has a restricted package, granted read-only to the team readers (ro) and
/// read-write to writers (rw); stan is nobody; root is an admin. Root stars all three.
fn world() -> World {
    let reg = TestRegistry::start();
    let mia = reg.user_with_token("mia");
    let olga = reg.user_with_token("olga");
    let ro = reg.user_with_token("ro");
    reg.add_user("rw", "rw-password");
    let rw = reg.token("rw", TokenOptions::default());
    let stan = reg.user_with_token("stan");
    reg.add_user_with("root", "root-password", true);
    let root = reg.token("root", TokenOptions::default());
    let mia_readonly = reg.token(
        "mia",
        TokenOptions {
            readonly: true,
            ..TokenOptions::default()
        },
    );
    let rw_org = org_token(&reg, "rw", "rw-password");

    let store = &reg.registry.store;
    let admin_identity = identity_of(&reg, "root");
    let admin = require_admin(Some(&admin_identity)).expect("admin");
    create_org(store, &admin, "acme", "olga").expect("create org");
    let olga_id = identity_of(&reg, "olga");
    let owner = Some(&olga_id);
    for user in ["ro", "rw"] {
        registry_core::access::orgs::set_member(store, owner, "acme", user, None).expect("member");
        let developers = TeamName::parse("acme:developers").expect("team name");
        teams::remove_member(store, owner, &developers, user).expect("leave developers");
    }
    for (team, user) in [("readers", "ro"), ("writers", "rw")] {
        let name = TeamName::parse(&format!("@acme:{team}")).expect("team name");
        teams::create_team(store, owner, &name, None).expect("create team");
        teams::add_member(store, owner, &name, user).expect("join team");
    }

    assert_eq!(publish_as(&reg, &mia, PUBLIC, "1.0.0", Value::Null), 201);
    assert_eq!(
        publish_as(&reg, &mia, MINE, "1.0.0", json!("restricted")),
        201
    );
    assert_eq!(
        publish_as(&reg, &stan, "@acme/intruder", "1.0.0", Value::Null),
        403,
        "only members publish under an org's scope"
    );
    assert_eq!(
        publish_as(&reg, &stan, "@mia/intruder", "1.0.0", Value::Null),
        403,
        "only mia publishes under @mia"
    );
    assert_eq!(
        publish_as(&reg, &olga, ORGS, "1.0.0", json!("restricted")),
        201
    );
    let package = PackageName::parse(ORGS).expect("name");
    for (team, permission) in [
        ("acme:readers", TeamPermission::ReadOnly),
        ("acme:writers", TeamPermission::ReadWrite),
    ] {
        let name = TeamName::parse(team).expect("team name");
        teams::grant(store, owner, &name, &package, permission).expect("grant");
    }
    for name in [PUBLIC, MINE, ORGS] {
        star(&reg, &root, name);
    }
    World {
        readers: vec![
            ("anonymous", None),
            ("stranger", bearer(&stan)),
            ("maintainer", bearer(&mia)),
            ("read-only team member", bearer(&ro)),
            ("read-write team member", bearer(&rw)),
            ("org owner", bearer(&olga)),
            ("admin", bearer(&root)),
            ("org-limited token", bearer(&rw_org)),
            ("read-only token", bearer(&mia_readonly)),
        ],
        reg,
    }
}

fn star(reg: &TestRegistry, token: &str, name: &str) {
    let path = format!("/{}?write=true", escaped(name));
    let (_, doc) = get(reg, Some(&format!("Bearer {token}")), &path);
    let response = client()
        .put(reg.url(&format!("/{}", escaped(name))))
        .bearer_auth(token)
        .json(&json!({"_id": name, "_rev": doc["_rev"], "users": {"root": true}}))
        .send()
        .expect("star");
    assert_eq!(response.status().as_u16(), 200, "star {name}");
}

/// Who may see which package.
fn sees(reader: &str, package: &str) -> bool {
    match package {
        PUBLIC => true,
        MINE => matches!(reader, "maintainer" | "admin" | "read-only token"),
        ORGS => matches!(
            reader,
            "read-only team member"
                | "read-write team member"
                | "org owner"
                | "admin"
                | "org-limited token"
        ),
        _ => unreachable!("three packages"),
    }
}

#[test]
fn every_path_hides_what_the_reader_may_not_see() {
    let world = world();
    let reg = &world.reg;
    for (reader, auth) in &world.readers {
        let auth = auth.as_deref();
        let mut visible = 0;
        for package in [PUBLIC, MINE, ORGS] {
            let sees = sees(reader, package);
            visible += u64::from(sees);
            let want = if sees { 200 } else { 404 };
            let bare = package.rsplit('/').next().unwrap_or(package);
            let paths = [
                format!("/{}", escaped(package)),
                format!("/{}/1.0.0", escaped(package)),
                format!("/{}/latest", escaped(package)),
                format!("/{package}/-/{bare}-1.0.0.tgz"),
                format!("/-/package/{}/dist-tags", escaped(package)),
                format!("/downloads/point/last-week/{package}"),
                format!("/downloads/range/last-week/{package}"),
            ];
            for path in &paths {
                assert_eq!(get(reg, auth, path).0, want, "{reader} GET {path}");
            }
            // The abbreviated document, as npm install asks for it.
            let mut request = client()
                .get(reg.url(&format!("/{}", escaped(package))))
                .header("accept", "application/vnd.npm.install-v1+json");
            if let Some(auth) = auth {
                request = request.header("authorization", auth);
            }
            assert_eq!(
                request.send().expect("abbreviated").status().as_u16(),
                want,
                "{reader} abbreviated {package}"
            );

            let (status, search) = get(reg, auth, "/-/v1/search?text=secret&size=20");
            assert_eq!(status, 200);
            let found = search["objects"]
                .as_array()
                .is_some_and(|hits| hits.iter().any(|h| h["package"]["name"] == package));
            if package != PUBLIC {
                assert_eq!(found, sees, "{reader} searching finds {package}");
            }
            let (_, since) = get(reg, auth, "/-/all/since?stale=update_after&startkey=0");
            assert_eq!(
                since.get(package).is_some(),
                sees,
                "{reader} /-/all/since lists {package}"
            );
            let (_, by_user) = get(reg, auth, "/-/by-user/mia|olga");
            let listed = ["mia", "olga"].iter().any(|user| {
                by_user[*user]
                    .as_array()
                    .is_some_and(|names| names.iter().any(|n| n == package))
            });
            assert_eq!(listed, sees, "{reader} /-/by-user lists {package}");
            let (_, stars) = get(reg, auth, "/-/_view/starredByUser?key=%22root%22");
            let starred = stars["rows"]
                .as_array()
                .is_some_and(|rows| rows.iter().any(|r| r["value"] == package));
            assert_eq!(starred, sees, "{reader} starredByUser lists {package}");
        }
        // Totals count only what the reader may see.
        let (_, search) = get(reg, auth, "/-/v1/search?text=secret&size=20");
        let secrets = u64::from(sees(reader, MINE)) + u64::from(sees(reader, ORGS));
        assert_eq!(search["total"], json!(secrets), "{reader} search total");
        let (_, root) = get(reg, auth, "/");
        assert_eq!(root["doc_count"], json!(visible), "{reader} doc_count");
    }
}

#[test]
fn teams_and_org_tokens_write_only_where_granted() {
    let world = world();
    let reg = &world.reg;
    let auth = |who: &str| {
        world
            .readers
            .iter()
            .find(|(name, _)| *name == who)
            .and_then(|(_, auth)| auth.clone())
            .expect("reader")
    };
    let tag = |who: &str, package: &str| {
        client()
            .put(reg.url(&format!("/-/package/{}/dist-tags/next", escaped(package))))
            .header("authorization", auth(who))
            .json(&json!("1.0.0"))
            .send()
            .expect("tag")
            .status()
            .as_u16()
    };
    assert_eq!(tag("read-write team member", ORGS), 201);
    assert_eq!(tag("read-only team member", ORGS), 403);
    assert_eq!(
        tag("stranger", ORGS),
        404,
        "a stranger is not told it exists"
    );
    assert_eq!(tag("org-limited token", ORGS), 201);
    assert_eq!(tag("maintainer", ORGS), 404);
    assert_eq!(tag("read-only token", MINE), 403);

    let publish = |who: &str, package: &str, version: &str| {
        let token = auth(who).trim_start_matches("Bearer ").to_string();
        publish_as(reg, &token, package, version, Value::Null)
    };
    assert_eq!(publish("read-write team member", ORGS, "1.1.0"), 201);
    assert_eq!(publish("read-only team member", ORGS, "1.2.0"), 403);
    assert_eq!(publish("stranger", ORGS, "1.2.0"), 404);
    assert_eq!(
        publish("org-limited token", "rw-own-package", "1.0.0"),
        403,
        "an org token writes only that org's packages"
    );
    // A new version keeps the package restricted: --access only applies to a new package.
    assert_eq!(get(reg, None, &format!("/{}", escaped(ORGS))).0, 404);
}

#[test]
fn cached_documents_never_cross_an_access_boundary() {
    let world = world();
    let reg = &world.reg;
    let mia = world.readers[2].1.clone();
    let path = format!("/{}", escaped(MINE));
    for _ in 0..3 {
        assert_eq!(
            get(reg, mia.as_deref(), &path).0,
            200,
            "warm the byte cache"
        );
    }
    assert_eq!(
        get(reg, None, &path).0,
        404,
        "anonymous after the cache is warm"
    );
    assert_eq!(get(reg, world.readers[1].1.as_deref(), &path).0, 404);
    // Making it public shows at once on the hot path; restricting it again hides it at once.
    let store = &reg.registry.store;
    let name = PackageName::parse(MINE).expect("name");
    let mia_identity = identity_of(reg, "mia");
    registry_core::access::packages::set_access(
        store,
        Some(&mia_identity),
        &name,
        registry_core::access::Access::Public,
    )
    .expect("make public");
    assert_eq!(get(reg, None, &path).0, 200, "public now");
    registry_core::access::packages::set_access(
        store,
        Some(&mia_identity),
        &name,
        registry_core::access::Access::Restricted,
    )
    .expect("restrict again");
    assert_eq!(get(reg, None, &path).0, 404, "hidden again");
    let tarball = format!("/{MINE}/-/secret-1.0.0.tgz");
    assert_eq!(get(reg, mia.as_deref(), &tarball).0, 200);
    assert_eq!(get(reg, None, &tarball).0, 404, "and so is its tarball");
}

#[test]
fn authenticated_reads_need_a_login() {
    let reg = TestRegistry::start_with(|config| config.read_access = ReadAccess::Authenticated);
    let mia = reg.user_with_token("mia");
    assert_eq!(publish_as(&reg, &mia, PUBLIC, "1.0.0", Value::Null), 201);
    for path in [
        "/",
        "/open-pkg",
        "/open-pkg/1.0.0",
        "/open-pkg/-/open-pkg-1.0.0.tgz",
        "/-/v1/search?text=open",
        "/-/all/since?startkey=0",
        "/-/by-user/mia",
        "/-/_view/starredByUser?key=%22mia%22",
        "/downloads/point/last-week/open-pkg",
        "/-/package/open-pkg/dist-tags",
        "/no-such-package",
    ] {
        let response = client().get(reg.url(path)).send().expect("request");
        assert_eq!(response.status().as_u16(), 401, "anonymous GET {path}");
        let challenge = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(!challenge.is_empty(), "GET {path} names a challenge");
        let body: Value = response.json().expect("JSON error");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("npm login")),
            "GET {path}: {body}"
        );
        let (status, _) = get(&reg, Some(&format!("Bearer {mia}")), path);
        let want = if path == "/no-such-package" { 404 } else { 200 };
        assert_eq!(status, want, "mia GET {path}");
        assert_eq!(
            get(&reg, Some("Bearer not-a-token"), path).0,
            401,
            "a bad token GET {path}"
        );
    }
    assert_eq!(get(&reg, None, "/-/ping").0, 200, "ping stays open");
    // Logging in stays open: npm's couch login.
    let response = client()
        .put(reg.url("/-/user/org.couchdb.user:mia"))
        .json(
            &json!({"_id": "org.couchdb.user:mia", "name": "mia", "password": "mia-password",
                      "type": "user", "roles": [], "date": "2026-12-01T00:00:00.000Z"}),
        )
        .send()
        .expect("login");
    assert_eq!(response.status().as_u16(), 201, "login is open");
}
