//! Documents fetched ahead of the client. A cold `npm install` asks for a package's
//! document, reads which versions its dependencies need, asks for theirs, and so
//! on down: through a proxy, each level of the tree waits for the upstream once more. When an
//! install's document is fetched for the first time, the documents of what its `latest`
//! version depends on are fetched in the background (and theirs in turn), so that most of the
//! client's later misses find them cached or already on their way (concurrent misses of one
//! name share one fetch).
//!
//! Bounded: a few fetches at a time, a capped number of names waiting, each name at most once
//! while it is cached fresh; local, blocked and private names are never asked for.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use super::client::Upstream;
use super::{proxy, sync};
use crate::error::Result;
use crate::packages::names::PackageName;
use crate::packages::packument::PackumentFlavor;
use crate::registry::{blocking, Registry};

/// Documents fetched ahead at once: the upstream connections they may hold besides clients'.
const CONCURRENCY: usize = 8;
/// Names waiting or being fetched, beyond which further ones are not fetched ahead.
const MAX_WAITING: usize = 2048;

/// The names being fetched ahead, and the permits that bound how many at once.
pub struct Prefetch {
    permits: Arc<Semaphore>,
    waiting: Mutex<HashSet<String>>,
}

impl Default for Prefetch {
    fn default() -> Prefetch {
        Prefetch {
            permits: Arc::new(Semaphore::new(CONCURRENCY)),
            waiting: Mutex::new(HashSet::new()),
        }
    }
}

impl Prefetch {
    /// Takes a name on unless it is waiting already or too many are.
    fn admit(&self, name: &str) -> bool {
        match self.waiting.lock() {
            Ok(mut waiting) if waiting.len() < MAX_WAITING => waiting.insert(name.to_string()),
            _ => false,
        }
    }

    fn done(&self, name: &str) {
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.remove(name);
        }
    }
}

/// Fetches the documents of `names` in `flavor` (the one the install reads) in the
/// background, those an upstream that prefetches serves and that are not known fresh already.
/// Needs a Tokio runtime.
pub fn dependencies(registry: &Arc<Registry>, flavor: PackumentFlavor, names: BTreeSet<String>) {
    let upstreams = &registry.upstreams;
    for name in names {
        let Ok(name) = PackageName::parse(&name) else {
            continue;
        };
        let Some(upstream) = upstreams.for_name(name.as_str()) else {
            continue;
        };
        if !upstream.config.prefetch
            || upstreams.fresh(name.as_str(), flavor).is_some()
            || !upstreams.prefetch.admit(name.as_str())
        {
            continue;
        }
        let registry = registry.clone();
        tokio::spawn(async move {
            let fetched = fetch(&registry, &upstream, &name, flavor).await;
            registry.upstreams.prefetch.done(name.as_str());
            match fetched {
                Ok(next) => dependencies(&registry, flavor, next),
                Err(err) => tracing::debug!(
                    upstream = upstream.name(),
                    package = %name,
                    "not fetched ahead: {}",
                    err.public_message()
                ),
            }
        });
    }
}

/// One document fetched ahead; what it newly depends on.
async fn fetch(
    registry: &Arc<Registry>,
    upstream: &Arc<Upstream>,
    name: &PackageName,
    flavor: PackumentFlavor,
) -> Result<BTreeSet<String>> {
    let _permit = registry
        .upstreams
        .prefetch
        .permits
        .clone()
        .acquire_owned()
        .await;
    let checked = name.clone();
    if blocking(registry, move |r| sync::skip_reason(r, &checked))
        .await?
        .is_some()
    {
        return Ok(BTreeSet::new());
    }
    let document = proxy::document(registry, upstream, name, flavor).await?;
    Ok(document.new_dependencies)
}
