//! Answers of the hot anonymous reads kept between requests for as long as nothing has been
//! committed to the database, by this process or any other (the CLI's local backend).
//!
//! Whether anything was committed is read from SQLite's WAL-index header, the first 48 bytes of
//! the `-shm` file (<https://sqlite.org/walformat.html>): every commit rewrites it (`iChange`
//! counts transactions; `mxFrame`, the salts and the checksums move too), and a reader sees a
//! commit only through it. One `pread(2)` of it replaces the statement each read ran before,
//! whose WAL read lock alone cost two `fcntl(2)` locks.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Mutex;

use crate::error::Result;

/// The WAL-index header's first copy: what a reader checks to see whether anything changed.
const HEADER_BYTES: usize = 48;

/// The state of the database's commits at one moment; equal stamps mean nothing was committed
/// in between. SQLite's is its WAL-index header; PostgreSQL's, the commits its listener has
/// counted.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CommitStamp {
    WalIndex([u8; HEADER_BYTES]),
    Counted(u64),
}

impl CommitStamp {
    pub(super) fn counted(commits: u64) -> CommitStamp {
        CommitStamp::Counted(commits)
    }
}

/// Reads [`CommitStamp`]s of one database.
pub struct CommitWatch {
    shm: Option<File>,
}

impl CommitWatch {
    /// For the database at `db_path`, in WAL mode and open (so its `-shm` file exists and
    /// stays). Without the file there are no stamps, and every read asks the database.
    pub fn open(db_path: &Path) -> CommitWatch {
        let mut shm = db_path.as_os_str().to_owned();
        shm.push("-shm");
        CommitWatch {
            shm: File::open(shm).ok(),
        }
    }

    /// The stamp now; `None` when the header cannot be read.
    pub fn stamp(&self) -> Option<CommitStamp> {
        let mut header = [0; HEADER_BYTES];
        self.shm.as_ref()?.read_exact_at(&mut header, 0).ok()?;
        Some(CommitStamp::WalIndex(header))
    }
}

/// Read answers by key, valid at one [`CommitStamp`]: a later stamp empties the memo. At most
/// `capacity` answers are kept (past it the memo starts over), so a flood of distinct names
/// (a 404 scan) costs bounded memory.
pub struct ReadMemo<V> {
    state: Mutex<MemoState<V>>,
    capacity: usize,
}

struct MemoState<V> {
    stamp: Option<CommitStamp>,
    answers: HashMap<String, V>,
}

impl<V: Clone> ReadMemo<V> {
    pub fn new(capacity: usize) -> ReadMemo<V> {
        ReadMemo {
            state: Mutex::new(MemoState {
                stamp: None,
                answers: HashMap::new(),
            }),
            capacity,
        }
    }

    /// The answer for `key` from the memo when nothing was committed since it was read, else
    /// `read`'s (kept when it is `Ok`). `stamp` is taken before `read` runs, so an answer is
    /// never kept under a stamp older than what it saw. `None` is `read`'s own `None`.
    pub fn read_through(
        &self,
        stamp: Option<CommitStamp>,
        key: String,
        read: impl FnOnce() -> Option<Result<V>>,
    ) -> Option<Result<V>> {
        let Some(stamp) = stamp else {
            return read();
        };
        if let Some(answer) = self.get(stamp, &key) {
            return Some(Ok(answer));
        }
        let answer = read()?;
        if let Ok(value) = &answer {
            self.keep(stamp, key, value.clone());
        }
        Some(answer)
    }

    fn get(&self, stamp: CommitStamp, key: &str) -> Option<V> {
        let mut state = self.state.lock().ok()?;
        if state.stamp != Some(stamp) {
            state.stamp = Some(stamp);
            state.answers.clear();
            return None;
        }
        state.answers.get(key).cloned()
    }

