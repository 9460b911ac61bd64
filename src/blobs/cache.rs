//! Hot tarballs' bytes in memory. A blob never changes (its name is its sha512), so a cached
//! copy is never stale: whether a reader may have it is decided before, from the database.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Mutex;

use bytes::Bytes;

use super::Blob;

/// Blobs up to this size are kept; larger ones are streamed from the store every time.
const MAX_CACHED_BLOB: u64 = 256 * 1024;
/// Bytes kept in all; past it, arbitrary entries make room.
const MAX_CACHED_BYTES: usize = 64 * 1024 * 1024;

#[derive(Default)]
pub struct BlobCache {
    state: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    blobs: HashMap<String, Bytes>,
    bytes: usize,
}

impl BlobCache {
    pub fn get(&self, sha512_hex: &str) -> Option<Bytes> {
        self.state.lock().ok()?.blobs.get(sha512_hex).cloned()
    }

    /// `blob`, read whole into the cache when it is a local file of at most
    /// [`MAX_CACHED_BLOB`] bytes; as it was otherwise (or when reading it fails: its reader
    /// then meets the error).
    pub fn fill(&self, sha512_hex: &str, blob: Blob, len: u64) -> Blob {
        let Blob::File(mut file) = blob else {
            return blob;
        };
        if len > MAX_CACHED_BLOB {
            return Blob::File(file);
        }
        let mut bytes = Vec::with_capacity(len as usize);
        if file.read_to_end(&mut bytes).is_err() || bytes.len() as u64 != len {
            // Sent from the file instead, whose reader then meets the fault itself.
            let _ = file.seek(SeekFrom::Start(0));
            return Blob::File(file);
        }
        let bytes = Bytes::from(bytes);
        self.keep(sha512_hex, bytes.clone());
        Blob::Bytes(bytes)
    }

    fn keep(&self, sha512_hex: &str, bytes: Bytes) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        while state.bytes + bytes.len() > MAX_CACHED_BYTES {
            let Some(victim) = state.blobs.keys().next().cloned() else {
                break;
            };
            if let Some(old) = state.blobs.remove(&victim) {
                state.bytes -= old.len();
            }
        }
        state.bytes += bytes.len();
        if let Some(old) = state.blobs.insert(sha512_hex.to_string(), bytes) {
            state.bytes -= old.len();
        }
    }
}
