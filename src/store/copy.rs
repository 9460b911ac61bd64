//! Copying a SQLite registry's every row into an empty PostgreSQL schema, for `registry
//! migrate` (single node → scaled out).
//!
//! The tables and their columns are read from the SQLite database itself, so that a table a
//! later migration adds is copied without anyone remembering to list it here; a unit test
//! holds the PostgreSQL schema to the same tables and columns. Tables go in an order where
//! every table comes after the tables it references (PostgreSQL checks each foreign key as
//! the row goes in). The whole copy is one write transaction on the target under the
//! registry's write lock, read from one snapshot of the source: it lands whole or not at all,
//! and a target that holds any data is refused rather than merged into.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rusqlite::types::Value;

use super::sql::{as_pg_error, params_from_iter};
use super::{Db, Dialect, Store};
use crate::error::{Error, Result};

/// Rows per INSERT: one statement per few hundred rows instead of a round trip per row, well
/// under PostgreSQL's 65,535 parameters per statement (tables have at most 16 columns).
const BATCH_ROWS: usize = 500;
/// …and at most about this many bytes of values per INSERT, so that a batch of versions with
/// large manifests stays a few megabytes rather than hundreds.
const BATCH_BYTES: usize = 4 << 20;

/// Tables whose rows the target makes by itself: its migration seeds `search_generation`, and
/// its triggers bump that row and append to `search_log` as `search_docs` and `package_blocks`
/// rows go in. They are emptied and copied after every other table, so that they end as the
/// source has them (and are not counted when the target is checked for data).
const REPLACED: &[&str] = &["search_generation", "search_log"];

/// The full-text index: an FTS5 virtual table on SQLite (read through its own interface; its
/// shadow tables hold FTS5's structures, not rows), a plain table on PostgreSQL whose `vector`
/// column is generated from these.
const FTS_TABLE: &str = "search_fts";
const FTS_COLUMNS: &[&str] = &[
    "rowid",
    "name",
    "keywords",
    "description",
    "maintainers",
    "author",
];

/// The PostgreSQL backend's own bookkeeping (its migration version), which SQLite keeps in
/// `PRAGMA user_version`.
const TARGET_ONLY: &[&str] = &["registry_schema_version"];

/// What [`Store::copy_into`] copied, table by table in the order it copied them.
#[derive(Debug, Clone, Default)]
pub struct CopySummary {
    pub tables: Vec<CopiedTable>,
}

#[derive(Debug, Clone)]
pub struct CopiedTable {
    pub name: String,
    pub rows: u64,
}

impl CopySummary {
    /// Rows copied in all.
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

/// A table of the source as it will be copied.
#[derive(Debug, Clone)]
struct SourceTable {
    name: String,
    columns: Vec<String>,
    /// What reads its rows, in `columns` order.
    select: String,
}

impl Store {
    /// Copies every row of this SQLite database into `target`, a PostgreSQL database whose
    /// schema must hold no data, then moves the target's identity sequences past the copied
    /// ids. `progress` hears the table being copied, the rows copied so far and the total.
    pub fn copy_into(
        &self,
        target: &Store,
        mut progress: impl FnMut(&str, u64, u64),
    ) -> Result<CopySummary> {
        if self.dialect() != Dialect::Sqlite {
            return Err(Error::bad_request(
                "only a SQLite registry can be copied into PostgreSQL: this one's database \
                 is PostgreSQL already",
            ));
        }
        if target.dialect() != Dialect::Postgres {
            return Err(Error::bad_request(
                "a registry can only be copied into a PostgreSQL database",
            ));
        }
        self.read(|source| {
            let tables = copy_order(source)?;
            let mut counts = Vec::with_capacity(tables.len());
            for table in &tables {
                counts.push(count_rows(source, &table.name)?);
            }
            let total: u64 = counts.iter().sum();
            let floors = autoincrement_floors(source)?;
            target.write(|dest| {
                check_target_schema(dest, &tables)?;
                refuse_unless_empty(dest)?;
                let mut summary = CopySummary::default();
                let mut done = 0;
                for table in &tables {
                    progress(&table.name, done, total);
                    if REPLACED.contains(&table.name.as_str()) {
                        dest.execute(&format!("DELETE FROM {}", quoted(&table.name)), [])?;
                    }
                    let rows = copy_table(source, dest, table, |rows| {
                        progress(&table.name, done + rows, total)
                    })?;
                    done += rows;
                    summary.tables.push(CopiedTable {
                        name: table.name.clone(),
                        rows,
                    });
                }
                reset_identities(dest, &floors)?;
                Ok(summary)
            })
        })
    }

