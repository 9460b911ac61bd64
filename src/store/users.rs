//! Users and their tokens.

use rusqlite::OptionalExtension;

use super::sql::Row;

use super::Db;
pub use crate::accounts::tokens::{OrgsPermission, TokenRecord};
pub use crate::accounts::users::{ProfileFields, UserRecord};
use crate::error::Result;

pub(super) const USER_COLUMNS: &str =
    "id, name, email, password_hash, is_admin, created_at, updated_at, \
                            fullname, homepage, twitter, github, freenode";
const TOKEN_COLUMNS: &str = "id, key, display, user_id, name, readonly, cidr_whitelist, \
                             created_at, expires_at, last_used_at, description, limit_packages, \
                             limit_scopes, limit_orgs, orgs_permission";

pub(super) fn user_from_row(row: &Row<'_>) -> rusqlite::Result<UserRecord> {
    user_from_row_at(row, 0)
}

/// A user from the [`USER_COLUMNS`] of a row, starting at column `at`.
pub(super) fn user_from_row_at(row: &Row<'_>, at: usize) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        id: row.get(at)?,
        name: row.get(at + 1)?,
        email: row.get(at + 2)?,
        password_hash: row.get(at + 3)?,
        is_admin: row.get(at + 4)?,
        created_at: row.get(at + 5)?,
        updated_at: row.get(at + 6)?,
        profile: ProfileFields {
            fullname: row.get(at + 7)?,
            homepage: row.get(at + 8)?,
            twitter: row.get(at + 9)?,
            github: row.get(at + 10)?,
            freenode: row.get(at + 11)?,
        },
    })
}

/// A JSON list column. Unreadable JSON is an error, never an empty list: an empty allow-list
/// or limit would silently widen what the token may do.
fn json_list(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<Vec<String>>> {
    let Some(text) = row.get::<_, Option<String>>(index)? else {
        return Ok(None);
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn json_text(list: &[String]) -> String {
    serde_json::Value::from(list).to_string()
}

fn token_from_row(row: &Row<'_>) -> rusqlite::Result<TokenRecord> {
    Ok(TokenRecord {
        id: row.get(0)?,
        key: row.get(1)?,
        display: row.get(2)?,
        user_id: row.get(3)?,
        name: row.get(4)?,
        readonly: row.get(5)?,
        cidr_whitelist: json_list(row, 6)?.unwrap_or_default(),
        created_at: row.get(7)?,
        expires_at: row.get(8)?,
        last_used_at: row.get(9)?,
        description: row.get(10)?,
        packages: json_list(row, 11)?,
        scopes: json_list(row, 12)?,
        orgs: json_list(row, 13)?,
        orgs_permission: row
            .get::<_, Option<String>>(14)?
            .as_deref()
            .map_or(Some(OrgsPermission::NoAccess), OrgsPermission::parse)
            .ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(
                    14,
                    rusqlite::types::Type::Text,
                    "unknown orgs_permission".into(),
                )
            })?,
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
    pub description: Option<&'a str>,
    pub packages: Option<&'a [String]>,
    pub scopes: Option<&'a [String]>,
    pub orgs: Option<&'a [String]>,
    pub orgs_permission: &'a str,
}

impl Db<'_> {
    pub fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE name = ?1");
        Ok(self.query_row(&sql, [name], user_from_row).optional()?)
    }

    pub fn user_by_id(&self, id: i64) -> Result<Option<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1");
        Ok(self.query_row(&sql, [id], user_from_row).optional()?)
    }

    pub fn insert_user(
        &self,
        name: &str,
        email: &str,
        password_hash: &str,
        is_admin: bool,
        now: &str,
    ) -> Result<i64> {
        Ok(self.insert_returning(
            "INSERT INTO users (name, email, password_hash, is_admin, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?5) RETURNING id",
            (name, email, password_hash, is_admin, now),
        )?)
    }

    pub fn insert_token(&self, token: &NewToken<'_>) -> Result<i64> {
        Ok(self.insert_returning(
            "INSERT INTO tokens (key, token_hash, display, user_id, name, readonly, \
             cidr_whitelist, created_at, expires_at, description, limit_packages, limit_scopes, \
             limit_orgs, orgs_permission) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) RETURNING id",
            rusqlite::params![
                token.key,
                token.token_hash,
                token.display,
                token.user_id,
                token.name,
                token.readonly,
                json_text(token.cidr_whitelist),
                token.created_at,
                token.expires_at,
                token.description,
                token.packages.map(json_text),
                token.scopes.map(json_text),
                token.orgs.map(json_text),
                token.orgs_permission,
            ],
        )?)
    }

    /// The token with this hash and the user it belongs to.
    pub fn token_by_hash(&self, token_hash: &[u8]) -> Result<Option<(TokenRecord, UserRecord)>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE token_hash = ?1");
        let Some(token) = self
            .query_row(&sql, [token_hash], token_from_row)
            .optional()?
        else {
            return Ok(None);
        };
        Ok(self.user_by_id(token.user_id)?.map(|user| (token, user)))
    }

    /// Deletes the token with this hash; false if there was none.
    pub fn delete_token_by_hash(&self, token_hash: &[u8]) -> Result<bool> {
        Ok(self.execute("DELETE FROM tokens WHERE token_hash = ?1", [token_hash])? > 0)
    }

    /// One page of a user's tokens, oldest first.
    pub fn tokens_of_user(
        &self,
        user_id: i64,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<TokenRecord>> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE user_id = ?1 ORDER BY id LIMIT ?2 OFFSET ?3"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let rows = stmt.query_map((user_id, clamp(limit), clamp(offset)), token_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn count_tokens_of_user(&self, user_id: i64) -> Result<u64> {
        let count: i64 = self.query_row(
            "SELECT count(*) FROM tokens WHERE user_id = ?1",
            [user_id],
            |row| row.get(0),
        )?;
        Ok(count.max(0) as u64)
    }

    pub fn token_by_key(&self, key: &str) -> Result<Option<TokenRecord>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE key = ?1");
        Ok(self.query_row(&sql, [key], token_from_row).optional()?)
    }

    pub fn delete_token(&self, token_id: i64) -> Result<bool> {
        Ok(self.execute("DELETE FROM tokens WHERE id = ?1", [token_id])? > 0)
    }

    /// Records when tokens were last used (token id, ISO time); never moves a time backwards.
    /// Tokens revoked meanwhile are skipped. Returns how many rows changed.
    pub fn touch_tokens(&self, used: &[(i64, String)]) -> Result<usize> {
        let mut stmt = self.conn.prepare_cached(
            "UPDATE tokens SET last_used_at = ?2 \
             WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",
        )?;
        let mut changed = 0;
        for (id, at) in used {
            changed += stmt.execute((id, at))?;
        }
        Ok(changed)
    }

    pub fn update_user_profile(
        &self,
        user_id: i64,
        email: &str,
        profile: &ProfileFields,
        now: &str,
    ) -> Result<()> {
        self.execute(
            "UPDATE users SET email = ?2, fullname = ?3, homepage = ?4, twitter = ?5, \
             github = ?6, freenode = ?7, updated_at = ?8 WHERE id = ?1",
            rusqlite::params![
                user_id,
                email,
                profile.fullname,
                profile.homepage,
                profile.twitter,
                profile.github,
                profile.freenode,
                now,
            ],
        )?;
        Ok(())
    }

    pub fn set_password_hash(&self, user_id: i64, password_hash: &str, now: &str) -> Result<()> {
        self.execute(
            "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1",
            (user_id, password_hash, now),
        )?;
        Ok(())
    }
}
