//! Proxy and cache of an upstream registry. The upstream is a second in-process registry of
//! ours (for the real clients), or a static copy served by a server of the test's own that
//! counts requests and injects faults. No test reaches the internet.

mod common;

use std::time::Duration;

use common::static_upstream::{document, Fault, StaticUpstream};
use common::*;
use registry_core::accounts::tokens::TokenOptions;
use serde_json::{json, Value};

const ABBREVIATED: &str = "application/vnd.npm.install-v1+json";

fn get(url: &str) -> reqwest::blocking::Response {
    client().get(url).send().expect("GET")
}

fn get_abbreviated(url: &str) -> reqwest::blocking::Response {
    client()
        .get(url)
        .header("accept", ABBREVIATED)
        .send()
        .expect("GET")
}

fn cache_status(response: &reqwest::blocking::Response) -> String {
    response
        .headers()
        .get("x-registry-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string()
}

fn error_of(response: reqwest::blocking::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().expect("a JSON error body");
    assert_eq!(body["error"], body["reason"], "{body}");
    (
        status,
        body["error"].as_str().unwrap_or_default().to_string(),
    )
}

/// An upstream registry of ours with `up-lib@1.0.0` and `up-app@2.0.0` (which depends on
/// it), published with the real npm.
fn upstream_with_pair() -> TestRegistry {
    let upstream = TestRegistry::start();
    let npm = Npm::new(&upstream).with_token(&upstream.user_with_token("alice"));
    let lib = write_package(&npm.dir("lib"), "up-lib", "1.0.0", json!({}));
    npm.ok(&lib, &["publish"]);
    let app = write_package(
        &npm.dir("app"),
        "up-app",
        "2.0.0",
        json!({ "dependencies": { "up-lib": "^1.0.0" } }),
    );
    npm.ok(&app, &["publish"]);
    upstream
}

fn project(npm: &Npm, name: &str) -> std::path::PathBuf {
    let dir = npm.dir(name);
    std::fs::write(
        dir.join("package.json"),
        r#"{"name":"consumer","version":"1.0.0","private":true}"#,
    )
    .expect("package.json");
    dir
}

fn installed_version(project: &std::path::Path, name: &str) -> String {
    let manifest =
        std::fs::read_to_string(project.join("node_modules").join(name).join("package.json"))
            .expect("installed package.json");
    let doc: Value = serde_json::from_str(&manifest).expect("json");
    doc["version"].as_str().unwrap_or_default().to_string()
}

#[test]
fn npm_installs_public_packages_through_the_proxy_cold_warm_and_with_the_upstream_down() {
    let upstream = upstream_with_pair();
    let dir = tempfile::tempdir().expect("data dir");
    let start = |upstream_base: &str| {
        let data = dir.path().to_path_buf();
        let base = upstream_base.to_string();
        TestRegistry::start_with(move |c| {
            c.data_dir = data;
            proxy_to(c, &base, |_| {});
        })
    };
    let proxy = start(&upstream.base);

    // Cold: nothing cached; the documents and tarballs come through, URLs pointing here.
    let npm = Npm::new(&proxy);
    let cold = project(&npm, "cold");
    npm.ok(&cold, &["install", "up-app"]);
    assert_eq!(installed_version(&cold, "up-app"), "2.0.0");
    assert_eq!(installed_version(&cold, "up-lib"), "1.0.0");
    let lock = std::fs::read_to_string(cold.join("package-lock.json")).expect("lock");
    assert!(
        lock.contains(&format!("{}/up-lib/-/up-lib-1.0.0.tgz", proxy.base)),
        "tarballs resolve to the proxy:\n{lock}"
    );
    assert!(!lock.contains(&upstream.base), "{lock}");

    // Warm, with a fresh npm cache: served from the proxy's cache.
    let warm_npm = Npm::new(&proxy);
    let warm = project(&warm_npm, "warm");
    warm_npm.ok(&warm, &["install", "up-app"]);
    assert_eq!(installed_version(&warm, "up-lib"), "1.0.0");
    get_abbreviated(&proxy.url("/up-app"));
    assert_eq!(cache_status(&get_abbreviated(&proxy.url("/up-app"))), "hit");

    // The upstream goes away and the proxy restarts: what was cached still installs (the
    // cache is durable).
    let upstream_base = upstream.base.clone();
    upstream.stop();
    proxy.stop();
    let restarted = start(&upstream_base);
    let offline_npm = Npm::new(&restarted);
    let offline = project(&offline_npm, "offline");
    offline_npm.ok(&offline, &["install", "up-app"]);
    assert_eq!(installed_version(&offline, "up-lib"), "1.0.0");

    // Something never cached cannot come from a dead upstream: a 502 that names it, which
    // npm shows, never a 404.
    let response = get_abbreviated(&restarted.url("/never-fetched"));
    let (status, reason) = error_of(response);
    assert_eq!(status, 502, "{reason}");
    assert!(reason.contains("upstream upstream"), "{reason}");
    let failed = offline_npm.run(&offline, &["install", "never-fetched"]);
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("502"), "{stderr}");
}

