//! The only module that speaks SQL. Everything above it sees domain records and domain verbs.
//!
//! One writer connection (writes are serialised through it, in `BEGIN IMMEDIATE` transactions
//! with `synchronous=FULL`, concurrent ones sharing a commit) and an r2d2 pool of read-only
//! connections. Callers run
//! these methods off the async threads.

mod access;
mod admin;
mod binaries;
mod blocks;
mod downloads;
mod hooks;
mod memo;
mod packages;
mod pages;
mod registries;
mod schema;
mod search;
mod sessions;
mod sync;
mod text_index;
mod upstream;
mod users;
mod writer;

use std::path::Path;
use std::time::{Duration, Instant};

use r2d2::Pool;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags};

use crate::access::Visibility;
use crate::error::{Error, Result};
use crate::metrics::PoolWaits;
use writer::{Durability, GroupWriter};

pub use access::{OrgRecord, OrgRole, PackageRights, TeamPermission, TeamRecord};
pub use admin::{check_database, LiveTarball, PackageSummary};
pub use blocks::BlockRecord;
pub use downloads::DownloadRow;
pub use hooks::{Delivery, DueDelivery, Hook, HookType, NewEvent, NewHook};
pub use memo::{CommitStamp, ReadMemo};
pub use packages::{
    NewVersion, PackageRecord, PackumentFlavor, PackumentRow, ReadState, VersionRecord,
};
pub use pages::{ListedPackage, VersionSummary};
pub use registries::StoredRegistry;
pub use search::{ChangedSince, LatestVersion, SearchCache, SearchEntry, SearchFilter, SearchHit};
pub use sessions::WebSession;
pub use sync::{NewSyncTask, SyncTask, TreeProgress};
pub use upstream::{CachedDocument, CachedTarball, DocumentUpdate, UpstreamUsage};
pub use users::{NewToken, ProfileFields, TokenRecord, UserRecord};

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match err.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => Error::InsufficientStorage(format!(
                "the registry's disk is full ({err}); nothing was stored — retry once an \
                 administrator has made room"
            )),
            Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen) => Error::StorageUnavailable(
                format!("the registry cannot write to its database ({err}); nothing was stored"),
            ),
            _ => Error::Storage(err.to_string()),
        }
    }
}

impl From<r2d2::Error> for Error {
    fn from(err: r2d2::Error) -> Self {
        Error::Storage(err.to_string())
    }
}

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
const READER_POOL_SIZE: u32 = 8;
/// Prepared statements kept per connection. rusqlite keeps 16, fewer than a publish alone
/// runs on the writer, so every write re-parsed its statements (a quarter of a publish's
/// time, and more with the hook dispatcher's statements taking turns in the cache).
const STATEMENT_CACHE: usize = 256;
/// `/-/readyz` answers within a load balancer's probe timeout even when every reader is busy.
const READY_TIMEOUT: Duration = Duration::from_secs(1);

pub struct Store {
    writer: GroupWriter,
    readers: Pool<SqliteConnectionManager>,
    committed: tokio::sync::Notify,
    search_cache: SearchCache,
    pool_waits: PoolWaits,
    commits: memo::CommitWatch,
}

/// A connection seen through domain verbs: a pooled reader or the writer's open transaction.
pub struct Db<'c> {
    conn: &'c Connection,
}

