//! Group commit on the one writer connection.
//!
//! A commit with `synchronous=FULL` waits for an fsync (about 5 ms on this project's machines),
//! and writes are serialised, so one commit per write caps a busy registry at ~200 writes a
//! second whatever its CPUs. Here a write runs in its own savepoint inside a shared
//! transaction; a writer that finishes while another is already waiting for the connection
//! leaves the commit to it, and the last writer of the queue commits for everyone, with one
//! fsync. Nobody's call returns before the transaction that holds its changes is committed,
//! so an acknowledged write is as durable as before; a write that fails rolls back to its
//! savepoint and leaves the others' writes in place; a commit that fails fails every write
//! of its batch.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::super::{Conn, Db};
use crate::error::{Error, Result};

/// A batch commits once it holds this many writes, even with more writers waiting…
const MAX_BATCH_WRITES: usize = 64;
/// …or once it is this old: under a steady stream of writers, someone must commit.
const MAX_BATCH_AGE: Duration = Duration::from_millis(20);
/// How long a writer waits for another writer to commit its batch before giving up. A commit
/// that takes this long means something is badly wrong (the committing thread panicked).
const COMMIT_WAIT: Duration = Duration::from_secs(60);
/// Failed batches remembered for writers still to wake up.
const REMEMBERED_FAILURES: usize = 64;

pub(in crate::store) struct GroupWriter {
    state: Mutex<WriterState>,
    /// Writers waiting for `state`; one finishing while this is not zero leaves the commit.
    waiting: AtomicUsize,
    outcomes: Mutex<Outcomes>,
    committed: Condvar,
}

struct WriterState {
    conn: Connection,
    open: Option<OpenBatch>,
    /// The connection's `synchronous` setting.
    durability: Durability,
}

struct OpenBatch {
    id: u64,
    writes: usize,
    started: Instant,
    /// A batch holds writes of one durability.
    durability: Durability,
}

/// How much a write must survive once acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::store) enum Durability {
    /// A power loss: the commit waits for the fsync (`synchronous=FULL`).
    Disk,
    /// A crash of the process, not of the machine (`synchronous=NORMAL` in WAL mode). For
    /// bookkeeping that is redone when lost, such as a hook delivery's lease and attempt
    /// records (delivery is at least once). The next `Disk` commit syncs it too.
    Process,
}

impl Durability {
    fn synchronous(self) -> &'static str {
        match self {
            Durability::Disk => "FULL",
            Durability::Process => "NORMAL",
        }
    }
}

#[derive(Default)]
struct Outcomes {
    last_id: u64,
    /// Batches end in the order they began: every id up to this one is over.
    finished: u64,
    failures: VecDeque<(u64, Error)>,
}

impl GroupWriter {
    pub(in crate::store) fn new(conn: Connection) -> GroupWriter {
        GroupWriter {
            state: Mutex::new(WriterState {
                conn,
                open: None,
                // What `Store::open` set.
                durability: Durability::Disk,
            }),
            waiting: AtomicUsize::new(0),
            outcomes: Mutex::new(Outcomes::default()),
            committed: Condvar::new(),
        }
    }

    /// Runs `f` in a savepoint of the open batch (beginning one with `BEGIN IMMEDIATE` if none
    /// is open) and returns once that batch is committed.
    pub(in crate::store) fn write<T>(
        &self,
        durability: Durability,
        f: impl FnOnce(&Db<'_>) -> Result<T>,
    ) -> Result<T> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let locked = self.state.lock();
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let mut state = locked.map_err(|_| poisoned())?;
        let batch = self.join_batch(&mut state, durability)?;
        if let Err(e) = run(&state.conn, "SAVEPOINT one_write") {
            return Err(self.abort_batch(&mut state, e.into()));
        }
        let out = f(&Db {
            conn: Conn::Sqlite(&state.conn),
        });
        let settled = if out.is_ok() {
            run(&state.conn, "RELEASE one_write")
        } else {
            state
                .conn
                .execute_batch("ROLLBACK TO one_write; RELEASE one_write")
        };
        if let Err(e) = settled {
            return Err(self.abort_batch(&mut state, e.into()));
        }
        let full = state
            .open
            .as_ref()
            .is_some_and(|b| b.writes >= MAX_BATCH_WRITES || b.started.elapsed() >= MAX_BATCH_AGE);
        if full || self.waiting.load(Ordering::SeqCst) == 0 {
            let committed = self.end_batch(&mut state, None);
            drop(state);
            let value = out?;
            committed?;
            return Ok(value);
        }
        drop(state);
        // A failed write left nothing in the batch: it need not wait for the commit.
        let value = out?;
        self.wait_for(batch)?;
        Ok(value)
    }

