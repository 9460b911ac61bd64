//! One connection shape for both backends, so that every store module runs the same SQL on
//! SQLite and PostgreSQL.
//!
//! The SQL is written for SQLite (`?N` placeholders) and rewritten once per statement text for
//! PostgreSQL ([`postgres_sql`]); where the two dialects differ, a module picks its text by
//! [`Conn::dialect`]. Values go both ways through rusqlite's dynamic types: parameters are
//! `ToSql`, columns are read as `FromSql` (a PostgreSQL column is first turned into a
//! [`Value`], so integer flags read as they do on SQLite), and rusqlite's error is the one
//! error type (a PostgreSQL error rides in it, see [`pg_error`], and is told apart again when
//! it becomes the crate's [`Error`](crate::error::Error)).

use std::cell::RefCell;

use rusqlite::types::{FromSql, ToSql, ToSqlOutput, Value, ValueRef};

use super::postgres::PgConn;

/// Which SQL a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A connection as the store modules see it: SQLite's, or a PostgreSQL session (borrowed
/// mutably for each statement; a statement's rows are read in full before the next runs).
pub enum Conn<'c> {
    Sqlite(&'c rusqlite::Connection),
    Postgres(RefCell<&'c mut PgConn>),
}

impl<'c> Conn<'c> {
    pub fn dialect(&self) -> Dialect {
        match self {
            Conn::Sqlite(_) => Dialect::Sqlite,
            Conn::Postgres(_) => Dialect::Postgres,
        }
    }

    /// `sqlite` on SQLite, `postgres` on PostgreSQL: for the few statements (or parts of
    /// them) whose dialects differ (JSON functions, full-text search, row locks).
    pub fn pick<T>(&self, sqlite: T, postgres: T) -> T {
        match self.dialect() {
            Dialect::Sqlite => sqlite,
            Dialect::Postgres => postgres,
        }
    }

    /// A statement, prepared once per connection and kept.
    pub fn prepare_cached<'s>(&'s self, sql: &str) -> rusqlite::Result<Stmt<'s, 'c>> {
        Ok(match self {
            Conn::Sqlite(conn) => Stmt::Sqlite(conn.prepare_cached(sql)?),
            Conn::Postgres(session) => Stmt::Postgres(session, sql.to_string()),
        })
    }

    /// [`Conn::prepare_cached`]: statements built for one call are few enough to keep too.
    pub fn prepare<'s>(&'s self, sql: &str) -> rusqlite::Result<Stmt<'s, 'c>> {
        self.prepare_cached(sql)
    }

    pub fn execute<P: SqlParams>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    pub fn query_row<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: SqlParams,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    /// Statements without parameters, separated by semicolons.
    pub fn execute_batch(&self, sql: &str) -> rusqlite::Result<()> {
        match self {
            Conn::Sqlite(conn) => conn.execute_batch(sql),
            Conn::Postgres(session) => session.borrow_mut().batch(sql),
        }
    }
}

/// A prepared statement of either backend.
pub enum Stmt<'s, 'c> {
    Sqlite(rusqlite::CachedStatement<'s>),
    Postgres(&'s RefCell<&'c mut PgConn>, String),
}

impl Stmt<'_, '_> {
    pub fn execute<P: SqlParams>(&mut self, params: P) -> rusqlite::Result<usize> {
        match self {
            Stmt::Sqlite(stmt) => stmt.execute(params.into_sqlite()),
            Stmt::Postgres(session, sql) => session.borrow_mut().execute(sql, &params.values()?),
        }
    }

    /// Every row through `f`, read in full before the first is mapped (so `f` may run
    /// statements of its own).
    pub fn query_map<T, P, F>(
        &mut self,
        params: P,
        mut f: F,
    ) -> rusqlite::Result<std::vec::IntoIter<rusqlite::Result<T>>>
    where
        P: SqlParams,
        F: FnMut(&Row<'_>) -> rusqlite::Result<T>,
    {
        let mapped: Vec<rusqlite::Result<T>> = match self {
            Stmt::Sqlite(stmt) => stmt
                .query_map(params.into_sqlite(), |row| f(&Row::Sqlite(row)))?
                .collect(),
            Stmt::Postgres(session, sql) => {
                let rows = session.borrow_mut().query(sql, &params.values()?)?;
                rows.iter()
                    .map(|row| f(&Row::Postgres(row.as_slice())))
                    .collect()
            }
        };
        Ok(mapped.into_iter())
    }

    /// The first row through `f`; `QueryReturnedNoRows` when there is none.
    pub fn query_row<T, P, F>(&mut self, params: P, f: F) -> rusqlite::Result<T>
    where
        P: SqlParams,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    {
        match self {
            Stmt::Sqlite(stmt) => stmt.query_row(params.into_sqlite(), |row| f(&Row::Sqlite(row))),
            Stmt::Postgres(session, sql) => {
                let rows = session.borrow_mut().query(sql, &params.values()?)?;
                match rows.first() {
                    Some(row) => f(&Row::Postgres(row)),
                    None => Err(rusqlite::Error::QueryReturnedNoRows),
                }
            }
        }
    }

    /// The rows, to walk with [`Rows::next`].
    pub fn query<P: SqlParams>(&mut self, params: P) -> rusqlite::Result<Rows<'_>> {
        match self {
            Stmt::Sqlite(stmt) => Ok(Rows::Sqlite(stmt.query(params.into_sqlite())?)),
            Stmt::Postgres(session, sql) => {
                let rows = session.borrow_mut().query(sql, &params.values()?)?;
                Ok(Rows::Postgres(rows.into_iter(), None))
            }
        }
    }
}

/// Rows of [`Stmt::query`], one at a time.
pub enum Rows<'s> {
    Sqlite(rusqlite::Rows<'s>),
    Postgres(std::vec::IntoIter<Vec<Value>>, Option<Vec<Value>>),
}

impl Rows<'_> {
    pub fn next(&mut self) -> rusqlite::Result<Option<Row<'_>>> {
        match self {
            Rows::Sqlite(rows) => Ok(rows.next()?.map(Row::Sqlite)),
            Rows::Postgres(rest, current) => {
                *current = rest.next();
                Ok(current.as_deref().map(Row::Postgres))
            }
        }
    }
}