#[test]
fn a_stale_copy_is_served_when_the_upstream_fails_and_a_new_version_is_seen_after_max_age() {
    let upstream = StaticUpstream::start();
    upstream.add_package("stale-pkg", &["1.0.0"]);
    // max_age 0: every read revalidates.
    let proxy = TestRegistry::start_with(|c| {
        proxy_to(c, &upstream.base, |u| {
            u.max_age = Duration::ZERO;
            u.max_fails = 100;
        })
    });
    let first = get_abbreviated(&proxy.url("/stale-pkg"));
    assert_eq!(first.status(), 200);
    assert_eq!(cache_status(&first), "miss");

    let again = get_abbreviated(&proxy.url("/stale-pkg"));
    assert_eq!(again.status(), 200);
    assert_eq!(cache_status(&again), "revalidated");
    assert_eq!(
        upstream.not_modified("/stale-pkg"),
        1,
        "the second read was a conditional request answered 304: {:?}",
        upstream.seen()
    );

    for fault in [Fault::Status(500), Fault::Drop, Fault::Status(503)] {
        upstream.set_fault(fault);
        let stale = get_abbreviated(&proxy.url("/stale-pkg"));
        assert_eq!(stale.status(), 200, "{fault:?}");
        assert_eq!(cache_status(&stale), "stale", "{fault:?}");
        let doc = document(&stale.text().expect("body"));
        assert_eq!(doc["dist-tags"]["latest"], "1.0.0");
    }
    upstream.set_fault(Fault::None);

    // A new version upstream shows at once here, since max_age is zero.
    upstream.add_package("stale-pkg", &["1.0.0", "1.1.0"]);
    let fresh = get_abbreviated(&proxy.url("/stale-pkg"));
    assert_eq!(cache_status(&fresh), "miss");
    let doc = document(&fresh.text().expect("body"));
    assert_eq!(doc["dist-tags"]["latest"], "1.1.0");
}

#[test]
fn within_max_age_the_upstream_is_not_asked_and_its_404_is_remembered() {
    let upstream = StaticUpstream::start();
    upstream.add_package("fresh-pkg", &["1.0.0"]);
    let proxy = TestRegistry::start_with(|c| proxy_to(c, &upstream.base, |_| {}));
    for _ in 0..3 {
        assert_eq!(get_abbreviated(&proxy.url("/fresh-pkg")).status(), 200);
    }
    assert_eq!(upstream.count("/fresh-pkg"), 1, "{:?}", upstream.seen());
    // A new version upstream is not seen within max_age (2 minutes by default).
    upstream.add_package("fresh-pkg", &["1.0.0", "2.0.0"]);
    let doc = document(
        &get_abbreviated(&proxy.url("/fresh-pkg"))
            .text()
            .expect("body"),
    );
    assert_eq!(doc["dist-tags"]["latest"], "1.0.0");

    for _ in 0..3 {
        let (status, reason) = error_of(get(&proxy.url("/no-such-pkg")));
        assert_eq!(status, 404, "{reason}");
    }
    assert_eq!(upstream.count("/no-such-pkg"), 1, "the 404 is remembered");
}

