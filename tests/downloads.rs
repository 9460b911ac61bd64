//! Download counts: real tarball GETs (and a real `npm install`) are counted per version and
//! UTC day, HEAD/304/404 are not, counts reach the database in one transaction per flush and
//! survive a graceful restart, and the point/range/top endpoints answer npm's shapes.
//!
//! Counts are flushed at graceful shutdown, so most tests download, `stop()` the daemon and
//! read the counts back — from the core or from a daemon restarted on the same data — instead
//! of sleeping until the periodic flush.

mod common;

use std::path::Path;

use common::*;
use registry_core::packages::downloads::{self, format_day, DownloadCounter};
use registry_core::packages::names::PackageName;
use registry_core::Registry;
use serde_json::{json, Value};
use time::{Date, Duration};

fn name(text: &str) -> PackageName {
    PackageName::parse(text).expect("valid name")
}

fn get_status(reg: &TestRegistry, path: &str) -> u16 {
    client()
        .get(reg.url(path))
        .send()
        .map(|r| {
            let status = r.status().as_u16();
            let _ = r.bytes();
            status
        })
        .expect("GET")
}

fn get_json(reg: &TestRegistry, path: &str) -> (u16, Value) {
    let response = client().get(reg.url(path)).send().expect("GET");
    let status = response.status().as_u16();
    (status, response.json().expect("a JSON body"))
}

/// Today's downloads of `package` per version, read from the core.
fn today_by_version(registry: &Registry, package: &str) -> Vec<(String, u64)> {
    let today = downloads::today();
    downloads::totals_by_version(&registry.store, &name(package), today, today, None)
        .expect("totals by version")
}

/// A registry on `dir` with alice, who published `packages` (name, version).
fn started_with_packages(dir: &Path, packages: &[(&str, &str)]) -> TestRegistry {
    let reg = TestRegistry::start_on(dir);
    let token = reg.user_with_token("alice");
    for (package, version) in packages {
        assert_eq!(publish(&reg, &token, package, version), 201);
    }
    reg
}

#[test]
fn tarball_gets_are_counted_per_version_and_head_304_and_404_are_not() {
    let dir = tempfile::tempdir().expect("temp dir");
    let reg = started_with_packages(dir.path(), &[("hello", "1.0.0"), ("hello", "1.1.0")]);
    for _ in 0..3 {
        assert_eq!(get_status(&reg, "/hello/-/hello-1.0.0.tgz"), 200);
    }
    for _ in 0..2 {
        assert_eq!(get_status(&reg, "/hello/-/hello-1.1.0.tgz"), 200);
    }
    // Not downloads: a HEAD, a revalidation answered 304, a version that does not exist.
    let head = client()
        .head(reg.url("/hello/-/hello-1.0.0.tgz"))
        .send()
        .expect("HEAD");
    assert_eq!(head.status().as_u16(), 200);
    let etag = head
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .expect("an ETag")
        .to_string();
    let revalidated = client()
        .get(reg.url("/hello/-/hello-1.0.0.tgz"))
        .header("if-none-match", &etag)
        .send()
        .expect("conditional GET");
    assert_eq!(revalidated.status().as_u16(), 304);
    assert_eq!(get_status(&reg, "/hello/-/hello-9.9.9.tgz"), 404);
    assert_eq!(get_status(&reg, "/nope/-/nope-1.0.0.tgz"), 404);

    let registry = reg.registry.clone();
    reg.stop();
    assert_eq!(
        today_by_version(&registry, "hello"),
        [("1.0.0".to_string(), 3), ("1.1.0".to_string(), 2)]
    );
}

#[test]
fn scoped_tarballs_are_counted_under_the_scoped_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let reg = started_with_packages(dir.path(), &[("@acme/widget", "2.0.0")]);
    assert_eq!(get_status(&reg, "/@acme/widget/-/widget-2.0.0.tgz"), 200);
    assert_eq!(get_status(&reg, "/@acme%2fwidget/-/widget-2.0.0.tgz"), 200);
    let registry = reg.registry.clone();
    reg.stop();
    assert_eq!(
        today_by_version(&registry, "@acme/widget"),
        [("2.0.0".to_string(), 2)]
    );
}

