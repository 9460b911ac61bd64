//! Packages, their versions, dist-tags and maintainers, and the per-version fragments that
//! packuments are assembled from.

use std::collections::BTreeMap;

use rusqlite::OptionalExtension;

use super::access::visible_sql;
use super::Db;
use crate::access::Visibility;
use crate::error::Result;
pub use crate::packages::packument::PackumentFlavor;

#[derive(Debug, Clone)]
pub struct PackageRecord {
    pub id: i64,
    pub name: String,
    pub created_at: String,
    pub modified_at: String,
    pub rev_seq: i64,
    /// Set when the whole package was unpublished (it is then a tombstone).
    pub unpublished_at: Option<String>,
    /// Readable only by those granted it (`npm publish --access restricted`).
    pub restricted: bool,
}

#[derive(Debug, Clone)]
pub struct VersionRecord {
    pub version: String,
    /// The version's manifest as stored (JSON text, without its readme).
    pub manifest: String,
    pub readme: String,
    pub tarball_sha512: String,
    pub tarball_sha1: String,
    pub tarball_size: u64,
    pub published_at: String,
    pub deleted_at: Option<String>,
}

/// One version as a packument needs it: its manifest fragment in the wanted flavor (`None`
/// for an abbreviation not computed yet) and its times.
#[derive(Debug, Clone)]
pub struct PackumentRow {
    pub version: String,
    pub fragment: Option<String>,
    pub published_at: String,
    pub deleted_at: Option<String>,
}

/// A read's answer with the package's block, which wins over everything else.
#[derive(Debug, Clone)]
pub struct ReadState<T> {
    pub block_reason: Option<String>,
    pub found: Option<T>,
    /// The package has a row here (a version was published, even if since unpublished): it is
    /// local, never proxied.
    pub package_exists: bool,
    /// The package's id and whether it is restricted (then the reader must be checked).
    pub package_id: Option<i64>,
    pub restricted: bool,
}

/// A version row to insert; the manifest is final JSON text.
pub struct NewVersion<'a> {
    pub package_id: i64,
    pub version: &'a str,
    pub manifest: &'a str,
    /// The manifest's non-empty `deprecated` message.
    pub deprecated: Option<&'a str>,
    pub readme: &'a str,
    pub tarball_sha512: &'a str,
    pub tarball_sha1: &'a str,
    pub tarball_size: u64,
    pub published_at: &'a str,
    pub publisher_id: i64,
}