    /// Runs `f` on the connection with no batch open (committing the open one first), for
    /// work that must not run inside a transaction, such as a checkpoint.
    pub(in crate::store) fn with_idle_connection<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T> {
        let mut state = self.state.lock().map_err(|_| poisoned())?;
        self.end_batch(&mut state, None)?;
        f(&state.conn)
    }

    fn join_batch(&self, state: &mut WriterState, durability: Durability) -> Result<u64> {
        if let Some(batch) = state.open.as_mut() {
            if batch.durability == durability {
                batch.writes += 1;
                return Ok(batch.id);
            }
            // SQLite fixes a transaction's sync level when it begins: the open batch commits
            // as it is, for its own writers (who hear how it ended), and ours begins anew.
            let _ = self.end_batch(state, None);
        }
        if state.durability != durability {
            state
                .conn
                .pragma_update(None, "synchronous", durability.synchronous())?;
            state.durability = durability;
        }
        run(&state.conn, "BEGIN IMMEDIATE")?;
        let mut outcomes = self.outcomes.lock().map_err(|_| poisoned())?;
        outcomes.last_id += 1;
        let id = outcomes.last_id;
        state.open = Some(OpenBatch {
            id,
            writes: 1,
            started: Instant::now(),
            durability,
        });
        Ok(id)
    }

    /// Commits the open batch (or, given a failure, rolls it back), records how it ended for
    /// the writers waiting on it and wakes them.
    fn end_batch(&self, state: &mut WriterState, failure: Option<Error>) -> Result<()> {
        let Some(batch) = state.open.take() else {
            return failure.map_or(Ok(()), Err);
        };
        let result = match failure {
            None => run(&state.conn, "COMMIT").map_err(Error::from),
            Some(e) => Err(e),
        };
        if result.is_err() {
            // Undoes the whole batch; if even that fails the connection rolls back by itself.
            let _ = state.conn.execute_batch("ROLLBACK");
        }
        let mut outcomes = self.outcomes.lock().map_err(|_| poisoned())?;
        outcomes.finished = batch.id;
        if let Err(e) = &result {
            outcomes.failures.push_back((batch.id, shared(e)));
            if outcomes.failures.len() > REMEMBERED_FAILURES {
                outcomes.failures.pop_front();
            }
        }
        self.committed.notify_all();
        result
    }

    /// Rolls the open batch back after a failure of the savepoint machinery itself.
    fn abort_batch(&self, state: &mut WriterState, error: Error) -> Error {
        let returned = shared(&error);
        let _ = self.end_batch(state, Some(error));
        returned
    }

    fn wait_for(&self, batch: u64) -> Result<()> {
        let outcomes = self.outcomes.lock().map_err(|_| poisoned())?;
        let (outcomes, timeout) = self
            .committed
            .wait_timeout_while(outcomes, COMMIT_WAIT, |o| o.finished < batch)
            .map_err(|_| poisoned())?;
        if timeout.timed_out() {
            return Err(Error::Storage(
                "the write was not committed in time; it may or may not be stored".into(),
            ));
        }
        match outcomes.failures.iter().find(|(id, _)| *id == batch) {
            Some((_, e)) => Err(shared(e)),
            None => Ok(()),
        }
    }
}

/// One statement of the writer's own (savepoints, begin, commit), prepared once per
/// connection: each write runs two, and parsing them every time showed in profiles.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

