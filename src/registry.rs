//! The registry as one value: configuration, database and blob store, opened together from
//! the data directory. Read operations that are not worth a module of their own live here.

use std::sync::Arc;

use crate::accounts::auth::{CredentialCache, Identity};
use crate::accounts::throttle::LoginThrottle;
use crate::blobs::{Blob, BlobCache, BlobStore, FsBlobStore, S3BlobStore};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::metrics::{MeteredBlobs, Metrics};
use crate::packages::names::{validate_version, PackageName};
use crate::packages::packument::Packument;
use crate::store::{CommitStamp, Db, PackumentFlavor, ReadMemo, ReadState, RegistryInfo, Store};
use crate::upstream::proxy::Upstreams;

pub struct Registry {
    pub config: Config,
    pub store: Store,
    pub blobs: Box<dyn BlobStore>,
    pub credentials: CredentialCache,
    /// Failed-login lockouts, shared by every password check the daemon makes.
    pub login_throttle: LoginThrottle,
    /// The registries whose packages are proxied and cached (none by default).
    pub upstreams: Upstreams,
    /// The core's counters for `/-/metrics` (the blob store's are counted by its wrapper).
    pub metrics: Arc<Metrics>,
    /// What reads found, while nothing has been committed since.
    pub(crate) hot_reads: HotReads,
}

/// The answers of the reads every install makes, kept between requests while the database is
/// unchanged ([`ReadMemo`]), and the bytes of hot tarballs.
pub(crate) struct HotReads {
    /// A package's read state (block, revision, restricted), by name.
    packages: ReadMemo<ReadState<(i64, String)>>,
    /// A tarball's read state, by name and file.
    tarballs: ReadMemo<ReadState<(String, u64)>>,
    /// The registry a name was synced from, by name (see `upstream::registries`).
    pub(crate) synced_sources: ReadMemo<Option<String>>,
    tarball_bytes: BlobCache,
}

/// Answers kept per kind of read: enough for every name of a large registry, and a bound on
/// what a flood of made-up names (a 404 scan) can make the memo hold.
const HOT_READS: usize = 65_536;

impl Default for HotReads {
    fn default() -> Self {
        HotReads {
            packages: ReadMemo::new(HOT_READS),
            tarballs: ReadMemo::new(HOT_READS),
            synced_sources: ReadMemo::new(HOT_READS),
            tarball_bytes: BlobCache::default(),
        }
    }
}

/// An open tarball, ready to stream.
pub struct TarballFile {
    pub blob: Blob,
    pub len: u64,
    pub sha512_hex: String,
    /// The version the file is the tarball of (downloads are counted per version).
    pub version: String,
}

