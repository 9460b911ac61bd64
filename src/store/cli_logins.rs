//! npm's web logins in progress (`POST /-/v1/login` until npm collects its token), kept in the
//! database so that every node of a cluster sees the same ones: npm may poll a node other
//! than the one that answered its POST, and the browser may open the login page on a third.
//!
//! A login is found by the sha256 hash of one of its two random ids (the page's or the one npm
//! polls), never by the id itself, as tokens are. Times are unix milliseconds from the caller.

use rusqlite::OptionalExtension;

use super::Db;
use crate::error::{Error, Result};

/// A login in progress as the store keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingCliLogin {
    /// npm asked to create an account (`npm adduser`).
    pub create: bool,
    /// The user who approved it in the browser.
    pub approved_by: Option<i64>,
    pub expires_ms: i64,
}

const COLUMNS: &str = "create_account, approved_by, expires_ms";

fn from_row(row: &super::Row<'_>) -> rusqlite::Result<PendingCliLogin> {
    Ok(PendingCliLogin {
        create: row.get(0)?,
        approved_by: row.get(1)?,
        expires_ms: row.get(2)?,
    })
}

impl Db<'_> {
    /// Opens a login, unless `max_pending` unexpired ones are open already (across every
    /// node: this runs in a write, which the backends serialise, so the count cannot be
    /// raced). Expired logins are dropped first, which is what makes room again.
    pub fn open_cli_login(
        &self,
        page_hash: &[u8],
        done_hash: &[u8],
        create: bool,
        expires_ms: i64,
        now_ms: i64,
        max_pending: usize,
    ) -> Result<()> {
        self.delete_expired_cli_logins(now_ms)?;
        let pending: i64 = self.query_row(
            "SELECT count(*) FROM cli_logins WHERE expires_ms > ?1",
            [now_ms],
            |r| r.get(0),
        )?;
        if usize::try_from(pending).unwrap_or(usize::MAX) >= max_pending {
            return Err(Error::TooManyAttempts {
                message: "too many web logins are in progress: try again in a minute".into(),
                retry_after_secs: 60,
            });
        }
        self.execute(
            "INSERT INTO cli_logins (page_hash, done_hash, create_account, expires_ms) \
             VALUES (?1, ?2, ?3, ?4)",
            (page_hash, done_hash, create, expires_ms),
        )?;
        Ok(())
    }

    /// The unexpired login behind a login page.
    pub fn cli_login_page(&self, page_hash: &[u8], now_ms: i64) -> Result<Option<PendingCliLogin>> {
        Ok(self
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM cli_logins WHERE page_hash = ?1 AND expires_ms > ?2"
                ),
                (page_hash, now_ms),
                from_row,
            )
            .optional()?)
    }

    /// Records the browser's approval; false when the login is gone or expired.
    pub fn approve_cli_login(&self, page_hash: &[u8], user_id: i64, now_ms: i64) -> Result<bool> {
        Ok(self.execute(
            "UPDATE cli_logins SET approved_by = ?2 WHERE page_hash = ?1 AND expires_ms > ?3",
            (page_hash, user_id, now_ms),
        )? > 0)
    }

    /// The login npm polls, expired or not: a read, so that npm's once-a-second polls of a
    /// login nobody has approved yet do not take the write lock (on PostgreSQL, every write
    /// also wakes every node's commit listener).
    pub fn cli_login_done(&self, done_hash: &[u8]) -> Result<Option<PendingCliLogin>> {
        Ok(self
            .query_row(
                &format!("SELECT {COLUMNS} FROM cli_logins WHERE done_hash = ?1"),
                [done_hash],
                from_row,
            )
            .optional()?)
    }

    /// Takes the polled login if it is approved or expired: the row is deleted and its last
    /// state returned, in one statement, so that of two polls on two nodes only one gets it
    /// (the other finds no row). A login still waiting for the browser is left alone.
    pub fn collect_cli_login(
        &self,
        done_hash: &[u8],
        now_ms: i64,
    ) -> Result<Option<PendingCliLogin>> {
        Ok(self
            .query_row(
                &format!(
                    "DELETE FROM cli_logins WHERE done_hash = ?1 \
                     AND (approved_by IS NOT NULL OR expires_ms <= ?2) RETURNING {COLUMNS}"
                ),
                (done_hash, now_ms),
                from_row,
            )
            .optional()?)
    }

    pub fn delete_expired_cli_logins(&self, now_ms: i64) -> Result<u64> {
        Ok(self.execute("DELETE FROM cli_logins WHERE expires_ms <= ?1", [now_ms])? as u64)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use super::*;
    use crate::store::Store;

    fn fresh() -> Result<(tempfile::TempDir, Store, i64)> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(&dir.path().join("r.db"))?;
        let user = store.write(|db| db.insert_user("alice", "a@example.com", "x", false, "t"))?;
        Ok((dir, store, user))
    }

    #[test]
    fn a_login_is_seen_by_its_page_approved_and_collected_once() -> Result<()> {
        let (_dir, store, user) = fresh()?;
        let (page, done) = ([1u8; 32], [2u8; 32]);
        store.write(|db| db.open_cli_login(&page, &done, true, 1_000, 0, 10))?;
        let seen = store.read(|db| db.cli_login_page(&page, 0))?;
        assert_eq!(
            seen,
            Some(PendingCliLogin {
                create: true,
                approved_by: None,
                expires_ms: 1_000
            })
        );
        assert_eq!(store.read(|db| db.cli_login_page(&done, 0))?, None);
        // Not approved: polling leaves it in place.
        assert_eq!(store.write(|db| db.collect_cli_login(&done, 0))?, None);
        assert!(store.write(|db| db.approve_cli_login(&page, user, 0))?);
        assert_eq!(
            store
                .read(|db| db.cli_login_done(&done))?
                .and_then(|l| l.approved_by),
            Some(user)
        );
        let taken = store.write(|db| db.collect_cli_login(&done, 0))?;
        assert_eq!(taken.and_then(|l| l.approved_by), Some(user));
        assert_eq!(store.write(|db| db.collect_cli_login(&done, 0))?, None);
        assert!(!store.write(|db| db.approve_cli_login(&page, user, 0))?);
        Ok(())
    }

    #[test]
    fn expired_logins_are_refused_collected_as_expired_and_make_room() -> Result<()> {
        let (_dir, store, user) = fresh()?;
        store.write(|db| db.open_cli_login(&[1; 32], &[2; 32], false, 1_000, 0, 2))?;
        store.write(|db| db.open_cli_login(&[3; 32], &[4; 32], false, 2_000, 0, 2))?;
        let full = store.write(|db| db.open_cli_login(&[5; 32], &[6; 32], false, 3_000, 999, 2));
        assert!(
            matches!(full, Err(Error::TooManyAttempts { .. })),
            "{full:?}"
        );
        assert_eq!(store.read(|db| db.cli_login_page(&[1; 32], 1_000))?, None);
        assert!(!store.write(|db| db.approve_cli_login(&[1; 32], user, 1_000))?);
        let expired = store.write(|db| db.collect_cli_login(&[2; 32], 1_000))?;
        assert_eq!(expired.map(|l| l.expires_ms), Some(1_000));
        // The second expires too; opening drops it and takes its place.
        store.write(|db| db.open_cli_login(&[5; 32], &[6; 32], false, 5_000, 2_000, 1))?;
        assert_eq!(store.read(|db| db.cli_login_done(&[4; 32]))?, None);
        Ok(())
    }

    #[test]
    fn a_deleted_user_takes_their_approval_with_them() -> Result<()> {
        let (_dir, store, user) = fresh()?;
        store.write(|db| db.open_cli_login(&[1; 32], &[2; 32], false, 1_000, 0, 2))?;
        assert!(store.write(|db| db.approve_cli_login(&[1; 32], user, 0))?);
        store.write(|db| Ok(db.execute("DELETE FROM users WHERE id = ?1", [user])?))?;
        assert_eq!(store.write(|db| db.collect_cli_login(&[2; 32], 0))?, None);
        Ok(())
    }

    #[test]
    fn concurrent_collects_hand_an_approved_login_out_once() -> Result<()> {
        let (_dir, store, user) = fresh()?;
        let store = Arc::new(store);
        for round in 0..20u8 {
            let (page, done) = ([round; 32], [round + 100; 32]);
            store.write(|db| db.open_cli_login(&page, &done, false, 1_000, 0, 100))?;
            store.write(|db| db.approve_cli_login(&page, user, 0))?;
            let barrier = Arc::new(Barrier::new(4));
            let pollers: Vec<_> = (0..4)
                .map(|_| {
                    let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
                    std::thread::spawn(move || {
                        barrier.wait();
                        store.write(|db| db.collect_cli_login(&done, 0))
                    })
                })
                .collect();
            let mut collected = 0;
            for poller in pollers {
                let taken = poller
                    .join()
                    .map_err(|_| Error::Storage("a poller panicked".into()))??;
                collected += usize::from(taken.is_some());
            }
            assert_eq!(collected, 1, "round {round}");
        }
        Ok(())
    }
}
