//! What the upstreams' proxy keeps: cached documents (and remembered 404s), the verified
//! tarballs it fetched, and what `registry upstream list` and `cache forget` need.

use rusqlite::OptionalExtension;

use super::Db;
use crate::error::Result;
use crate::packages::packument::PackumentFlavor;
pub use crate::upstream::cache::{CachedDocument, CachedTarball, DocumentUpdate, UpstreamUsage};

fn flavor_key(flavor: PackumentFlavor) -> &'static str {
    match flavor {
        PackumentFlavor::Full => "full",
        PackumentFlavor::Abbreviated => "abbreviated",
    }
}

impl Db<'_> {
    pub fn cached_document(
        &self,
        name: &str,
        flavor: PackumentFlavor,
    ) -> Result<Option<CachedDocument>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT upstream, status, body, etag, upstream_etag, last_modified, fetched_at \
             FROM upstream_packuments WHERE name = ?1 AND flavor = ?2",
        )?;
        Ok(stmt
            .query_row((name, flavor_key(flavor)), |row| {
                Ok(CachedDocument {
                    upstream: row.get(0)?,
                    found: row.get::<_, i64>(1)? == 200,
                    body: row.get::<_, Option<Vec<u8>>>(2)?.unwrap_or_default(),
                    etag: row.get(3)?,
                    upstream_etag: row.get(4)?,
                    last_modified: row.get(5)?,
                    fetched_at_ms: row.get(6)?,
                })
            })
            .optional()?)
    }

    /// The upstream whose document of `name` is cached (in either flavour), if any.
    pub fn cached_document_source(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .query_row(
                "SELECT upstream FROM upstream_packuments WHERE name = ?1 LIMIT 1",
                [name],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// Stores an upstream's answer for a name: a new document (or a 404), replacing the last.
    pub fn put_cached_document(
        &self,
        name: &str,
        flavor: PackumentFlavor,
        update: &DocumentUpdate<'_>,
    ) -> Result<()> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO upstream_packuments \
             (name, flavor, upstream, status, body, etag, upstream_etag, last_modified, dists, \
              fetched_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
             ON CONFLICT (name, flavor) DO UPDATE SET upstream = excluded.upstream, \
             status = excluded.status, body = excluded.body, etag = excluded.etag, \
             upstream_etag = excluded.upstream_etag, last_modified = excluded.last_modified, \
             dists = excluded.dists, fetched_at = excluded.fetched_at",
        )?;
        stmt.execute((
            name,
            flavor_key(flavor),
            update.upstream,
            if update.found { 200 } else { 404 },
            update.body,
            update.etag,
            update.upstream_etag,
            update.last_modified,
            update.dists,
            update.fetched_at_ms,
        ))?;
        Ok(())
    }

    /// A 304 from upstream: the cached document is fresh again.
    pub fn touch_cached_document(
        &self,
        name: &str,
        flavor: PackumentFlavor,
        fetched_at_ms: i64,
    ) -> Result<()> {
        self.execute(
            "UPDATE upstream_packuments SET fetched_at = ?3 WHERE name = ?1 AND flavor = ?2",
            (name, flavor_key(flavor), fetched_at_ms),
        )?;
        Ok(())
    }

    /// The original URL and checksums of one version's tarball, from whichever cached
    /// document has them (JSON `[url, integrity, shasum]`).
    pub fn cached_dist(&self, name: &str, version: &str) -> Result<Option<String>> {
        let mut stmt = self.conn.prepare_cached(self.conn.pick(
            "SELECT json_extract(dists, '$.' || json_quote(?2)) FROM upstream_packuments \
                 WHERE name = ?1 AND status = 200 AND dists IS NOT NULL \
                 ORDER BY flavor = 'abbreviated' DESC",
            "SELECT CAST(CAST(dists AS json) -> CAST(?2 AS TEXT) AS TEXT) \
                 FROM upstream_packuments \
                 WHERE name = ?1 AND status = 200 AND dists IS NOT NULL \
                 ORDER BY flavor = 'abbreviated' DESC",
        ))?;
        let mut rows = stmt.query((name, version))?;
        while let Some(row) = rows.next()? {
            if let Some(text) = row.get::<_, Option<String>>(0)? {
                return Ok(Some(text));
            }
        }
        Ok(None)
    }

    pub fn cached_tarball(&self, name: &str, version: &str) -> Result<Option<CachedTarball>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT upstream, sha512, size FROM upstream_tarballs \
             WHERE name = ?1 AND version = ?2",
        )?;
        Ok(stmt
            .query_row((name, version), |row| {
                Ok(CachedTarball {
                    upstream: row.get(0)?,
                    sha512_hex: row.get(1)?,
                    size: row.get::<_, i64>(2)?.max(0) as u64,
                })
            })
            .optional()?)
    }

    pub fn put_cached_tarball(
        &self,
        name: &str,
        version: &str,
        tarball: &CachedTarball,
        now: &str,
    ) -> Result<()> {
        self.execute(
            "INSERT INTO upstream_tarballs (name, version, upstream, sha512, size, fetched_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (name, version) DO NOTHING",
            (
                name,
                version,
                &tarball.upstream,
                &tarball.sha512_hex,
                i64::try_from(tarball.size).unwrap_or(i64::MAX),
                now,
            ),
        )?;
        Ok(())
    }

    /// Drops everything cached of a proxied name; true if there was anything. Its blobs stay
    /// until `registry gc` finds them unreferenced.
    pub fn forget_cached_package(&self, name: &str) -> Result<bool> {
        let documents = self.execute("DELETE FROM upstream_packuments WHERE name = ?1", [name])?;
        let tarballs = self.execute("DELETE FROM upstream_tarballs WHERE name = ?1", [name])?;
        Ok(documents + tarballs > 0)
    }

    /// Per upstream: cached documents (found), distinct packages, tarballs and their bytes.
    pub fn upstream_usage(&self) -> Result<Vec<UpstreamUsage>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT u.upstream, \
               (SELECT count(DISTINCT name) FROM upstream_packuments \
                WHERE upstream = u.upstream AND status = 200), \
               (SELECT count(*) FROM upstream_tarballs WHERE upstream = u.upstream), \
               (SELECT coalesce(sum(size), 0) FROM upstream_tarballs \
                WHERE upstream = u.upstream) \
             FROM (SELECT upstream FROM upstream_packuments \
                   UNION SELECT upstream FROM upstream_tarballs) u",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(UpstreamUsage {
                upstream: row.get(0)?,
                packages: row.get::<_, i64>(1)?.max(0) as u64,
                tarballs: row.get::<_, i64>(2)?.max(0) as u64,
                tarball_bytes: row.get::<_, i64>(3)?.max(0) as u64,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The sha512 of every tarball the proxy keeps (they are referenced, for `gc`).
    pub fn cached_tarball_blobs(&self) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT DISTINCT sha512 FROM upstream_tarballs")?;
        let rows = stmt.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
