//! `registry org`, `registry team` and `registry access` in both modes: local (`--data-dir`)
//! and remote (`--registry` against a `registry serve` child on the same data directory). The
//! same flow and the same assertions run against both, since both modes promise the same
//! arguments, output and exit codes; the daemon is asked afterwards whether each change took
//! effect for npm's clients.

mod common;

use common::{Daemon, Fixture, Run, Target};
use serde_json::{json, Value};

const FAILED: i32 = 1;
const USAGE: i32 = 2;
const NOT_FOUND: i32 = 3;
const DENIED: i32 = 4;

/// The status of `GET path` on the daemon, with a token or anonymously.
fn read_as(daemon: &Daemon, path: &str, token: Option<&str>) -> u16 {
    let mut request = reqwest::blocking::Client::new().get(format!("{}{path}", daemon.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().expect("GET").status().as_u16()
}

/// A clap usage error: exit 2, naming the bad value (clap's message is several lines).
#[track_caller]
fn rejected_by_clap(run: Run, value: &str) {
    assert_eq!(run.code, USAGE, "{}", run.stderr);
    assert!(run.stderr.contains(value), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

fn orgs_work(target: &dyn Target) {
    target
        .run_with(
            &[
                "user",
                "add",
                "carol",
                "--password-stdin",
                "--email",
                "carol@example.com",
            ],
            "carol-password\n",
        )
        .ok();
    let created = target
        .run(&["org", "create", "acme", "--owner", "alice", "--json"])
        .ok()
        .json();
    assert_eq!(created["name"], "acme");
    assert_eq!(created["members"], 1);
    assert!(
        created["created"].as_str().is_some_and(|c| !c.is_empty()),
        "{created}"
    );
    let again = target
        .run(&["org", "create", "@acme", "--owner", "bob"])
        .fails(FAILED);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    let user_scope = target
        .run(&["org", "create", "alice", "--owner", "bob"])
        .fails(FAILED);
    assert!(
        user_scope.stderr.contains("user name"),
        "{}",
        user_scope.stderr
    );
    target
        .run(&["org", "create", "Not Valid", "--owner", "alice"])
        .fails(USAGE);
    target
        .run(&["org", "create", "beta", "--owner", "nobody"])
        .fails(NOT_FOUND);

    let orgs = target.run(&["org", "ls", "--json"]).ok().json();
    assert_eq!(orgs.as_array().map(Vec::len), Some(1), "{orgs}");
    assert_eq!(orgs[0]["name"], "acme");
    assert_eq!(orgs[0]["members"], 1);
    assert_eq!(orgs[0]["created"], created["created"]);
    let table = target.run(&["org", "ls"]).ok().stdout;
    assert!(
        table.contains("MEMBERS") && table.contains("acme"),
        "{table}"
    );

    // Members: developer by default, roles on request, the last owner stays.
    let added = target.run(&["org", "set", "acme", "bob"]).ok().stdout;
    assert!(added.contains("bob is now developer of acme"), "{added}");
    let set = target
        .run(&["org", "set", "@acme", "carol", "admin", "--json"])
        .ok()
        .json();
    assert_eq!(
        set,
        json!({"org": {"name": "acme", "size": 3}, "user": "carol", "role": "admin"})
    );
    let members = target.run(&["org", "ls", "acme", "--json"]).ok().json();
    assert_eq!(
        members,
        json!({"alice": "owner", "bob": "developer", "carol": "admin"})
    );
    let table = target.run(&["org", "ls", "@acme"]).ok().stdout;
    assert!(
        table.contains("ROLE") && table.contains("carol") && table.contains("admin"),
        "{table}"
    );
    let last = target
        .run(&["org", "set", "acme", "alice", "developer"])
        .fails(FAILED);
    assert!(last.stderr.contains("last owner"), "{}", last.stderr);
    let last = target.run(&["org", "rm", "acme", "alice"]).fails(FAILED);
    assert!(last.stderr.contains("last owner"), "{}", last.stderr);
    rejected_by_clap(target.run(&["org", "set", "acme", "bob", "boss"]), "boss");
    target
        .run(&["org", "set", "acme", "nobody"])
        .fails(NOT_FOUND);
    target.run(&["org", "rm", "acme", "root"]).fails(NOT_FOUND);
    target.run(&["org", "ls", "nope"]).fails(NOT_FOUND);
    target.run(&["org", "ls", "Not Valid"]).fails(USAGE);
}

fn teams_work(target: &dyn Target) {
    let created = target
        .run(&[
            "team",
            "create",
            "acme:devs",
            "--description",
            "the devs",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(created["name"], "acme:devs");
    assert_eq!(created["description"], "the devs");
    assert!(created["created"].is_string(), "{created}");
    target.run(&["team", "create", "@acme:devs"]).fails(FAILED);
    let bad = target.run(&["team", "create", "acme-devs"]).fails(USAGE);
    assert!(bad.stderr.contains("@org:team"), "{}", bad.stderr);
    target
        .run(&["team", "create", "acme:Bad Name"])
        .fails(USAGE);
    target
        .run(&["team", "create", "nope:devs"])
        .fails(NOT_FOUND);

    let added = target.run(&["team", "add", "acme:devs", "bob"]).ok().stdout;
    assert!(added.contains("added bob to acme:devs"), "{added}");
    target.run(&["team", "add", "@acme:devs", "carol"]).ok();
    // Only members of the org join its teams.
    let outsider = target
        .run(&["team", "add", "acme:devs", "root"])
        .fails(USAGE);
    assert!(
        outsider.stderr.contains("not a member"),
        "{}",
        outsider.stderr
    );
    target
        .run(&["team", "add", "acme:nope", "bob"])
        .fails(NOT_FOUND);
    let members = target
        .run(&["team", "ls", "acme:devs", "--json"])
        .ok()
        .json();
    assert_eq!(members, json!(["bob", "carol"]));
    let teams = target.run(&["team", "ls", "@acme", "--json"]).ok().json();
    assert_eq!(teams, json!(["acme:developers", "acme:devs"]));
    let lines = target.run(&["team", "ls", "acme"]).ok().stdout;
    assert_eq!(lines, "acme:developers\nacme:devs\n");
    target.run(&["team", "ls", "acme:"]).fails(USAGE);
    target.run(&["team", "ls", "nope"]).fails(NOT_FOUND);

    target.run(&["team", "rm", "acme:devs", "carol"]).ok();
    let members = target
        .run(&["team", "ls", "acme:devs", "--json"])
        .ok()
        .json();
    assert_eq!(members, json!(["bob"]));
    target
        .run(&["team", "rm", "acme:devs", "carol"])
        .fails(NOT_FOUND);
    // Leaving the org leaves its teams: carol joined `developers` with the org.
    target.run(&["org", "rm", "acme", "carol"]).ok();
    let developers = target
        .run(&["team", "ls", "acme:developers", "--json"])
        .ok()
        .json();
    assert_eq!(developers, json!(["alice", "bob"]));
    let members = target.run(&["org", "ls", "acme", "--json"]).ok().json();
    assert_eq!(members, json!({"alice": "owner", "bob": "developer"}));
}

fn access_works(target: &dyn Target, fixture: &Fixture, daemon: &Daemon) {
    // Published after the org exists: its `developers` team gets it read-write.
    fixture.publish("alice", "@acme/gadget", "1.0.0");
    let bob = target
        .run(&["token", "create", "--user", "bob"])
        .ok()
        .stdout
        .trim()
        .to_string();

    let got = target
        .run(&["access", "get", "@acme/widget", "--json"])
        .ok()
        .json();
    assert_eq!(got, json!({"package": "@acme/widget", "access": "public"}));
    assert_eq!(
        target.run(&["access", "get", "left-pad"]).ok().stdout,
        "left-pad: public\n"
    );
    let set = target
        .run(&["access", "set", "@acme/widget", "restricted", "--json"])
        .ok()
        .json();
    assert_eq!(
        set,
        json!({"package": "@acme/widget", "access": "restricted"})
    );
    let said = target
        .run(&["access", "set", "@acme/gadget", "private"])
        .ok()
        .stdout;
    assert_eq!(said, "@acme/gadget is now restricted\n");
    assert_eq!(
        target.run(&["access", "get", "@acme/gadget"]).ok().stdout,
        "@acme/gadget: restricted\n"
    );
    rejected_by_clap(
        target.run(&["access", "set", "left-pad", "secret"]),
        "secret",
    );
    target
        .run(&["access", "get", "no-such-package"])
        .fails(NOT_FOUND);
    target.run(&["access", "get", "Not Valid"]).fails(USAGE);
    // Restricted at once, for everyone the access model leaves out.
    assert_eq!(read_as(daemon, "/@acme%2fwidget", None), 404);
    assert_eq!(read_as(daemon, "/@acme%2fwidget", Some(&bob)), 404);
    assert_eq!(
        read_as(daemon, "/@acme%2fgadget", Some(&bob)),
        200,
        "bob is in developers, which has the new package"
    );

    // Grants.
    target
        .run(&["access", "grant", "read-only", "acme:devs", "@acme/widget"])
        .ok();
    let granted = target
        .run(&[
            "access",
            "grant",
            "read-write",
            "@acme:devs",
            "left-pad",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(
        granted,
        json!({"team": "acme:devs", "package": "left-pad", "permissions": "read-write"})
    );
    assert_eq!(read_as(daemon, "/@acme%2fwidget", Some(&bob)), 200);
    rejected_by_clap(
        target.run(&["access", "grant", "write", "acme:devs", "left-pad"]),
        "write",
    );
    target
        .run(&["access", "grant", "read-only", "acme-devs", "left-pad"])
        .fails(USAGE);
    target
        .run(&["access", "grant", "read-only", "acme:nope", "left-pad"])
        .fails(NOT_FOUND);
    target
        .run(&["access", "grant", "read-only", "acme:devs", "no-such"])
        .fails(NOT_FOUND);

    // Listings: npm's `{name: read|write}` for scripts, a table for people.
    let of_team = target
        .run(&["access", "ls", "packages", "acme:devs", "--json"])
        .ok()
        .json();
    assert_eq!(
        of_team,
        json!({"@acme/widget": "read", "left-pad": "write"})
    );
    let of_org = target
        .run(&["access", "ls", "packages", "@acme", "--json"])
        .ok()
        .json();
    assert_eq!(
        of_org,
        json!({"@acme/gadget": "write", "@acme/widget": "write"})
    );
    let of_bob = target
        .run(&["access", "ls", "packages", "bob", "--json"])
        .ok()
        .json();
    assert_eq!(
        of_bob,
        json!({"@acme/gadget": "write", "@acme/widget": "read", "left-pad": "write"})
    );
    let of_alice = target
        .run(&["access", "ls", "packages", "alice", "--json"])
        .ok()
        .json();
    assert_eq!(
        of_alice,
        json!({"@acme/gadget": "write", "@acme/widget": "write", "left-pad": "write"})
    );
    let table = target
        .run(&["access", "ls", "packages", "acme:devs"])
        .ok()
        .stdout;
    assert!(
        table.contains("PACKAGE") && table.contains("read-only") && table.contains("read-write"),
        "{table}"
    );
    let nobody = target
        .run(&["access", "ls", "packages", "nobody"])
        .fails(NOT_FOUND);
    assert!(
        nobody.stderr.contains("no org or user named nobody"),
        "{}",
        nobody.stderr
    );
    target
        .run(&["access", "ls", "packages", "acme:nope"])
        .fails(NOT_FOUND);
    target
        .run(&["access", "ls", "packages", "acme:"])
        .fails(USAGE);
    let collaborators = target
        .run(&["access", "ls", "collaborators", "@acme/widget", "--json"])
        .ok()
        .json();
    assert_eq!(collaborators, json!({"alice": "write", "bob": "read"}));
    let table = target
        .run(&["access", "ls", "collaborators", "@acme/widget"])
        .ok()
        .stdout;
    assert!(
        table.contains("USER") && table.contains("bob") && table.contains("read-only"),
        "{table}"
    );
    target
        .run(&["access", "ls", "collaborators", "no-such"])
        .fails(NOT_FOUND);

    // `package info` says it.
    let info = target
        .run(&["package", "info", "@acme/widget", "--json"])
        .ok()
        .json();
    assert_eq!(info["access"], "restricted");
    let info = target
        .run(&["package", "info", "left-pad", "--json"])
        .ok()
        .json();
    assert_eq!(info["access"], "public");
    let text = target.run(&["package", "info", "@acme/widget"]).ok().stdout;
    assert!(text.contains("access: restricted"), "{text}");

    // Revoking and destroying take the grants away.
    target
        .run(&["access", "revoke", "acme:devs", "@acme/widget"])
        .ok();
    assert_eq!(read_as(daemon, "/@acme%2fwidget", Some(&bob)), 404);
    let collaborators = target
        .run(&["access", "ls", "collaborators", "@acme/widget", "--json"])
        .ok()
        .json();
    assert_eq!(collaborators, json!({"alice": "write"}));
    target
        .run(&["access", "revoke", "acme:devs", "@acme/widget"])
        .fails(NOT_FOUND);
    let destroyed = target.run(&["team", "destroy", "acme:devs"]).ok().stdout;
    assert_eq!(destroyed, "destroyed team acme:devs\n");
    let teams = target.run(&["team", "ls", "acme", "--json"]).ok().json();
    assert_eq!(teams, json!(["acme:developers"]));
    target
        .run(&["team", "destroy", "acme:devs"])
        .fails(NOT_FOUND);
    target
        .run(&["access", "ls", "packages", "acme:devs"])
        .fails(NOT_FOUND);
    let of_bob = target
        .run(&["access", "ls", "packages", "bob", "--json"])
        .ok()
        .json();
    assert_eq!(of_bob, json!({"@acme/gadget": "write"}));

    target
        .run(&["access", "set", "@acme/widget", "public"])
        .ok();
    assert_eq!(read_as(daemon, "/@acme%2fwidget", None), 200);
}

fn everything_works(target: &dyn Target, fixture: &Fixture, daemon: &Daemon) {
    orgs_work(target);
    teams_work(target);
    access_works(target, fixture, daemon);
}

#[test]
fn orgs_teams_and_access_locally() {
    let fixture = Fixture::new();
    let daemon = Daemon::start(&fixture);
    everything_works(&fixture, &fixture, &daemon);
}

#[test]
fn orgs_teams_and_access_remotely() {
    let fixture = Fixture::new();
    let daemon = Daemon::start(&fixture);
    everything_works(&daemon, &fixture, &daemon);
}

#[test]
fn remotely_a_user_acts_with_their_own_rights() {
    let fixture = Fixture::new();
    let daemon = Daemon::start(&fixture);
    fixture
        .run(&["org", "create", "acme", "--owner", "alice"])
        .ok();
    fixture.run(&["org", "set", "acme", "bob"]).ok();
    let token = |user: &str| {
        fixture
            .run(&["token", "create", "--user", user])
            .ok()
            .stdout
            .trim()
            .to_string()
    };
    let alice = daemon.as_token(&token("alice"));
    let bob = daemon.as_token(&token("bob"));

    // Creating and listing every org is the administrators'.
    bob.run(&["org", "create", "beta", "--owner", "bob"])
        .fails(DENIED);
    bob.run(&["org", "ls"]).fails(DENIED);
    // A developer sees the org but does not manage it; its owner does.
    let members = bob.run(&["org", "ls", "acme", "--json"]).ok().json();
    assert_eq!(members, json!({"alice": "owner", "bob": "developer"}));
    bob.run(&["org", "set", "acme", "root"]).fails(DENIED);
    bob.run(&["team", "create", "acme:devs"]).fails(DENIED);
    alice.run(&["team", "create", "acme:devs"]).ok();
    alice.run(&["team", "add", "acme:devs", "bob"]).ok();
    // bob is a maintainer of nothing in @acme: he may not change its access.
    bob.run(&["access", "set", "@acme/widget", "restricted"])
        .fails(DENIED);
    alice
        .run(&["access", "set", "@acme/widget", "restricted"])
        .ok();
    // A restricted package bob may not read does not exist for him.
    bob.run(&["access", "get", "@acme/widget"]).fails(NOT_FOUND);
    bob.run(&["package", "info", "@acme/widget"])
        .fails(NOT_FOUND);
    alice
        .run(&["access", "grant", "read-only", "acme:devs", "@acme/widget"])
        .ok();
    let got: Value = bob
        .run(&["access", "get", "@acme/widget", "--json"])
        .ok()
        .json();
    assert_eq!(got["access"], "restricted");
    let info = bob
        .run(&["package", "info", "@acme/widget", "--json"])
        .ok()
        .json();
    assert_eq!(info["access"], "restricted");
    // No token at all: told to log in.
    daemon
        .as_token("")
        .run(&["org", "ls", "acme"])
        .fails(DENIED);
}
