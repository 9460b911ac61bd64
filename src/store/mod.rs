//! The only module that speaks SQL. Everything above it sees domain records and domain verbs.
//!
//! Two backends, one set of verbs: SQLite in the data directory (`sqlite/`: one writer
//! connection, writes serialised through it in `BEGIN IMMEDIATE` transactions with
//! `synchronous=FULL`, concurrent ones sharing a commit, and an r2d2 pool of read-only
//! connections), or PostgreSQL when `database_url` is set (`postgres/`: a pool of sessions,
//! every write under one lock across all nodes, commits announced to every node). The domain
//! modules (`packages`, `users`, …) write their SQL once, through [`sql`]'s connection, for
//! both. Callers run these methods off the async threads.

mod access;
mod admin;
mod binaries;
mod blocks;
mod cli_logins;
mod copy;
mod downloads;
mod hooks;
mod memo;
mod packages;
mod pages;
mod postgres;
mod registries;
mod search;
mod sessions;
mod sql;
mod sqlite;
mod sync;
mod text_index;
mod upstream;
mod users;

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use r2d2::Pool;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags};

use crate::access::Visibility;
use crate::error::{Error, Result};
use crate::metrics::PoolWaits;
use sql::{Conn, Row, SqlParams};
use sqlite::schema;
use sqlite::writer::{Durability, GroupWriter};

pub use sql::Dialect;

pub use access::{OrgRecord, OrgRole, PackageRights, TeamPermission, TeamRecord};
pub use admin::{check_database, LiveTarball, PackageSummary};
pub use blocks::BlockRecord;
pub use cli_logins::PendingCliLogin;
pub use copy::{CopiedTable, CopySummary};
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
        if let Some(pg) = sql::as_pg_error(&err) {
            return postgres::classify(pg);
        }
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
    backend: Backend,
    committed: Arc<tokio::sync::Notify>,
    search_cache: SearchCache,
    pool_waits: PoolWaits,
}

enum Backend {
    Sqlite {
        writer: Box<GroupWriter>,
        readers: Pool<SqliteConnectionManager>,
        commits: memo::CommitWatch,
    },
    Postgres {
        sessions: Pool<postgres::PgManager>,
        commits: postgres::CommitListener,
    },
}

/// Sessions of the PostgreSQL backend, for reads and writes alike (each write holds one for
/// its transaction).
const POSTGRES_POOL_SIZE: u32 = 16;

/// A connection seen through domain verbs: a pooled reader or a write's open transaction.
pub struct Db<'c> {
    conn: Conn<'c>,
}

