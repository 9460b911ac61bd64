//! Content-addressed tarball storage. A blob is named by the hex sha512 of its bytes, so the
//! name is its checksum and a second publish of the same bytes is free. Two stores: files
//! under the data directory (the default) and an S3-compatible bucket (`blobs_url`, `s3.rs`).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::stream::{BoxStream, Stream, StreamExt};
use sha2::{Digest, Sha512};

use crate::error::{Error, Result};

mod cache;
mod s3;
pub use cache::BlobCache;
pub use s3::S3BlobStore;

/// Where tarballs live: the data directory's files or an S3-compatible bucket.
pub trait BlobStore: Send + Sync {
    /// Stores `bytes`, whose sha512 (hex) the caller has computed, durably: when this returns,
    /// the blob survives a crash.
    fn put(&self, sha512_hex: &str, bytes: &[u8]) -> Result<()>;
    /// Opens a blob for streaming, with its length.
    fn open(&self, sha512_hex: &str) -> Result<(Blob, u64)>;
    fn contains(&self, sha512_hex: &str) -> bool;
    /// A directory for temporary files that [`BlobStore::put_file`] can adopt.
    fn temp_dir(&self) -> PathBuf;
    /// Stores the file at `temp` (in [`BlobStore::temp_dir`], already synced, whose sha512
    /// the caller has computed while writing it) durably: renamed into place, or uploaded.
    fn put_file(&self, sha512_hex: &str, temp: &Path) -> Result<()>;
    /// Readiness: the store can be reached and written (`/-/readyz`).
    fn check(&self) -> Result<()>;
    /// Every object the store holds (blobs and leftover temporary files), for `registry gc`.
    fn list(&self) -> Result<Vec<StoredObject>>;
    /// Deletes one object [`BlobStore::list`] returned; one already gone is not an error.
    fn delete(&self, object: &StoredObject) -> Result<()>;
    /// Whether [`BlobStore::open`] is a local `open(2)`, cheap enough for an async thread;
    /// false where it is a network round trip, which must run on the blocking pool.
    fn opens_locally(&self) -> bool;
}

/// One object in a store, as [`BlobStore::list`] found it.
#[derive(Debug, Clone)]
pub struct StoredObject {
    /// The last component of its name: a blob's sha512, or a temporary file's name.
    pub name: String,
    /// Where it is, for people: a file path or `s3://bucket/key`.
    pub location: String,
    pub size: u64,
    pub modified: Option<SystemTime>,
}

/// An open blob. A local file stays a `File` so that the daemon's fast path (one read for
/// small tarballs, tokio's file streaming for large ones) is the same code as before the S3
/// store existed; a remote blob arrives chunk by chunk and is never held whole in memory; a
/// hot small one is already in memory ([`BlobCache`]).
pub enum Blob {
    File(File),
    Stream(BlobStream),
    Bytes(Bytes),
}

impl Blob {
    /// The blob as a blocking reader, for work off the async threads (doctor, backup).
    pub fn into_reader(self) -> Box<dyn Read + Send> {
        match self {
            Blob::File(file) => Box::new(file),
            Blob::Stream(stream) => Box::new(stream),
            Blob::Bytes(bytes) => Box::new(io::Cursor::new(bytes)),
        }
    }
}

/// The body of a remote blob. As a `Stream` it is polled by the daemon's runtime; as a `Read`
/// it blocks on the store's own runtime, so it must not be read on an async thread.
pub struct BlobStream {
    /// In a mutex only to be `Sync`, which a response body must be; it is never locked, only
    /// reached through `get_mut` (this value is owned by whoever reads it).
    chunks: Mutex<BoxStream<'static, io::Result<Bytes>>>,
    runtime: tokio::runtime::Handle,
    pending: Bytes,
}

impl BlobStream {
    pub(crate) fn new(
        chunks: BoxStream<'static, io::Result<Bytes>>,
        runtime: tokio::runtime::Handle,
    ) -> BlobStream {
        BlobStream {
            chunks: Mutex::new(chunks),
            runtime,
            pending: Bytes::new(),
        }
    }
}