fn poisoned() -> Error {
    Error::Storage("the writer connection was poisoned".into())
}

/// The same failure for every writer of a batch (a commit fails with a storage error).
fn shared(e: &Error) -> Error {
    match e {
        Error::InsufficientStorage(m) => Error::InsufficientStorage(m.clone()),
        Error::StorageUnavailable(m) => Error::StorageUnavailable(m.clone()),
        other => Error::Storage(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::Store;

    #[test]
    fn an_unsynced_write_is_committed_and_leaves_later_commits_synced() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(&dir.path().join("registry.db"))?;
        let synchronous = |store: &Store| {
            store.sqlite_writer().with_idle_connection(|conn| {
                Ok(conn.query_row("PRAGMA synchronous", [], |row| row.get::<_, i64>(0))?)
            })
        };
        const NORMAL: i64 = 1;
        const FULL: i64 = 2;
        store.write_unsynced(|db| {
            db.conn.execute_batch(
                "CREATE TABLE scratch (n INTEGER); INSERT INTO scratch VALUES (1)",
            )?;
            Ok(())
        })?;
        let seen: i64 = store.read(|db| {
            Ok(db
                .conn
                .query_row("SELECT n FROM scratch", [], |r| r.get(0))?)
        })?;
        assert_eq!(seen, 1, "an acknowledged unsynced write is committed");
        assert_eq!(
            synchronous(&store)?,
            NORMAL,
            "it committed without an fsync"
        );
        store.write(|db| {
            db.conn.execute_batch("INSERT INTO scratch VALUES (2)")?;
            Ok(())
        })?;
        assert_eq!(
            synchronous(&store)?,
            FULL,
            "a synced write commits with FULL"
        );
        Ok(())
    }

    #[test]
    fn concurrent_writes_share_commits_and_a_failed_one_leaves_the_others() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let store = Arc::new(Store::open(&dir.path().join("registry.db"))?);
        store.sqlite_writer().with_idle_connection(|conn| {
            conn.execute_batch("CREATE TABLE scratch (writer INTEGER, n INTEGER)")?;
            Ok(())
        })?;
        let threads: Vec<_> = (0..8)
            .map(|writer| {
                let store = store.clone();
                std::thread::spawn(move || -> Result<Vec<i64>> {
                    let mut acknowledged = Vec::new();
                    for n in 0..40i64 {
                        let written = store.write(|db| {
                            db.conn.execute(
                                "INSERT INTO scratch (writer, n) VALUES (?1, ?2)",
                                (writer, n),
                            )?;
                            // Every seventh write fails after writing: it must leave no row.
                            if n % 7 == 3 {
                                return Err(Error::bad_request("refused"));
                            }
                            Ok(n)
                        });
                        if let Ok(n) = written {
                            // Acknowledged means committed: another connection sees it now.
                            let seen: i64 = store.read(|db| {
                                Ok(db.conn.query_row(
                                    "SELECT count(*) FROM scratch WHERE writer = ?1 AND n = ?2",
                                    (writer, n),
                                    |row| row.get(0),
                                )?)
                            })?;
                            assert_eq!(seen, 1, "write {writer}/{n} acknowledged but not visible");
                            acknowledged.push(n);
                        }
                    }
                    Ok(acknowledged)
                })
            })
            .collect();
        let mut expected = 0;
        for thread in threads {
            let acknowledged = thread
                .join()
                .map_err(|_| Error::Storage("a writer thread panicked".into()))??;
            assert_eq!(acknowledged.len(), 40 - 6, "only the refused writes fail");
            expected += acknowledged.len() as i64;
        }
        let (rows, refused): (i64, i64) = store.read(|db| {
            Ok(db.conn.query_row(
                "SELECT count(*), count(*) FILTER (WHERE n % 7 = 3) FROM scratch",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?)
        })?;
        assert_eq!(rows, expected);
        assert_eq!(refused, 0, "a refused write left a row behind");
        Ok(())
    }
}