impl Db<'_> {
    fn execute<P: SqlParams>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.conn.execute(sql, params)
    }

    fn query_row<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: SqlParams,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    {
        self.conn.query_row(sql, params, f)
    }

    /// The SQLite connection underneath, for tests of SQLite's own machinery.
    #[cfg(test)]
    fn sqlite(&self) -> &Connection {
        match &self.conn {
            Conn::Sqlite(conn) => conn,
            Conn::Postgres(_) => panic!("a SQLite-only test ran on PostgreSQL"),
        }
    }

    /// Runs an `INSERT … RETURNING <key>` and gives the key.
    fn insert_returning(&self, sql: &str, params: impl SqlParams) -> rusqlite::Result<i64> {
        self.conn.query_row(sql, params, |r| r.get(0))
    }
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` and brings its schema up to
    /// date.
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
        Ok(Store::with_backend(Backend::Sqlite {
            writer: Box::new(GroupWriter::new(writer)),
            readers,
            commits,
        }))
    }

    /// Connects to the PostgreSQL database at `url` and brings its schema up to date.
    pub fn open_postgres(url: &str) -> Result<Store> {
        let manager = postgres::PgManager::new(url)?;
        let listen_config = manager.config().clone();
        let sessions = Pool::builder()
            .max_size(POSTGRES_POOL_SIZE)
            .min_idle(Some(1))
            // A session the server closed (a restart, a failover) is found and replaced.
            .test_on_check_out(false)
            .connection_timeout(BUSY_TIMEOUT)
            .build(manager)
            .map_err(|e| Error::StorageUnavailable(format!("cannot connect to PostgreSQL: {e}")))?;
        postgres::migrate(&mut *sessions.get()?)?;
        let committed = Arc::new(tokio::sync::Notify::new());
        let heard = Arc::clone(&committed);
        let commits = postgres::CommitListener::start(listen_config, move || heard.notify_one())?;
        let mut store = Store::with_backend(Backend::Postgres { sessions, commits });
        store.committed = committed;
        Ok(store)
    }

    /// The SQLite writer, for its own tests.
    #[cfg(test)]
    fn sqlite_writer(&self) -> &GroupWriter {
        match &self.backend {
            Backend::Sqlite { writer, .. } => writer,
            Backend::Postgres { .. } => panic!("a SQLite-only test ran on PostgreSQL"),
        }
    }

    fn with_backend(backend: Backend) -> Store {
        Store {
            backend,
            committed: Arc::new(tokio::sync::Notify::new()),
            search_cache: SearchCache::default(),
            pool_waits: PoolWaits::default(),
        }
    }

    /// Which SQL the database speaks.
    pub fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::Sqlite { .. } => Dialect::Sqlite,
            Backend::Postgres { .. } => Dialect::Postgres,
        }
    }

    /// Free-text rankings kept between searches, for [`Db::search_packages`].
    pub fn search_cache(&self) -> &SearchCache {
        &self.search_cache
    }

    /// Where the database's commits stand now, for a [`ReadMemo`]; `None` when that cannot be
    /// told (the memo is not used then).
    pub fn commit_stamp(&self) -> Option<CommitStamp> {
        match &self.backend {
            Backend::Sqlite { commits, .. } => commits.stamp(),
            Backend::Postgres { commits, .. } => commits.stamp().map(CommitStamp::counted),
        }
    }

    /// Runs `f` on a read-only connection (a consistent snapshot for its duration).
    pub fn read<T>(&self, f: impl FnOnce(&Db<'_>) -> Result<T>) -> Result<T> {
        match &self.backend {
            Backend::Sqlite { readers, .. } => {
                let conn = self.pooled(readers, BUSY_TIMEOUT)?;
                let tx = conn.unchecked_transaction()?;
                let out = f(&Db {
                    conn: Conn::Sqlite(&tx),
                })?;
                tx.finish()?;
                Ok(out)
            }
            Backend::Postgres { sessions, .. } => {
                let mut session = self.pooled(sessions, BUSY_TIMEOUT)?;
                in_transaction(
                    &mut session,
                    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                    f,
                )
            }
        }
    }

    /// Runs `f` on a free read-only connection right away, on the calling thread, without a
    /// transaction: for the hot read path, where `f` is one indexed single-statement read (a
    /// statement is its own snapshot). `None` when every connection is taken, or when the
    /// database is across the network (PostgreSQL: the calling thread may be an async one);
    /// the caller then goes the usual way, through [`Store::read`] on a blocking thread.
    pub fn read_now<T>(&self, f: impl FnOnce(&Db<'_>) -> Result<T>) -> Option<Result<T>> {
        match &self.backend {
            Backend::Sqlite { readers, .. } => {
                let conn = readers.try_get()?;
                Some(f(&Db {
                    conn: Conn::Sqlite(&conn),
                }))
            }
            Backend::Postgres { .. } => None,
        }
    }

    /// Runs `f` atomically on the writer: its changes are all stored, and committed (synced
    /// to disk) before this returns, or none are. Concurrent writes share one commit on
    /// SQLite ([`writer`](self::sqlite::writer) explains how); on PostgreSQL they take turns
    /// across every node ([`postgres`](self::postgres) explains why).
    pub fn write<T>(&self, f: impl FnOnce(&Db<'_>) -> Result<T>) -> Result<T> {
        let out = self.write_as(Durability::Disk, f)?;
        self.committed.notify_one();
        Ok(out)
    }

    /// [`Store::write`] for bookkeeping that may be lost with the machine (not with the
    /// process) because it is redone: the commit does not wait for an fsync, so that it holds
    /// the writer, which every publish waits for, for microseconds rather than milliseconds.
    /// It does not signal [`Store::committed`]: nothing it writes is for the dispatcher.
    pub fn write_unsynced<T>(&self, f: impl FnOnce(&Db<'_>) -> Result<T>) -> Result<T> {
        self.write_as(Durability::Process, f)
    }

    fn write_as<T>(
        &self,
        durability: Durability,
        f: impl FnOnce(&Db<'_>) -> Result<T>,
    ) -> Result<T> {
        match &self.backend {
            Backend::Sqlite { writer, .. } => writer.write(durability, f),
            Backend::Postgres { sessions, commits } => {
                let mut session = self.pooled(sessions, BUSY_TIMEOUT)?;
                let begin = match durability {
                    Durability::Disk => "BEGIN",
                    // Durable in the server's memory, flushed by its WAL writer within
                    // moments: what `synchronous=NORMAL` gives on SQLite.
                    Durability::Process => "BEGIN; SET LOCAL synchronous_commit TO OFF",
                };
                let out = in_transaction(&mut session, begin, |db| {
                    db.execute("SELECT pg_advisory_xact_lock(?1)", [postgres::WRITE_LOCK])?;
                    let out = f(db)?;
                    db.conn
                        .execute_batch(&format!("NOTIFY {}", postgres::COMMITS_CHANNEL))?;
                    Ok(out)
                })?;
                commits.bump();
                Ok(out)
            }
        }
    }

    /// Signalled after every committed write (on PostgreSQL, any node's): the hook
    /// dispatcher waits on it, so that an outbox row goes out as soon as the change that
    /// wrote it is on disk (never before — a reader would not see the row yet). One waiter;
    /// a signal with nobody waiting is kept.
    pub fn committed(&self) -> &tokio::sync::Notify {
        &self.committed
    }

    /// A pooled connection, waiting at most `timeout`. A free one costs what `get` costs;
    /// only a wait is timed and counted.
    fn pooled<M: r2d2::ManageConnection>(
        &self,
        pool: &Pool<M>,
        timeout: Duration,
    ) -> std::result::Result<r2d2::PooledConnection<M>, r2d2::Error> {
        if let Some(conn) = pool.try_get() {
            return Ok(conn);
        }
        let started = Instant::now();
        let conn = pool.get_timeout(timeout);
        self.pool_waits.record(started.elapsed());
        conn
    }

    /// Reads that waited for a pooled connection (for `/-/metrics`).
    pub fn pool_waits(&self) -> &PoolWaits {
        &self.pool_waits
    }

    /// Readiness: a pooled connection within [`READY_TIMEOUT`] and a statement that reads the
    /// database (SQLite: its file's first page), so an unreadable database shows, not only a
    /// live pool.
    pub fn check(&self) -> Result<()> {
        let unavailable = |e: r2d2::Error| {
            Error::StorageUnavailable(format!(
                "no database connection within {READY_TIMEOUT:?}: {e}"
            ))
        };
        let unreadable = |e: rusqlite::Error| {
            Error::StorageUnavailable(format!("the database cannot be read: {e}"))
        };
        match &self.backend {
            Backend::Sqlite { readers, .. } => {
                let conn = self.pooled(readers, READY_TIMEOUT).map_err(unavailable)?;
                conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
                    .map_err(unreadable)
            }
            Backend::Postgres { sessions, .. } => {
                let mut session = self.pooled(sessions, READY_TIMEOUT).map_err(unavailable)?;
                session
                    .query("SELECT count(*) FROM registry_schema_version", &[])
                    .map(drop)
                    .map_err(unreadable)
            }
        }
    }

    /// Folds the WAL back into the main file; called on graceful shutdown (PostgreSQL
    /// checkpoints by itself).
    pub fn checkpoint(&self) -> Result<()> {
        match &self.backend {
            Backend::Sqlite { writer, .. } => writer.with_idle_connection(|conn| {
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
                Ok(())
            }),
            Backend::Postgres { .. } => Ok(()),
        }
    }
}

/// Runs `f` in a transaction begun by `begin` on a PostgreSQL session: committed when `f`
/// succeeds, rolled back otherwise (a session whose rollback fails is closed, and the pool
/// drops it).
fn in_transaction<T>(
    session: &mut postgres::PgConn,
    begin: &str,
    f: impl FnOnce(&Db<'_>) -> Result<T>,
) -> Result<T> {
    session.batch(begin)?;
    let out = f(&Db {
        conn: Conn::Postgres(RefCell::new(&mut *session)),
    });
    let ended = match &out {
        Ok(_) => session.batch("COMMIT"),
        Err(_) => session.batch("ROLLBACK"),
    };
    if let Err(e) = ended {
        let _ = session.batch("ROLLBACK");
        return Err(e.into());
    }
    out
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
        let seq = self.insert_returning(
            "INSERT INTO changes (package, kind, at) VALUES (?1, ?2, ?3) RETURNING seq",
            (package, kind, at),
        )?;
        Ok(seq.max(0) as u64)
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