impl Db<'_> {
    /// `Connection::execute` through the statement cache: rusqlite's own parses the SQL
    /// again on every call, which was the SQL parser in every write's profile.
    fn execute<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.conn.prepare_cached(sql)?.execute(params)
    }

    /// `Connection::query_row` through the statement cache.
    fn query_row<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    {
        self.conn.prepare_cached(sql)?.query_row(params, f)
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store> {
        let mut writer = Connection::open(path)?;
        writer.busy_timeout(BUSY_TIMEOUT)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        writer.pragma_update(None, "synchronous", "FULL")?;
        writer.pragma_update(None, "foreign_keys", "ON")?;
        // Sorts and temporary indexes stay in memory instead of temp files: they are small
        // (a page of search hits, one package's versions) and a file costs system calls.
        writer.pragma_update(None, "temp_store", "MEMORY")?;
        writer.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        schema::migrate(&mut writer)?;

        let manager = SqliteConnectionManager::file(path)
            .with_flags(OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .with_init(|conn| {
                conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
                conn.busy_timeout(BUSY_TIMEOUT)?;
                conn.pragma_update(None, "temp_store", "MEMORY")?;
                conn.pragma_update(None, "query_only", "ON")
            });
        let readers = Pool::builder()
            .max_size(READER_POOL_SIZE)
            // A local SQLite connection does not go stale; r2d2's check costs a statement on
            // every checkout, which the hot read path takes once per request.
            .test_on_check_out(false)
            .min_idle(Some(1))
            .connection_timeout(BUSY_TIMEOUT)
            .build(manager)?;
        // After the writer has opened the database in WAL mode: the `-shm` file exists now.
        let commits = memo::CommitWatch::open(path);
        Ok(Store {
            writer: GroupWriter::new(writer),
            readers,
            committed: tokio::sync::Notify::new(),
            search_cache: SearchCache::default(),
            pool_waits: PoolWaits::default(),
            commits,
        })
    }

    /// Free-text rankings kept between searches, for [`Db::search_packages`].
    pub fn search_cache(&self) -> &SearchCache {
        &self.search_cache
    }

    /// Where the database's commits stand now, for a [`ReadMemo`]; `None` when that cannot be
    /// told (the memo is not used then).
    pub fn commit_stamp(&self) -> Option<CommitStamp> {
        self.commits.stamp()
    }

    /// Runs `f` on a read-only connection (a consistent snapshot for its duration).
    pub fn read<T>(&self, f: impl FnOnce(&Db<'_>) -> Result<T>) -> Result<T> {
        let conn = self.reader(BUSY_TIMEOUT)?;
        let tx = conn.unchecked_transaction()?;
        let out = f(&Db { conn: &tx })?;
        tx.finish()?;
        Ok(out)
    }

    /// Runs `f` on a free read-only connection right away, on the calling thread, without a
    /// transaction: for the hot read path, where `f` is one indexed single-statement read (a
    /// statement is its own snapshot). `None` when every connection is taken; the caller then
    /// goes the usual way, through [`Store::read`] on a blocking thread.
    pub fn read_now<T>(&self, f: impl FnOnce(&Db<'_>) -> Result<T>) -> Option<Result<T>> {
        let conn = self.readers.try_get()?;
        Some(f(&Db { conn: &conn }))
    }

    /// Runs `f` atomically on the writer: its changes are all stored, and committed (synced
    /// to disk) before this returns, or none are. Concurrent writes share one commit
    /// ([`writer`](self::writer) explains how).
    pub fn write<T>(&self, f: impl FnOnce(&Db<'_>) -> Result<T>) -> Result<T> {
        let out = self.writer.write(Durability::Disk, f)?;
        self.committed.notify_one();
        Ok(out)
    }

    /// [`Store::write`] for bookkeeping that may be lost with the machine (not with the
    /// process) because it is redone: the commit does not wait for an fsync, so that it holds
    /// the writer, which every publish waits for, for microseconds rather than milliseconds.
    /// It does not signal [`Store::committed`]: nothing it writes is for the dispatcher.
    pub fn write_unsynced<T>(&self, f: impl FnOnce(&Db<'_>) -> Result<T>) -> Result<T> {
        self.writer.write(Durability::Process, f)
    }

    /// Signalled after every committed write: the hook dispatcher waits on it, so that an
    /// outbox row goes out as soon as the change that wrote it is on disk (never before —
    /// a reader would not see the row yet). One waiter; a signal with nobody waiting is kept.
    pub fn committed(&self) -> &tokio::sync::Notify {
        &self.committed
    }

    /// A pooled reader, waiting at most `timeout`. A free one costs what `get` costs; only a
    /// wait is timed and counted.
    fn reader(
        &self,
        timeout: Duration,
    ) -> std::result::Result<r2d2::PooledConnection<SqliteConnectionManager>, r2d2::Error> {
        if let Some(conn) = self.readers.try_get() {
            return Ok(conn);
        }
        let started = Instant::now();
        let conn = self.readers.get_timeout(timeout);
        self.pool_waits.record(started.elapsed());
        conn
    }

    /// Reads that waited for a pooled connection (for `/-/metrics`).
    pub fn pool_waits(&self) -> &PoolWaits {
        &self.pool_waits
    }

    /// Readiness: a pooled connection within [`READY_TIMEOUT`] and a statement that reads the
    /// database file (its first page), so an unreadable file shows, not only a live pool.
    pub fn check(&self) -> Result<()> {
        let conn = self.reader(READY_TIMEOUT).map_err(|e| {
            Error::StorageUnavailable(format!(
                "no database connection within {READY_TIMEOUT:?}: {e}"
            ))
        })?;
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
            .map_err(|e| Error::StorageUnavailable(format!("the database cannot be read: {e}")))
    }

    /// Folds the WAL back into the main file; called on graceful shutdown.
    pub fn checkpoint(&self) -> Result<()> {
        self.writer.with_idle_connection(|conn| {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            Ok(())
        })
    }
}

/// Registry-wide figures for `GET /`.
#[derive(Debug, Clone)]
pub struct RegistryInfo {
    pub doc_count: u64,
    pub update_seq: u64,
}

impl Db<'_> {
    /// The figures as the reader may see them: hidden packages are not counted, and their
    /// changes do not move the sequence.
    pub fn registry_info(&self, visibility: &Visibility) -> Result<RegistryInfo> {
        let visible = access::visible_sql(visibility, "p.id");
        let doc_count: i64 = self.query_row(
            &format!("SELECT count(*) FROM packages p WHERE {visible}"),
            [],
            |r| r.get(0),
        )?;
        let update_seq: i64 = self.query_row(
            &format!(
                "SELECT coalesce(max(c.seq), 0) FROM changes c \
                 LEFT JOIN packages p ON p.name = c.package WHERE p.id IS NULL OR {visible}"
            ),
            [],
            |r| r.get(0),
        )?;
        Ok(RegistryInfo {
            doc_count: doc_count.max(0) as u64,
            update_seq: update_seq.max(0) as u64,
        })
    }

    /// Appends to the changes feed; returns the new sequence number.
    pub fn record_change(&self, package: &str, kind: &str, at: &str) -> Result<u64> {
        self.execute(
            "INSERT INTO changes (package, kind, at) VALUES (?1, ?2, ?3)",
            (package, kind, at),
        )?;
        Ok(self.conn.last_insert_rowid().max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_database_is_migrated_to_the_latest_schema() -> Result<()> {
        let dir = tempdir()?;
        let store = Store::open(&dir.join("r.db"))?;
        let version: u32 =
            store.read(|db| Ok(db.conn.query_row("PRAGMA user_version", [], |r| r.get(0))?))?;
        assert_eq!(version, schema::LATEST_VERSION);
        // Reopening an up-to-date database is a no-op.
        drop(store);
        Store::open(&dir.join("r.db"))?;
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn a_database_from_a_newer_binary_is_refused() -> Result<()> {
        let dir = tempdir()?;
        let path = dir.join("r.db");
        {
            let conn = Connection::open(&path)?;
            conn.pragma_update(None, "user_version", schema::LATEST_VERSION + 1)?;
        }
        let err = Store::open(&path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("upgrade the binary"), "{err}");
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    /// A cascading delete looks up the child rows by the foreign key's column; without an
    /// index that begins with it, every delete of a parent scans the whole child table (the
    /// search keywords did, on every publish).
    #[test]
    fn every_cascading_foreign_key_is_indexed() -> Result<()> {
        let dir = tempdir()?;
        let store = Store::open(&dir.join("r.db"))?;
        let unindexed = store.read(|db| {
            let tables: Vec<String> = db
                .conn
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut unindexed = Vec::new();
            for table in &tables {
                let cascading: Vec<String> = db
                    .conn
                    .prepare("SELECT \"from\" FROM pragma_foreign_key_list(?1) WHERE on_delete = 'CASCADE'")?
                    .query_map([table], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                let leading: Vec<String> = db
                    .conn
                    .prepare(
                        "SELECT i.name FROM pragma_index_list(?1) l, pragma_index_info(l.name) i \
                         WHERE i.seqno = 0 \
                         UNION SELECT name FROM pragma_table_info(?1) WHERE pk = 1",
                    )?
                    .query_map([table], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                unindexed.extend(
                    cascading
                        .into_iter()
                        .filter(|column| !leading.contains(column))
                        .map(|column| format!("{table}.{column}")),
                );
            }
            Ok(unindexed)
        })?;
        assert!(unindexed.is_empty(), "unindexed: {unindexed:?}");
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn readers_cannot_write() -> Result<()> {
        let dir = tempdir()?;
        let store = Store::open(&dir.join("r.db"))?;
        let attempt = store.read(|db| {
            Ok(db.conn.execute(
                "INSERT INTO changes (package, kind, at) VALUES ('a', 'b', 'c')",
                [],
            )?)
        });
        assert!(attempt.is_err());
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    fn tempdir() -> Result<std::path::PathBuf> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "registry-store-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }
}