#[test]
fn a_real_npm_install_counts_one_download_of_the_installed_version() {
    let dir = tempfile::tempdir().expect("temp dir");
    let reg = started_with_packages(dir.path(), &[("leftpad", "1.0.0"), ("leftpad", "1.2.0")]);
    let npm = Npm::new(&reg);
    let project = npm.dir("project");
    std::fs::write(
        project.join("package.json"),
        json!({ "name": "project", "version": "1.0.0", "private": true }).to_string(),
    )
    .expect("package.json");
    npm.ok(&project, &["install", "leftpad@1.0.0"]);
    assert!(project.join("node_modules/leftpad/package.json").exists());

    let registry = reg.registry.clone();
    reg.stop();
    assert_eq!(
        today_by_version(&registry, "leftpad"),
        [("1.0.0".to_string(), 1)]
    );
}

#[test]
fn counts_survive_a_graceful_restart_and_add_up() {
    let dir = tempfile::tempdir().expect("temp dir");
    let reg = started_with_packages(dir.path(), &[("hello", "1.0.0")]);
    assert_eq!(get_status(&reg, "/hello/-/hello-1.0.0.tgz"), 200);
    assert_eq!(get_status(&reg, "/hello/-/hello-1.0.0.tgz"), 200);
    reg.stop();

    let reg = TestRegistry::start_on(dir.path());
    assert_eq!(get_status(&reg, "/hello/-/hello-1.0.0.tgz"), 200);
    reg.stop();

    let reg = TestRegistry::start_on(dir.path());
    let (status, body) = get_json(&reg, "/downloads/point/last-day/hello");
    assert_eq!(status, 200);
    let today = format_day(downloads::today());
    assert_eq!(
        body,
        json!({ "downloads": 3, "start": today, "end": today, "package": "hello" })
    );
}

#[test]
fn the_periodic_flush_writes_counts_while_the_daemon_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let reg = TestRegistry::start_with(|config| {
        config.data_dir = dir.path().to_path_buf();
        config.download_flush_secs = 1;
    });
    let token = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &token, "hello", "1.0.0"), 201);
    assert_eq!(get_status(&reg, "/hello/-/hello-1.0.0.tgz"), 200);
    // The one place this file waits: the point of the test is the timer. It polls (a flush is
    // due within a second) with a generous deadline for a loaded machine.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, body) = get_json(&reg, "/downloads/point/last-day/hello");
        if body["downloads"] == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the download was not flushed while running: {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn downloads_are_not_counted_when_counting_is_off() {
    let dir = tempfile::tempdir().expect("temp dir");
    let reg = TestRegistry::start_with(|config| {
        config.data_dir = dir.path().to_path_buf();
        config.count_downloads = false;
    });
    let token = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &token, "hello", "1.0.0"), 201);
    assert_eq!(get_status(&reg, "/hello/-/hello-1.0.0.tgz"), 200);
    let registry = reg.registry.clone();
    reg.stop();
    assert!(today_by_version(&registry, "hello").is_empty());
}

#[test]
fn ten_thousand_downloads_are_written_in_one_transaction() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &token, "hello", "1.0.0"), 201);
    assert_eq!(publish(&reg, &token, "hello", "2.0.0"), 201);
    let store = &reg.registry.store;
    let counter = DownloadCounter::default();
    let hello = name("hello");
    for i in 0..10_000 {
        counter.record(&hello, if i % 4 == 0 { "1.0.0" } else { "2.0.0" });
    }
    assert_eq!(counter.pending(), 10_000);
    let report = counter.flush(store).expect("flush");
    assert_eq!(counter.transactions(), 1, "one flush, one transaction");
    assert_eq!(report.rows, 2, "one row per (package, version, day)");
    assert_eq!(report.downloads, 10_000);
    assert_eq!(counter.pending(), 0);
    // An empty flush writes nothing at all.
    assert_eq!(counter.flush(store).expect("flush").rows, 0);
    assert_eq!(counter.transactions(), 1);

    let today = downloads::today();
    assert_eq!(
        downloads::totals_by_version(store, &hello, today, today, None).expect("totals"),
        [("2.0.0".to_string(), 7_500), ("1.0.0".to_string(), 2_500)]
    );
    // A second batch adds to the same rows.
    counter.record(&hello, "1.0.0");
    assert_eq!(counter.flush(store).expect("flush").rows, 1);
    assert_eq!(
        downloads::point(store, &[hello], today, today, None).expect("point"),
        [("hello".to_string(), 10_001)]
    );
}

