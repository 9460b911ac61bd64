//! `registry migrate`: a single-node registry (SQLite in the data directory, tarballs there or
//! in a bucket) copied into the scaled-out setup — PostgreSQL, and another blob store when
//! one is named — then checked there as `registry doctor` checks, opened as a node would
//! open it.
//!
//! Order, so that a failure leaves something a second run can finish: the target database is
//! checked for data first (a refused target gets nothing, not even tarballs); the tarballs go
//! next (a run cut short leaves only blobs, which the next run skips and `registry gc`
//! removes); then the database in one transaction; then the tarballs that appeared meanwhile,
//! so that every tarball the copied rows name is there even if the daemon kept publishing.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{Read, Write};

use sha2::{Digest, Sha512};

use super::{doctor, doctor_items, Problem};
use crate::accounts::authz::Admin;
use crate::blobs::{blob_relative_path, BlobStore, FsBlobStore, S3BlobStore};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::{CopySummary, Dialect, Store};
use crate::Registry;

/// What happened to the tarballs.
#[derive(Debug, Clone, Default)]
pub struct BlobCopy {
    /// Copied into the target store.
    pub copied: u64,
    /// Found in the target store already, with the same size.
    pub present: u64,
    /// Bytes copied.
    pub bytes: u64,
}

#[derive(Debug, Clone)]
pub struct MigrateReport {
    pub tables: CopySummary,
    /// `None` when the target keeps its tarballs where the source does (nothing to copy).
    pub blobs: Option<BlobCopy>,
    /// What doctor found on the target.
    pub problems: Vec<Problem>,
}

/// Copies `source` (a registry on SQLite) into the registry `target` configures (PostgreSQL,
/// and its blob store), then runs doctor's checks on the target. Refuses a target database
/// that holds any data. `progress` hears the stage (a table's name, `tarballs`, `checking`),
/// the items done and the total.
pub fn migrate(
    source: &Registry,
    _admin: &Admin<'_>,
    target: &Config,
    mut progress: impl FnMut(&str, u64, u64),
) -> Result<MigrateReport> {
    if source.store.dialect() != Dialect::Sqlite {
        return Err(Error::bad_request(
            "only a SQLite registry can be migrated: this configuration's database_url points \
             at PostgreSQL already (unset it to migrate the data directory's registry.db)",
        ));
    }
    let url = target.postgres_url()?.ok_or_else(|| {
        Error::bad_request("the target needs a PostgreSQL database_url (postgres://…)")
    })?;
    let store = Store::open_postgres(&url)?;
    store.ensure_empty_target()?;
    let blobs = if target.blobs_url == source.config.blobs_url {
        None
    } else {
        Some(open_blobs(target)?)
    };
    let mut seen = HashSet::new();
    let mut blob_report = BlobCopy::default();
    if let Some(to) = &blobs {
        copy_blobs(
            source.blobs.as_ref(),
            to.as_ref(),
            &mut seen,
            &mut blob_report,
            &mut progress,
        )?;
    }
    let tables = source.store.copy_into(&store, &mut progress)?;
    if let Some(to) = &blobs {
        copy_blobs(
            source.blobs.as_ref(),
            to.as_ref(),
            &mut seen,
            &mut blob_report,
            &mut progress,
        )?;
    }
    drop(blobs);
    drop(store);
    let registry = Registry::open(target.clone())?;
    let total = doctor_items(&registry)?;
    let mut checked = 0;
    let problems = doctor(&registry, || {
        checked += 1;
        progress("checking", checked, total);
    })?;
    Ok(MigrateReport {
        tables,
        blobs: (target.blobs_url != source.config.blobs_url).then_some(blob_report),
        problems,
    })
}

/// The blob store `config` names, as [`Registry::open`] opens it.
fn open_blobs(config: &Config) -> Result<Box<dyn BlobStore>> {
    Ok(match config.s3()? {
        Some(s3) => Box::new(S3BlobStore::open(&s3, &config.blobs_dir().join("tmp"))?),
        None => Box::new(FsBlobStore::open(&config.blobs_dir())?),
    })
}

/// Copies every blob `from` lists that is not in `seen` (and adds it there), skipping those
/// `to` has with the same size. Temporary files are not blobs and stay behind.
fn copy_blobs(
    from: &dyn BlobStore,
    to: &dyn BlobStore,
    seen: &mut HashSet<String>,
    report: &mut BlobCopy,
    progress: &mut impl FnMut(&str, u64, u64),
) -> Result<()> {
    let wanted: Vec<_> = from
        .list()?
        .into_iter()
        .filter(|object| blob_relative_path(&object.name).is_ok() && !seen.contains(&object.name))
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let present: HashMap<String, u64> = to
        .list()?
        .into_iter()
        .map(|object| (object.name, object.size))
        .collect();
    let total = wanted.len() as u64;
    for (done, object) in wanted.into_iter().enumerate() {
        progress("tarballs", done as u64, total);
        if present.get(&object.name) == Some(&object.size) {
            report.present += 1;
        } else {
            report.bytes += copy_blob(from, to, &object.name)?;
            report.copied += 1;
        }
        seen.insert(object.name);
    }
    progress("tarballs", total, total);
    Ok(())
}

/// Streams one blob into a synced temporary file of the target while hashing it, then has the
/// target store it durably under its name ([`BlobStore::put_file`]), which it trusts the
/// caller to have checked: a source blob that does not match its name stops the copy.
fn copy_blob(from: &dyn BlobStore, to: &dyn BlobStore, sha512_hex: &str) -> Result<u64> {
    let (blob, _) = from.open(sha512_hex)?;
    let mut reader = blob.into_reader();
    let temp = to.temp_dir().join(format!(
        "{}.{}",
        &sha512_hex[..32.min(sha512_hex.len())],
        rand::random::<u64>()
    ));
    let result = (|| {
        let mut file = File::create(&temp)?;
        let mut hasher = Sha512::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut bytes = 0u64;
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n])?;
            bytes += n as u64;
        }
        file.sync_all()?;
        if hex::encode(hasher.finalize()) != sha512_hex {
            return Err(Error::Storage(format!(
                "the tarball blob {sha512_hex} of the source does not match its name (it is \
                 corrupt): `registry doctor` on the source names its version; restore or \
                 unpublish it, then migrate again"
            )));
        }
        to.put_file(sha512_hex, &temp)?;
        Ok(bytes)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}
