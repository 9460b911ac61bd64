//! The HTTP series of `GET /-/metrics` (requests and their durations by route and status
//! class, publishes, downloads, the packument byte cache) and the page that renders them with
//! the core's (`registry_core::metrics`).
//!
//! Bounded and cheap by construction: a request is classified into one of a fixed set of
//! [`Route`]s by a few byte comparisons of its path (never a raw path as a label), and is
//! recorded with two relaxed atomic adds into a fixed array. No lock, no allocation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::Method;
use registry_core::metrics::{counter, family, sample};

use crate::state::AppState;

/// What a request was, for its labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// GET/HEAD of a package document or of one version (`/:pkg`, `/:pkg/:version`).
    Packument,
    /// GET/HEAD of a tarball (`/:pkg/-/:file.tgz`).
    Tarball,
    /// PUT of a package document: a publish, and the other writes npm sends as one (a
    /// deprecation, a star, an owner change).
    Publish,
    /// `/-/v1/search`.
    Search,
    /// The web UI below `/-/web/`.
    Web,
    /// npm's logins: `/-/user/…` and `/-/v1/login`, `/-/v1/done…`.
    Login,
    /// The administrator's API below `/-/registry/admin/`.
    Admin,
    /// `/-/metrics`, `/-/healthz`, `/-/readyz`.
    Ops,
    /// Everything else.
    Other,
}

const ROUTES: [Route; 9] = [
    Route::Packument,
    Route::Tarball,
    Route::Publish,
    Route::Search,
    Route::Web,
    Route::Login,
    Route::Admin,
    Route::Ops,
    Route::Other,
];

const CLASSES: [&str; 4] = ["2xx", "3xx", "4xx", "5xx"];

/// Upper bounds of the duration buckets, in microseconds (1 ms … 10 s, Prometheus's usual
/// spread shifted down: a cached packument is answered in well under a millisecond).
const BOUNDS_MICROS: [u64; 12] = [
    250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 500_000, 1_000_000, 10_000_000,
];
/// The same bounds as the `le` labels.
const BOUNDS_LABELS: [&str; 12] = [
    "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.5", "1",
    "10",
];

impl Route {
    /// Classifies a request by its method and path, without allocating.
    pub fn of(method: &Method, path: &str) -> Route {
        let Some(ours) = path.strip_prefix("/-/") else {
            return Route::of_package_path(method, path);
        };
        if ours == "v1/search" {
            Route::Search
        } else if ours.starts_with("web/") {
            Route::Web
        } else if ours.starts_with("user/") || ours == "v1/login" || ours.starts_with("v1/done") {
            Route::Login
        } else if ours.starts_with("registry/admin/") {
            Route::Admin
        } else if matches!(ours, "metrics" | "healthz" | "readyz") {
            Route::Ops
        } else {
            Route::Other
        }
    }

    /// `/:pkg…`, `/@scope/:pkg…` (or `/@scope%2f:pkg…`); `/` and `/downloads/…` are other.
    fn of_package_path(method: &Method, path: &str) -> Route {
        if path == "/" || path.starts_with("/downloads/") {
            return Route::Other;
        }
        let read = method == Method::GET || method == Method::HEAD;
        if read && path.ends_with(".tgz") && path.contains("/-/") {
            Route::Tarball
        } else if read {
            Route::Packument
        } else if method == Method::PUT && !path.contains("/-rev/") && !path.ends_with("/sync") {
            Route::Publish
        } else {
            Route::Other
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Route::Packument => "packument",
            Route::Tarball => "tarball",
            Route::Publish => "publish",
            Route::Search => "search",
            Route::Web => "web",
            Route::Login => "login",
            Route::Admin => "admin",
            Route::Ops => "ops",
            Route::Other => "other",
        }
    }
}

/// One (route, status class): how many requests took how long. The last slot is the
/// overflow past the last bound, so the count is the sum of the slots and `+Inf` always
/// equals it, however requests race with a scrape.
#[derive(Default)]
struct Cell {
    slots: [AtomicU64; BOUNDS_MICROS.len() + 1],
    sum_micros: AtomicU64,
}

/// The packument byte cache's lookups (embedded in the cache, which counts them).
#[derive(Default)]
pub struct CacheCounters {
    hits: AtomicU64,
    misses: AtomicU64,
}

impl CacheCounters {
    pub fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    /// A rendering had to be made (counted when it is stored).
    pub fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Default)]
pub struct HttpMetrics {
    cells: [[Cell; CLASSES.len()]; ROUTES.len()],
    publishes: AtomicU64,
    downloads: AtomicU64,
}