impl Db<'_> {
    pub fn package_by_name(&self, name: &str) -> Result<Option<PackageRecord>> {
        Ok(self
            .query_row(
                "SELECT id, name, created_at, modified_at, rev_seq, unpublished_at, restricted \
                 FROM packages WHERE name = ?1",
                [name],
                |row| {
                    Ok(PackageRecord {
                        id: row.get(0)?,
                        name: row.get(1)?,
                        created_at: row.get(2)?,
                        modified_at: row.get(3)?,
                        rev_seq: row.get(4)?,
                        unpublished_at: row.get(5)?,
                        restricted: row.get(6)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn insert_package(&self, name: &str, now: &str) -> Result<i64> {
        Ok(self.insert_returning(
            "INSERT INTO packages (name, created_at, modified_at) VALUES (?1, ?2, ?2) RETURNING id",
            (name, now),
        )?)
    }

    /// Marks the package as modified now and returns its new revision number.
    pub fn bump_package_revision(&self, package_id: i64, now: &str) -> Result<i64> {
        Ok(self.query_row(
            "UPDATE packages SET modified_at = ?2, rev_seq = rev_seq + 1 WHERE id = ?1 \
             RETURNING rev_seq",
            (package_id, now),
            |row| row.get(0),
        )?)
    }

    /// The stored sha512 of this version's tarball and whether it was unpublished, if the
    /// version number was ever used.
    pub fn version_state(&self, package_id: i64, version: &str) -> Result<Option<(String, bool)>> {
        Ok(self
            .query_row(
                "SELECT tarball_sha512, deleted_at IS NOT NULL FROM versions \
                 WHERE package_id = ?1 AND version = ?2",
                (package_id, version),
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?)
    }

    pub fn insert_version(&self, v: &NewVersion<'_>) -> Result<()> {
        let version_id = self.insert_returning(
            "INSERT INTO versions (package_id, version, manifest, readme, tarball_sha512, \
             tarball_sha1, tarball_size, published_at, publisher_id, deprecated) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING id",
            (
                v.package_id,
                v.version,
                v.manifest,
                v.readme,
                v.tarball_sha512,
                v.tarball_sha1,
                v.tarball_size as i64,
                v.published_at,
                v.publisher_id,
                v.deprecated,
            ),
        )?;
        self.conn
            .prepare_cached(self.conn.pick(
                "INSERT OR IGNORE INTO version_dependencies (name, version_id) \
                 SELECT key, ?1 FROM json_each(?2, '$.dependencies') \
                 WHERE json_valid(?2) AND json_type(?2, '$.dependencies') = 'object'",
                // `json`, not `jsonb`: jsonb refuses a \u0000 that a manifest may hold.
                "INSERT INTO version_dependencies (name, version_id) \
                 SELECT d.key, ?1 FROM json_each(CASE \
                   WHEN json_typeof(CAST(?2 AS json) -> 'dependencies') = 'object' \
                   THEN CAST(?2 AS json) -> 'dependencies' ELSE '{}' END) d \
                 ON CONFLICT DO NOTHING",
            ))?
            .execute((version_id, v.manifest))?;
        Ok(())
    }

    /// Every version ever published, unpublished ones included, in publication order.
    pub fn versions(&self, package_id: i64) -> Result<Vec<VersionRecord>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT version, manifest, readme, tarball_sha512, tarball_sha1, tarball_size, \
             published_at, deleted_at FROM versions WHERE package_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([package_id], |row| {
            Ok(VersionRecord {
                version: row.get(0)?,
                manifest: row.get(1)?,
                readme: row.get(2)?,
                tarball_sha512: row.get(3)?,
                tarball_sha1: row.get(4)?,
                tarball_size: row.get::<_, i64>(5)?.max(0) as u64,
                published_at: row.get(6)?,
                deleted_at: row.get(7)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every version ever published, in publication order, with only what a packument of
    /// `flavor` needs: the manifest, or its abbreviation.
    pub fn packument_rows(
        &self,
        package_id: i64,
        flavor: PackumentFlavor,
    ) -> Result<Vec<PackumentRow>> {
        let sql = match flavor {
            PackumentFlavor::Full => {
                "SELECT version, manifest, published_at, deleted_at FROM versions \
                 WHERE package_id = ?1 ORDER BY id"
            }
            PackumentFlavor::Abbreviated => {
                "SELECT version, abbrev_manifest, published_at, deleted_at FROM versions \
                 WHERE package_id = ?1 ORDER BY id"
            }
        };
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map([package_id], |row| {
            Ok(PackumentRow {
                version: row.get(0)?,
                fragment: row.get(1)?,
                published_at: row.get(2)?,
                deleted_at: row.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn readme(&self, package_id: i64, version: &str) -> Result<String> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT readme FROM versions WHERE package_id = ?1 AND version = ?2")?;
        Ok(stmt
            .query_row((package_id, version), |row| row.get(0))
            .optional()?
            .unwrap_or_default())
    }

    /// Versions whose abbreviation is not computed yet (`(row id, manifest)`), of one package
    /// or of all.
    pub fn unabbreviated_versions(&self, package_id: Option<i64>) -> Result<Vec<(i64, String)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, manifest FROM versions WHERE abbrev_manifest IS NULL \
             AND (CAST(?1 AS BIGINT) IS NULL OR package_id = ?1)",
        )?;
        let rows = stmt.query_map([package_id], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn set_abbreviation(&self, version_id: i64, abbreviated: &str) -> Result<()> {
        self.execute(
            "UPDATE versions SET abbrev_manifest = ?2 WHERE id = ?1",
            (version_id, abbreviated),
        )?;
        Ok(())
    }

    /// Forgets a package's abbreviations, so that the next refresh computes them all again.
    pub fn clear_abbreviations(&self, package_id: i64) -> Result<()> {
        self.execute(
            "UPDATE versions SET abbrev_manifest = NULL WHERE package_id = ?1",
            [package_id],
        )?;
        Ok(())
    }

    /// Each version's manifest with its stored abbreviation, for doctor.
    pub fn abbreviations(&self, package_id: i64) -> Result<Vec<(String, String, Option<String>)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT version, manifest, abbrev_manifest FROM versions \
             WHERE package_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([package_id], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// What a packument read needs to know, in one statement: the package's block reason, if
    /// blocked, and its revision (`(rev_seq, modified_at)`), if it exists.
    pub fn package_read_state(&self, name: &str) -> Result<ReadState<(i64, String)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT b.reason, p.rev_seq, p.modified_at, p.id, p.restricted \
             FROM (SELECT ?1 AS name) q \
             LEFT JOIN package_blocks b ON b.name = q.name \
             LEFT JOIN packages p ON p.name = q.name",
        )?;
        Ok(stmt.query_row([name], |row| {
            let rev_seq: Option<i64> = row.get(1)?;
            let modified_at: Option<String> = row.get(2)?;
            Ok(ReadState {
                block_reason: row.get(0)?,
                package_exists: rev_seq.is_some(),
                found: rev_seq.zip(modified_at),
                package_id: row.get(3)?,
                restricted: row.get::<_, Option<bool>>(4)?.unwrap_or(false),
            })
        })?)
    }

    /// What a tarball read needs to know, in one statement: the package's block reason, if
    /// blocked, and the sha512 and size of the version's tarball, if the version is live.
    pub fn tarball_read_state(
        &self,
        name: &str,
        version: &str,
    ) -> Result<ReadState<(String, u64)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT b.reason, v.tarball_sha512, v.tarball_size, p.id, p.restricted \
             FROM (SELECT ?1 AS name) q \
             LEFT JOIN package_blocks b ON b.name = q.name \
             LEFT JOIN packages p ON p.name = q.name \
             LEFT JOIN versions v ON v.package_id = p.id AND v.version = ?2 \
               AND v.deleted_at IS NULL",
        )?;
        Ok(stmt.query_row((name, version), |row| {
            let sha512: Option<String> = row.get(1)?;
            let size: Option<i64> = row.get(2)?;
            Ok(ReadState {
                block_reason: row.get(0)?,
                found: sha512.zip(size.map(|s| s.max(0) as u64)),
                package_exists: row.get::<_, Option<i64>>(3)?.is_some(),
                package_id: row.get(3)?,
                restricted: row.get::<_, Option<bool>>(4)?.unwrap_or(false),
            })
        })?)
    }

    pub fn dist_tags(&self, package_id: i64) -> Result<BTreeMap<String, String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT tag, version FROM dist_tags WHERE package_id = ?1")?;
        let rows = stmt.query_map([package_id], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn set_dist_tag(&self, package_id: i64, tag: &str, version: &str) -> Result<()> {
        self.execute(
            "INSERT INTO dist_tags (package_id, tag, version) VALUES (?1, ?2, ?3) \
             ON CONFLICT (package_id, tag) DO UPDATE SET version = excluded.version",
            (package_id, tag, version),
        )?;
        Ok(())
    }

    /// (name, email) of each maintainer, by name.
    pub fn maintainers(&self, package_id: i64) -> Result<Vec<(String, String)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT u.name, u.email FROM maintainers m JOIN users u ON u.id = m.user_id \
             WHERE m.package_id = ?1 ORDER BY u.name",
        )?;
        let rows = stmt.query_map([package_id], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn is_maintainer(&self, package_id: i64, user_id: i64) -> Result<bool> {
        Ok(self
            .query_row(
                "SELECT 1 FROM maintainers WHERE package_id = ?1 AND user_id = ?2",
                (package_id, user_id),
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    pub fn add_maintainer(&self, package_id: i64, user_id: i64) -> Result<()> {
        self.execute(
            "INSERT OR IGNORE INTO maintainers (package_id, user_id) VALUES (?1, ?2)",
            (package_id, user_id),
        )?;
        Ok(())
    }
}

impl Db<'_> {
    pub fn set_package_unpublished(&self, package_id: i64, at: Option<&str>) -> Result<()> {
        self.execute(
            "UPDATE packages SET unpublished_at = ?2 WHERE id = ?1",
            (package_id, at),
        )?;
        Ok(())
    }

    /// Marks a live version as unpublished; its number stays burnt. False if it was not live.
    pub fn mark_version_deleted(&self, package_id: i64, version: &str, at: &str) -> Result<bool> {
        Ok(self.execute(
            "UPDATE versions SET deleted_at = ?3 \
             WHERE package_id = ?1 AND version = ?2 AND deleted_at IS NULL",
            (package_id, version, at),
        )? > 0)
    }

    /// Replaces a version's manifest and its non-empty `deprecated` message (deprecation is
    /// part of the manifest); its abbreviation is computed again by the next refresh.
    pub fn update_manifest(
        &self,
        package_id: i64,
        version: &str,
        manifest: &str,
        deprecated: Option<&str>,
    ) -> Result<()> {
        self.execute(
            "UPDATE versions SET manifest = ?3, deprecated = ?4, abbrev_manifest = NULL \
             WHERE package_id = ?1 AND version = ?2",
            (package_id, version, manifest, deprecated),
        )?;
        Ok(())
    }

    /// False if there was no such tag.
    pub fn delete_dist_tag(&self, package_id: i64, tag: &str) -> Result<bool> {
        Ok(self.execute(
            "DELETE FROM dist_tags WHERE package_id = ?1 AND tag = ?2",
            (package_id, tag),
        )? > 0)
    }

    pub fn remove_maintainer(&self, package_id: i64, user_id: i64) -> Result<()> {
        self.execute(
            "DELETE FROM maintainers WHERE package_id = ?1 AND user_id = ?2",
            (package_id, user_id),
        )?;
        Ok(())
    }

    pub fn set_star(&self, package_id: i64, user_id: i64, starred: bool) -> Result<()> {
        if starred {
            self.execute(
                "INSERT OR IGNORE INTO stars (package_id, user_id) VALUES (?1, ?2)",
                (package_id, user_id),
            )?;
        } else {
            self.execute(
                "DELETE FROM stars WHERE package_id = ?1 AND user_id = ?2",
                (package_id, user_id),
            )?;
        }
        Ok(())
    }

    /// Names of the users who starred the package, by name.
    pub fn stargazers(&self, package_id: i64) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT u.name FROM stars s JOIN users u ON u.id = s.user_id \
             WHERE s.package_id = ?1 ORDER BY u.name",
        )?;
        let rows = stmt.query_map([package_id], |row| row.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Names of the packages a user starred, by name.
    /// The packages `user_name` starred that the reader may see, by name.
    pub fn starred_by(&self, user_name: &str, visibility: &Visibility) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT p.name FROM stars s JOIN users u ON u.id = s.user_id \
             JOIN packages p ON p.id = s.package_id WHERE u.name = ?1 AND {} ORDER BY p.name",
            visible_sql(visibility, "p.id")
        ))?;
        let rows = stmt.query_map([user_name], |row| row.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