/// Counts on chosen past days, written straight through the core (as a flush would).
fn seed(registry: &Registry, entries: &[(&str, &str, Date, u64)]) {
    let counter = DownloadCounter::default();
    for (package, version, day, count) in entries {
        counter.record_on(&name(package), version, *day, *count);
    }
    counter.flush(&registry.store).expect("flush");
}

#[test]
fn range_lists_every_day_with_zeros_and_per_version_series() {
    let dir = tempfile::tempdir().expect("temp dir");
    let reg = started_with_packages(
        dir.path(),
        &[
            ("hello", "1.0.0"),
            ("hello", "1.1.0"),
            ("@acme/widget", "1.0.0"),
        ],
    );
    let today = downloads::today();
    let d = |back: i64| today - Duration::days(back);
    seed(
        &reg.registry,
        &[
            ("hello", "1.0.0", d(3), 4),
            ("hello", "1.1.0", d(3), 1),
            ("hello", "1.1.0", d(1), 6),
            ("@acme/widget", "1.0.0", d(2), 9),
        ],
    );
    let period = format!("{}:{}", format_day(d(4)), format_day(d(1)));
    let (status, body) = get_json(&reg, &format!("/downloads/range/{period}/hello"));
    assert_eq!(status, 200, "{body}");
    let day = |back: i64, n: u64| json!({ "day": format_day(d(back)), "downloads": n });
    assert_eq!(
        body,
        json!({
            "downloads": [day(4, 0), day(3, 5), day(2, 0), day(1, 6)],
            "start": format_day(d(4)),
            "end": format_day(d(1)),
            "package": "hello",
            "versions": {
                "1.0.0": [day(4, 0), day(3, 4), day(2, 0), day(1, 0)],
                "1.1.0": [day(4, 0), day(3, 1), day(2, 0), day(1, 6)],
            }
        })
    );

    // Scoped names in both spellings; the colon may be percent-encoded.
    let encoded = period.replace(':', "%3A");
    for path in [
        format!("/downloads/range/{period}/@acme/widget"),
        format!("/downloads/range/{encoded}/@acme%2fwidget"),
    ] {
        let (status, body) = get_json(&reg, &path);
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["package"], "@acme/widget");
        assert_eq!(body["downloads"][2], day(2, 9), "{path}");
        assert_eq!(body["versions"]["1.0.0"][2], day(2, 9), "{path}");
    }

    // The core report the CLI draws its chart from has the same days.
    let report =
        downloads::range(&reg.registry.store, &name("hello"), d(4), d(1), None).expect("range");
    let counts: Vec<u64> = report.days.iter().map(|(_, n)| *n).collect();
    assert_eq!(counts, [0, 5, 0, 6]);
    assert_eq!(report.days[0].0, d(4));
}