impl BlobStream {
    fn chunks_mut(&mut self) -> &mut BoxStream<'static, io::Result<Bytes>> {
        self.chunks
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Stream for BlobStream {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if !self.pending.is_empty() {
            let chunk = std::mem::take(&mut self.pending);
            return Poll::Ready(Some(Ok(chunk)));
        }
        self.chunks_mut().poll_next_unpin(cx)
    }
}

impl Read for BlobStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pending.is_empty() {
            let runtime = self.runtime.clone();
            match runtime.block_on(self.chunks_mut().next()) {
                Some(chunk) => self.pending = chunk?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending.split_to(n));
        Ok(n)
    }
}

/// `ab/cd/abcd…`, the relative name of a blob in either store; the id is checked to be 128
/// hex digits, so no request-derived text ever becomes a path or a key.
pub fn blob_relative_path(sha512_hex: &str) -> Result<String> {
    if sha512_hex.len() != 128 || !sha512_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Storage(format!(
            "not a sha512 blob id: {sha512_hex:?}"
        )));
    }
    Ok(format!(
        "{}/{}/{sha512_hex}",
        &sha512_hex[0..2],
        &sha512_hex[2..4]
    ))
}

pub struct FsBlobStore {
    root: PathBuf,
}

impl FsBlobStore {
    pub fn open(root: &Path) -> Result<FsBlobStore> {
        fs::create_dir_all(root.join("tmp"))?;
        Ok(FsBlobStore {
            root: root.to_path_buf(),
        })
    }

    fn path_of(&self, sha512_hex: &str) -> Result<PathBuf> {
        Ok(self.root.join(blob_relative_path(sha512_hex)?))
    }
}

