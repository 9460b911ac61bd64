//! `registry upstream list` and `registry cache forget` in both modes, against a
//! `registry serve` child that proxies a second one.

mod common;

use common::{run_in, serve, Fixture};
use serde_json::Value;

const NOT_FOUND: i32 = 3;

fn get(url: &str) -> u16 {
    reqwest::blocking::Client::new()
        .get(url)
        .send()
        .expect("GET")
        .status()
        .as_u16()
}

fn upstream_named<'v>(list: &'v Value, name: &str) -> &'v Value {
    list.as_array()
        .and_then(|l| l.iter().find(|u| u["name"] == name))
        .unwrap_or_else(|| panic!("no upstream {name} in {list}"))
}

#[test]
fn upstream_list_and_cache_forget_in_both_modes() {
    let upstream = Fixture::new();
    upstream.publish("alice", "only-upstream", "1.0.0");
    let upstream_daemon = serve(upstream.data_str(), &[]);

    let proxy = Fixture::new();
    let config = proxy.dir.path().join("registry.toml");
    std::fs::write(
        &config,
        format!(
            "private = [\"@acme/*\"]\n\n[[upstreams]]\nname = \"public\"\nurl = \"{}\"\n\
             max_age = \"5m\"\n",
            upstream_daemon.base
        ),
    )
    .expect("config");
    let config = config.to_str().expect("utf-8").to_string();
    let daemon = serve(proxy.data_str(), &["--config", &config]);
    assert_eq!(get(&format!("{}/only-upstream", daemon.base)), 200);
    assert_eq!(
        get(&format!(
            "{}/only-upstream/-/only-upstream-1.0.0.tgz",
            daemon.base
        )),
        200
    );

    let local = ["--config", config.as_str(), "--data-dir", proxy.data_str()];
    let remote = [
        "--registry",
        daemon.base.as_str(),
        "--token",
        proxy.root_token.as_str(),
    ];
    let listed = |mode: &[&str]| {
        let mut args = mode.to_vec();
        args.extend(["upstream", "list", "--json"]);
        run_in(&args, "").ok().json()
    };

    let over_http = listed(&remote);
    let public = upstream_named(&over_http, "public");
    assert_eq!(public["url"], upstream_daemon.base.as_str());
    assert_eq!(public["state"], "up");
    assert_eq!(public["cached_packages"], 1);
    assert_eq!(public["cached_tarballs"], 1);
    assert!(public["cached_bytes"].as_u64().unwrap_or(0) > 0, "{public}");
    assert_eq!(public["misses"], 2, "a document and a tarball: {public}");
    assert_eq!(public["max_age"], "5m");

    let on_disk = listed(&local);
    let public = upstream_named(&on_disk, "public");
    assert_eq!(public["cached_packages"], 1);
    assert_eq!(public["cached_tarballs"], 1);
    assert!(
        public["state"].is_null(),
        "local mode has no breaker: {public}"
    );

    let mut args = local.to_vec();
    args.extend(["upstream", "list"]);
    let table = run_in(&args, "").ok().stdout;
    assert!(
        table.contains("public") && table.contains(&upstream_daemon.base),
        "{table}"
    );

    // Forget over HTTP, then there is nothing left to forget locally.
    let mut args = remote.to_vec();
    args.extend(["cache", "forget", "only-upstream"]);
    run_in(&args, "").ok();
    let public = listed(&local);
    assert_eq!(upstream_named(&public, "public")["cached_packages"], 0);
    let mut args = local.to_vec();
    args.extend(["cache", "forget", "only-upstream"]);
    run_in(&args, "").fails(NOT_FOUND);

    // Forgotten means fetched again on the next read.
    assert_eq!(get(&format!("{}/only-upstream", daemon.base)), 200);
    let mut args = local.to_vec();
    args.extend(["cache", "forget", "only-upstream", "--json"]);
    let forgot = run_in(&args, "").ok().json();
    assert_eq!(forgot["forgotten"], true);
}

#[test]
fn bad_upstream_settings_are_configuration_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data = data.to_str().expect("utf-8");
    let run = run_in(
        &[
            "serve",
            "--data-dir",
            data,
            "--upstream",
            "ftp://example.org",
        ],
        "",
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("http:// or https://"), "{}", run.stderr);
    for (toml, expected) in [
        (
            "[[upstreams]]\nname = \"a\"\nurl = \"http://x\"\nmax_age = \"soon\"\n",
            "max_age",
        ),
        (
            "[[upstreams]]\nname = \"a\"\nurl = \"http://x\"\npackages = [\"a*b\"]\n",
            "pattern",
        ),
        (
            "[[upstreams]]\nname = \"a\"\nurl = \"http://x\"\n[[upstreams]]\nname = \"a\"\n\
             url = \"http://y\"\n",
            "two upstreams",
        ),
        (
            "[[upstreams]]\nname = \"a\"\nurl = \"http://x\"\ntoken_env = \"NOPE_UNSET\"\n",
            "NOPE_UNSET",
        ),
        ("private = [\"@/*\"]\n", "pattern"),
    ] {
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, toml).expect("write");
        let run = run_in(
            &[
                "serve",
                "--data-dir",
                data,
                "--config",
                file.to_str().expect("utf-8"),
            ],
            "",
        );
        assert_eq!(run.code, 2, "{toml}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{toml}: {}", run.stderr);
    }
}