/// One row of either backend.
pub enum Row<'r> {
    Sqlite(&'r rusqlite::Row<'r>),
    Postgres(&'r [Value]),
}

impl Row<'_> {
    pub fn get<I: ColumnIndex, T: FromSql>(&self, index: I) -> rusqlite::Result<T> {
        let index = index.position();
        match self {
            Row::Sqlite(row) => row.get(index),
            Row::Postgres(values) => {
                let value = column(values, index)?;
                T::column_result(ValueRef::from(value)).map_err(|e| match e {
                    rusqlite::types::FromSqlError::InvalidType => {
                        rusqlite::Error::InvalidColumnType(
                            index,
                            index.to_string(),
                            ValueRef::from(value).data_type(),
                        )
                    }
                    other => rusqlite::Error::FromSqlConversionFailure(
                        index,
                        ValueRef::from(value).data_type(),
                        Box::new(other),
                    ),
                })
            }
        }
    }
}

/// A column's position (rusqlite's `RowIndex`, by number only: the store reads columns by
/// position).
pub trait ColumnIndex: Copy {
    fn position(self) -> usize;
}

impl ColumnIndex for usize {
    fn position(self) -> usize {
        self
    }
}

fn column(values: &[Value], index: usize) -> rusqlite::Result<&Value> {
    values
        .get(index)
        .ok_or(rusqlite::Error::InvalidColumnIndex(index))
}

/// A statement's parameters: what rusqlite takes, and their values for PostgreSQL.
pub trait SqlParams {
    type Sqlite: rusqlite::Params;
    fn into_sqlite(self) -> Self::Sqlite;
    fn values(&self) -> rusqlite::Result<Vec<Value>>;
}

fn value_of(param: &dyn ToSql) -> rusqlite::Result<Value> {
    Ok(match param.to_sql()? {
        ToSqlOutput::Borrowed(value) => match value {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Integer(i),
            ValueRef::Real(f) => Value::Real(f),
            ValueRef::Text(t) => Value::Text(
                std::str::from_utf8(t)
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?
                    .to_string(),
            ),
            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        },
        ToSqlOutput::Owned(value) => value,
        other => {
            return Err(rusqlite::Error::ToSqlConversionFailure(
                format!("{other:?} is not a plain value").into(),
            ))
        }
    })
}

impl SqlParams for [&(dyn ToSql + Send + Sync); 0] {
    type Sqlite = Self;
    fn into_sqlite(self) -> Self {
        self
    }
    fn values(&self) -> rusqlite::Result<Vec<Value>> {
        Ok(Vec::new())
    }
}

impl<'a> SqlParams for &'a [&'a dyn ToSql] {
    type Sqlite = Self;
    fn into_sqlite(self) -> Self {
        self
    }
    fn values(&self) -> rusqlite::Result<Vec<Value>> {
        self.iter().map(|p| value_of(*p)).collect()
    }
}

macro_rules! tuple_params {
    ($($field:tt $ty:ident),+) => {
        impl<$($ty: ToSql),+> SqlParams for ($($ty,)+) {
            type Sqlite = Self;
            fn into_sqlite(self) -> Self {
                self
            }
            fn values(&self) -> rusqlite::Result<Vec<Value>> {
                Ok(vec![$(value_of(&self.$field)?),+])
            }
        }
    };
}

