//! Download counts per package, version and UTC day. Days are `YYYY-MM-DD` text, so a range of
//! days is a text range; a day without downloads has no row (callers fill in the zeros).

use super::access::visible_sql;
use super::Db;
use crate::access::Visibility;
use crate::error::Result;

/// Downloads of one version of a package on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadRow {
    pub day: String,
    pub version: String,
    pub count: u64,
}

/// The download rows of package `?1` on the days `?2..=?3`: a local package's, or a proxied
/// one's (a name is one or the other, never both).
const PACKAGE_ROWS: &str = "SELECT d.day, d.version, d.count FROM downloads d \
     JOIN packages p ON p.id = d.package_id WHERE p.name = ?1 AND d.day BETWEEN ?2 AND ?3 \
     UNION ALL SELECT day, version, count FROM upstream_downloads \
     WHERE name = ?1 AND day BETWEEN ?2 AND ?3";

fn count_of(value: i64) -> u64 {
    value.max(0) as u64
}

impl Db<'_> {
    /// Adds a batch of `(package, version, day, count)` to the stored counts; returns how many
    /// rows were inserted or updated. Counts for a package name that is not in the database
    /// (it cannot have been downloaded, but a batch must never fail on one odd entry) are
    /// skipped rather than failing the whole batch.
    pub fn add_downloads(&self, batch: &[(String, String, String, u64)]) -> Result<usize> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO downloads (package_id, version, day, count) \
             SELECT id, ?2, ?3, ?4 FROM packages WHERE name = ?1 \
             ON CONFLICT (package_id, version, day) \
             DO UPDATE SET count = downloads.count + excluded.count",
        )?;
        // A proxied name has no `packages` row; its downloads are counted by name.
        let mut proxied = self.conn.prepare_cached(
            "INSERT INTO upstream_downloads (name, version, day, count) \
             SELECT ?1, ?2, ?3, ?4 WHERE NOT EXISTS (SELECT 1 FROM packages WHERE name = ?1) \
             AND EXISTS (SELECT 1 FROM upstream_tarballs WHERE name = ?1) \
             ON CONFLICT (name, version, day) \
             DO UPDATE SET count = upstream_downloads.count + excluded.count",
        )?;
        let mut changed = 0;
        for (package, version, day, count) in batch {
            let count = i64::try_from(*count).unwrap_or(i64::MAX);
            let local = stmt.execute((package, version, day, count))?;
            changed += if local > 0 {
                local
            } else {
                proxied.execute((package, version, day, count))?
            };
        }
        Ok(changed)
    }

    /// Total downloads on the days `start..=end` of every package the reader may see.
    pub fn registry_downloads(
        &self,
        start: &str,
        end: &str,
        visibility: &Visibility,
    ) -> Result<u64> {
        let total: i64 = self.query_row(
            &format!(
                "SELECT (SELECT coalesce(sum(count), 0) FROM downloads \
                   WHERE day BETWEEN ?1 AND ?2 AND {}) \
                 + (SELECT coalesce(sum(count), 0) FROM upstream_downloads \
                    WHERE day BETWEEN ?1 AND ?2)",
                visible_sql(visibility, "package_id")
            ),
            (start, end),
            |r| r.get(0),
        )?;
        Ok(count_of(total))
    }

    /// Whether `name` has download counts to ask for: a local package, or a proxied one
    /// with a cached tarball.
    pub fn has_downloads_subject(&self, name: &str) -> Result<bool> {
        Ok(self.query_row(
            "SELECT EXISTS (SELECT 1 FROM packages WHERE name = ?1) \
             OR EXISTS (SELECT 1 FROM upstream_tarballs WHERE name = ?1)",
            [name],
            |r| r.get(0),
        )?)
    }

    /// Total downloads of one package (local or proxied) on the days `start..=end`.
    pub fn package_downloads(&self, name: &str, start: &str, end: &str) -> Result<u64> {
        let total: i64 = self.query_row(
            &format!("SELECT coalesce(sum(count), 0) FROM ({PACKAGE_ROWS}) r"),
            (name, start, end),
            |r| r.get(0),
        )?;
        Ok(count_of(total))
    }

    /// Every stored (day, version, count) of one package on the days `start..=end`, by day.
    pub fn package_download_rows(
        &self,
        name: &str,
        start: &str,
        end: &str,
    ) -> Result<Vec<DownloadRow>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT day, version, count FROM ({PACKAGE_ROWS}) r ORDER BY day, version"
        ))?;
        let rows = stmt.query_map((name, start, end), |row| {
            Ok(DownloadRow {
                day: row.get(0)?,
                version: row.get(1)?,
                count: count_of(row.get(2)?),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Downloads per version of one package on the days `start..=end`, most downloaded first.
    pub fn package_downloads_by_version(
        &self,
        name: &str,
        start: &str,
        end: &str,
    ) -> Result<Vec<(String, u64)>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT version, sum(count) AS total FROM ({PACKAGE_ROWS}) r \
             GROUP BY version ORDER BY total DESC, version"
        ))?;
        let rows = stmt.query_map((name, start, end), |row| {
            Ok((row.get(0)?, count_of(row.get(1)?)))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The `limit` most downloaded packages the reader may see on the days `start..=end`,
    /// most first (ties by name, so that the order is stable).
    pub fn top_downloads(
        &self,
        start: &str,
        end: &str,
        limit: usize,
        visibility: &Visibility,
    ) -> Result<Vec<(String, u64)>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self.conn.prepare(&format!(
            "SELECT name, sum(count) AS total FROM ( \
               SELECT p.name AS name, d.count AS count FROM downloads d \
               JOIN packages p ON p.id = d.package_id WHERE d.day BETWEEN ?1 AND ?2 AND {} \
               UNION ALL SELECT name, count FROM upstream_downloads \
               WHERE day BETWEEN ?1 AND ?2) r \
             GROUP BY name ORDER BY total DESC, name LIMIT ?3",
            visible_sql(visibility, "p.id")
        ))?;
        let rows = stmt.query_map((start, end, limit), |row| {
            Ok((row.get(0)?, count_of(row.get(1)?)))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
