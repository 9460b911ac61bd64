//! Operations: `/-/metrics` (its counters after real requests, its histogram's consistency,
//! who may read it, the `metrics_listen` address), `/-/healthz` and `/-/readyz`, and the JSON
//! log lines.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Barrier, Mutex, OnceLock};

use common::*;
use registry_core::config::LogFormat;
use serde_json::Value;

/// Every sample of a scrape, by its series (`name{labels}`), with the page's HELP/TYPE lines
/// checked to come before their samples.
fn parse(page: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    let mut typed = Vec::new();
    for line in page.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            typed.push(rest.split(' ').next().unwrap_or_default().to_string());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("a sample line");
        let name = series.split('{').next().unwrap_or_default();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|base| typed.iter().any(|t| t == base))
            .unwrap_or(name);
        assert!(
            typed.iter().any(|t| t == family),
            "{name} has no TYPE line before it"
        );
        let value: f64 = value.parse().expect("a numeric value");
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "{series} twice"
        );
    }
    samples
}

fn scrape(reg: &TestRegistry, token: &str) -> BTreeMap<String, f64> {
    let response = client()
        .get(reg.url("/-/metrics"))
        .bearer_auth(token)
        .send()
        .expect("scrape");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    parse(&response.text().expect("page"))
}

fn value(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

fn requests(route: &str, class: &str) -> String {
    format!("registry_http_requests_total{{route=\"{route}\",status=\"{class}\"}}")
}

fn admin(reg: &TestRegistry) -> String {
    reg.add_user_with("root", "root-password", true);
    reg.token("root", Default::default())
}

#[test]
fn counters_move_after_real_requests_with_their_route_and_status_class() {
    let reg = TestRegistry::start();
    let admin = admin(&reg);
    let alice = reg.user_with_token("alice");
    let before = scrape(&reg, &admin);

    assert_eq!(publish(&reg, &alice, "hello", "1.0.0"), 201);
    let http = client();
    let get = |path: &str| http.get(reg.url(path)).send().expect("GET").status();
    assert_eq!(get("/hello"), 200);
    assert_eq!(get("/hello"), 200);
    let tarball = http
        .get(reg.url("/hello/-/hello-1.0.0.tgz"))
        .send()
        .expect("tarball");
    assert_eq!(tarball.status(), 200);
    let tarball_len = tarball.bytes().expect("tarball bytes").len() as f64;
    assert_eq!(get("/no-such-package"), 404);

    let after = scrape(&reg, &admin);
    let delta = |series: &str| value(&after, series) - value(&before, series);
    assert_eq!(delta(&requests("publish", "2xx")), 1.0);
    assert_eq!(delta(&requests("packument", "2xx")), 2.0);
    assert_eq!(delta(&requests("tarball", "2xx")), 1.0);
    assert_eq!(delta(&requests("packument", "4xx")), 1.0);
    // The first scrape is counted once answered, so the second sees it.
    assert_eq!(delta(&requests("ops", "2xx")), 1.0);
    assert_eq!(delta("registry_publishes_total"), 1.0);
    assert_eq!(delta("registry_downloads_total"), 1.0);
    // The first read renders the document, the second is served from the byte cache.
    assert_eq!(
        delta("registry_packument_cache_total{result=\"miss\"}"),
        1.0
    );
    assert_eq!(delta("registry_packument_cache_total{result=\"hit\"}"), 1.0);
    assert_eq!(delta("registry_blob_written_bytes_total"), tarball_len);
    assert_eq!(delta("registry_blob_read_bytes_total"), tarball_len);

    // The histogram: per series, buckets cumulative, `+Inf` the count, the count the total.
    let mut series_seen = 0;
    for (series, count) in after
        .iter()
        .filter(|(s, _)| s.starts_with("registry_http_request_duration_seconds_count{"))
    {
        series_seen += 1;
        let labels = series.trim_start_matches("registry_http_request_duration_seconds_count");
        let inner = labels.trim_start_matches('{').trim_end_matches('}');
        let buckets: Vec<(f64, f64)> = after
            .iter()
            .filter_map(|(s, v)| {
                let rest = s.strip_prefix("registry_http_request_duration_seconds_bucket{")?;
                let le = rest.strip_prefix(inner)?.strip_prefix(",le=\"")?;
                let le = le.strip_suffix("\"}")?;
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                Some((bound, *v))
            })
            .collect();
        let mut buckets = buckets;
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(buckets.len() > 2, "{series}: {buckets:?}");
        assert!(
            buckets.windows(2).all(|w| w[0].1 <= w[1].1),
            "{series}: not cumulative: {buckets:?}"
        );
        assert_eq!(buckets.last().map(|b| b.0), Some(f64::INFINITY));
        assert_eq!(buckets.last().map(|b| b.1), Some(*count), "{series}");
        assert_eq!(
            value(&after, &format!("registry_http_requests_total{labels}")),
            *count
        );
        let sum = value(
            &after,
            &format!("registry_http_request_duration_seconds_sum{labels}"),
        );
        assert!(sum > 0.0, "{series}: sum {sum}");
    }
    assert!(series_seen >= 4, "{series_seen} duration series");
}

#[test]
fn metrics_are_for_administrators_only() {
    let reg = TestRegistry::start();
    let admin = admin(&reg);
    let bob = reg.user_with_token("bob");
    let http = client();

    let anonymous = http.get(reg.url("/-/metrics")).send().expect("anonymous");
    assert_eq!(anonymous.status(), 401);
    let body: Value = anonymous.json().expect("json");
    assert!(
        body["error"].is_string() && body["reason"].is_string(),
        "{body}"
    );

    let not_admin = http
        .get(reg.url("/-/metrics"))
        .bearer_auth(&bob)
        .send()
        .expect("bob");
    assert_eq!(not_admin.status(), 403);
    let body: Value = not_admin.json().expect("json");
    assert!(
        body["error"].is_string() && body["reason"].is_string(),
        "{body}"
    );

    let page = scrape(&reg, &admin);
    assert!(page.contains_key("registry_publishes_total"));
    assert!(page.contains_key("registry_db_pool_waits_total"));
}

#[test]
fn the_metrics_address_serves_the_page_without_auth_and_nothing_else() {
    let reg = TestRegistry::start_with(|config| {
        config.metrics_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    });
    let base = reg.metrics_base.clone().expect("a metrics address");
    let http = client();

    let page = http
        .get(format!("{base}/-/metrics"))
        .send()
        .expect("scrape");
    assert_eq!(page.status(), 200);
    let samples = parse(&page.text().expect("page"));
    assert!(samples.contains_key("registry_downloads_total"));

    for path in ["/", "/-/healthz", "/hello", "/-/metrics/x"] {
        let other = http.get(format!("{base}{path}")).send().expect("other");
        assert_eq!(other.status(), 404, "{path}");
        let body: Value = other.json().expect("json");
        assert_eq!(body["error"], "this address serves only GET /-/metrics");
        assert_eq!(body["reason"], body["error"]);
    }
    // The main address still wants an administrator.
    let main = http.get(reg.url("/-/metrics")).send().expect("main");
    assert_eq!(main.status(), 401);
}

#[test]
fn healthz_answers_and_readyz_names_an_unwritable_blob_store() {
    let reg = TestRegistry::start();
    let http = client();
    let get = |path: &str| -> (u16, Value) {
        let response = http.get(reg.url(path)).send().expect("GET");
        let status = response.status().as_u16();
        (status, response.json().expect("json"))
    };
    assert_eq!(
        get("/-/healthz"),
        (200, serde_json::json!({"status": "ok"}))
    );
    assert_eq!(get("/-/readyz"), (200, serde_json::json!({"status": "ok"})));

    // A file where the blob store's temporary directory was: no write there succeeds, not
    // even as root (a chmod would not stop root).
    let tmp = reg.registry.config.blobs_dir().join("tmp");
    std::fs::remove_dir_all(&tmp).expect("remove tmp");
    std::fs::write(&tmp, b"not a directory").expect("file in its place");
    let (status, body) = get("/-/readyz");
    assert_eq!(status, 503, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains("the blob store cannot write in"), "{body}");
    assert_eq!(body["reason"], body["error"]);
    // The process itself still answers.
    assert_eq!(get("/-/healthz").0, 200);

    std::fs::remove_file(&tmp).expect("remove the file");
    std::fs::create_dir(&tmp).expect("tmp again");
    assert_eq!(get("/-/readyz").0, 200);
}

#[test]
fn readyz_fails_while_no_database_connection_can_be_had_and_its_wait_is_counted() {
    let reg = TestRegistry::start();
    let admin = admin(&reg);
    let alice = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &alice, "held", "1.0.0"), 201);
    let before = scrape(&reg, &admin);

    // Every pooled reader taken (the pool holds 8), until released.
    const READERS: usize = 8;
    let taken = Arc::new(Barrier::new(READERS + 1));
    let release = Arc::new(Barrier::new(READERS + 1));
    let holders: Vec<_> = (0..READERS)
        .map(|_| {
            let (registry, taken, release) = (reg.registry.clone(), taken.clone(), release.clone());
            std::thread::spawn(move || {
                registry.store.read(|_db| {
                    taken.wait();
                    release.wait();
                    Ok(())
                })
            })
        })
        .collect();
    taken.wait();

    let response = client().get(reg.url("/-/readyz")).send().expect("readyz");
    assert_eq!(response.status(), 503);
    let body: Value = response.json().expect("json");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains("no database connection within"), "{body}");
    release.wait();
    for holder in holders {
        holder.join().expect("holder").expect("read");
    }
    assert_eq!(
        client().get(reg.url("/held")).send().expect("GET").status(),
        200
    );

    assert_eq!(
        client()
            .get(reg.url("/-/readyz"))
            .send()
            .expect("readyz")
            .status(),
        200
    );
    let after = scrape(&reg, &admin);
    let waits = value(&after, "registry_db_pool_waits_total")
        - value(&before, "registry_db_pool_waits_total");
    assert!(waits >= 1.0, "{waits} waits");
    // The readiness check waited its whole second for a connection.
    let waited = value(&after, "registry_db_pool_wait_seconds_total")
        - value(&before, "registry_db_pool_wait_seconds_total");
    assert!(waited >= 0.9, "{waited}s waited");
}

