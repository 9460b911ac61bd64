//! Proxy and cache: which upstream serves a name, and the documents and tarballs fetched
//! from it — stored durably, fresh for `max_age`, revalidated with the upstream's validators
//! after that, served stale while the upstream is down, and fetched once however many clients
//! miss at the same moment.
//!
//! The caller has already found that the name is not local (no version was ever published
//! here) and not blocked: those rules come first and live with the local packages.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::client::{http_client, DocumentAnswer, Downloaded, Failure, Upstream};
use super::config::NamePattern;
use super::documents::{prepare, Dist, Outline, Prepared};
use super::prefetch::Prefetch;
use crate::blobs::Blob;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::packages::names::PackageName;
use crate::packages::packument::PackumentFlavor;
use crate::registry::blocking;
use crate::registry::{version_of_tarball, Registry, TarballFile};
use crate::store::{CachedTarball, DocumentUpdate};

/// The upstreams of a registry, live.
pub struct Upstreams {
    list: RwLock<Arc<Vec<Arc<Upstream>>>>,
    private: Vec<NamePattern>,
    client: reqwest::Client,
    /// One lock per document or tarball being fetched, so that concurrent misses wait for the
    /// first instead of asking the upstream again.
    inflight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Documents known fresh, so that a hot proxied read asks neither the upstream nor the
    /// database (`None`: the upstream has no such package).
    fresh: Mutex<HashMap<(String, PackumentFlavor), Fresh>>,
    pub(super) prefetch: Prefetch,
}

#[derive(Clone)]
pub(super) struct Fresh {
    until: Instant,
    etag: Option<String>,
}

/// How a proxied document was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// From the cache, fresh.
    Hit,
    /// Fetched from the upstream now.
    Miss,
    /// The upstream said 304: the cached copy stands.
    Revalidated,
    /// The upstream failed (or is skipped); the cached copy is older than `max_age`.
    Stale,
}

impl CacheOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheOutcome::Hit => "hit",
            CacheOutcome::Miss => "miss",
            CacheOutcome::Revalidated => "revalidated",
            CacheOutcome::Stale => "stale",
        }
    }
}

/// A proxied document: its ETag (the body is read from the store by whoever renders it, and
/// only when its rendering is not cached already).
#[derive(Debug, Clone)]
pub struct ProxiedDocument {
    pub etag: String,
    pub outcome: CacheOutcome,
    pub upstream: String,
    /// When this request fetched the name for the first time: what an install reads next.
    pub first_fetch: Option<Outline>,
}

/// What refreshing a document under its lock found.
struct Refreshed {
    /// `None`: the upstream has no such package.
    etag: Option<String>,
    outcome: CacheOutcome,
    first_fetch: Option<Outline>,
}

impl Refreshed {
    fn cached(etag: Option<String>, outcome: CacheOutcome) -> Refreshed {
        Refreshed {
            etag,
            outcome,
            first_fetch: None,
        }
    }
}