#[test]
fn a_tarball_that_does_not_match_its_integrity_is_refused_and_not_cached() {
    let upstream = StaticUpstream::start();
    upstream.add_package("bad-tgz", &["1.0.0"]);
    upstream.corrupt_tarball("bad-tgz", "1.0.0");
    let proxy = TestRegistry::start_with(|c| proxy_to(c, &upstream.base, |_| {}));
    for attempt in 1..=2 {
        let (status, reason) = error_of(get(&proxy.url("/bad-tgz/-/bad-tgz-1.0.0.tgz")));
        assert_eq!(status, 502, "{reason}");
        assert!(reason.contains("does not match"), "{reason}");
        assert_eq!(
            upstream.count("/bad-tgz/-/bad-tgz-1.0.0.tgz"),
            attempt,
            "nothing was cached, so each attempt asks again"
        );
    }
    let npm = Npm::new(&proxy);
    let dir = project(&npm, "corrupt");
    let failed = npm.run(&dir, &["install", "bad-tgz"]);
    assert!(!failed.status.success(), "npm refuses the install");

    // A good tarball is verified, stored and then served without the upstream.
    upstream.add_package("good-tgz", &["1.0.0"]);
    let bytes = get(&proxy.url("/good-tgz/-/good-tgz-1.0.0.tgz"))
        .bytes()
        .expect("tarball");
    assert_eq!(&bytes[..], &package_tarball("good-tgz", "1.0.0")[..]);
    upstream.set_fault(Fault::Status(500));
    let again = get(&proxy.url("/good-tgz/-/good-tgz-1.0.0.tgz"));
    assert_eq!(again.status(), 200);
    assert_eq!(&again.bytes().expect("bytes")[..], &bytes[..]);
    assert_eq!(upstream.count("/good-tgz/-/good-tgz-1.0.0.tgz"), 1);
}

#[test]
fn concurrent_misses_for_one_name_make_one_upstream_request() {
    let upstream = StaticUpstream::start();
    upstream.add_package("popular", &["1.0.0"]);
    upstream.set_fault(Fault::Delay(Duration::from_millis(300)));
    let proxy = TestRegistry::start_with(|c| proxy_to(c, &upstream.base, |_| {}));
    let url = proxy.url("/popular");
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || get_abbreviated(&url).status().as_u16())
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().expect("thread"), 200);
    }
    assert_eq!(upstream.count("/popular"), 1, "{:?}", upstream.seen());
}

#[test]
fn timeouts_are_504_and_the_breaker_stops_asking_a_failing_upstream() {
    let upstream = StaticUpstream::start();
    upstream.set_fault(Fault::Delay(Duration::from_millis(1500)));
    let proxy = TestRegistry::start_with(|c| {
        proxy_to(c, &upstream.base, |u| {
            u.timeout = Duration::from_millis(300);
            u.max_fails = 2;
            u.fail_timeout = Duration::from_secs(300);
        })
    });
    let (status, reason) = error_of(get(&proxy.url("/slow-a")));
    assert_eq!(status, 504, "{reason}");
    assert!(reason.contains("did not answer in time"), "{reason}");
    upstream.set_fault(Fault::Status(500));
    let (status, reason) = error_of(get(&proxy.url("/slow-b")));
    assert_eq!(status, 502, "{reason}");
    // Two consecutive failures: the upstream is skipped; requests fail at once, unasked.
    let before = upstream.seen().len();
    for name in ["/slow-c", "/slow-d", "/slow-e"] {
        let (status, reason) = error_of(get(&proxy.url(name)));
        assert_eq!(status, 502, "{reason}");
        assert!(reason.contains("skipped"), "{reason}");
    }
    assert_eq!(upstream.seen().len(), before, "nothing asked while skipped");
}