impl Registry {
    /// Opens the registry in `config.data_dir`, creating the directory and database on first
    /// use. Safe to call while another process (the daemon) has the same data open.
    pub fn open(config: Config) -> Result<Registry> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            Error::Storage(format!(
                "cannot create the data directory {}: {e}",
                config.data_dir.display()
            ))
        })?;
        let store = match &config.database_url {
            Some(url) => Store::open_postgres(url)?,
            None => Store::open(&config.database_path())?,
        };
        // Packages from before the search index existed are indexed once, here.
        crate::packages::search::index_pending(&store)?;
        crate::packages::packument::fill_pending(&store)?;
        let blobs: Box<dyn BlobStore> = match config.s3()? {
            // Temporary files (a proxied tarball being downloaded) stay local either way.
            Some(s3) => Box::new(S3BlobStore::open(&s3, &config.blobs_dir().join("tmp"))?),
            None => Box::new(FsBlobStore::open(&config.blobs_dir())?),
        };
        let upstreams = Upstreams::new(&config)?;
        let metrics = Arc::new(Metrics::default());
        Ok(Registry {
            config,
            store,
            blobs: Box::new(MeteredBlobs::new(blobs, metrics.clone())),
            metrics,
            credentials: CredentialCache::default(),
            login_throttle: LoginThrottle::default(),
            upstreams,
            hot_reads: HotReads::default(),
        })
    }

    pub fn info(&self, reader: Option<&Identity>) -> Result<RegistryInfo> {
        self.store.read(|db| {
            let seen = crate::access::visibility(db, reader)?;
            db.registry_info(&seen)
        })
    }

    /// The ETag the document has now (`None`: no such package), without assembling it; a
    /// blocked package's 451; a 404 for a restricted package `reader` may not see.
    pub fn packument_etag(
        &self,
        name: &PackageName,
        flavor: PackumentFlavor,
        reader: Option<&Identity>,
    ) -> Result<Option<String>> {
        let stamp = self.store.commit_stamp();
        self.packument_etag_via(Reach::Wait, name, flavor, reader, stamp)
            .unwrap_or_else(|| Err(unreached()))
    }

    /// [`Registry::packument_etag`] on the calling thread: the package's state from
    /// [`HotReads`] (as of `stamp`, from [`Store::commit_stamp`]) or from a connection free at
    /// once. Whether a reader may see a restricted package is theirs alone, so it is asked of
    /// the database every time.
    pub fn packument_etag_now(
        &self,
        name: &PackageName,
        flavor: PackumentFlavor,
        reader: Option<&Identity>,
        stamp: Option<CommitStamp>,
    ) -> Option<Result<Option<String>>> {
        self.packument_etag_via(Reach::Now, name, flavor, reader, stamp)
    }

    /// The database's answers as of `stamp`, remembered in [`HotReads`] until the next commit
    /// (by any process or node), whichever way `reach` reads it.
    fn packument_etag_via(
        &self,
        reach: Reach,
        name: &PackageName,
        flavor: PackumentFlavor,
        reader: Option<&Identity>,
        stamp: Option<CommitStamp>,
    ) -> Option<Result<Option<String>>> {
        let read = || self.query(reach, |db| db.package_read_state(name.as_str()));
        let state = match self
            .hot_reads
            .packages
            .read_through(stamp, name.to_string(), read)?
        {
            Ok(state) => state,
            Err(e) => return Some(Err(e)),
        };
        if state.restricted && reader.is_some() {
            return self.query(reach, |db| {
                crate::packages::packument::etag_of_state(&state, name.as_str(), flavor, |id| {
                    crate::access::require_read(db, reader, id, name.as_str(), true)
                })
            });
        }
        Some(crate::packages::packument::etag_of_state(
            &state,
            name.as_str(),
            flavor,
            |_| Err(crate::access::hidden(name.as_str())),
        ))
    }

    pub fn packument(&self, name: &PackageName, flavor: PackumentFlavor) -> Result<Packument> {
        self.store
            .read(|db| crate::packages::packument::build_current(db, name.as_str(), flavor))?
            .ok_or_else(|| package_not_found(name))
    }

    /// Opens the tarball named `file` (`bar-1.0.0.tgz`) of package `name`; a blocked
    /// package's 451; a 404 for a restricted package `reader` may not see; `None` when the
    /// package is not local (an upstream may serve it).
    pub fn tarball(
        &self,
        name: &PackageName,
        file: &str,
        reader: Option<&Identity>,
    ) -> Result<Option<TarballFile>> {
        let stamp = self.store.commit_stamp();
        self.tarball_via(Reach::Wait, name, file, reader, stamp)
            .unwrap_or_else(|| Err(unreached()))
    }

    /// [`Registry::tarball`] on the calling thread: the tarball's state from [`HotReads`] or a
    /// connection free at once (a restricted package's reader is checked on one every time);
    /// the bytes from memory, else read now when small (one `open(2)` and `read(2)`), else
    /// streamed by whoever sends them. `None` (run it on the blocking pool) when the state
    /// needs a connection none is free for, or the bytes are in a bucket and not in memory
    /// (the open is a GET). `stamp` as for [`Registry::packument_etag_now`].
    pub fn tarball_now(
        &self,
        name: &PackageName,
        file: &str,
        reader: Option<&Identity>,
        stamp: Option<CommitStamp>,
    ) -> Option<Result<Option<TarballFile>>> {
        self.tarball_via(Reach::Now, name, file, reader, stamp)
    }

    fn tarball_via(
        &self,
        reach: Reach,
        name: &PackageName,
        file: &str,
        reader: Option<&Identity>,
        stamp: Option<CommitStamp>,
    ) -> Option<Result<Option<TarballFile>>> {
        let Some(version) = version_of_tarball(name, file) else {
            return Some(Err(tarball_not_found(name, file)));
        };
        let read = || self.query(reach, |db| db.tarball_read_state(name.as_str(), &version));
        let state =
            match self
                .hot_reads
                .tarballs
                .read_through(stamp, format!("{name}/{file}"), read)?
            {
                Ok(state) => state,
                Err(e) => return Some(Err(e)),
            };
        if let Some(id) = reader_to_check(&state) {
            let allowed = self.query(reach, |db| {
                crate::access::require_read(db, reader, id, name.as_str(), true)
            })?;
            if let Err(e) = allowed {
                return Some(Err(e));
            }
        }
        if let (Reach::Now, Some((sha512_hex, _))) = (reach, &state.found) {
            // A bucket's open is a GET: on the blocking pool, unless the bytes are in memory.
            if !self.blobs.opens_locally() && !self.hot_reads.tarball_bytes.contains(sha512_hex) {
                return None;
            }
        }
        Some(self.open_tarball(name, file, version, state))
    }

    pub(crate) fn query<T>(
        &self,
        reach: Reach,
        f: impl FnOnce(&Db<'_>) -> Result<T>,
    ) -> Option<Result<T>> {
        match reach {
            Reach::Now => self.store.read_now(f),
            Reach::Wait => Some(self.store.read(f)),
        }
    }

    fn open_tarball(
        &self,
        name: &PackageName,
        file: &str,
        version: String,
        state: ReadState<(String, u64)>,
    ) -> Result<Option<TarballFile>> {
        if let Some(reason) = state.block_reason {
            return Err(crate::packages::blocks::blocked(name.as_str(), &reason));
        }
        if !state.package_exists {
            return Ok(None);
        }
        let (sha512_hex, _) = state.found.ok_or_else(|| tarball_not_found(name, file))?;
        let cache = &self.hot_reads.tarball_bytes;
        if let Some(bytes) = cache.get(&sha512_hex) {
            return Ok(Some(TarballFile {
                len: bytes.len() as u64,
                blob: Blob::Bytes(bytes),
                sha512_hex,
                version,
            }));
        }
        let (blob, len) = self.blobs.open(&sha512_hex).map_err(|e| match e {
            Error::MissingBlob(_) => Error::MissingBlob(format!(
                "the tarball of {name}@{version} is missing from the registry's storage; an \
                 administrator can list every such version with `registry doctor` and restore \
                 them from a backup"
            )),
            other => other,
        })?;
        Ok(Some(TarballFile {
            blob: cache.fill(&sha512_hex, blob, len)?,
            len,
            sha512_hex,
            version,
        }))
    }
}

