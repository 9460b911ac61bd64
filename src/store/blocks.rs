//! Package blocks: names an administrator has taken off the registry, with the reason.

use rusqlite::OptionalExtension;

use super::Db;
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRecord {
    pub id: i64,
    pub name: String,
    pub reason: String,
    /// The administrator who set (or last changed) the block, if the account still exists.
    pub blocked_by: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl Db<'_> {
    /// The block on a package name, if any: one lookup in a unique index, cheap enough for
    /// every read of a packument or tarball.
    pub fn package_block(&self, name: &str) -> Result<Option<BlockRecord>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT b.id, b.name, b.reason, u.name, b.created_at, b.updated_at \
             FROM package_blocks b LEFT JOIN users u ON u.id = b.blocked_by WHERE b.name = ?1",
        )?;
        Ok(stmt
            .query_row([name], |row| {
                Ok(BlockRecord {
                    id: row.get(0)?,
                    name: row.get(1)?,
                    reason: row.get(2)?,
                    blocked_by: row.get(3)?,
                    created_at: row.get(4)?,
                    updated_at: row.get(5)?,
                })
            })
            .optional()?)
    }

    /// Just the reason a name is blocked, if it is (the read path's check).
    pub fn package_block_reason(&self, name: &str) -> Result<Option<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT reason FROM package_blocks WHERE name = ?1")?;
        Ok(stmt.query_row([name], |row| row.get(0)).optional()?)
    }

    /// Blocks a name, or changes the reason of an existing block (keeping its creation time).
    /// Returns the block's id and whether it is new.
    pub fn put_package_block(
        &self,
        name: &str,
        reason: &str,
        user_id: Option<i64>,
        now: &str,
    ) -> Result<(i64, bool)> {
        let existing: Option<i64> = self
            .query_row(
                "SELECT id FROM package_blocks WHERE name = ?1",
                [name],
                |row| row.get(0),
            )
            .optional()?;
        match existing {
            Some(id) => {
                self.execute(
                    "UPDATE package_blocks SET reason = ?2, blocked_by = ?3, updated_at = ?4 \
                     WHERE id = ?1",
                    (id, reason, user_id, now),
                )?;
                Ok((id, false))
            }
            None => {
                let id = self.insert_returning(
                    "INSERT INTO package_blocks (name, reason, blocked_by, created_at, \
                     updated_at) VALUES (?1, ?2, ?3, ?4, ?4) RETURNING id",
                    (name, reason, user_id, now),
                )?;
                Ok((id, true))
            }
        }
    }

    /// False if the name was not blocked.
    pub fn delete_package_block(&self, name: &str) -> Result<bool> {
        Ok(self.execute("DELETE FROM package_blocks WHERE name = ?1", [name])? > 0)
    }
}
