//! The core's operational counters (blob bytes, hook deliveries, database pool waits,
//! upstream requests) and the Prometheus text format they are exposed in by `GET /-/metrics`.
//!
//! Counters are plain atomics bumped with `Relaxed` ordering: a request pays one uncontended
//! add, no lock and no allocation. They are kept where the core can count them (the registry
//! owns one [`Metrics`], the store its [`PoolWaits`], each upstream its `Counters`); the HTTP
//! series, which only the daemon sees, are in the daemon's `metrics` module, which renders
//! both. The text format is written by hand: it is a few lines per series, and a crate would
//! bring a registry, locks and label maps that the fixed set of series here does not need.

use std::fmt::{Display, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::blobs::{Blob, BlobStore, StoredObject};
use crate::error::Result;
use crate::registry::Registry;

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Counters of the core, one per registry.
#[derive(Debug, Default)]
pub struct Metrics {
    blob_bytes_written: AtomicU64,
    blob_bytes_read: AtomicU64,
    hooks_delivered: AtomicU64,
    hooks_failed: AtomicU64,
}

impl Metrics {
    /// One hook delivery attempt: answered 2xx, or not (it is retried later).
    pub fn hook_attempt(&self, delivered: bool) {
        let counter = if delivered {
            &self.hooks_delivered
        } else {
            &self.hooks_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Times a caller found every pooled database connection taken and waited for one.
#[derive(Debug, Default)]
pub struct PoolWaits {
    waits: AtomicU64,
    wait_nanos: AtomicU64,
}

impl PoolWaits {
    pub fn record(&self, waited: Duration) {
        self.waits.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        self.wait_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// The blob store with its bytes counted, whatever the backend: wraps the real one.
pub struct MeteredBlobs {
    inner: Box<dyn BlobStore>,
    metrics: Arc<Metrics>,
}

impl MeteredBlobs {
    pub fn new(inner: Box<dyn BlobStore>, metrics: Arc<Metrics>) -> MeteredBlobs {
        MeteredBlobs { inner, metrics }
    }
}

impl BlobStore for MeteredBlobs {
    fn put(&self, sha512_hex: &str, bytes: &[u8]) -> Result<()> {
        self.inner.put(sha512_hex, bytes)?;
        add(&self.metrics.blob_bytes_written, bytes.len() as u64);
        Ok(())
    }

    fn open(&self, sha512_hex: &str) -> Result<(Blob, u64)> {
        let (blob, len) = self.inner.open(sha512_hex)?;
        // Counted when opened: whoever opens a blob reads it whole (a tarball sent, a backup
        // copied), except a HEAD request, which is not worth a second counter.
        add(&self.metrics.blob_bytes_read, len);
        Ok((blob, len))
    }

    fn contains(&self, sha512_hex: &str) -> bool {
        self.inner.contains(sha512_hex)
    }

    fn temp_dir(&self) -> PathBuf {
        self.inner.temp_dir()
    }

    fn put_file(&self, sha512_hex: &str, temp: &Path) -> Result<()> {
        // The size before the rename: afterwards `temp` is gone.
        let len = std::fs::metadata(temp).map(|m| m.len()).unwrap_or(0);
        self.inner.put_file(sha512_hex, temp)?;
        add(&self.metrics.blob_bytes_written, len);
        Ok(())
    }

    fn check(&self) -> Result<()> {
        self.inner.check()
    }

    fn list(&self) -> Result<Vec<StoredObject>> {
        self.inner.list()
    }

    fn delete(&self, object: &StoredObject) -> Result<()> {
        self.inner.delete(object)
    }

    fn opens_locally(&self) -> bool {
        self.inner.opens_locally()
    }
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// Writes the core's series in the text exposition format.
pub fn render(registry: &Registry, out: &mut String) {
    let m = &registry.metrics;
    counter(
        out,
        "registry_blob_written_bytes_total",
        "Bytes of tarballs written to the blob store.",
        &[(&[], get(&m.blob_bytes_written))],
    );
    counter(
        out,
        "registry_blob_read_bytes_total",
        "Bytes of blobs opened for reading (tarballs served, backups, doctor).",
        &[(&[], get(&m.blob_bytes_read))],
    );
    counter(
        out,
        "registry_hook_deliveries_total",
        "Hook delivery attempts by result (a failed one is retried with backoff).",
        &[
            (&[("result", "delivered")], get(&m.hooks_delivered)),
            (&[("result", "failed")], get(&m.hooks_failed)),
        ],
    );
    let waits = registry.store.pool_waits();
    counter(
        out,
        "registry_db_pool_waits_total",
        "Database reads that found every pooled connection taken and waited for one.",
        &[(&[], get(&waits.waits))],
    );
    family(
        out,
        "registry_db_pool_wait_seconds_total",
        "counter",
        "Time spent waiting for a pooled database connection.",
    );
    sample(
        out,
        "registry_db_pool_wait_seconds_total",
        &[],
        get(&waits.wait_nanos) as f64 / 1e9,
    );
    // One series per configured upstream: a bounded set, named by the configuration.
    let upstreams = registry.upstreams.all();
    let names: Vec<&str> = upstreams.iter().map(|u| u.name()).collect();
    let labels: Vec<[(&str, &str); 1]> = names.iter().map(|name| [("upstream", *name)]).collect();
    let per_upstream = |value: fn(&crate::upstream::client::Counters) -> &AtomicU64| {
        labels
            .iter()
            .zip(upstreams.iter())
            .map(|(labels, u)| (&labels[..], get(value(&u.counters))))
            .collect::<Vec<(&[(&str, &str)], u64)>>()
    };
    counter(
        out,
        "registry_upstream_requests_total",
        "Requests sent to each upstream registry.",
        &per_upstream(|c| &c.requests),
    );
    counter(
        out,
        "registry_upstream_failures_total",
        "Upstream requests that failed (no answer, a 5xx, or an invalid answer).",
        &per_upstream(|c| &c.failures),
    );
}

/// A counter family with its samples (label pairs, value).
pub fn counter(out: &mut String, name: &str, help: &str, samples: &[(&[(&str, &str)], u64)]) {
    family(out, name, "counter", help);
    for (labels, value) in samples {
        sample(out, name, labels, value);
    }
}

/// The `# HELP` and `# TYPE` lines of a family.
pub fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One sample line: `name{a="x",b="y"} value`.
pub fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl Display) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(key);
            out.push_str("=\"");
            escape_label(out, value);
            out.push('"');
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// Label values escape backslash, double quote and newline (the format's only rule).
fn escape_label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_written_in_the_text_format_with_escaped_labels() {
        let mut out = String::new();
        counter(
            &mut out,
            "x_total",
            "An example.",
            &[(&[("a", "plain"), ("b", "q\"u\\o\nte")], 3), (&[], 0)],
        );
        assert_eq!(
            out,
            "# HELP x_total An example.\n# TYPE x_total counter\n\
             x_total{a=\"plain\",b=\"q\\\"u\\\\o\\nte\"} 3\nx_total 0\n"
        );
    }

    #[test]
    fn pool_waits_add_up_count_and_time() {
        let waits = PoolWaits::default();
        waits.record(Duration::from_millis(1500));
        waits.record(Duration::from_millis(500));
        assert_eq!(get(&waits.waits), 2);
        assert_eq!(get(&waits.wait_nanos), 2_000_000_000);
    }
}
