//! Content-addressed tarball storage. A blob is named by the hex sha512 of its bytes, so the
//! name is its checksum and a second publish of the same bytes is free.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha512};

use crate::error::{Error, Result};

/// Where tarballs live. A trait because an S3-compatible store is the planned second backend.
pub trait BlobStore: Send + Sync {
    /// Stores `bytes`, whose sha512 (hex) the caller has computed, durably: when this returns,
    /// the blob survives a crash.
    fn put(&self, sha512_hex: &str, bytes: &[u8]) -> Result<()>;
    /// Opens a blob for streaming, with its length.
    fn open(&self, sha512_hex: &str) -> Result<(File, u64)>;
    fn contains(&self, sha512_hex: &str) -> bool;
    /// A directory for temporary files that [`BlobStore::put_file`] can adopt.
    fn temp_dir(&self) -> PathBuf;
    /// Stores the file at `temp` (in [`BlobStore::temp_dir`], already synced, whose sha512
    /// the caller has computed while writing it) durably, by renaming it into place.
    fn put_file(&self, sha512_hex: &str, temp: &Path) -> Result<()>;
    /// Readiness: the store can be reached and written (`/-/readyz`).
    fn check(&self) -> Result<()>;
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

    /// `blobs/ab/cd/abcd…`; the id is checked to be 128 hex digits, so no request-derived text
    /// ever becomes a path.
    fn path_of(&self, sha512_hex: &str) -> Result<PathBuf> {
        if sha512_hex.len() != 128 || !sha512_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Storage(format!(
                "not a sha512 blob id: {sha512_hex:?}"
            )));
        }
        Ok(self
            .root
            .join(&sha512_hex[0..2])
            .join(&sha512_hex[2..4])
            .join(sha512_hex))
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

    fn open(&self, sha512_hex: &str) -> Result<(File, u64)> {
        let path = self.path_of(sha512_hex)?;
        let file = File::open(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::MissingBlob(format!("blob {sha512_hex} is missing from the blob store"))
            } else {
                Error::from(e)
            }
        })?;
        let len = file.metadata()?.len();
        Ok((file, len))
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

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
        let (mut file, len) = blobs.open(&id)?;
        assert_eq!(len, bytes.len() as u64);
        let mut back = Vec::new();
        file.read_to_end(&mut back)?;
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
}
