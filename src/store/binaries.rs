//! The binary mirror's files: which blob holds a mirrored file (`binary_files`).

use rusqlite::OptionalExtension;

use super::Db;
use crate::error::Result;
pub use crate::upstream::binaries::BinaryFileRecord;

impl Db<'_> {
    /// The blob a binary's file was stored as, if it was fetched before.
    pub fn binary_file(&self, binary: &str, path: &str) -> Result<Option<BinaryFileRecord>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT sha512, size, fetched_at FROM binary_files WHERE \"binary\" = ?1 AND path = ?2",
        )?;
        Ok(stmt
            .query_row((binary, path), |row| {
                Ok(BinaryFileRecord {
                    sha512_hex: row.get(0)?,
                    size: row.get::<_, i64>(1)?.max(0) as u64,
                    fetched_at: row.get(2)?,
                })
            })
            .optional()?)
    }

    /// Records a fetched file (its blob already stored); the first record of a path stays.
    pub fn put_binary_file(
        &self,
        binary: &str,
        path: &str,
        record: &BinaryFileRecord,
    ) -> Result<()> {
        self.execute(
            "INSERT INTO binary_files (\"binary\", path, sha512, size, fetched_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (\"binary\", path) DO NOTHING",
            (
                binary,
                path,
                &record.sha512_hex,
                i64::try_from(record.size).unwrap_or(i64::MAX),
                &record.fetched_at,
            ),
        )?;
        Ok(())
    }

    /// The sha512 of every mirrored file (they are referenced, for `gc`).
    pub fn binary_file_blobs(&self) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT DISTINCT sha512 FROM binary_files")?;
        let rows = stmt.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