    /// Refuses (409) unless this is a PostgreSQL database whose schema holds no data: what
    /// [`Store::copy_into`] checks again under its write lock, for a caller that has work to
    /// do before the copy (tarballs to upload) and should not do it for a target it cannot use.
    pub fn ensure_empty_target(&self) -> Result<()> {
        if self.dialect() != Dialect::Postgres {
            return Err(Error::bad_request(
                "a registry can only be copied into a PostgreSQL database",
            ));
        }
        self.read(refuse_unless_empty)
    }
}

/// `"name"`: the names come from the schemas, never from a request, but `binary` is a reserved
/// word on PostgreSQL.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The source's tables in the order they are copied: every table after the tables it
/// references (ties by name), then the full-text index, then [`REPLACED`].
fn copy_order(source: &Db<'_>) -> Result<Vec<SourceTable>> {
    // `type = 'table'` leaves out views, virtual tables (FTS5's, handled apart, and the
    // vocabulary table over it, which stores nothing) and their shadow tables.
    let names: Vec<String> = source
        .conn
        .prepare(
            "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' \
             AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut references: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for name in &names {
        let parents: BTreeSet<String> = source
            .conn
            .prepare("SELECT DISTINCT \"table\" FROM pragma_foreign_key_list(?1)")?
            .query_map([name], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        // A self-reference is satisfied row by row; a table outside the copy cannot be.
        let parents = parents
            .into_iter()
            .filter(|p| p != name && names.contains(p))
            .collect();
        references.insert(name.clone(), parents);
    }
    let mut ordered: Vec<String> = Vec::with_capacity(names.len());
    while ordered.len() < names.len() {
        let ready: Vec<String> = references
            .iter()
            .filter(|(name, parents)| {
                !ordered.contains(name) && parents.iter().all(|p| ordered.contains(p))
            })
            .map(|(name, _)| name.clone())
            .collect();
        if ready.is_empty() {
            let stuck: Vec<&str> = names
                .iter()
                .filter(|n| !ordered.contains(n))
                .map(String::as_str)
                .collect();
            return Err(Error::Storage(format!(
                "the tables {} reference each other in a cycle: no order copies them",
                stuck.join(", ")
            )));
        }
        ordered.extend(ready);
    }
    let (replaced, mut rest): (Vec<String>, Vec<String>) = ordered
        .into_iter()
        .partition(|name| REPLACED.contains(&name.as_str()));
    rest.extend(replaced);
    let mut tables = Vec::with_capacity(rest.len() + 1);
    for name in rest {
        let columns: Vec<String> = source
            .conn
            .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?
            .query_map([&name], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let list: Vec<String> = columns.iter().map(|c| quoted(c)).collect();
        let select = format!("SELECT {} FROM {}", list.join(", "), quoted(&name));
        tables.push(SourceTable {
            name,
            columns,
            select,
        });
    }
    // Before the replaced tables: its rows set off no trigger on the target.
    let fts = SourceTable {
        name: FTS_TABLE.to_string(),
        columns: FTS_COLUMNS.iter().map(|c| c.to_string()).collect(),
        // Unquoted: a quoted "rowid" is no column of a virtual table.
        select: format!("SELECT {} FROM {FTS_TABLE}", FTS_COLUMNS.join(", ")),
    };
    let at = tables
        .iter()
        .position(|t| REPLACED.contains(&t.name.as_str()))
        .unwrap_or(tables.len());
    tables.insert(at, fts);
    Ok(tables)
}

fn count_rows(source: &Db<'_>, table: &str) -> Result<u64> {
    let count: i64 = source.query_row(
        &format!("SELECT count(*) FROM {}", quoted(table)),
        [],
        |r| r.get(0),
    )?;
    Ok(count.max(0) as u64)
}

/// The highest id each AUTOINCREMENT table has ever handed out (`sqlite_sequence`), which may
/// be above its highest row: the hook queue's ids must stay above every delivery moved out of
/// it into the log, whose keys they become.
fn autoincrement_floors(source: &Db<'_>) -> Result<HashMap<String, i64>> {
    let exists: i64 = source.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'",
        [],
        |r| r.get(0),
    )?;
    if exists == 0 {
        return Ok(HashMap::new());
    }
    Ok(source
        .conn
        .prepare("SELECT name, seq FROM sqlite_sequence")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?)
}

/// Every table and column the copy writes exists on the target: the two schemas are kept in
/// step by hand, and a difference must stop the copy before it starts, with a clear word.
fn check_target_schema(dest: &Db<'_>, tables: &[SourceTable]) -> Result<()> {
    let mut existing: HashMap<String, BTreeSet<String>> = HashMap::new();
    let rows = dest
        .conn
        .prepare(
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND is_generated = 'NEVER'",
        )?
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (table, column) in rows {
        existing.entry(table).or_default().insert(column);
    }
    let mut missing = Vec::new();
    for table in tables {
        match existing.get(&table.name) {
            None => missing.push(format!("table {}", table.name)),
            Some(columns) => missing.extend(
                table
                    .columns
                    .iter()
                    .filter(|c| !columns.contains(*c))
                    .map(|c| format!("column {}.{c}", table.name)),
            ),
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::Storage(format!(
            "the PostgreSQL schema does not match the SQLite one: it has no {}",
            missing.join(", no ")
        )))
    }
}

/// Refuses (409) a target with a row in any table but the ones it fills by itself.
fn refuse_unless_empty(dest: &Db<'_>) -> Result<()> {
    let tables: Vec<String> = dest
        .conn
        .prepare(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
             ORDER BY table_name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut holding = Vec::new();
    for table in tables {
        if REPLACED.contains(&table.as_str()) || TARGET_ONLY.contains(&table.as_str()) {
            continue;
        }
        let any: i64 = dest.query_row(
            &format!(
                "SELECT count(*) FROM (SELECT 1 FROM {} LIMIT 1) t",
                quoted(&table)
            ),
            [],
            |r| r.get(0),
        )?;
        if any > 0 {
            holding.push(table);
        }
    }
    if holding.is_empty() {
        return Ok(());
    }
    Err(Error::conflict(format!(
        "the target database is not empty (it has rows in {}): a registry is copied only into \
         an empty PostgreSQL database or schema, never over data; nothing was changed",
        holding.join(", ")
    )))
}

/// Copies one table in multi-row INSERTs; answers the rows copied. `tick` hears the rows
/// copied so far after each batch.
fn copy_table(
    source: &Db<'_>,
    dest: &Db<'_>,
    table: &SourceTable,
    mut tick: impl FnMut(u64),
) -> Result<u64> {
    let width = table.columns.len();
    let columns: Vec<String> = table.columns.iter().map(|c| quoted(c)).collect();
    let head = format!(
        "INSERT INTO {} ({}) VALUES ",
        quoted(&table.name),
        columns.join(", ")
    );
    let mut stmt = source.conn.prepare(&table.select)?;
    let mut rows = stmt.query([])?;
    let mut batch: Vec<Value> = Vec::with_capacity(BATCH_ROWS * width);
    let mut batch_bytes = 0;
    let mut copied = 0;
    while let Some(row) = rows.next()? {
        for i in 0..width {
            let value: Value = row.get(i)?;
            batch_bytes += match &value {
                Value::Text(text) => text.len(),
                Value::Blob(bytes) => bytes.len(),
                _ => 8,
            };
            batch.push(value);
        }
        if batch.len() >= BATCH_ROWS * width || batch_bytes >= BATCH_BYTES {
            copied += insert_batch(dest, &table.name, &head, width, &batch)?;
            tick(copied);
            batch.clear();
            batch_bytes = 0;
        }
    }
    if !batch.is_empty() {
        copied += insert_batch(dest, &table.name, &head, width, &batch)?;
        tick(copied);
    }
    Ok(copied)
}

/// One INSERT of `values.len() / width` rows.
fn insert_batch(
    dest: &Db<'_>,
    table: &str,
    head: &str,
    width: usize,
    values: &[Value],
) -> Result<u64> {
    let rows = values.len() / width;
    let mut sql = String::with_capacity(head.len() + values.len() * 7);
    sql.push_str(head);
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..width {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("?{}", row * width + column + 1));
        }
        sql.push(')');
    }
    dest.conn
        .execute(&sql, params_from_iter(values.iter()))
        .map_err(|e| copy_failed(table, e))?;
    Ok(rows as u64)
}

/// A failed INSERT in the server's words (a row that breaks a constraint names its key), and
/// without the statement, which is hundreds of placeholders long.
fn copy_failed(table: &str, err: rusqlite::Error) -> Error {
    match as_pg_error(&err).and_then(|failure| failure.error.as_db_error()) {
        Some(db) => {
            let detail = db.detail().map(|d| format!(" ({d})")).unwrap_or_default();
            Error::Storage(format!(
                "cannot copy the rows of {table} into PostgreSQL: {}{detail}",
                db.message()
            ))
        }
        None => Error::from(err),
    }
}

/// Moves every identity sequence of the target past the ids copied into its column (and past
/// what SQLite's AUTOINCREMENT had handed out), so that the next insert does not collide with
/// a copied row. A column with no rows and no floor keeps its sequence as created.
fn reset_identities(dest: &Db<'_>, floors: &HashMap<String, i64>) -> Result<()> {
    let columns: Vec<(String, String)> = dest
        .conn
        .prepare(
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND is_identity = 'YES' \
             ORDER BY table_name, column_name",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (table, column) in columns {
        let highest: Option<i64> = dest.query_row(
            &format!("SELECT max({}) FROM {}", quoted(&column), quoted(&table)),
            [],
            |r| r.get(0),
        )?;
        let floor = floors.get(&table).copied();
        let Some(last) = highest.max(floor).filter(|last| *last > 0) else {
            continue;
        };
        dest.query_row(
            "SELECT setval(pg_get_serial_sequence(?1, ?2), ?3)",
            (quoted(&table), column.as_str(), last),
            |_| Ok(()),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> Result<(tempfile::TempDir, Store)> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(&dir.path().join("r.db"))?;
        Ok((dir, store))
    }

    /// The tables and columns of the PostgreSQL migration, read from its text: every
    /// `CREATE TABLE name (…)` with the first word of each top-level item that is not a
    /// constraint (those are in capitals).
    fn postgres_tables() -> BTreeMap<String, BTreeSet<String>> {
        let text: String = include_str!("postgres/schema.sql")
            .lines()
            .map(|line| line.split("--").next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n");
        let mut tables = BTreeMap::new();
        for part in text.split("CREATE TABLE ").skip(1) {
            let Some((name, body)) = part.split_once('(') else {
                continue;
            };
            let mut depth = 1;
            let mut items = vec![String::new()];
            for c in body.chars() {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    ',' if depth == 1 => {
                        items.push(String::new());
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    break;
                }
                if let Some(item) = items.last_mut() {
                    item.push(c);
                }
            }
            let columns = items
                .iter()
                .filter_map(|item| item.split_whitespace().next())
                .filter(|word| word.chars().any(|c| c.is_ascii_lowercase()))
                .map(|word| word.trim_matches('"').to_string())
                .collect();
            tables.insert(name.trim().to_string(), columns);
        }
        tables
    }

    #[test]
    fn the_copy_covers_every_table_and_column_of_the_postgresql_schema() -> Result<()> {
        let (_dir, store) = fresh()?;
        let tables = store.read(copy_order)?;
        let copied: BTreeMap<String, BTreeSet<String>> = tables
            .iter()
            .map(|t| (t.name.clone(), t.columns.iter().cloned().collect()))
            .collect();
        let mut expected = postgres_tables();
        assert!(expected.len() > 30, "the schema was parsed: {expected:?}");
        // The generated column is made by the target from the copied ones.
        if let Some(fts) = expected.get_mut(FTS_TABLE) {
            fts.remove("vector");
        }
        assert_eq!(copied, expected);
        Ok(())
    }

    #[test]
    fn every_table_is_copied_after_the_tables_it_references() -> Result<()> {
        let (_dir, store) = fresh()?;
        let order = store.read(|db| {
            let tables = copy_order(db)?;
            let mut seen = Vec::new();
            for table in &tables {
                let parents: Vec<String> = db
                    .conn
                    .prepare("SELECT DISTINCT \"table\" FROM pragma_foreign_key_list(?1)")?
                    .query_map([&table.name], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                for parent in parents.iter().filter(|p| **p != table.name) {
                    assert!(seen.contains(parent), "{} before {parent}", table.name);
                }
                seen.push(table.name.clone());
            }
            Ok(seen)
        })?;
        let tail: Vec<&str> = order.iter().rev().take(2).map(String::as_str).collect();
        assert!(tail.iter().all(|t| REPLACED.contains(t)), "{order:?}");
        assert!(order.contains(&FTS_TABLE.to_string()));
        assert!(
            !order
                .iter()
                .any(|t| t.starts_with("search_fts_") || t.starts_with("sqlite_")),
            "no shadow or internal tables: {order:?}"
        );
        Ok(())
    }

    #[test]
    fn the_rows_of_every_table_are_read_including_the_full_text_index() -> Result<()> {
        let (_dir, store) = fresh()?;
        store.write(|db| {
            db.execute(
                "INSERT INTO search_fts (rowid, name, keywords, description, maintainers, author) \
                 VALUES (7, 'a', 'b', 'c', 'd', 'e')",
                [],
            )?;
            Ok(())
        })?;
        let counts = store.read(|db| {
            copy_order(db)?
                .iter()
                .map(|t| {
                    let mut stmt = db.conn.prepare(&t.select)?;
                    let mut rows = stmt.query([])?;
                    let mut n = 0;
                    while rows.next()?.is_some() {
                        n += 1;
                    }
                    Ok((t.name.clone(), n))
                })
                .collect::<Result<BTreeMap<String, u64>>>()
        })?;
        assert_eq!(counts[FTS_TABLE], 1);
        assert_eq!(counts["search_generation"], 1, "the seeded row");
        Ok(())
    }

    #[test]
    fn a_copy_is_refused_unless_it_goes_from_sqlite_into_postgresql() -> Result<()> {
        let (_a, source) = fresh()?;
        let (_b, target) = fresh()?;
        let refused = source.copy_into(&target, |_, _, _| {});
        assert!(
            matches!(&refused, Err(Error::BadRequest(m)) if m.contains("PostgreSQL")),
            "{refused:?}"
        );
        assert!(matches!(
            target.ensure_empty_target(),
            Err(Error::BadRequest(_))
        ));
        Ok(())
    }
}
