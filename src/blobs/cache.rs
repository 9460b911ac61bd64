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
    pub fn contains(&self, sha512_hex: &str) -> bool {
        self.state
            .lock()
            .is_ok_and(|state| state.blobs.contains_key(sha512_hex))
    }

    pub fn get(&self, sha512_hex: &str) -> Option<Bytes> {
        self.state.lock().ok()?.blobs.get(sha512_hex).cloned()
    }

    /// `blob`, read whole into the cache when it has at most [`MAX_CACHED_BLOB`] bytes; as
    /// it was otherwise. A file that fails to read is sent from the file instead (its reader
    /// then meets the fault); a bucket's stream cannot be read again, so its failure is the
    /// answer's (the client may retry).
    pub fn fill(&self, sha512_hex: &str, blob: Blob, len: u64) -> crate::error::Result<Blob> {
        if len > MAX_CACHED_BLOB {
            return Ok(blob);
        }
        let mut bytes = Vec::with_capacity(len as usize);
        match blob {
            Blob::File(mut file) => {
                if file.read_to_end(&mut bytes).is_err() || bytes.len() as u64 != len {
                    let _ = file.seek(SeekFrom::Start(0));
                    return Ok(Blob::File(file));
                }
            }
            // Small tarballs from S3 are the common case of a bucket-backed registry: without
            // this every download of one would be a GET to the bucket.
            Blob::Stream(mut stream) => {
                stream.read_to_end(&mut bytes).map_err(|e| {
                    crate::error::Error::StorageUnavailable(format!(
                        "the blob store failed while sending a tarball: {e}"
                    ))
                })?;
                if bytes.len() as u64 != len {
                    return Err(crate::error::Error::StorageUnavailable(format!(
                        "the blob store sent {} bytes of a {len}-byte tarball",
                        bytes.len()
                    )));
                }
            }
            Blob::Bytes(_) => return Ok(blob),
        }
        let bytes = Bytes::from(bytes);
        self.keep(sha512_hex, bytes.clone());
        Ok(Blob::Bytes(bytes))
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
