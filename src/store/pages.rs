//! Queries for the web UI's pages: recently changed packages, a package's versions without
//! their readmes, and the local packages that depend on a package (through `version_dependencies`). Every listing takes the
//! reader's visibility, so a restricted package appears only to those who may read it.

use rusqlite::OptionalExtension;

use super::access::visible_sql;
use super::Db;
use crate::access::Visibility;
use crate::error::Result;

/// One version as the package page lists it (no readme: a 2,000-version package must not
/// load 2,000 readmes to show one).
#[derive(Debug, Clone)]
pub struct VersionSummary {
    pub version: String,
    /// The deprecation message, if the version is deprecated.
    pub deprecated: Option<String>,
    pub tarball_size: u64,
    pub published_at: String,
    pub deleted_at: Option<String>,
}

/// A package in a listing: its name, when it last changed and its search document (the
/// latest version's description, version, keywords as JSON).
#[derive(Debug, Clone)]
pub struct ListedPackage {
    pub name: String,
    pub modified_at: String,
    pub document: String,
}

impl Db<'_> {
    /// The `limit` most recently changed packages `visibility` includes, newest first.
    pub fn recent_packages(
        &self,
        limit: u32,
        visibility: &Visibility,
    ) -> Result<Vec<ListedPackage>> {
        let visible = visible_sql(visibility, "d.package_id");
        let mut stmt = self.conn.prepare(&format!(
            "SELECT d.name, p.modified_at, d.document FROM packages p \
             JOIN search_docs d ON d.package_id = p.id \
             WHERE p.unpublished_at IS NULL AND {visible} \
             AND NOT EXISTS (SELECT 1 FROM package_blocks b WHERE b.name = d.name) \
             ORDER BY p.modified_at DESC, p.id DESC LIMIT ?1"
        ))?;
        let rows = stmt.query_map([limit], |row| {
            Ok(ListedPackage {
                name: row.get(0)?,
                modified_at: row.get(1)?,
                document: row.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The search documents of `names` that `visibility` includes, by name.
    pub fn listed_packages(
        &self,
        names: &[String],
        visibility: &Visibility,
    ) -> Result<Vec<ListedPackage>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let visible = visible_sql(visibility, "d.package_id");
        let marks = vec!["?"; names.len()].join(",");
        let mut stmt = self.conn.prepare(&format!(
            "SELECT d.name, p.modified_at, d.document FROM search_docs d \
             JOIN packages p ON p.id = d.package_id \
             WHERE d.name IN ({marks}) AND {visible} ORDER BY d.name"
        ))?;
        let rows = stmt.query_map(super::sql::params_from_iter(names.iter()), |row| {
            Ok(ListedPackage {
                name: row.get(0)?,
                modified_at: row.get(1)?,
                document: row.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every version of a package, in publication order, without manifests or readmes.
    pub fn version_summaries(&self, package_id: i64) -> Result<Vec<VersionSummary>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT version, deprecated, tarball_size, published_at, deleted_at FROM versions \
             WHERE package_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([package_id], |row| {
            Ok(VersionSummary {
                version: row.get(0)?,
                deprecated: row.get(1)?,
                tarball_size: row.get::<_, i64>(2)?.max(0) as u64,
                published_at: row.get(3)?,
                deleted_at: row.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// One version's manifest as stored (JSON text), if the version number was ever used.
    pub fn manifest_of(&self, package_id: i64, version: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .prepare_cached("SELECT manifest FROM versions WHERE package_id = ?1 AND version = ?2")?
            .query_row((package_id, version), |row| row.get(0))
            .optional()?)
    }

    /// The local packages `visibility` includes whose `latest` version lists `name` among
    /// its dependencies, by name, at most `limit`.
    pub fn dependents(
        &self,
        name: &str,
        limit: u32,
        visibility: &Visibility,
    ) -> Result<Vec<String>> {
        let visible = visible_sql(visibility, "p.id");
        let mut stmt = self.conn.prepare(&format!(
            "SELECT p.name FROM version_dependencies d \
             JOIN versions v ON v.id = d.version_id \
             JOIN packages p ON p.id = v.package_id \
             JOIN dist_tags t ON t.package_id = p.id AND t.tag = 'latest' AND t.version = v.version \
             WHERE d.name = ?1 AND p.unpublished_at IS NULL AND v.deleted_at IS NULL AND {visible} \
             AND NOT EXISTS (SELECT 1 FROM package_blocks b WHERE b.name = p.name) \
             ORDER BY p.name LIMIT ?2"
        ))?;
        let rows = stmt.query_map((name, limit), |row| row.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{sqlite::schema, Store};
    use crate::access::Visibility;
    use crate::error::Result;

    /// A package whose versions (version, manifest) are stored as publish would; the last
    /// one is `latest`.
    fn seed(conn: &rusqlite::Connection, name: &str, versions: &[(&str, &str)]) -> Result<()> {
        conn.execute(
            "INSERT INTO packages (name, created_at, modified_at) VALUES (?1, 'x', 'x')",
            [name],
        )?;
        let package = conn.last_insert_rowid();
        for (version, manifest) in versions {
            conn.execute(
                "INSERT INTO versions (package_id, version, manifest, tarball_sha512, \
                 tarball_sha1, tarball_size, published_at) VALUES (?1, ?2, ?3, 'x', 'x', 1, 'x')",
                (package, version, manifest),
            )?;
        }
        if let Some((latest, _)) = versions.last() {
            conn.execute(
                "INSERT INTO dist_tags (package_id, tag, version) VALUES (?1, 'latest', ?2)",
                (package, latest),
            )?;
        }
        Ok(())
    }

    #[test]
    fn dependents_of_packages_from_before_the_index_are_found() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("r.db");
        {
            let mut conn = rusqlite::Connection::open(&path)?;
            schema::migrate_before(&mut conn, "CREATE TABLE version_dependencies")?;
            seed(&conn, "base", &[("1.0.0", "{}")])?;
            // Depends on `base` in its latest version.
            seed(
                &conn,
                "now",
                &[("1.0.0", r#"{"dependencies":{"base":"^1"}}"#)],
            )?;
            // Depended on `base` once, no longer.
            seed(
                &conn,
                "once",
                &[
                    ("1.0.0", r#"{"dependencies":{"base":"^1"}}"#),
                    ("2.0.0", r#"{"dependencies":{"other":"^1"}}"#),
                ],
            )?;
            // Manifests the index must survive.
            seed(&conn, "odd", &[("1.0.0", r#"{"dependencies":["base"]}"#)])?;
            seed(&conn, "broken", &[("1.0.0", "not json")])?;
        }
        let store = Store::open(&path)?;
        let everyone = Visibility::Everything;
        let found = store.read(|db| db.dependents("base", 100, &everyone))?;
        assert_eq!(found, ["now"]);
        let found = store.read(|db| db.dependents("other", 100, &everyone))?;
        assert_eq!(found, ["once"]);
        Ok(())
    }

    #[test]
    fn deprecations_from_before_the_column_are_back_filled() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("r.db");
        {
            let mut conn = rusqlite::Connection::open(&path)?;
            schema::migrate_before(&mut conn, "ALTER TABLE versions ADD COLUMN deprecated")?;
            seed(
                &conn,
                "old",
                &[
                    ("1.0.0", r#"{"deprecated":"use 2"}"#),
                    ("1.1.0", r#"{"deprecated":""}"#),
                    ("1.2.0", r#"{"deprecated":true}"#),
                    (
                        "1.3.0",
                        r#"{"description":"says \"deprecated\" in passing"}"#,
                    ),
                    ("1.4.0", "not json, \"deprecated\""),
                    ("2.0.0", "{}"),
                ],
            )?;
        }
        let store = Store::open(&path)?;
        let summaries = store.read(|db| {
            let package = db
                .package_by_name("old")?
                .ok_or_else(|| crate::error::Error::not_found("old"))?;
            db.version_summaries(package.id)
        })?;
        let deprecated: Vec<_> = summaries
            .iter()
            .map(|v| (v.version.as_str(), v.deprecated.as_deref()))
            .collect();
        assert_eq!(
            deprecated,
            [
                ("1.0.0", Some("use 2")),
                ("1.1.0", None),
                ("1.2.0", None),
                ("1.3.0", None),
                ("1.4.0", None),
                ("2.0.0", None),
            ]
        );
        Ok(())
    }
}
