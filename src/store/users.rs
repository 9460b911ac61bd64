//! Users and their tokens.

use rusqlite::{OptionalExtension, Row};

use super::Db;
use crate::error::Result;

#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub password_hash: String,
    pub is_admin: bool,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub id: i64,
    pub key: String,
    /// A short, non-secret prefix of the token for listings (`npm_ab12`).
    pub display: String,
    pub user_id: i64,
    pub name: Option<String>,
    pub readonly: bool,
    pub cidr_whitelist: Vec<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
}

const USER_COLUMNS: &str = "id, name, email, password_hash, is_admin, created_at, updated_at";
const TOKEN_COLUMNS: &str = "id, key, display, user_id, name, readonly, cidr_whitelist, \
                             created_at, expires_at, last_used_at";

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        email: row.get(2)?,
        password_hash: row.get(3)?,
        is_admin: row.get(4)?,
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
    })
}

fn token_from_row(row: &Row<'_>) -> rusqlite::Result<TokenRecord> {
    let cidrs: String = row.get(6)?;
    Ok(TokenRecord {
        id: row.get(0)?,
        key: row.get(1)?,
        display: row.get(2)?,
        user_id: row.get(3)?,
        name: row.get(4)?,
        readonly: row.get(5)?,
        cidr_whitelist: serde_json::from_str(&cidrs).unwrap_or_default(),
        created_at: row.get(7)?,
        expires_at: row.get(8)?,
        last_used_at: row.get(9)?,
    })
}

/// What a new token row holds; the secret itself is never stored, only its hash.
pub struct NewToken<'a> {
    pub key: &'a str,
    pub token_hash: &'a [u8],
    pub display: &'a str,
    pub user_id: i64,
    pub name: Option<&'a str>,
    pub readonly: bool,
    pub cidr_whitelist: &'a [String],
    pub created_at: &'a str,
    pub expires_at: Option<&'a str>,
}

impl Db<'_> {
    pub fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE name = ?1");
        Ok(self
            .conn
            .query_row(&sql, [name], user_from_row)
            .optional()?)
    }

    pub fn user_by_id(&self, id: i64) -> Result<Option<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1");
        Ok(self.conn.query_row(&sql, [id], user_from_row).optional()?)
    }

    pub fn insert_user(
        &self,
        name: &str,
        email: &str,
        password_hash: &str,
        is_admin: bool,
        now: &str,
    ) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO users (name, email, password_hash, is_admin, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            (name, email, password_hash, is_admin, now),
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn insert_token(&self, token: &NewToken<'_>) -> Result<i64> {
        let cidrs = serde_json::to_string(token.cidr_whitelist).unwrap_or_else(|_| "[]".into());
        self.conn.execute(
            "INSERT INTO tokens (key, token_hash, display, user_id, name, readonly, \
             cidr_whitelist, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            (
                token.key,
                token.token_hash,
                token.display,
                token.user_id,
                token.name,
                token.readonly,
                cidrs,
                token.created_at,
                token.expires_at,
            ),
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The token with this hash and the user it belongs to.
    pub fn token_by_hash(&self, token_hash: &[u8]) -> Result<Option<(TokenRecord, UserRecord)>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE token_hash = ?1");
        let Some(token) = self
            .conn
            .query_row(&sql, [token_hash], token_from_row)
            .optional()?
        else {
            return Ok(None);
        };
        Ok(self.user_by_id(token.user_id)?.map(|user| (token, user)))
    }

    /// Deletes the token with this hash; false if there was none.
    pub fn delete_token_by_hash(&self, token_hash: &[u8]) -> Result<bool> {
        Ok(self
            .conn
            .execute("DELETE FROM tokens WHERE token_hash = ?1", [token_hash])?
            > 0)
    }
}
