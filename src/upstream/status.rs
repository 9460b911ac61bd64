//! What `registry upstream list` and `registry cache forget` show and do.

use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};

use super::client::BreakerState;
use super::config::format_duration;
use crate::accounts::authz::Admin;
use crate::error::{Error, Result};
use crate::packages::names::PackageName;
use crate::registry::Registry;

/// One upstream: its configuration, its breaker, what is cached of it, and how the cache
/// answered since this process started. The breaker and counters are the process's own: the
/// daemon's when asked over HTTP, empty for the CLI's local mode (`null`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpstreamReport {
    pub name: String,
    pub url: String,
    pub packages: Vec<String>,
    pub max_age: String,
    pub timeout: String,
    /// `up`, `failing`, `down` (skipped), or `null` where this process does not talk to it.
    pub state: Option<String>,
    pub consecutive_failures: Option<u64>,
    pub retry_in: Option<String>,
    pub failures: Option<u64>,
    pub cached_packages: u64,
    pub cached_tarballs: u64,
    pub cached_bytes: u64,
    pub hits: Option<u64>,
    pub misses: Option<u64>,
    /// hits / (hits + misses), since start; `null` before the first request.
    pub hit_ratio: Option<f64>,
}

/// Every upstream, in the order they are tried. `live` says whether this process serves
/// requests (the daemon): only then are the breaker and counters meaningful.
pub fn report(registry: &Registry, live: bool) -> Result<Vec<UpstreamReport>> {
    let usage = registry.store.read(|db| db.upstream_usage())?;
    Ok(registry
        .upstreams
        .all()
        .iter()
        .map(|upstream| {
            let cached = usage
                .iter()
                .find(|u| u.upstream == upstream.name())
                .cloned()
                .unwrap_or_default();
            let counters = &upstream.counters;
            let hits = counters.hits.load(Ordering::Relaxed);
            let misses = counters.misses.load(Ordering::Relaxed);
            let (state, consecutive, retry_in) = match upstream.state() {
                BreakerState::Up => ("up", 0, None),
                BreakerState::Failing(n) => ("failing", u64::from(n), None),
                BreakerState::Down { retry_in } => (
                    "down",
                    u64::from(upstream.config.max_fails),
                    Some(format_duration(std::time::Duration::from_secs(
                        retry_in.as_secs(),
                    ))),
                ),
            };
            let only_live = |value: u64| live.then_some(value);
            UpstreamReport {
                name: upstream.name().to_string(),
                url: upstream.config.url.clone(),
                packages: upstream
                    .config
                    .packages
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                max_age: format_duration(upstream.config.max_age),
                timeout: format_duration(upstream.config.timeout),
                state: live.then(|| state.to_string()),
                consecutive_failures: only_live(consecutive),
                retry_in: retry_in.filter(|_| live),
                failures: only_live(counters.failures.load(Ordering::Relaxed)),
                cached_packages: cached.packages,
                cached_tarballs: cached.tarballs,
                cached_bytes: cached.tarball_bytes,
                hits: only_live(hits),
                misses: only_live(misses),
                hit_ratio: (live && hits + misses > 0)
                    .then(|| hits as f64 / (hits + misses) as f64),
            }
        })
        .collect())
}

/// Drops everything cached of a proxied name (its documents and the record of its
/// tarballs; `registry gc` reclaims the blobs). 404 when nothing was cached.
pub fn forget(registry: &Registry, _admin: &Admin<'_>, name: &PackageName) -> Result<()> {
    let forgotten = registry
        .store
        .write(|db| db.forget_cached_package(name.as_str()))?;
    registry.upstreams.forget(name.as_str());
    if forgotten {
        Ok(())
    } else {
        Err(Error::not_found(format!(
            "nothing of {name} is cached from an upstream"
        )))
    }
}
