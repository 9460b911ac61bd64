//! The registries added over HTTP (`POST /-/registry`); configured upstreams are not here.

use rusqlite::OptionalExtension;

use super::Db;
use crate::error::{Error, Result};
pub use crate::upstream::registries::StoredRegistry;

const COLUMNS: &str =
    "id, name, host, change_stream, user_prefix, type, auth_token, created_at, updated_at";

fn registry_of(row: &super::sql::Row<'_>) -> rusqlite::Result<StoredRegistry> {
    Ok(StoredRegistry {
        id: row.get(0)?,
        name: row.get(1)?,
        host: row.get(2)?,
        change_stream: row.get(3)?,
        user_prefix: row.get(4)?,
        kind: row.get(5)?,
        auth_token: row.get(6)?,
        created_at: row.get(7)?,
        updated_at: row.get(8)?,
    })
}

impl Db<'_> {
    pub fn stored_registries(&self) -> Result<Vec<StoredRegistry>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM registries ORDER BY created_at, id"
        ))?;
        let rows = stmt.query_map([], registry_of)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// By id, or else by name.
    pub fn stored_registry(&self, id_or_name: &str) -> Result<Option<StoredRegistry>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM registries WHERE id = ?1 OR name = ?1 \
             ORDER BY id = ?1 DESC LIMIT 1"
        ))?;
        Ok(stmt.query_row([id_or_name], registry_of).optional()?)
    }

    /// A 409 when the name is taken.
    pub fn insert_registry(&self, registry: &StoredRegistry) -> Result<()> {
        let taken: bool = self.query_row(
            "SELECT EXISTS (SELECT 1 FROM registries WHERE name = ?1 OR id = ?1)",
            [&registry.name],
            |row| row.get(0),
        )?;
        if taken {
            return Err(Error::conflict(format!(
                "a registry named {:?} exists already",
                registry.name
            )));
        }
        self.execute(
            "INSERT INTO registries (id, name, host, change_stream, user_prefix, type, \
             auth_token, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            (
                &registry.id,
                &registry.name,
                &registry.host,
                &registry.change_stream,
                &registry.user_prefix,
                &registry.kind,
                &registry.auth_token,
                &registry.created_at,
                &registry.updated_at,
            ),
        )?;
        Ok(())
    }

    /// True if there was such a registry.
    pub fn delete_registry(&self, id: &str) -> Result<bool> {
        Ok(self.execute("DELETE FROM registries WHERE id = ?1", [id])? > 0)
    }
}
