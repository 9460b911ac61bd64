//! What every handler shares, and the one way handlers reach the core: on a blocking thread.

use std::sync::Arc;

use registry_core::accounts::throttle::AuthRateLimiter;
use registry_core::accounts::tokens::TokenUsage;
use registry_core::packages::downloads::DownloadCounter;
use registry_core::{Registry, Result};
use warp::Rejection;

use crate::cache::PackumentCache;
use crate::error::reject;
use crate::metrics::HttpMetrics;
use crate::web::cli_logins::CliLogins;

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Arc<Registry>,
    packuments: PackumentCache,
    token_usage: TokenUsage,
    downloads: DownloadCounter,
    auth_rate: AuthRateLimiter,
    sync_wake: Arc<tokio::sync::Notify>,
    cli_logins: CliLogins,
    metrics: HttpMetrics,
}

impl AppState {
    pub fn new(registry: Arc<Registry>) -> AppState {
        let auth_rate = AuthRateLimiter::new(
            registry.config.auth_requests_per_second,
            registry.config.auth_burst,
        );
        let cli_logins = CliLogins::new(Arc::clone(&registry));
        AppState {
            inner: Arc::new(Inner {
                registry,
                packuments: PackumentCache::default(),
                token_usage: TokenUsage::default(),
                downloads: DownloadCounter::default(),
                auth_rate,
                sync_wake: Arc::new(tokio::sync::Notify::new()),
                cli_logins,
                metrics: HttpMetrics::default(),
            }),
        }
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.inner.registry
    }

    pub fn packuments(&self) -> &PackumentCache {
        &self.inner.packuments
    }

    /// Token last-used times waiting to be flushed (by the task `serve` starts).
    pub fn token_usage(&self) -> &TokenUsage {
        &self.inner.token_usage
    }

    /// Tarball downloads counted but not yet flushed (by the task `serve` starts).
    pub fn downloads(&self) -> &DownloadCounter {
        &self.inner.downloads
    }

    /// Requests per client address to the password endpoints.
    pub fn auth_rate(&self) -> &AuthRateLimiter {
        &self.inner.auth_rate
    }

    /// Wakes an idle sync worker (a task was just queued).
    pub fn sync_wake(&self) -> &Arc<tokio::sync::Notify> {
        &self.inner.sync_wake
    }

    /// npm web logins waiting for the browser (in the database: any node may answer).
    pub fn cli_logins(&self) -> &CliLogins {
        &self.inner.cli_logins
    }

    /// The HTTP counters of `/-/metrics`.
    pub fn metrics(&self) -> &HttpMetrics {
        &self.inner.metrics
    }

    /// Runs a core operation (SQLite, PBKDF2, file I/O) off the async threads.
    pub async fn run<T, F>(&self, operation: F) -> Result<T, Rejection>
    where
        T: Send + 'static,
        F: FnOnce(&AppState) -> Result<T> + Send + 'static,
    {
        let state = self.clone();
        match tokio::task::spawn_blocking(move || operation(&state)).await {
            Ok(result) => result.map_err(reject),
            Err(join_error) => Err(reject(registry_core::Error::Storage(format!(
                "a blocking task failed: {join_error}"
            )))),
        }
    }
}
