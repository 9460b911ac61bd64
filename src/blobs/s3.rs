//! Blobs in an S3-compatible bucket (`blobs_url = "s3://bucket/prefix"`), through Apache
//! Arrow's `object_store`. Keys are `prefix/ab/cd/abcd…`, the same relative layout as the
//! filesystem store, so a backup's `blobs/` directory and the bucket copy into each other.
//!
//! The trait is synchronous (its callers run on the blocking pool or in the CLI) and
//! object_store is async: the store owns a small runtime of its own and blocks on it. A
//! dedicated runtime rather than the caller's: the CLI has none, and blocking on the
//! daemon's own runtime from its blocking pool would tie S3's connections to the runtime
//! that serves clients. Only a blob body is polled elsewhere (by the daemon, as a stream):
//! its connection task stays on this runtime, the body arrives through a channel.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
    WriteMultipart,
};
use sha2::{Digest, Sha512};

use super::{blob_relative_path, Blob, BlobStore, BlobStream, StoredObject};
use crate::config::S3Config;
use crate::error::{Error, Result};

/// Files up to this size are uploaded in one PUT; larger ones in parts of this size, so a
/// large file is never read whole into memory.
const PART_BYTES: usize = 8 * 1024 * 1024;
/// Parts in flight at once during a multipart upload.
const PARTS_IN_FLIGHT: usize = 2;
/// A request to S3 that has not connected by then has failed (a store on the same network
/// connects in milliseconds).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A whole request, body included: a large tarball streamed to a slow client takes long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Retries of a failed request (5xx, a reset connection) stop after this long: a publish
/// waiting on an outage answers 503 soon rather than after object_store's default 3 minutes.
const RETRY_FOR: Duration = Duration::from_secs(10);

pub struct S3BlobStore {
    store: AmazonS3,
    bucket: String,
    /// The key prefix without slashes at its ends; may be empty.
    prefix: String,
    temp_dir: PathBuf,
    /// `Option` only so that `Drop` can shut it down without blocking (see there).
    runtime: Option<tokio::runtime::Runtime>,
}

impl S3BlobStore {
    /// Connects lazily: nothing is sent until the first request (`check` is the cheap one).
    /// `temp_dir` is a local directory for the files [`BlobStore::put_file`] uploads.
    pub fn open(config: &S3Config, temp_dir: &Path) -> Result<S3BlobStore> {
        std::fs::create_dir_all(temp_dir)?;
        // reqwest is built without a default TLS provider: ring, as for the upstreams.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(config.secret_access_key.expose())
            .with_virtual_hosted_style_request(!config.path_style)
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(CONNECT_TIMEOUT)
                    .with_timeout(REQUEST_TIMEOUT)
                    .with_allow_http(true),
            )
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(2),
                    base: 2.0,
                },
                max_retries: 3,
                retry_timeout: RETRY_FOR,
            });
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let store = builder.build().map_err(|e| {
            Error::bad_request(format!("cannot use blobs_url s3://{}: {e}", config.bucket))
        })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("registry-s3")
            .enable_all()
            .build()?;
        Ok(S3BlobStore {
            store,
            bucket: config.bucket.clone(),
            prefix: config.prefix.clone(),
            temp_dir: temp_dir.to_path_buf(),
            runtime: Some(runtime),
        })
    }

    fn handle(&self) -> Result<&tokio::runtime::Runtime> {
        self.runtime
            .as_ref()
            .ok_or_else(|| Error::Storage("the S3 blob store was shut down".into()))
    }

    fn key_of(&self, sha512_hex: &str) -> Result<Key> {
        let relative = blob_relative_path(sha512_hex)?;
        Ok(if self.prefix.is_empty() {
            Key::from(relative)
        } else {
            Key::from(format!("{}/{relative}", self.prefix))
        })
    }

    fn prefix_key(&self) -> Option<Key> {
        (!self.prefix.is_empty()).then(|| Key::from(self.prefix.as_str()))
    }

    /// An S3 failure as the client sees it: the store cannot be reached or refused us, which
    /// a retry later may cure (503); never a 500 that hides where the fault is.
    fn unavailable(&self, doing: &str, err: object_store::Error) -> Error {
        tracing::warn!(bucket = %self.bucket, "S3 blob store: {doing} failed: {err}");
        Error::StorageUnavailable(format!(
            "the registry's blob store (S3 bucket {}) failed while {doing}; nothing was \
             changed — retry later ({})",
            self.bucket,
            short(&err)
        ))
    }

    fn upload_file(&self, key: &Key, temp: &Path) -> Result<()> {
        let runtime = self.handle()?;
        let mut file = File::open(temp)?;
        let size = file.metadata()?.len();
        if size <= PART_BYTES as u64 {
            let mut bytes = Vec::with_capacity(size as usize);
            file.read_to_end(&mut bytes)?;
            return runtime
                .block_on(self.store.put(key, PutPayload::from(bytes)))
                .map(|_| ())
                .map_err(|e| self.unavailable("storing a file", e));
        }
        runtime.block_on(async {
            let upload = self
                .store
                .put_multipart(key)
                .await
                .map_err(|e| self.unavailable("starting an upload", e))?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
            let mut buf = vec![0u8; PART_BYTES];
            loop {
                // Reading the local file blocks this thread briefly; it is not a runtime
                // worker, the caller's blocking thread is parked in `block_on`.
                let n = file.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                writer
                    .wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(|e| self.unavailable("uploading a part", e))?;
                writer.write(&buf[..n]);
            }
            writer
                .finish()
                .await
                .map(|_| ())
                .map_err(|e| self.unavailable("completing an upload", e))
        })
    }
}