impl BlobStore for FsBlobStore {
    fn put(&self, sha512_hex: &str, bytes: &[u8]) -> Result<()> {
        let target = self.path_of(sha512_hex)?;
        if target.exists() {
            return Ok(());
        }
        if hex::encode(Sha512::digest(bytes)) != sha512_hex {
            return Err(Error::Storage("blob content does not match its id".into()));
        }
        let dir = target
            .parent()
            .ok_or_else(|| Error::Storage("blob path has no parent".into()))?;
        fs::create_dir_all(dir)?;
        // Write to a temporary file, fsync it, rename into place, fsync the directory: a crash
        // leaves either no blob or a whole one, never a torn file under the final name.
        let tmp =
            self.root
                .join("tmp")
                .join(format!("{}.{}", &sha512_hex[..32], rand::random::<u64>()));
        let result = (|| {
            let mut file = File::create(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            fs::rename(&tmp, &target)?;
            File::open(dir)?.sync_all()?;
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    fn open(&self, sha512_hex: &str) -> Result<(Blob, u64)> {
        let path = self.path_of(sha512_hex)?;
        let file = File::open(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::MissingBlob(format!("blob {sha512_hex} is missing from the blob store"))
            } else {
                Error::from(e)
            }
        })?;
        let len = file.metadata()?.len();
        Ok((Blob::File(file), len))
    }

    fn contains(&self, sha512_hex: &str) -> bool {
        self.path_of(sha512_hex)
            .map(|p| p.is_file())
            .unwrap_or(false)
    }

    fn temp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn put_file(&self, sha512_hex: &str, temp: &Path) -> Result<()> {
        let target = self.path_of(sha512_hex)?;
        if target.exists() {
            return Ok(());
        }
        let dir = target
            .parent()
            .ok_or_else(|| Error::Storage("blob path has no parent".into()))?;
        fs::create_dir_all(dir)?;
        fs::rename(temp, &target)?;
        File::open(dir)?.sync_all()?;
        Ok(())
    }

    fn check(&self) -> Result<()> {
        // A file written where publishes write theirs: a full or read-only disk, or a
        // directory gone, shows here as it would on the next publish.
        let probe = self
            .temp_dir()
            .join(format!("readyz.{}", rand::random::<u64>()));
        let written = File::create(&probe).and_then(|mut file| file.write_all(b"ok"));
        let removed = fs::remove_file(&probe);
        written.and(removed).map_err(|e| {
            Error::StorageUnavailable(format!(
                "the blob store cannot write in {}: {e}",
                self.temp_dir().display()
            ))
        })
    }

    fn list(&self) -> Result<Vec<StoredObject>> {
        let mut objects = Vec::new();
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            for entry in entries {
                let entry = entry?;
                let meta = entry.metadata()?;
                let path = entry.path();
                if meta.is_dir() {
                    stack.push(path);
                    continue;
                }
                objects.push(StoredObject {
                    name: entry.file_name().to_string_lossy().into_owned(),
                    location: path.display().to_string(),
                    size: meta.len(),
                    modified: meta.modified().ok(),
                });
            }
        }
        Ok(objects)
    }

    fn delete(&self, object: &StoredObject) -> Result<()> {
        // Only what `list` found under the root: a location from elsewhere is refused.
        let path = PathBuf::from(&object.location);
        if !path.starts_with(&self.root) {
            return Err(Error::Storage(format!(
                "{} is not in the blob store",
                object.location
            )));
        }
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn opens_locally(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_reads_back_by_sha512() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let blobs = FsBlobStore::open(dir.path())?;
        let bytes = b"a tarball".to_vec();
        let id = hex::encode(Sha512::digest(&bytes));
        assert!(!blobs.contains(&id));
        blobs.put(&id, &bytes)?;
        blobs.put(&id, &bytes)?; // idempotent
        assert!(blobs.contains(&id));
        let (blob, len) = blobs.open(&id)?;
        assert!(
            matches!(blob, Blob::File(_)),
            "the fs store keeps the file path"
        );
        assert_eq!(len, bytes.len() as u64);
        let mut back = Vec::new();
        blob.into_reader().read_to_end(&mut back)?;
        assert_eq!(back, bytes);
        assert_eq!(fs::read_dir(dir.path().join("tmp"))?.count(), 0);
        Ok(())
    }

    #[test]
    fn the_check_writes_and_removes_a_file_and_fails_when_it_cannot() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let blobs = FsBlobStore::open(dir.path())?;
        blobs.check()?;
        assert_eq!(fs::read_dir(dir.path().join("tmp"))?.count(), 0);
        // A file where the directory should be: refused even to root, unlike a chmod.
        fs::remove_dir(dir.path().join("tmp"))?;
        fs::write(dir.path().join("tmp"), b"")?;
        let err = blobs
            .check()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("cannot write in"), "{err}");
        Ok(())
    }

    #[test]
    fn refuses_ids_that_are_not_sha512_hex_and_content_that_does_not_match() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let blobs = FsBlobStore::open(dir.path())?;
        assert!(blobs.put("../../etc/passwd", b"x").is_err());
        assert!(blobs.open("../x").is_err());
        let wrong = hex::encode(Sha512::digest(b"other"));
        assert!(blobs.put(&wrong, b"x").is_err());
        Ok(())
    }

    #[test]
    fn lists_and_deletes_what_it_holds_and_checks_the_temp_dir() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let blobs = FsBlobStore::open(dir.path())?;
        let id = hex::encode(Sha512::digest(b"listed"));
        blobs.put(&id, b"listed")?;
        blobs.check()?;
        let listed = blobs.list()?;
        assert_eq!(
            listed.len(),
            1,
            "the readiness probe leaves nothing: {listed:?}"
        );
        assert_eq!(listed[0].name, id);
        assert_eq!(listed[0].size, 6);
        blobs.delete(&listed[0])?;
        blobs.delete(&listed[0])?; // already gone
        assert!(!blobs.contains(&id));
        let outside = StoredObject {
            location: "/etc/passwd".into(),
            ..listed[0].clone()
        };
        assert!(blobs.delete(&outside).is_err());
        Ok(())
    }

    #[test]
    fn check_fails_when_the_temp_dir_cannot_be_written() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let blobs = FsBlobStore::open(dir.path())?;
        fs::remove_dir(dir.path().join("tmp"))?;
        assert!(blobs.check().is_err());
        Ok(())
    }
}