impl Upstreams {
    pub fn new(config: &Config) -> Result<Upstreams> {
        let list = config
            .upstreams
            .iter()
            .cloned()
            .map(|c| Arc::new(Upstream::new(c)))
            .collect();
        Ok(Upstreams {
            list: RwLock::new(Arc::new(list)),
            private: config.private.clone(),
            client: http_client()?,
            inflight: Mutex::new(HashMap::new()),
            fresh: Mutex::new(HashMap::new()),
            prefetch: Prefetch::default(),
        })
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Every upstream, configured ones first, in the order they are tried.
    pub fn all(&self) -> Arc<Vec<Arc<Upstream>>> {
        match self.list.read() {
            Ok(list) => list.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.all().is_empty()
    }

    pub fn by_name(&self, name: &str) -> Option<Arc<Upstream>> {
        self.all().iter().find(|u| u.name() == name).cloned()
    }

    /// Whether `name` is private: local only, never asked about upstream.
    pub fn is_private(&self, name: &str) -> bool {
        self.private.iter().any(|p| p.matches(name))
    }

    /// The upstream that serves a name that is not local: the first whose `packages` match,
    /// unless the name is private.
    pub fn for_name(&self, name: &str) -> Option<Arc<Upstream>> {
        if self.is_private(name) {
            return None;
        }
        self.all().iter().find(|u| u.config.serves(name)).cloned()
    }

    /// Forgets what this process knows fresh of a name (after `registry cache forget`).
    pub fn forget(&self, name: &str) {
        if let Ok(mut fresh) = self.fresh.lock() {
            fresh.retain(|(n, _), _| n != name);
        }
    }

    pub(super) fn fresh(&self, name: &str, flavor: PackumentFlavor) -> Option<Fresh> {
        let fresh = self.fresh.lock().ok()?;
        fresh
            .get(&(name.to_string(), flavor))
            .filter(|f| Instant::now() < f.until)
            .cloned()
    }

    fn mark_fresh(
        &self,
        name: &str,
        flavor: PackumentFlavor,
        until: Instant,
        etag: Option<String>,
    ) {
        if let Ok(mut fresh) = self.fresh.lock() {
            // Bounded: expired entries go when the map grows large.
            if fresh.len() > 100_000 {
                let now = Instant::now();
                fresh.retain(|_, f| f.until > now);
            }
            fresh.insert((name.to_string(), flavor), Fresh { until, etag });
        }
    }

    pub(crate) fn lock_for(&self, key: String) -> Arc<tokio::sync::Mutex<()>> {
        match self.inflight.lock() {
            Ok(mut map) => map.entry(key).or_default().clone(),
            Err(_) => Arc::default(),
        }
    }

    pub(crate) fn release(&self, key: &str) {
        if let Ok(mut map) = self.inflight.lock() {
            map.remove(key);
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The instant a document fetched at `fetched_at_ms` stops being fresh.
fn fresh_until(fetched_at_ms: i64, max_age: Duration) -> Option<Instant> {
    let age = Duration::from_millis(u64::try_from(now_ms() - fetched_at_ms).unwrap_or(0));
    max_age.checked_sub(age).map(|left| Instant::now() + left)
}

fn not_found_upstream(name: &PackageName, upstream: &Upstream) -> Error {
    Error::not_found(format!(
        "package {name} not found (here or on upstream {})",
        upstream.name()
    ))
}

/// The document of a proxied name, from the cache or from `upstream`.
pub async fn document(
    registry: &Arc<Registry>,
    upstream: &Arc<Upstream>,
    name: &PackageName,
    flavor: PackumentFlavor,
) -> Result<ProxiedDocument> {
    let upstreams = &registry.upstreams;
    let answer = |refreshed: Refreshed| match refreshed.etag {
        Some(etag) => Ok(ProxiedDocument {
            etag,
            outcome: refreshed.outcome,
            upstream: upstream.name().to_string(),
            first_fetch: refreshed.first_fetch,
        }),
        None => Err(not_found_upstream(name, upstream)),
    };
    if let Some(fresh) = upstreams.fresh(name.as_str(), flavor) {
        upstream.counters.hits.fetch_add(1, Ordering::Relaxed);
        return answer(Refreshed::cached(fresh.etag, CacheOutcome::Hit));
    }
    let key = format!("doc {flavor:?} {name}");
    let lock = upstreams.lock_for(key.clone());
    let _guard = lock.lock().await;
    let result = refresh_document(registry, upstream, name, flavor).await;
    upstreams.release(&key);
    answer(result?)
}

/// Under the name's lock: the cached row if fresh, else the upstream's answer.
async fn refresh_document(
    registry: &Arc<Registry>,
    upstream: &Arc<Upstream>,
    name: &PackageName,
    flavor: PackumentFlavor,
) -> Result<Refreshed> {
    let upstreams = &registry.upstreams;
    let counters = &upstream.counters;
    // Someone else may have fetched it while this request waited for the lock.
    if let Some(fresh) = upstreams.fresh(name.as_str(), flavor) {
        counters.hits.fetch_add(1, Ordering::Relaxed);
        return Ok(Refreshed::cached(fresh.etag, CacheOutcome::Hit));
    }
    let max_age = upstream.config.max_age;
    let lookup = name.clone();
    let cached = blocking(registry, move |r| {
        r.store
            .read(|db| db.cached_document(lookup.as_str(), flavor))
    })
    .await?;
    if let Some(cached) = &cached {
        if let Some(until) = fresh_until(cached.fetched_at_ms, max_age) {
            let etag = cached.found.then(|| cached.etag.clone());
            upstreams.mark_fresh(name.as_str(), flavor, until, etag.clone());
            counters.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Refreshed::cached(etag, CacheOutcome::Hit));
        }
    }
    let stale_or = |failure: Failure| -> Result<Refreshed> {
        match &cached {
            Some(cached) => {
                counters.stale.fetch_add(1, Ordering::Relaxed);
                counters.hits.fetch_add(1, Ordering::Relaxed);
                Ok(Refreshed::cached(
                    cached.found.then(|| cached.etag.clone()),
                    CacheOutcome::Stale,
                ))
            }
            None => Err(failure.to_error(upstream.name(), &format!("package {name}"))),
        }
    };
    if !upstream.available() {
        return stale_or(Failure::Unreachable(
            "skipped after repeated failures".to_string(),
        ));
    }
    let validators = cached.as_ref().filter(|c| c.found);
    let fetched = upstream
        .fetch_document(
            upstreams.client(),
            name.as_str(),
            flavor,
            validators.and_then(|c| c.upstream_etag.as_deref()),
            validators.and_then(|c| c.last_modified.as_deref()),
        )
        .await;
    let fetched_at_ms = now_ms();
    let until = Instant::now() + max_age;
    match fetched {
        Err(failure) => {
            tracing::debug!(upstream = upstream.name(), package = %name, "upstream failed: {failure:?}");
            stale_or(failure)
        }
        Ok(DocumentAnswer::NotModified) if validators.is_some() => {
            let touched = name.clone();
            blocking(registry, move |r| {
                r.store
                    .write(|db| db.touch_cached_document(touched.as_str(), flavor, fetched_at_ms))
            })
            .await?;
            let etag = validators.map(|c| c.etag.clone());
            upstreams.mark_fresh(name.as_str(), flavor, until, etag.clone());
            counters.revalidated.fetch_add(1, Ordering::Relaxed);
            counters.hits.fetch_add(1, Ordering::Relaxed);
            Ok(Refreshed::cached(etag, CacheOutcome::Revalidated))
        }
        Ok(DocumentAnswer::NotModified) => stale_or(Failure::Invalid(
            "304 Not Modified to an unconditional request".to_string(),
        )),
        Ok(DocumentAnswer::NotFound) => {
            let answer = Answer {
                prepared: None,
                upstream_etag: None,
                last_modified: None,
                fetched_at_ms,
            };
            store_answer(registry, upstream, name, flavor, answer).await?;
            upstreams.mark_fresh(name.as_str(), flavor, until, None);
            counters.misses.fetch_add(1, Ordering::Relaxed);
            Ok(Refreshed::cached(None, CacheOutcome::Miss))
        }
        Ok(DocumentAnswer::Modified {
            body,
            etag: upstream_etag,
            last_modified,
        }) => {
            let mut prepared = match prepare(name, &upstream.config.url, &body) {
                Ok(prepared) => prepared,
                Err(reason) => return stale_or(Failure::Invalid(reason)),
            };
            let etag = prepared.etag.clone();
            // Only a first fetch: a changed document's dependencies were asked for before.
            let first_fetch = cached
                .is_none()
                .then(|| std::mem::take(&mut prepared.outline));
            let answer = Answer {
                prepared: Some(prepared),
                upstream_etag,
                last_modified,
                fetched_at_ms,
            };
            store_answer(registry, upstream, name, flavor, answer).await?;
            upstreams.mark_fresh(name.as_str(), flavor, until, Some(etag.clone()));
            counters.misses.fetch_add(1, Ordering::Relaxed);
            Ok(Refreshed {
                etag: Some(etag),
                outcome: CacheOutcome::Miss,
                first_fetch,
            })
        }
    }
}

/// An upstream's answer for a name, to store: a prepared document with its validators, or
/// (`prepared: None`) its 404.
struct Answer {
    prepared: Option<Prepared>,
    upstream_etag: Option<String>,
    last_modified: Option<String>,
    fetched_at_ms: i64,
}

async fn store_answer(
    registry: &Arc<Registry>,
    upstream: &Upstream,
    name: &PackageName,
    flavor: PackumentFlavor,
    answer: Answer,
) -> Result<()> {
    let Answer {
        prepared,
        upstream_etag,
        last_modified,
        fetched_at_ms,
    } = answer;
    let stored = name.clone();
    let source = upstream.name().to_string();
    // A cached document lost in a crash is only fetched again: its commit does not wait for
    // the disk.
    blocking(registry, move |r| {
        r.store.write_unsynced(|db| {
            db.put_cached_document(
                stored.as_str(),
                flavor,
                &DocumentUpdate {
                    upstream: &source,
                    found: prepared.is_some(),
                    body: prepared.as_ref().map(|p| p.body.as_slice()),
                    etag: prepared.as_ref().map_or("", |p| p.etag.as_str()),
                    upstream_etag: upstream_etag.as_deref(),
                    last_modified: last_modified.as_deref(),
                    dists: prepared.as_ref().map(|p| p.dists.as_str()),
                    fetched_at_ms,
                },
            )
        })
    })
    .await
}

/// The stored bytes of a proxied document (tarball URLs under the placeholder origin) and
/// their ETag; blocking.
pub fn document_body(
    registry: &Registry,
    name: &PackageName,
    flavor: PackumentFlavor,
) -> Result<(Vec<u8>, String)> {
    registry
        .store
        .read(|db| db.cached_document(name.as_str(), flavor))?
        .filter(|c| c.found)
        .map(|c| (c.body, c.etag))
        .ok_or_else(|| Error::not_found(format!("package {name} not found")))
}

/// The dist-tags of a proxied name, from its (abbreviated) document.
pub async fn dist_tags(
    registry: &Arc<Registry>,
    name: &PackageName,
) -> Result<std::collections::BTreeMap<String, String>> {
    let upstream = registry
        .upstreams
        .for_name(name.as_str())
        .ok_or_else(|| Error::not_found(format!("package {name} not found")))?;
    document(registry, &upstream, name, PackumentFlavor::Abbreviated).await?;
    let read = name.clone();
    let (body, _) = blocking(registry, move |r| {
        document_body(r, &read, PackumentFlavor::Abbreviated)
    })
    .await?;
    let doc: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| Error::Storage(format!("cached document of {name} is not JSON: {e}")))?;
    Ok(doc
        .get("dist-tags")
        .and_then(serde_json::Value::as_object)
        .map(|tags| {
            tags.iter()
                .filter_map(|(tag, v)| v.as_str().map(|v| (tag.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default())
}

/// A tarball of a proxied name: from the blob store, or fetched, verified and stored first.
pub async fn tarball(
    registry: &Arc<Registry>,
    upstream: &Arc<Upstream>,
    name: &PackageName,
    file: &str,
) -> Result<TarballFile> {
    let not_found = || Error::not_found(format!("tarball {file} of {name} not found"));
    let version = version_of_tarball(name, file).ok_or_else(not_found)?;
    // A cached tarball the way a local one is opened: one indexed statement and an open(2) on
    // this thread when a connection is free, with no hop to a blocking thread.
    let now = registry
        .store
        .read_now(|db| db.cached_tarball(name.as_str(), &version))
        .transpose()?
        .flatten()
        .and_then(|cached| open_blob(registry, cached, &version).transpose());
    let cached = match now {
        Some(opened) => opened.map(Some)?,
        None => open_cached_tarball(registry, name, &version).await?,
    };
    if let Some(opened) = cached {
        upstream.counters.hits.fetch_add(1, Ordering::Relaxed);
        return Ok(opened);
    }
    let key = format!("tgz {name}@{version}");
    let guard = registry.upstreams.lock_for(key.clone()).lock_owned().await;
    let downloaded = match fetch_tarball(registry, upstream, name, &version).await {
        Ok(Fetched::Cached(opened)) => {
            registry.upstreams.release(&key);
            return Ok(opened);
        }
        Ok(Fetched::Downloaded(downloaded)) => downloaded,
        Err(err) => {
            registry.upstreams.release(&key);
            return Err(err);
        }
    };
    // The client is answered from the verified temporary file; the tarball enters the blob
    // store and the database off the response path. Concurrent requests for it wait on the
    // lock, which is held until then, and find it stored.
    let answer = std::fs::File::open(&downloaded.temp).map(|file| TarballFile {
        blob: Blob::File(file),
        len: downloaded.size,
        sha512_hex: downloaded.sha512_hex.clone(),
        version: version.clone(),
    });
    let registry = registry.clone();
    let stored = name.clone();
    let source = upstream.name().to_string();
    tokio::task::spawn_blocking(move || {
        if let Err(err) = persist_tarball(&registry, &stored, &version, source, downloaded) {
            tracing::warn!(package = %stored, %version, "a fetched tarball was not cached: {err}");
        }
        registry.upstreams.release(&key);
        drop(guard);
    });
    Ok(answer?)
}

enum Fetched {
    Cached(TarballFile),
    Downloaded(Downloaded),
}

/// Makes a downloaded tarball durable in the blob store, then records it. The record is a
/// cache entry: a crash that loses it only means the tarball is fetched again (and the
/// orphaned blob collected by `registry gc`), so its commit does not wait for the disk.
fn persist_tarball(
    registry: &Registry,
    name: &PackageName,
    version: &str,
    upstream: String,
    downloaded: Downloaded,
) -> Result<()> {
    std::fs::File::open(&downloaded.temp)?.sync_all()?;
    registry
        .blobs
        .put_file(&downloaded.sha512_hex, &downloaded.temp)?;
    let cached = CachedTarball {
        upstream,
        sha512_hex: downloaded.sha512_hex,
        size: downloaded.size,
    };
    let now = crate::clock::now_iso();
    registry
        .store
        .write_unsynced(|db| db.put_cached_tarball(name.as_str(), version, &cached, &now))
}

async fn open_cached_tarball(
    registry: &Arc<Registry>,
    name: &PackageName,
    version: &str,
) -> Result<Option<TarballFile>> {
    let lookup = name.clone();
    let version = version.to_string();
    blocking(registry, move |r| {
        match r
            .store
            .read(|db| db.cached_tarball(lookup.as_str(), &version))?
        {
            Some(cached) => open_blob(r, cached, &version),
            None => Ok(None),
        }
    })
    .await
}

/// Opens a cached tarball's blob; `None` when it went missing (it is fetched again).
fn open_blob(
    registry: &Registry,
    cached: CachedTarball,
    version: &str,
) -> Result<Option<TarballFile>> {
    match registry.blobs.open(&cached.sha512_hex) {
        Ok((blob, len)) => Ok(Some(TarballFile {
            blob,
            len,
            sha512_hex: cached.sha512_hex,
            version: version.to_string(),
        })),
        Err(Error::MissingBlob(_)) => Ok(None),
        Err(other) => Err(other),
    }
}

async fn fetch_tarball(
    registry: &Arc<Registry>,
    upstream: &Arc<Upstream>,
    name: &PackageName,
    version: &str,
) -> Result<Fetched> {
    if let Some(opened) = open_cached_tarball(registry, name, version).await? {
        upstream.counters.hits.fetch_add(1, Ordering::Relaxed);
        return Ok(Fetched::Cached(opened));
    }
    let dist = match cached_dist(registry, name, version).await? {
        Some(dist) => dist,
        None => {
            // Not in the cached document (or none is cached): refresh it, then look again.
            document(registry, upstream, name, PackumentFlavor::Abbreviated).await?;
            cached_dist(registry, name, version).await?.ok_or_else(|| {
                Error::not_found(format!(
                    "version {version} of {name} not found on upstream {}",
                    upstream.name()
                ))
            })?
        }
    };
    let what = format!("the tarball of {name}@{version}");
    if !upstream.available() {
        return Err(
            Failure::Unreachable("skipped after repeated failures".to_string())
                .to_error(upstream.name(), &what),
        );
    }
    let downloaded = upstream
        .fetch_tarball(
            registry.upstreams.client(),
            &dist.url,
            &dist.integrity,
            &dist.shasum,
            &registry.blobs.temp_dir(),
        )
        .await
        .map_err(|failure| failure.to_error(upstream.name(), &what))?
        .map_err(|reason| {
            tracing::warn!(upstream = upstream.name(), package = %name, %version, "tarball refused: {reason}");
            Error::BadGateway(format!(
                "upstream {} sent {what}, but {reason}; it was not cached",
                upstream.name()
            ))
        })?;
    upstream.counters.misses.fetch_add(1, Ordering::Relaxed);
    Ok(Fetched::Downloaded(downloaded))
}

async fn cached_dist(
    registry: &Arc<Registry>,
    name: &PackageName,
    version: &str,
) -> Result<Option<Dist>> {
    let lookup = name.clone();
    let version = version.to_string();
    let stored = blocking(registry, move |r| {
        r.store.read(|db| db.cached_dist(lookup.as_str(), &version))
    })
    .await?;
    Ok(stored.as_deref().and_then(Dist::from_stored))
}