/// The first line of an object_store error: its sources repeat the request URL and more.
fn short(err: &object_store::Error) -> String {
    let text = err.to_string();
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect()
}

impl BlobStore for S3BlobStore {
    fn put(&self, sha512_hex: &str, bytes: &[u8]) -> Result<()> {
        let key = self.key_of(sha512_hex)?;
        if hex::encode(Sha512::digest(bytes)) != sha512_hex {
            return Err(Error::Storage("blob content does not match its id".into()));
        }
        // A PUT is atomic and, once S3 has answered it, durable: the caller commits after.
        // No existence check first: the same bytes under the same key are harmless, and a
        // new tarball (the common case) would pay a round trip for nothing.
        let payload = PutPayload::from(Bytes::copy_from_slice(bytes));
        self.handle()?
            .block_on(self.store.put(&key, payload))
            .map(|_| ())
            .map_err(|e| self.unavailable("storing a tarball", e))
    }

    fn open(&self, sha512_hex: &str) -> Result<(Blob, u64)> {
        let key = self.key_of(sha512_hex)?;
        let runtime = self.handle()?;
        let got = runtime
            .block_on(self.store.get(&key))
            .map_err(|e| match e {
                object_store::Error::NotFound { .. } => {
                    Error::MissingBlob(format!("blob {sha512_hex} is missing from the blob store"))
                }
                other => self.unavailable("reading a tarball", other),
            })?;
        let len = got.meta.size;
        let chunks = got
            .into_stream()
            .map_err(|e| std::io::Error::other(short(&e)))
            .boxed();
        Ok((
            Blob::Stream(BlobStream::new(chunks, runtime.handle().clone())),
            len,
        ))
    }

    fn contains(&self, sha512_hex: &str) -> bool {
        let (Ok(key), Ok(runtime)) = (self.key_of(sha512_hex), self.handle()) else {
            return false;
        };
        runtime.block_on(self.store.head(&key)).is_ok()
    }

    fn temp_dir(&self) -> PathBuf {
        self.temp_dir.clone()
    }

    fn put_file(&self, sha512_hex: &str, temp: &Path) -> Result<()> {
        let key = self.key_of(sha512_hex)?;
        self.upload_file(&key, temp)?;
        // Uploaded: the local copy has served its purpose (the filesystem store renames it
        // away, so callers expect it gone either way).
        std::fs::remove_file(temp)?;
        Ok(())
    }

    fn check(&self) -> Result<()> {
        // One HEAD in the bucket: a missing key answers 404, which proves the endpoint, the
        // bucket and the credentials (a wrong key or secret answers 403).
        let key = match self.prefix_key() {
            Some(prefix) => Key::from(format!("{prefix}/.readyz")),
            None => Key::from(".readyz"),
        };
        match self.handle()?.block_on(self.store.head(&key)) {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.unavailable("checking readiness", e)),
        }
    }

    fn list(&self) -> Result<Vec<StoredObject>> {
        let prefix = self.prefix_key();
        let listed: Vec<_> = self
            .handle()?
            .block_on(self.store.list(prefix.as_ref()).try_collect())
            .map_err(|e| self.unavailable("listing the bucket", e))?;
        Ok(listed
            .into_iter()
            .map(|meta| StoredObject {
                name: meta.location.filename().unwrap_or_default().to_string(),
                location: format!("s3://{}/{}", self.bucket, meta.location),
                size: meta.size,
                modified: Some(std::time::SystemTime::from(meta.last_modified)),
            })
            .collect())
    }

    fn delete(&self, object: &StoredObject) -> Result<()> {
        let own = format!("s3://{}/", self.bucket);
        let key = object
            .location
            .strip_prefix(&own)
            .filter(|key| self.prefix.is_empty() || key.starts_with(&format!("{}/", self.prefix)))
            .ok_or_else(|| {
                Error::Storage(format!("{} is not in the blob store", object.location))
            })?;
        match self.handle()?.block_on(self.store.delete(&Key::from(key))) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.unavailable("deleting an object", e)),
        }
    }

    fn opens_locally(&self) -> bool {
        false
    }
}

impl Drop for S3BlobStore {
    fn drop(&mut self) {
        // Dropping a runtime blocks until its tasks end, which panics on an async thread
        // (the daemon's registry may be dropped there): let its threads wind down alone.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
