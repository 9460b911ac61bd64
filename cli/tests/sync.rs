//! `registry sync NAME [--no-deps] [--versions …] [--wait]` in both modes: an upstream
//! (`registry serve` on one fixture) and a downstream daemon with it configured; locally the
//! CLI queues the task in the downstream's database and the daemon's worker runs it.

mod common;

use common::{serve, Fixture, Remote, Target};

const FAILED: i32 = 1;
const USAGE: i32 = 2;

/// The downstream's data directory plus `--config FILE` naming the upstream.
struct LocalWithConfig<'a> {
    fixture: &'a Fixture,
    config: String,
}

impl Target for LocalWithConfig<'_> {
    fn args(&self) -> Vec<String> {
        vec![
            "--data-dir".into(),
            self.fixture.data_str().into(),
            "--config".into(),
            self.config.clone(),
        ]
    }
}

fn sync_works(target: &dyn Target, package: &str) {
    // Only one version, without dependencies, waited for.
    let status = target
        .run(&[
            "sync",
            package,
            "--versions",
            "1.0.0",
            "--no-deps",
            "--wait",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(status["state"], "success", "{status}");
    assert_eq!(status["package"], package);
    assert_eq!(
        (status["total"].clone(), status["finished"].clone()),
        (1.into(), 1.into())
    );

    // Without --wait: the task id, at once; then everything, waited for, in text.
    let id = target.run(&["sync", package]).ok().stdout;
    assert_eq!(id.trim().len(), 32, "a task id: {id}");
    let text = target.run(&["sync", package, "--wait"]).ok().stdout;
    assert!(
        text.contains(&format!("sync of {package}: success")),
        "{text}"
    );

    // A version the upstream lacks fails the sync: exit 1, saying which.
    let failed = target
        .run(&["sync", package, "--versions", "9.9.9", "--wait"])
        .fails(FAILED);
    assert!(failed.stderr.contains("9.9.9"), "{}", failed.stderr);
    target
        .run(&["sync", package, "--versions", "not-a-version"])
        .fails(USAGE);
}

#[test]
fn sync_waits_for_the_daemon_in_both_modes() {
    let up = Fixture::new();
    up.publish("alice", "far-away", "1.0.0");
    up.publish("alice", "far-away", "1.1.0");
    up.publish("alice", "also-far", "1.0.0");
    let upstream = serve(up.data_str(), &[]);

    let down = Fixture::new();
    let config = down.dir.path().join("registry.toml");
    std::fs::write(
        &config,
        format!(
            "[[upstreams]]\nname = \"far\"\nurl = \"{}\"\n",
            upstream.base
        ),
    )
    .expect("write config");
    let config = config.to_str().expect("utf-8").to_string();
    let daemon = serve(down.data_str(), &["--config", &config]);

    sync_works(
        &LocalWithConfig {
            fixture: &down,
            config: config.clone(),
        },
        "far-away",
    );
    sync_works(
        &Remote {
            base: daemon.base.clone(),
            token: down.root_token.clone(),
        },
        "also-far",
    );

    let registry = down.open();
    for (name, version) in [
        ("far-away", "1.0.0"),
        ("far-away", "1.1.0"),
        ("also-far", "1.0.0"),
    ] {
        let stored = registry
            .store
            .read(|db| db.cached_tarball(name, version))
            .expect("read");
        assert!(stored.is_some(), "{name}@{version} synced");
    }
}