/// The log of this test binary: the daemon's JSON subscriber writing into memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut buffer) = self.0.lock() {
            buffer.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn json_log() -> &'static Captured {
    static LOG: OnceLock<Captured> = OnceLock::new();
    LOG.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = registry_daemon::subscriber(
            LogFormat::Json,
            tracing_subscriber::EnvFilter::new("info"),
            move || writer.clone(),
            false,
        );
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        captured
    })
}

#[test]
fn json_logs_are_one_object_a_line_with_the_request_fields() {
    let log = json_log();
    let reg = TestRegistry::start_with(|config| config.log_format = LogFormat::Json);
    let response = client()
        .get(reg.url("/json-log-probe"))
        .header("user-agent", "npm/11.0.0 ops-test")
        .send()
        .expect("GET");
    assert_eq!(response.status(), 404);
    let body_len = response.bytes().expect("body").len() as u64;
    reg.stop();

    let text = String::from_utf8(log.0.lock().expect("log").clone()).expect("utf-8");
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    for line in &lines {
        assert!(line["timestamp"].is_string(), "{line}");
        assert!(line["level"].is_string(), "{line}");
        assert!(line["message"].is_string(), "{line}");
    }
    let request = lines
        .iter()
        .find(|line| line["path"] == "/json-log-probe")
        .unwrap_or_else(|| panic!("no request line in {text}"));
    assert_eq!(request["method"], "GET");
    assert_eq!(request["status"], 404);
    assert!(request["duration_ms"].as_f64().is_some_and(|ms| ms >= 0.0));
    assert_eq!(request["bytes"], body_len);
    assert_eq!(request["user_agent"], "npm/11.0.0 ops-test");
    assert!(request["peer"]
        .as_str()
        .is_some_and(|peer| peer.starts_with("127.0.0.1:")));
    assert_eq!(request["level"], "INFO");
    assert!(request["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("GET /json-log-probe 404 ")));
    // Events other than requests are objects too, with their message.
    assert!(
        lines.iter().any(|line| line["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("registry listening on http://"))),
        "{text}"
    );
}

#[test]
fn upstream_requests_and_failures_are_counted_per_upstream() {
    use common::fake_http::{Canned, FakeHttp};
    // Knows no package, and fails on one name.
    let upstream = FakeHttp::start(|request| {
        if request.path.contains("broken") {
            Canned::new(500, "text/plain", "down")
        } else {
            Canned::not_found()
        }
    });
    let url = upstream.url("");
    let reg = TestRegistry::start_with(move |config| {
        config.upstreams =
            vec![registry_core::upstream::config::UpstreamConfig::shortcut(&url).expect("url")];
    });
    let admin = admin(&reg);
    let before = scrape(&reg, &admin);
    let http = client();
    assert_eq!(
        http.get(reg.url("/missing")).send().expect("GET").status(),
        404
    );
    let broken = http.get(reg.url("/broken")).send().expect("GET").status();
    assert!(broken.is_server_error(), "{broken}");

    let after = scrape(&reg, &admin);
    let delta = |series: &str| value(&after, series) - value(&before, series);
    let asked = upstream.requests();
    let failed = asked.iter().filter(|r| r.path.contains("broken")).count();
    assert!(failed >= 1 && asked.len() > failed, "{} asked", asked.len());
    assert_eq!(
        delta("registry_upstream_requests_total{upstream=\"upstream\"}"),
        asked.len() as f64
    );
    assert_eq!(
        delta("registry_upstream_failures_total{upstream=\"upstream\"}"),
        failed as f64
    );
}

#[test]
fn hook_deliveries_are_counted_delivered_and_failed() {
    use common::fake_http::{Canned, FakeHttp};
    let ok = FakeHttp::start(|_| Canned::new(200, "text/plain", "ok"));
    let failing = FakeHttp::start(|_| Canned::new(500, "text/plain", "no"));
    let reg = TestRegistry::start_with(|config| {
        config.hooks_allow_private = true;
        // Retries a day away: one failed attempt is all this test waits for.
        config.hooks_retry_base_ms = 3_600_000;
    });
    let admin = admin(&reg);
    let alice = reg.user_with_token("alice");
    // Hooks are on an existing package; its next version is the event.
    assert_eq!(publish(&reg, &alice, "hooked", "1.0.0"), 201);
    for endpoint in [ok.url("/hook"), failing.url("/hook")] {
        let created = client()
            .post(reg.url("/-/npm/v1/hooks/hook"))
            .bearer_auth(&alice)
            .json(&serde_json::json!({
                "type": "package", "name": "hooked", "endpoint": endpoint, "secret": "s3cret"
            }))
            .send()
            .expect("POST hook");
        assert_eq!(created.status(), 201);
    }
    assert_eq!(publish(&reg, &alice, "hooked", "1.1.0"), 201);

    // Polled with a deadline, never slept for.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let (delivered, failed) = loop {
        let page = scrape(&reg, &admin);
        let delivered = value(
            &page,
            "registry_hook_deliveries_total{result=\"delivered\"}",
        );
        let failed = value(&page, "registry_hook_deliveries_total{result=\"failed\"}");
        if (delivered >= 1.0 && failed >= 1.0) || std::time::Instant::now() > deadline {
            break (delivered, failed);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!((delivered, failed), (1.0, 1.0));
    assert_eq!(ok.requests().len(), 1);
    assert_eq!(failing.requests().len(), 1);
}