#[test]
fn point_answers_one_package_several_packages_and_the_registry_total() {
    let dir = tempfile::tempdir().expect("temp dir");
    let reg = started_with_packages(
        dir.path(),
        &[
            ("hello", "1.0.0"),
            ("world", "1.0.0"),
            ("@acme/widget", "1.0.0"),
        ],
    );
    let today = downloads::today();
    let d = |back: i64| today - Duration::days(back);
    seed(
        &reg.registry,
        &[
            ("hello", "1.0.0", d(0), 2),
            ("hello", "1.0.0", d(10), 5),
            ("world", "1.0.0", d(1), 3),
            ("@acme/widget", "1.0.0", d(40), 7),
        ],
    );
    let (today_s, week_start) = (format_day(today), format_day(d(6)));

    let (status, body) = get_json(&reg, "/downloads/point/last-week/hello");
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({ "downloads": 2, "start": week_start, "end": today_s, "package": "hello" })
    );
    let (_, body) = get_json(&reg, "/downloads/point/last-month/hello");
    assert_eq!(body["downloads"], 7);
    assert_eq!(body["start"], format_day(d(29)));

    // Without a package: every package of the registry (npm leaves out the `package` key).
    let (_, body) = get_json(&reg, "/downloads/point/last-year");
    assert_eq!(
        body,
        json!({ "downloads": 17, "start": format_day(d(364)), "end": today_s })
    );

    // Several unscoped packages: an object keyed by name, as npm's bulk queries answer.
    let (status, body) = get_json(&reg, "/downloads/point/last-week/hello,world");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "hello": { "downloads": 2, "start": week_start, "end": today_s, "package": "hello" },
            "world": { "downloads": 3, "start": week_start, "end": today_s, "package": "world" },
        })
    );

    let (_, body) = get_json(&reg, "/downloads/point/last-month/@acme/widget");
    assert_eq!(body["downloads"], 0);
    let one_day = format_day(d(40));
    let (_, body) = get_json(&reg, &format!("/downloads/point/{one_day}/@acme%2fwidget"));
    assert_eq!(
        body,
        json!({ "downloads": 7, "start": one_day, "end": one_day, "package": "@acme/widget" })
    );
}

#[test]
fn top_lists_the_most_downloaded_packages_first() {
    let dir = tempfile::tempdir().expect("temp dir");
    let reg = started_with_packages(
        dir.path(),
        &[("hello", "1.0.0"), ("world", "1.0.0"), ("quiet", "1.0.0")],
    );
    let today = downloads::today();
    seed(
        &reg.registry,
        &[
            ("hello", "1.0.0", today, 2),
            ("world", "1.0.0", today, 5),
            ("quiet", "1.0.0", today - Duration::days(100), 50),
        ],
    );
    let (status, body) = get_json(&reg, "/-/downloads/top/last-week?limit=5");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "start": format_day(today - Duration::days(6)),
            "end": format_day(today),
            "packages": [
                { "package": "world", "downloads": 5 },
                { "package": "hello", "downloads": 2 },
            ]
        })
    );
    let (_, body) = get_json(&reg, "/-/downloads/top/last-year?limit=1");
    assert_eq!(
        body["packages"],
        json!([{ "package": "quiet", "downloads": 50 }])
    );
}

#[test]
fn bad_periods_and_limits_are_400_and_unknown_packages_404() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &token, "hello", "1.0.0"), 201);

    let expect = |path: &str, status: u16, error: &str| {
        let (got, body) = get_json(&reg, path);
        assert_eq!(got, status, "{path}: {body}");
        assert_eq!(body, json!({ "error": error, "reason": error }), "{path}");
    };
    expect(
        "/downloads/point/last-fortnight/hello",
        400,
        "invalid period \"last-fortnight\": use last-day, last-week, last-month, last-year, \
         YYYY-MM-DD or YYYY-MM-DD:YYYY-MM-DD",
    );
    expect(
        "/downloads/range/2024-05-02:2024-05-01/hello",
        400,
        "invalid period \"2024-05-02:2024-05-01\": the range ends before it starts",
    );
    expect(
        "/downloads/range/2020-01-01:2024-01-01/hello",
        400,
        "invalid period \"2020-01-01:2024-01-01\": a range may cover at most 18 months \
         (549 days)",
    );
    expect(
        "/downloads/point/2024-02-30/hello",
        400,
        "invalid period \"2024-02-30\": \"2024-02-30\" is not a date of the form YYYY-MM-DD",
    );
    expect(
        "/-/downloads/top/last-week?limit=0",
        400,
        "limit must be a number from 1 to 1000, not \"0\"",
    );
    expect(
        "/downloads/range/last-week/hello,world",
        400,
        "a range query takes one package, not a comma-separated list",
    );
    expect(
        "/downloads/point/last-week/nope",
        404,
        "package nope not found",
    );
    expect(
        "/downloads/range/last-week/@acme/nope",
        404,
        "package @acme/nope not found",
    );
    expect(
        "/downloads/point/last-week/hello,nope",
        404,
        "package nope not found",
    );
}
