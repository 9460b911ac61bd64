//! Browser sessions of the web UI.

use rusqlite::OptionalExtension;

use super::users::{user_from_row_at, USER_COLUMNS};
use super::Db;
pub use crate::accounts::sessions::WebSession;
use crate::error::Result;

impl Db<'_> {
    pub fn insert_web_session(
        &self,
        secret_hash: &[u8],
        user_id: i64,
        csrf: &str,
        now: &str,
        expires_at: &str,
    ) -> Result<i64> {
        Ok(self.insert_returning(
            "INSERT INTO web_sessions (secret_hash, user_id, csrf, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
            (secret_hash, user_id, csrf, now, expires_at),
        )?)
    }

    /// The session with this secret hash that has not expired at `now`, with its user.
    pub fn web_session(&self, secret_hash: &[u8], now: &str) -> Result<Option<WebSession>> {
        let columns = USER_COLUMNS
            .split(',')
            .map(|c| format!("u.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT s.id, s.csrf, s.created_at, s.expires_at, {columns} FROM web_sessions s \
             JOIN users u ON u.id = s.user_id WHERE s.secret_hash = ?1 AND s.expires_at > ?2"
        ))?;
        Ok(stmt
            .query_row((secret_hash, now), |row| {
                Ok(WebSession {
                    id: row.get(0)?,
                    csrf: row.get(1)?,
                    created_at: row.get(2)?,
                    expires_at: row.get(3)?,
                    user: user_from_row_at(row, 4)?,
                })
            })
            .optional()?)
    }

    /// False when there was no such session.
    pub fn delete_web_session(&self, secret_hash: &[u8]) -> Result<bool> {
        Ok(self.execute(
            "DELETE FROM web_sessions WHERE secret_hash = ?1",
            [secret_hash],
        )? > 0)
    }

    /// Ends every session of a user (a password change, or "sign out everywhere").
    pub fn delete_web_sessions_of(&self, user_id: i64) -> Result<u64> {
        Ok(self.execute("DELETE FROM web_sessions WHERE user_id = ?1", [user_id])? as u64)
    }

    pub fn delete_expired_web_sessions(&self, now: &str) -> Result<u64> {
        Ok(self.execute("DELETE FROM web_sessions WHERE expires_at <= ?1", [now])? as u64)
    }
}
