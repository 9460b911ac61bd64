//! The records of the proxy's cache, as the store hands them out.

/// One cached answer of an upstream for a name and flavor.
#[derive(Debug, Clone)]
pub struct CachedDocument {
    pub upstream: String,
    /// False: the upstream answered 404, remembered for `max_age`.
    pub found: bool,
    /// The document with tarball URLs under the placeholder origin (empty for a 404).
    pub body: Vec<u8>,
    /// Ours: a digest of `body`, the ETag the daemon's byte cache is keyed by.
    pub etag: String,
    /// The upstream's validators, sent back when revalidating.
    pub upstream_etag: Option<String>,
    pub last_modified: Option<String>,
    /// When the upstream last answered for it (200, 304 or 404), in Unix milliseconds.
    pub fetched_at_ms: i64,
}

/// A new answer to store.
pub struct DocumentUpdate<'a> {
    pub upstream: &'a str,
    pub found: bool,
    pub body: Option<&'a [u8]>,
    pub etag: &'a str,
    pub upstream_etag: Option<&'a str>,
    pub last_modified: Option<&'a str>,
    /// JSON `{version: [url, integrity, shasum]}`.
    pub dists: Option<&'a str>,
    pub fetched_at_ms: i64,
}

/// A verified tarball in the blob store.
#[derive(Debug, Clone)]
pub struct CachedTarball {
    pub upstream: String,
    pub sha512_hex: String,
    pub size: u64,
}

/// What one upstream has in the cache.
#[derive(Debug, Clone, Default)]
pub struct UpstreamUsage {
    pub upstream: String,
    pub packages: u64,
    pub tarballs: u64,
    pub tarball_bytes: u64,
}