impl HttpMetrics {
    /// One answered request (its head ready to send).
    pub fn record(&self, route: Route, status: u16, took: Duration) {
        let class = usize::from(status / 100).clamp(2, 5) - 2;
        let cell = &self.cells[route as usize][class];
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let slot = BOUNDS_MICROS
            .iter()
            .position(|bound| micros <= *bound)
            .unwrap_or(BOUNDS_MICROS.len());
        cell.slots[slot].fetch_add(1, Ordering::Relaxed);
        cell.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// A publish that stored new versions (not an identical retry).
    pub fn published(&self) {
        self.publishes.fetch_add(1, Ordering::Relaxed);
    }

    /// A tarball sent in answer to a GET.
    pub fn downloaded(&self) {
        self.downloads.fetch_add(1, Ordering::Relaxed);
    }
}

/// The whole page: the HTTP series, then the core's.
pub fn render(state: &AppState) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let http = state.metrics();
    // Only the (route, class) pairs seen so far: at most 36, most never.
    let mut seen = Vec::new();
    for (r, route) in ROUTES.iter().enumerate() {
        for (c, class) in CLASSES.iter().enumerate() {
            let cell = &http.cells[r][c];
            let slots: Vec<u64> = cell
                .slots
                .iter()
                .map(|s| s.load(Ordering::Relaxed))
                .collect();
            let count: u64 = slots.iter().sum();
            if count > 0 {
                seen.push((route.name(), *class, slots, count, cell));
            }
        }
    }
    family(
        &mut out,
        "registry_http_requests_total",
        "counter",
        "HTTP requests answered, by route and status class.",
    );
    for (route, class, _, count, _) in &seen {
        sample(
            &mut out,
            "registry_http_requests_total",
            &[("route", *route), ("status", *class)],
            count,
        );
    }
    let name = "registry_http_request_duration_seconds";
    family(
        &mut out,
        name,
        "histogram",
        "Time from a request's arrival to its response head, by route and status class.",
    );
    for (route, class, slots, count, cell) in &seen {
        let (route, class) = (*route, *class);
        let mut cumulative = 0;
        for (bound, slot) in BOUNDS_LABELS.iter().zip(slots) {
            cumulative += slot;
            sample(
                &mut out,
                "registry_http_request_duration_seconds_bucket",
                &[("route", route), ("status", class), ("le", bound)],
                cumulative,
            );
        }
        let labels = [("route", route), ("status", class)];
        sample(
            &mut out,
            "registry_http_request_duration_seconds_bucket",
            &[("route", route), ("status", class), ("le", "+Inf")],
            count,
        );
        let sum = cell.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        sample(
            &mut out,
            "registry_http_request_duration_seconds_sum",
            &labels,
            sum,
        );
        sample(
            &mut out,
            "registry_http_request_duration_seconds_count",
            &labels,
            count,
        );
    }
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    counter(
        &mut out,
        "registry_publishes_total",
        "Publishes that stored new versions (identical retries not counted).",
        &[(&[], load(&http.publishes))],
    );
    counter(
        &mut out,
        "registry_downloads_total",
        "Tarballs sent in answer to a GET.",
        &[(&[], load(&http.downloads))],
    );
    let cache = state.packuments().counters();
    counter(
        &mut out,
        "registry_packument_cache_total",
        "Packument byte-cache lookups by result (a miss renders the document).",
        &[
            (&[("result", "hit")], load(&cache.hits)),
            (&[("result", "miss")], load(&cache.misses)),
        ],
    );
    registry_core::metrics::render(state.registry(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_classified_into_the_fixed_routes() {
        let get = Method::GET;
        for (method, path, route) in [
            (&get, "/lodash", Route::Packument),
            (&get, "/@scope%2fpkg", Route::Packument),
            (&get, "/@scope/pkg/1.0.0", Route::Packument),
            (
                &Method::HEAD,
                "/lodash/-/lodash-4.17.21.tgz",
                Route::Tarball,
            ),
            (&get, "/@s/p/-/p-1.0.0.tgz", Route::Tarball),
            (&Method::PUT, "/@s%2fp", Route::Publish),
            (&Method::PUT, "/p/-rev/3-abc", Route::Other),
            (&Method::DELETE, "/p/-rev/3-abc", Route::Other),
            (&get, "/-/v1/search", Route::Search),
            (&get, "/-/web/package/lodash", Route::Web),
            (&Method::PUT, "/-/user/org.couchdb.user:alice", Route::Login),
            (&Method::POST, "/-/v1/login", Route::Login),
            (&get, "/-/v1/done/abc", Route::Login),
            (&get, "/-/registry/admin/users", Route::Admin),
            (&get, "/-/metrics", Route::Ops),
            (&get, "/-/readyz", Route::Ops),
            (&get, "/-/ping", Route::Other),
            (&get, "/", Route::Other),
            (&get, "/downloads/point/last-week/p", Route::Other),
        ] {
            assert_eq!(Route::of(method, path), route, "{method} {path}");
        }
    }

    #[test]
    fn durations_fall_in_their_bucket_and_past_the_last_into_the_overflow() {
        let metrics = HttpMetrics::default();
        metrics.record(Route::Tarball, 200, Duration::from_micros(250));
        metrics.record(Route::Tarball, 204, Duration::from_micros(251));
        metrics.record(Route::Tarball, 200, Duration::from_secs(60));
        metrics.record(Route::Tarball, 404, Duration::from_millis(1));
        let cell = &metrics.cells[Route::Tarball as usize][0];
        let slots: Vec<u64> = cell
            .slots
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .collect();
        assert_eq!(slots[0], 1, "on the bound is in the bucket");
        assert_eq!(slots[1], 1);
        assert_eq!(slots[BOUNDS_MICROS.len()], 1, "the overflow");
        assert_eq!(slots.iter().sum::<u64>(), 3);
        let not_found = &metrics.cells[Route::Tarball as usize][2];
        assert_eq!(not_found.slots[2].load(Ordering::Relaxed), 1);
        assert_eq!(BOUNDS_LABELS.len(), BOUNDS_MICROS.len());
        // `record` indexes the cells by the enum's discriminant, `render` by this order.
        assert!(ROUTES
            .iter()
            .enumerate()
            .all(|(i, route)| *route as usize == i));
    }
}
