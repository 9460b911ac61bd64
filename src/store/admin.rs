//! Queries of the admin tool: listings across the registry, account removal, the integrity
//! checks of `registry doctor`, and online backups.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use super::users::{user_from_row, USER_COLUMNS};
use super::{Backend, Db, Store, UserRecord};
use crate::error::{Error, Result};

/// One row of `registry package list`.
#[derive(Debug, Clone)]
pub struct PackageSummary {
    pub id: i64,
    pub name: String,
    pub latest: Option<String>,
    /// Live (not unpublished) versions.
    pub versions: u64,
    /// Bytes of the live versions' tarballs.
    pub size: u64,
    pub created_at: String,
    pub modified_at: String,
    pub unpublished_at: Option<String>,
}

/// A live version's tarball, for `registry doctor` and `registry gc`.
#[derive(Debug, Clone)]
pub struct LiveTarball {
    pub package: String,
    pub version: String,
    pub sha512_hex: String,
    pub size: u64,
}

impl Db<'_> {
    pub fn all_users(&self) -> Result<Vec<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY name");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([], user_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn set_user_admin(&self, user_id: i64, admin: bool, now: &str) -> Result<()> {
        self.execute(
            "UPDATE users SET is_admin = ?2, updated_at = ?3 WHERE id = ?1",
            (user_id, admin, now),
        )?;
        Ok(())
    }

    /// (package id, name, number of maintainers) of every package `user_id` maintains.
    pub fn packages_of_maintainer(&self, user_id: i64) -> Result<Vec<(i64, String, u64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT p.id, p.name, (SELECT count(*) FROM maintainers m2 WHERE m2.package_id = p.id) \
             FROM maintainers m JOIN packages p ON p.id = m.package_id \
             WHERE m.user_id = ?1 ORDER BY p.name",
        )?;
        let rows = stmt.query_map([user_id], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get::<_, i64>(2)?.max(0) as u64,
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes an account: its tokens and stars go with it (cascade), it leaves every package
    /// it maintained, and versions it published keep no link to it.
    pub fn delete_user(&self, user_id: i64) -> Result<bool> {
        self.execute("DELETE FROM maintainers WHERE user_id = ?1", [user_id])?;
        self.execute(
            "UPDATE versions SET publisher_id = NULL WHERE publisher_id = ?1",
            [user_id],
        )?;
        Ok(self.execute("DELETE FROM users WHERE id = ?1", [user_id])? > 0)
    }

    pub fn package_summaries(&self) -> Result<Vec<PackageSummary>> {
        let mut stmt = self.conn.prepare(
            "SELECT p.id, p.name, \
               (SELECT version FROM dist_tags t WHERE t.package_id = p.id AND t.tag = 'latest'), \
               (SELECT count(*) FROM versions v WHERE v.package_id = p.id AND v.deleted_at IS NULL), \
               (SELECT coalesce(sum(tarball_size), 0) FROM versions v \
                  WHERE v.package_id = p.id AND v.deleted_at IS NULL), \
               p.created_at, p.modified_at, p.unpublished_at \
             FROM packages p ORDER BY p.name",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(PackageSummary {
                id: row.get(0)?,
                name: row.get(1)?,
                latest: row.get(2)?,
                versions: row.get::<_, i64>(3)?.max(0) as u64,
                size: row.get::<_, i64>(4)?.max(0) as u64,
                created_at: row.get(5)?,
                modified_at: row.get(6)?,
                unpublished_at: row.get(7)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every live version's tarball, by package and publication order.
    pub fn live_tarballs(&self) -> Result<Vec<LiveTarball>> {
        let mut stmt = self.conn.prepare(
            "SELECT p.name, v.version, v.tarball_sha512, v.tarball_size FROM versions v \
             JOIN packages p ON p.id = v.package_id WHERE v.deleted_at IS NULL \
             ORDER BY p.name, v.id",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(LiveTarball {
                package: row.get(0)?,
                version: row.get(1)?,
                sha512_hex: row.get(2)?,
                size: row.get::<_, i64>(3)?.max(0) as u64,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every package (`(id, name)`), tombstones included, by name.
    pub fn all_packages(&self) -> Result<Vec<(i64, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, name FROM packages ORDER BY name")?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

impl Store {
    /// A consistent copy of the database at `dest` (which must not exist), made with SQLite's
    /// online backup API while other processes keep reading and writing.
    pub fn backup_to(&self, dest: &Path, mut progress: impl FnMut(u64, u64)) -> Result<()> {
        if dest.exists() {
            return Err(Error::conflict(format!(
                "{} already exists: back up into a new directory",
                dest.display()
            )));
        }
        let source = match &self.backend {
            Backend::Sqlite { readers, .. } => readers.get()?,
            Backend::Postgres { .. } => {
                return Err(Error::bad_request(
                    "the metadata is in PostgreSQL: back it up with pg_dump (README, \
                     \"Several nodes\"); `registry backup` copies a SQLite registry",
                ))
            }
        };
        let mut target = Connection::open(dest)?;
        let backup = rusqlite::backup::Backup::new(&source, &mut target)?;
        loop {
            let step = backup.step(256)?;
            let p = backup.progress();
            let total = u64::try_from(p.pagecount).unwrap_or(0);
            let remaining = u64::try_from(p.remaining).unwrap_or(0);
            progress(total.saturating_sub(remaining), total);
            match step {
                rusqlite::backup::StepResult::Done => break,
                rusqlite::backup::StepResult::More => {}
                rusqlite::backup::StepResult::Busy | rusqlite::backup::StepResult::Locked => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        drop(backup);
        target.pragma_update(None, "journal_mode", "DELETE")?;
        Ok(())
    }
}

/// Checks that `path` is a registry database this binary can read (for `registry restore`).
pub fn check_database(path: &Path) -> Result<()> {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let ok: String = conn.query_row("PRAGMA quick_check", [], |row| row.get(0))?;
    if ok != "ok" {
        return Err(Error::Storage(format!(
            "{} failed SQLite's integrity check: {ok}",
            path.display()
        )));
    }
    conn.query_row("SELECT count(*) FROM packages", [], |row| {
        row.get::<_, i64>(0)
    })
    .map_err(|e| {
        Error::bad_request(format!(
            "{} is not a registry database: {e}",
            path.display()
        ))
    })?;
    Ok(())
}