/// How a hot read reaches the database: on the calling thread with a connection free at once
/// (none free, or a database across the network: `None`, and the caller goes the other way),
/// or waiting for one, on a blocking thread.
#[derive(Clone, Copy)]
pub(crate) enum Reach {
    Now,
    Wait,
}

/// [`Reach::Wait`] always reads: a `None` from it is a bug, answered as a fault.
fn unreached() -> Error {
    Error::Storage("a waiting read gave no answer".into())
}

/// The package whose reader must be checked before its tarball is served: a restricted one
/// (a blocked one answers its block to everyone).
fn reader_to_check(state: &ReadState<(String, u64)>) -> Option<i64> {
    match (state.package_id, state.restricted, &state.block_reason) {
        (Some(id), true, None) => Some(id),
        _ => None,
    }
}

fn tarball_not_found(name: &PackageName, file: &str) -> Error {
    Error::not_found(format!("tarball {file} of {name} not found"))
}

/// The version a tarball file name (`bar-1.0.0.tgz`) stands for, if it is one of ours.
pub fn version_of_tarball(name: &PackageName, file: &str) -> Option<String> {
    let version = file
        .strip_suffix(".tgz")?
        .strip_prefix(name.bare())?
        .strip_prefix('-')?;
    validate_version(version).ok().map(|_| version.to_string())
}

pub fn package_not_found(name: &PackageName) -> Error {
    Error::not_found(format!("package {name} not found"))
}

/// Runs `f` on tokio's blocking pool (SQLite and file work must not hold a runtime thread).
pub async fn blocking<T: Send + 'static>(
    registry: &Arc<Registry>,
    f: impl FnOnce(&Registry) -> Result<T> + Send + 'static,
) -> Result<T> {
    let registry = registry.clone();
    tokio::task::spawn_blocking(move || f(&registry))
        .await
        .map_err(|e| Error::Storage(format!("a blocking task failed: {e}")))?
}