tuple_params!(0 A);
tuple_params!(0 A, 1 B);
tuple_params!(0 A, 1 B, 2 C);
tuple_params!(0 A, 1 B, 2 C, 3 D);
tuple_params!(0 A, 1 B, 2 C, 3 D, 4 E);
tuple_params!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F);
tuple_params!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G);
tuple_params!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H);
tuple_params!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I);
tuple_params!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J);
tuple_params!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J, 10 K);
tuple_params!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J, 10 K, 11 L);
tuple_params!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J, 10 K, 11 L, 12 M);
tuple_params!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J, 10 K, 11 L, 12 M, 13 N);
tuple_params!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J, 10 K, 11 L, 12 M, 13 N, 14 O);
tuple_params!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J, 10 K, 11 L, 12 M, 13 N, 14 O, 15 P);

macro_rules! array_params {
    ($($n:literal)+) => {$(
        impl<T: ToSql> SqlParams for [T; $n] {
            type Sqlite = Self;
            fn into_sqlite(self) -> Self {
                self
            }
            fn values(&self) -> rusqlite::Result<Vec<Value>> {
                self.iter().map(|p| value_of(p)).collect()
            }
        }
    )+};
}

array_params!(1 2 3 4 5 6 7 8);

/// Parameters from an iterator (rusqlite's `params_from_iter`, walked once more for
/// PostgreSQL).
pub struct ParamsFromIter<I>(I);

pub fn params_from_iter<I>(iter: I) -> ParamsFromIter<I>
where
    I: IntoIterator + Clone,
    I::Item: ToSql,
{
    ParamsFromIter(iter)
}

impl<I> SqlParams for ParamsFromIter<I>
where
    I: IntoIterator + Clone,
    I::Item: ToSql,
{
    type Sqlite = rusqlite::ParamsFromIter<I>;
    fn into_sqlite(self) -> Self::Sqlite {
        rusqlite::params_from_iter(self.0)
    }
    fn values(&self) -> rusqlite::Result<Vec<Value>> {
        self.0.clone().into_iter().map(|p| value_of(&p)).collect()
    }
}

/// A PostgreSQL error, with the statement that met it when there was one.
#[derive(Debug)]
pub struct PgFailure {
    pub error: postgres::Error,
    pub sql: Option<String>,
}

impl std::fmt::Display for PgFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.error)
    }
}

impl std::error::Error for PgFailure {}

/// A PostgreSQL error carried in rusqlite's error type.
pub fn pg_error(error: postgres::Error) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(PgFailure { error, sql: None }))
}

/// [`pg_error`] for an error of the statement `sql`.
pub fn pg_statement_error(error: postgres::Error, sql: &str) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(PgFailure {
        error,
        sql: Some(sql.to_string()),
    }))
}

/// The PostgreSQL error inside `err`, if that is what it carries.
pub fn as_pg_error(err: &rusqlite::Error) -> Option<&PgFailure> {
    match err {
        rusqlite::Error::ToSqlConversionFailure(inner) => inner.downcast_ref(),
        _ => None,
    }
}

/// SQLite's SQL as PostgreSQL reads it: `?N` (and bare `?`) become `$N`, and `INSERT OR
/// IGNORE` becomes `INSERT … ON CONFLICT DO NOTHING`. Quoted text is left alone.
pub fn postgres_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 24);
    let mut chars = sql.chars().peekable();
    let mut next_bare = 1;
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                out.push(c);
            }
            '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    digits.push(d);
                    chars.next();
                }
                if digits.is_empty() {
                    digits = next_bare.to_string();
                    next_bare += 1;
                }
                out.push('$');
                out.push_str(&digits);
            }
            _ => out.push(c),
        }
    }
    ignore_conflicts(&out)
}

fn ignore_conflicts(sql: &str) -> String {
    const OR_IGNORE: &str = "INSERT OR IGNORE INTO";
    let Some(at) = sql.find(OR_IGNORE) else {
        return sql.to_string();
    };
    let mut out = format!("{}INSERT INTO{}", &sql[..at], &sql[at + OR_IGNORE.len()..]);
    let trimmed = out.trim_end().trim_end_matches(';').len();
    out.truncate(trimmed);
    match out.rfind(" RETURNING ") {
        Some(returning) => out.insert_str(returning, " ON CONFLICT DO NOTHING"),
        None => out.push_str(" ON CONFLICT DO NOTHING"),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_ignored_conflicts_are_rewritten_outside_quotes() {
        assert_eq!(
            postgres_sql("SELECT a FROM t WHERE b = ?1 AND c = '?2' AND d = ?12"),
            "SELECT a FROM t WHERE b = $1 AND c = '?2' AND d = $12"
        );
        assert_eq!(
            postgres_sql("UPDATE t SET a = ? WHERE b = ?"),
            "UPDATE t SET a = $1 WHERE b = $2"
        );
        assert_eq!(
            postgres_sql("INSERT OR IGNORE INTO t (a) VALUES (?1)"),
            "INSERT INTO t (a) VALUES ($1) ON CONFLICT DO NOTHING"
        );
        assert_eq!(
            postgres_sql("INSERT OR IGNORE INTO t (a) VALUES (?1) RETURNING id"),
            "INSERT INTO t (a) VALUES ($1) ON CONFLICT DO NOTHING RETURNING id"
        );
    }
}