/// Waits (at most 10 s) until `done` holds.
fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_first_fetch_fetches_what_latest_depends_on_ahead_but_no_local_or_private_name() {
    let upstream = StaticUpstream::start();
    upstream.add_package_with(
        "pf-app",
        &["1.0.0", "2.0.0"],
        json!({"dependencies": {
            "pf-lib": "^1.0.0",
            "pf-alias": "npm:pf-real@^1.0.0",
            "@here/local": "^1.0.0",
            "@private/x": "^1.0.0",
        }}),
    );
    upstream.add_package_with(
        "pf-lib",
        &["1.0.0", "1.1.0", "2.0.0"],
        json!({"dependencies": {"pf-deep": "1"}}),
    );
    upstream.add_package("pf-deep", &["1.0.0"]);
    upstream.add_package("pf-real", &["1.0.0"]);
    upstream.add_package("@here/local", &["1.0.0"]);
    upstream.add_package("@private/x", &["1.0.0"]);
    let proxy = TestRegistry::start_with(|c| {
        proxy_to(c, &upstream.base, |_| {});
        c.private =
            vec![registry_core::upstream::config::NamePattern::parse("@private/*").expect("glob")];
    });
    let token = proxy.user_with_token("erin");
    assert_eq!(publish(&proxy, &token, "@here/local", "1.0.0"), 201);

    let app = get_abbreviated(&proxy.url("/pf-app"));
    assert_eq!(app.status(), 200);
    assert_eq!(cache_status(&app), "miss");
    let ahead = [
        "/pf-lib",
        "/pf-real",
        "/pf-deep",
        // The versions the ranges pick: ^1.0.0 of pf-lib is 1.1.0 (latest, 2.0.0, is not).
        "/pf-lib/-/pf-lib-1.1.0.tgz",
        "/pf-real/-/pf-real-1.0.0.tgz",
        "/pf-deep/-/pf-deep-1.0.0.tgz",
    ];
    eventually("documents two levels down, and their tarballs", || {
        ahead.iter().all(|path| upstream.count(path) == 1)
    });
    // The client's own requests for them find them cached.
    for name in ["pf-lib", "pf-real", "pf-deep"] {
        let response = get_abbreviated(&proxy.url(&format!("/{name}")));
        assert_eq!(response.status(), 200, "{name}");
        assert_eq!(cache_status(&response), "hit", "{name}");
    }
    let tarball = get(&proxy.url("/pf-lib/-/pf-lib-1.1.0.tgz"));
    assert_eq!(tarball.status(), 200);
    assert_eq!(
        &tarball.bytes().expect("tarball")[..],
        &package_tarball("pf-lib", "1.1.0")[..]
    );
    let seen = upstream.seen();
    assert!(
        seen.iter()
            .all(|r| ahead.contains(&r.path.as_str()) || r.path == "/pf-app"),
        "nothing else was asked (no local, private or alias name, no other tarball): {seen:?}"
    );
    assert_eq!(seen.len(), ahead.len() + 1, "each once: {seen:?}");
    let local = document(
        &get_abbreviated(&proxy.url("/@here%2flocal"))
            .text()
            .expect("body"),
    );
    assert!(
        local["versions"]["1.0.0"]["dist"]["tarball"]
            .as_str()
            .is_some_and(|url| url.starts_with(&proxy.url("/"))),
        "the local package is still the one published here: {local}"
    );

    // The full document without an installing npm command fetches nothing ahead.
    let before = upstream.seen().len();
    assert_eq!(get(&proxy.url("/pf-app")).status(), 200);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(upstream.seen().len(), before + 1, "{:?}", upstream.seen());
}

/// Serves `app@1.0.0`, which depends on `lib`, and `lib@1.0.0`.
fn add_app_and_lib(upstream: &StaticUpstream, app: &str, lib: &str) {
    let mut dependencies = serde_json::Map::new();
    dependencies.insert(lib.to_string(), json!("1"));
    upstream.add_package_with(app, &["1.0.0"], json!({ "dependencies": dependencies }));
    upstream.add_package(lib, &["1.0.0"]);
}

