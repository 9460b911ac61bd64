//! Hot packuments as ready-to-send bytes (plain and gzip'd), keyed by package, flavor and the
//! origin put into tarball URLs. Each entry remembers the stored ETag it was rendered from; a
//! read checks that ETag against the database's current one first (remembered until the next
//! commit, else one indexed lookup), so writes made by another process (the CLI's local
//! backend) are seen at once.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use registry_core::packages::packument::with_origin;
use registry_core::packages::packument::PackumentFlavor;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::metrics::CacheCounters;

/// Past this many cached bytes the cache starts over; hot entries come back on their next read.
const MAX_CACHED_BYTES: usize = 256 * 1024 * 1024;

pub struct Rendered {
    pub etag: String,
    pub json: Bytes,
    /// The package was fully unpublished and this is its tombstone.
    pub tombstone: bool,
    gzip: OnceLock<Bytes>,
    versions: OnceLock<Result<VersionIndex, String>>,
}

/// Where each version's manifest lies in a rendered full document, and what each dist-tag
/// names: `GET /:pkg/:version` answers a slice of the cached bytes instead of parsing the whole
/// document (thousands of versions) on every request.
struct VersionIndex {
    manifests: HashMap<String, Range<usize>>,
    tags: HashMap<String, String>,
}

impl VersionIndex {
    fn of(json: &[u8]) -> Result<VersionIndex, serde_json::Error> {
        #[derive(Deserialize)]
        struct Document<'a> {
            #[serde(rename = "dist-tags", default)]
            tags: HashMap<String, serde_json::Value>,
            #[serde(borrow, default)]
            versions: HashMap<Cow<'a, str>, &'a RawValue>,
        }
        let document: Document = serde_json::from_slice(json)?;
        let start = json.as_ptr() as usize;
        let manifests = document
            .versions
            .into_iter()
            .map(|(version, raw)| {
                // A borrowed RawValue is a slice of `json` itself.
                let offset = raw.get().as_ptr() as usize - start;
                (version.into_owned(), offset..offset + raw.get().len())
            })
            .collect();
        let tags = document
            .tags
            .into_iter()
            .filter_map(|(tag, version)| Some((tag, version.as_str()?.to_string())))
            .collect();
        Ok(VersionIndex { manifests, tags })
    }
}

impl Rendered {
    pub fn render(
        stored_json: &[u8],
        stored_etag: &str,
        origin: &str,
        tombstone: bool,
    ) -> Rendered {
        let origin_digest = hex::encode(origin_fingerprint(origin.as_bytes()));
        Rendered {
            etag: format!("\"{}-{origin_digest}\"", stored_etag.trim_matches('"')),
            json: Bytes::from(with_origin(stored_json, origin)),
            tombstone,
            gzip: OnceLock::new(),
            versions: OnceLock::new(),
        }
    }

    /// The manifest of the version `spec` names (a version, or a dist-tag), as bytes of this
    /// full document; `Ok(None)` when there is no such version or tag. The index is built on
    /// first use. An error says the document is not a JSON object.
    pub fn version_manifest(&self, spec: &str) -> Result<Option<Bytes>, String> {
        let index = self
            .versions
            .get_or_init(|| VersionIndex::of(&self.json).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(Clone::clone)?;
        let version = index.tags.get(spec).map_or(spec, String::as_str);
        Ok(index
            .manifests
            .get(version)
            .map(|range| self.json.slice(range.clone())))
    }

    /// The gzip'd bytes, compressed once on first use.
    pub fn gzip(&self) -> Bytes {
        self.gzip
            .get_or_init(|| {
                let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
                // Writing to a Vec cannot fail.
                let _ = encoder.write_all(&self.json);
                Bytes::from(encoder.finish().unwrap_or_default())
            })
            .clone()
    }
}

fn origin_fingerprint(bytes: &[u8]) -> [u8; 4] {
    // A cheap, stable fingerprint of the origin; FNV-1a is plenty to tell origins apart.
    let mut hash: u32 = 0x811c_9dc5;
    for b in bytes {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash.to_be_bytes()
}

type Key = (String, PackumentFlavor, String);

#[derive(Default)]
pub struct PackumentCache {
    state: Mutex<CacheState>,
    counters: CacheCounters,
}

#[derive(Default)]
struct CacheState {
    entries: HashMap<Key, (String, Arc<Rendered>)>,
    bytes: usize,
}

impl PackumentCache {
    /// The cached rendering, if it was made from the document whose ETag is `stored_etag`.
    pub fn get(
        &self,
        name: &str,
        flavor: PackumentFlavor,
        origin: &str,
        stored_etag: &str,
    ) -> Option<Arc<Rendered>> {
        let state = self.state.lock().ok()?;
        let key = (name.to_string(), flavor, origin.to_string());
        match state.entries.get(&key) {
            Some((etag, rendered)) if etag == stored_etag => {
                self.counters.hit();
                Some(rendered.clone())
            }
            _ => None,
        }
    }

    /// Hits and misses: a miss is counted by [`PackumentCache::insert`], as every rendering
    /// stored follows one (a lookup that misses and is retried is counted once).
    pub fn counters(&self) -> &CacheCounters {
        &self.counters
    }

    pub fn insert(
        &self,
        name: &str,
        flavor: PackumentFlavor,
        origin: &str,
        stored_etag: &str,
        rendered: Arc<Rendered>,
    ) {
        self.counters.miss();
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let size = rendered.json.len();
        if state.bytes + size > MAX_CACHED_BYTES {
            state.entries.clear();
            state.bytes = 0;
        }
        let key = (name.to_string(), flavor, origin.to_string());
        if let Some((_, old)) = state
            .entries
            .insert(key, (stored_etag.to_string(), rendered))
        {
            state.bytes = state.bytes.saturating_sub(old.json.len());
        }
        state.bytes += size;
    }
}