    fn keep(&self, read_at: CommitStamp, key: String, value: V) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        // A commit came since `read_at`: the answer may be stale already.
        if state.stamp != Some(read_at) {
            return;
        }
        if state.answers.len() >= self.capacity {
            state.answers.clear();
        }
        state.answers.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn wal_database(dir: &Path) -> (Connection, CommitWatch) {
        let path = dir.join("db.sqlite");
        let conn = Connection::open(&path).expect("open");
        conn.pragma_update(None, "journal_mode", "WAL")
            .expect("WAL");
        conn.execute("CREATE TABLE t (v INTEGER)", [])
            .expect("create");
        (conn, CommitWatch::open(&path))
    }

    #[test]
    fn every_commit_from_any_connection_changes_the_stamp_and_reads_do_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (conn, watch) = wal_database(dir.path());
        let before = watch.stamp().expect("a stamp");
        conn.query_row("SELECT count(*) FROM t", [], |_| Ok(()))
            .expect("read");
        assert_eq!(watch.stamp(), Some(before), "a read is not a commit");

        // Another connection, as the CLI's would be.
        let other = Connection::open(dir.path().join("db.sqlite")).expect("open");
        other
            .execute("INSERT INTO t VALUES (1)", [])
            .expect("insert");
        let after_insert = watch.stamp().expect("a stamp");
        assert_ne!(after_insert, before);

        conn.execute("UPDATE t SET v = 2", []).expect("update");
        assert_ne!(watch.stamp(), Some(after_insert));

        // A rolled-back transaction commits nothing.
        let settled = watch.stamp();
        conn.execute_batch("BEGIN; UPDATE t SET v = 3; ROLLBACK;")
            .expect("rollback");
        assert_eq!(watch.stamp(), settled);
    }

    #[test]
    fn an_answer_lasts_until_the_next_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (conn, watch) = wal_database(dir.path());
        let memo: ReadMemo<u32> = ReadMemo::new(16);
        let reads = std::cell::Cell::new(0);
        let read = |value: u32| {
            let reads = &reads;
            move || {
                reads.set(reads.get() + 1);
                Some(Ok(value))
            }
        };
        let first = memo.read_through(watch.stamp(), "a".into(), read(1));
        assert_eq!(first.and_then(|r| r.ok()), Some(1));
        let again = memo.read_through(watch.stamp(), "a".into(), read(2));
        assert_eq!(again.and_then(|r| r.ok()), Some(1), "kept");
        conn.execute("INSERT INTO t VALUES (1)", [])
            .expect("insert");
        let after = memo.read_through(watch.stamp(), "a".into(), read(3));
        assert_eq!(
            after.and_then(|r| r.ok()),
            Some(3),
            "read again after a commit"
        );
        assert_eq!(reads.get(), 2);
    }

    #[test]
    fn an_answer_read_across_a_commit_is_read_again_at_the_next_stamp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (conn, watch) = wal_database(dir.path());
        let memo: ReadMemo<u32> = ReadMemo::new(16);
        let stamp = watch.stamp();
        // Another request sees the current stamp first, then a commit lands during our read.
        memo.read_through(stamp, "b".into(), || Some(Ok(0)));
        let read = memo.read_through(stamp, "a".into(), || {
            conn.execute("INSERT INTO t VALUES (1)", [])
                .expect("insert");
            Some(Ok(1))
        });
        assert_eq!(read.and_then(|r| r.ok()), Some(1));
        let next = memo.read_through(watch.stamp(), "a".into(), || Some(Ok(2)));
        assert_eq!(next.and_then(|r| r.ok()), Some(2));
    }

    #[test]
    fn errors_are_not_kept_and_the_memo_is_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_conn, watch) = wal_database(dir.path());
        let memo: ReadMemo<u32> = ReadMemo::new(2);
        let stamp = watch.stamp();
        let failed = memo.read_through(stamp, "e".into(), || {
            Some(Err(crate::Error::Storage("busy".into())))
        });
        assert!(matches!(failed, Some(Err(_))));
        let read = memo.read_through(stamp, "e".into(), || Some(Ok(5)));
        assert_eq!(read.and_then(|r| r.ok()), Some(5));
        for key in ["x", "y", "z"] {
            memo.read_through(stamp, key.into(), || Some(Ok(0)));
        }
        let held = memo.state.lock().expect("lock").answers.len();
        assert!(held <= 2, "{held} answers held past the capacity of 2");
    }
}