#[test]
fn npm_installs_read_full_documents_and_have_theirs_fetched_ahead_but_npm_view_does_not() {
    let upstream = StaticUpstream::start();
    add_app_and_lib(&upstream, "nv-app", "nv-lib");
    add_app_and_lib(&upstream, "ni-app", "ni-lib");
    let proxy = TestRegistry::start_with(|c| proxy_to(c, &upstream.base, |_| {}));
    let full = |name: &str, command: &str| {
        client()
            .get(proxy.url(&format!("/{name}")))
            .header("accept", "application/json")
            .header("npm-command", command)
            .send()
            .expect("GET")
    };
    assert_eq!(full("nv-app", "view").status(), 200);
    assert_eq!(full("ni-app", "install").status(), 200);
    eventually("ni-lib's full document", || upstream.count("/ni-lib") == 1);
    assert_eq!(cache_status(&full("ni-lib", "install")), "hit");
    assert_eq!(upstream.count("/nv-lib"), 0, "{:?}", upstream.seen());
    assert_eq!(
        cache_status(&get_abbreviated(&proxy.url("/ni-lib"))),
        "miss",
        "the abbreviated flavour is another document, not fetched ahead"
    );
}

#[test]
fn with_prefetch_off_only_what_is_asked_is_fetched() {
    let upstream = StaticUpstream::start();
    add_app_and_lib(&upstream, "po-app", "po-lib");
    let proxy = TestRegistry::start_with(|c| proxy_to(c, &upstream.base, |u| u.prefetch = false));
    assert_eq!(get_abbreviated(&proxy.url("/po-app")).status(), 200);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(upstream.count("/po-lib"), 0, "{:?}", upstream.seen());
    let lib = get_abbreviated(&proxy.url("/po-lib"));
    assert_eq!(cache_status(&lib), "miss");
}

#[test]
fn private_names_are_never_looked_up_upstream() {
    let upstream = StaticUpstream::start();
    upstream.add_package("@acme/secret", &["1.0.0"]);
    upstream.add_package("internal-tool", &["1.0.0"]);
    let proxy = TestRegistry::start_with(|c| {
        proxy_to(c, &upstream.base, |_| {});
        c.private = vec![
            registry_core::upstream::config::NamePattern::parse("@acme/*").expect("glob"),
            registry_core::upstream::config::NamePattern::parse("internal-tool").expect("glob"),
        ];
    });
    for path in [
        "/@acme%2fsecret",
        "/internal-tool",
        "/internal-tool/-/internal-tool-1.0.0.tgz",
    ] {
        let (status, _) = error_of(get(&proxy.url(path)));
        assert_eq!(status, 404, "{path}");
    }
    assert!(upstream.seen().is_empty(), "{:?}", upstream.seen());
    // A private unscoped name may be published even though the upstream has it.
    let token = proxy.user_with_token("carol");
    assert_eq!(publish(&proxy, &token, "internal-tool", "1.0.0"), 201);
}

#[test]
fn names_published_here_stay_local_and_public_names_cannot_be_taken() {
    let upstream = StaticUpstream::start();
    upstream.add_package("left-pad", &["1.0.0"]);
    upstream.add_package("@scope/shared", &["9.0.0"]);
    let proxy = TestRegistry::start_with(|c| proxy_to(c, &upstream.base, |_| {}));
    let token = proxy.user_with_token("dave");

    // The dependency-confusion guard: an unscoped name the upstream has is refused.
    let response = client()
        .put(proxy.url("/left-pad"))
        .bearer_auth(&token)
        .json(&publish_body(
            "left-pad",
            "1.0.0",
            &package_tarball("left-pad", "1.0.0"),
        ))
        .send()
        .expect("publish");
    let (status, reason) = error_of(response);
    assert_eq!(status, 403, "{reason}");
    assert!(
        reason.contains("exists on upstream upstream") && reason.contains("private scope"),
        "{reason}"
    );
    // npm shows that sentence.
    let npm = Npm::new(&proxy).with_token(&token);
    let source = write_package(&npm.dir("left-pad"), "left-pad", "1.0.1", json!({}));
    let refused = npm.run(&source, &["publish"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("exists on upstream"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // A new name the upstream does not have is ours; from then on it is local only.
    assert_eq!(publish(&proxy, &token, "only-here", "1.0.0"), 201);
    upstream.add_package("only-here", &["5.0.0"]);
    let doc: Value = get(&proxy.url("/only-here")).json().expect("doc");
    assert_eq!(doc["dist-tags"]["latest"], "1.0.0");
    assert!(doc["versions"].get("5.0.0").is_none(), "never mixed in");

    // A scoped name is not guarded: publishing it makes it local.
    assert_eq!(publish(&proxy, &token, "@scope/shared", "1.0.0"), 201);
    let doc: Value = get(&proxy.url("/@scope%2fshared")).json().expect("doc");
    assert_eq!(doc["dist-tags"]["latest"], "1.0.0");

    // Upstream down: a new unscoped name cannot be checked, so it is not published (503).
    upstream.set_fault(Fault::Status(500));
    let response = client()
        .put(proxy.url("/unknown-yet"))
        .bearer_auth(&token)
        .json(&publish_body(
            "unknown-yet",
            "1.0.0",
            &package_tarball("unknown-yet", "1.0.0"),
        ))
        .send()
        .expect("publish");
    let (status, reason) = error_of(response);
    assert_eq!(status, 503, "{reason}");
    assert!(reason.contains("nothing was published"), "{reason}");
}

#[test]
fn writes_to_proxied_packages_are_read_only_and_blocks_apply_to_them() {
    let upstream = StaticUpstream::start();
    upstream.add_package("proxied", &["1.0.0"]);
    let proxy = TestRegistry::start_with(|c| proxy_to(c, &upstream.base, |_| {}));
    proxy.add_user_with("admin", "admin-password", true);
    let token = proxy.token("admin", TokenOptions::default());
    assert_eq!(get(&proxy.url("/proxied")).status(), 200);

    let tag = client()
        .put(proxy.url("/-/package/proxied/dist-tags/beta"))
        .bearer_auth(&token)
        .json(&json!("1.0.0"))
        .send()
        .expect("dist-tag");
    let (status, reason) = error_of(tag);
    assert_eq!(status, 403, "{reason}");
    assert!(reason.contains("read-only: proxied is proxied from upstream upstream"));

    let npm = Npm::new(&proxy).with_token(&token);
    let dir = npm.dir("any");
    let listed = npm.ok(&dir, &["dist-tag", "ls", "proxied"]);
    assert!(listed.contains("latest: 1.0.0"), "{listed}");
    let deprecate = npm.run(&dir, &["deprecate", "proxied@1.0.0", "old"]);
    assert!(!deprecate.status.success());
    assert!(
        String::from_utf8_lossy(&deprecate.stderr).contains("read-only"),
        "{}",
        String::from_utf8_lossy(&deprecate.stderr)
    );
    let unpublish = client()
        .delete(proxy.url("/proxied/-rev/1-abc"))
        .bearer_auth(&token)
        .send()
        .expect("unpublish");
    assert_eq!(error_of(unpublish).0, 403);

    // A block wins over the upstream, for documents and tarballs alike.
    let block = client()
        .put(proxy.url("/-/package/proxied/blocks"))
        .bearer_auth(&token)
        .json(&json!({ "reason": "malware" }))
        .send()
        .expect("block");
    assert!(block.status().is_success(), "{:?}", block.text());
    assert_eq!(get(&proxy.url("/proxied")).status(), 451);
    assert_eq!(
        get(&proxy.url("/proxied/-/proxied-1.0.0.tgz")).status(),
        451
    );
}

#[test]
fn proxied_tarball_downloads_are_counted() {
    let upstream = StaticUpstream::start();
    upstream.add_package("counted", &["1.0.0"]);
    let proxy = TestRegistry::start_with(|c| {
        proxy_to(c, &upstream.base, |_| {});
        c.download_flush_secs = 1;
    });
    for _ in 0..3 {
        assert_eq!(
            get(&proxy.url("/counted/-/counted-1.0.0.tgz")).status(),
            200
        );
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let point: Value = get(&proxy.url("/downloads/point/last-day/counted"))
            .json()
            .expect("json");
        if point["downloads"] == 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "downloads not counted: {point}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
