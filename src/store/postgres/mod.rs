//! The PostgreSQL backend (`database_url = "postgres://…"`): pooled sessions that run the
//! store's SQL (see [`sql`](super::sql)), numbered migrations, and the commit listener that
//! lets every node see every node's writes.
//!
//! Writes are serialised across all nodes by a transaction-level advisory lock, so each one
//! sees the database as SQLite's single writer would: a check-then-insert (two publishes of
//! one version on two nodes) is exactly-once without a retry loop. Reads run in `REPEATABLE
//! READ` read-only transactions, one snapshot each, as SQLite's read transactions are.

mod listener;

use std::collections::HashMap;
use std::error::Error as StdError;
use std::str::FromStr;

use postgres::types::{FromSql, IsNull, Kind, ToSql, Type};
use postgres::{Client, NoTls, Statement};
use rusqlite::types::Value;

use super::sql::{pg_error, pg_statement_error, postgres_sql, PgFailure};
use crate::error::{Error, Result};

pub use listener::CommitListener;

/// The key of the advisory lock every write transaction holds (any constant unlikely to be
/// another application's: "npmr" in ASCII).
pub const WRITE_LOCK: i64 = 0x6e70_6d72;
/// The channel a commit notifies, for the other nodes' [`CommitListener`]s.
pub const COMMITS_CHANNEL: &str = "registry_commits";

/// Migration N (1-based) brings a schema from version N-1 to N; tracked in
/// `registry_schema_version`.
const MIGRATIONS: &[&str] = &[include_str!("schema.sql")];

/// Statements kept per session; past this the cache starts over (statements built per call,
/// such as an IN list's, would otherwise grow it without end).
const STATEMENT_CACHE: usize = 512;

/// One session with its prepared statements (a statement is prepared once per session: the
/// round trip for it would double a read's cost).
pub struct PgConn {
    client: Client,
    statements: HashMap<String, Statement>,
}

impl PgConn {
    pub fn connect(config: &postgres::Config) -> std::result::Result<PgConn, postgres::Error> {
        Ok(PgConn {
            client: config.connect(NoTls)?,
            statements: HashMap::new(),
        })
    }

    /// The prepared statement for `sql`. A parameter whose type the server cannot infer
    /// (`SELECT ?1 AS name`: SQLite needs none) takes the type of the value it is given.
    fn statement(&mut self, sql: &str, params: &[Value]) -> rusqlite::Result<Statement> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let text = postgres_sql(sql);
        let statement = match self.client.prepare(&text) {
            Err(e) if e.code() == Some(&postgres::error::SqlState::INDETERMINATE_DATATYPE) => {
                let types: Vec<Type> = params.iter().map(type_of).collect();
                self.client.prepare_typed(&text, &types)
            }
            prepared => prepared,
        }
        .map_err(|e| pg_statement_error(e, sql))?;
        if self.statements.len() >= STATEMENT_CACHE {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    pub fn query(&mut self, sql: &str, params: &[Value]) -> rusqlite::Result<Vec<Vec<Value>>> {
        let statement = self.statement(sql, params)?;
        let params: Vec<Param<'_>> = params.iter().map(Param).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        let rows = self
            .client
            .query(&statement, &refs)
            .map_err(|e| pg_statement_error(e, sql))?;
        rows.iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| row.try_get::<_, Column>(i).map(|c| c.0))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(pg_error)
            })
            .collect()
    }

    pub fn execute(&mut self, sql: &str, params: &[Value]) -> rusqlite::Result<usize> {
        let statement = self.statement(sql, params)?;
        let params: Vec<Param<'_>> = params.iter().map(Param).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        let count = self
            .client
            .execute(&statement, &refs)
            .map_err(|e| pg_statement_error(e, sql))?;
        Ok(usize::try_from(count).unwrap_or(usize::MAX))
    }

    pub fn batch(&mut self, sql: &str) -> rusqlite::Result<()> {
        self.client
            .batch_execute(sql)
            .map_err(|e| pg_statement_error(e, sql))
    }

    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}

/// Opens sessions for the r2d2 pool.
pub struct PgManager {
    config: postgres::Config,
}

impl PgManager {
    pub fn new(url: &str) -> Result<PgManager> {
        let config = postgres::Config::from_str(url).map_err(|e| {
            Error::bad_request(format!("database_url is not a PostgreSQL URL: {e}"))
        })?;
        Ok(PgManager { config })
    }

    pub fn config(&self) -> &postgres::Config {
        &self.config
    }
}

impl r2d2::ManageConnection for PgManager {
    type Connection = PgConn;
    type Error = postgres::Error;

    fn connect(&self) -> std::result::Result<PgConn, postgres::Error> {
        PgConn::connect(&self.config)
    }

    fn is_valid(&self, conn: &mut PgConn) -> std::result::Result<(), postgres::Error> {
        conn.client.simple_query("").map(drop)
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        conn.client.is_closed()
    }
}

/// Brings the schema up to date, under the write lock so that nodes starting together
/// migrate once. A schema from a newer binary is refused rather than misread.
pub fn migrate(conn: &mut PgConn) -> Result<()> {
    let mut tx = conn.client.transaction().map_err(storage)?;
    tx.query_one("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
        .map_err(storage)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS registry_schema_version (version BIGINT NOT NULL); \
         INSERT INTO registry_schema_version \
           SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM registry_schema_version)",
    )
    .map_err(storage)?;
    let current: i64 = tx
        .query_one("SELECT version FROM registry_schema_version", &[])
        .map_err(storage)?
        .get(0);
    let latest = MIGRATIONS.len() as i64;
    if current > latest {
        return Err(Error::Storage(format!(
            "the PostgreSQL schema is at version {current}, newer than this binary's \
             {latest}: upgrade the binary"
        )));
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
        tx.batch_execute(migration).map_err(|e| {
            Error::Storage(format!("PostgreSQL migration {} failed: {e}", index + 1))
        })?;
    }
    tx.execute(
        "UPDATE registry_schema_version SET version = $1",
        &[&latest],
    )
    .map_err(storage)?;
    tx.commit().map_err(storage)
}

fn storage(e: postgres::Error) -> Error {
    Error::from(pg_error(e))
}

/// The server's own words for a database error (postgres's `Display` says only "db error").
fn described(err: &postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => {
            let mut text = format!("{} ({})", db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                text.push_str(&format!("; {detail}"));
            }
            if let Some(position) = db.position() {
                text.push_str(&format!("; at {position:?}"));
            }
            text
        }
        None => err.to_string(),
    }
}

/// What a PostgreSQL error means for the request that met it.
pub fn classify(failure: &PgFailure) -> Error {
    use postgres::error::SqlState;
    let code = failure.error.code();
    let mut err = described(&failure.error);
    if let Some(sql) = &failure.sql {
        err.push_str(&format!(" in: {sql}"));
    }
    match code {
        Some(code) if *code == SqlState::DISK_FULL => Error::InsufficientStorage(format!(
            "the database's disk is full ({err}); nothing was stored — retry once an \
             administrator has made room"
        )),
        Some(code)
            if *code == SqlState::READ_ONLY_SQL_TRANSACTION
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
                || *code == SqlState::TOO_MANY_CONNECTIONS =>
        {
            Error::StorageUnavailable(format!("the database is not available ({err})"))
        }
        // Class 22, a data exception: the value itself cannot be stored (a NUL character in
        // text, a number out of range), which no retry changes.
        Some(code) if code.code().starts_with("22") => Error::bad_request(format!(
            "a value cannot be stored: {}",
            failure
                .error
                .as_db_error()
                .map_or_else(|| failure.error.to_string(), |db| db.message().to_string())
        )),
        Some(_) => Error::Storage(err),
        // No SQL state: the connection failed or closed, which a retry may cure.
        None => Error::StorageUnavailable(format!("the database cannot be reached ({err})")),
    }
}

/// A parameter as the server's inferred type takes it (SQLite's dynamic typing: an integer
/// for a boolean or a text column, text for bytes).
#[derive(Debug)]
struct Param<'a>(&'a Value);

type BoxError = Box<dyn StdError + Sync + Send>;

impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, BoxError> {
        match (self.0, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Integer(i), &Type::INT8) => i.to_sql(ty, out),
            (Value::Integer(i), &Type::INT4) => i32::try_from(*i)?.to_sql(ty, out),
            (Value::Integer(i), &Type::INT2) => i16::try_from(*i)?.to_sql(ty, out),
            (Value::Integer(i), &Type::BOOL) => (*i != 0).to_sql(ty, out),
            (Value::Integer(i), &Type::FLOAT8) => (*i as f64).to_sql(ty, out),
            (Value::Integer(i), &Type::FLOAT4) => (*i as f32).to_sql(ty, out),
            (Value::Integer(i), _) if is_text(ty) => i.to_string().as_str().to_sql(ty, out),
            (Value::Real(f), &Type::FLOAT8) => f.to_sql(ty, out),
            (Value::Real(f), &Type::FLOAT4) => (*f as f32).to_sql(ty, out),
            (Value::Real(f), &Type::INT8) => (*f as i64).to_sql(ty, out),
            (Value::Real(f), _) if is_text(ty) => f.to_string().as_str().to_sql(ty, out),
            (Value::Text(s), &Type::BYTEA) => s.as_bytes().to_sql(ty, out),
            (Value::Text(s), &Type::JSONB) => {
                out.extend_from_slice(&[1]);
                out.extend_from_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            (Value::Text(s), &Type::JSON) => {
                out.extend_from_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            (Value::Text(s), &Type::INT8) => s.parse::<i64>()?.to_sql(ty, out),
            (Value::Text(s), _) if is_text(ty) => s.as_str().to_sql(ty, out),
            (Value::Blob(b), &Type::BYTEA) => b.as_slice().to_sql(ty, out),
            (Value::Blob(b), _) if is_text(ty) => std::str::from_utf8(b)?.to_sql(ty, out),
            (value, ty) => {
                Err(format!("a {:?} cannot be a {ty} parameter", value.data_type()).into())
            }
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// The type a value would be given by SQLite's affinity, for a parameter the server cannot
/// type by itself.
fn type_of(value: &Value) -> Type {
    match value {
        Value::Integer(_) => Type::INT8,
        Value::Real(_) => Type::FLOAT8,
        Value::Blob(_) => Type::BYTEA,
        Value::Null | Value::Text(_) => Type::TEXT,
    }
}

fn is_text(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
    ) || matches!(ty.kind(), Kind::Domain(inner) if is_text(inner))
}

/// A `numeric` (what `sum()` of integers gives) as SQLite would give it: an integer when it
/// is whole and fits, else a float. The wire format is base-10000 digits, `weight` being the
/// power of the first one.
fn numeric(raw: &[u8]) -> std::result::Result<Value, BoxError> {
    let word = |i: usize| -> std::result::Result<i16, BoxError> {
        let bytes = raw.get(i * 2..i * 2 + 2).ok_or("a truncated numeric")?;
        Ok(i16::from_be_bytes([bytes[0], bytes[1]]))
    };
    let digits = usize::try_from(word(0)?).map_err(|_| "a numeric with negative length")?;
    let weight = i32::from(word(1)?);
    let sign = word(2)? as u16;
    const NEGATIVE: u16 = 0x4000;
    const NAN: u16 = 0xC000;
    if sign == NAN {
        return Ok(Value::Real(f64::NAN));
    }
    let mut whole: Option<i64> = Some(0);
    let mut real = 0f64;
    for i in 0..digits {
        let digit = i64::from(word(4 + i)?);
        let power = weight - i as i32;
        real += digit as f64 * 10000f64.powi(power);
        whole = match (whole, u32::try_from(power)) {
            (Some(sum), Ok(power)) => 10000i64
                .checked_pow(power)
                .and_then(|scale| digit.checked_mul(scale))
                .and_then(|part| sum.checked_add(part)),
            (_, Err(_)) if digit != 0 => None,
            (sum, _) => sum,
        };
    }
    Ok(match (whole, sign == NEGATIVE) {
        (Some(n), false) => Value::Integer(n),
        (Some(n), true) => Value::Integer(-n),
        (None, negative) => Value::Real(if negative { -real } else { real }),
    })
}

/// A column as SQLite would hold it.
struct Column(Value);

impl<'a> FromSql<'a> for Column {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> std::result::Result<Column, BoxError> {
        Ok(Column(match *ty {
            Type::BOOL => Value::Integer(i64::from(bool::from_sql(ty, raw)?)),
            Type::INT2 => Value::Integer(i64::from(i16::from_sql(ty, raw)?)),
            Type::INT4 => Value::Integer(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT8 => Value::Integer(i64::from_sql(ty, raw)?),
            Type::OID => Value::Integer(i64::from(u32::from_sql(ty, raw)?)),
            Type::FLOAT4 => Value::Real(f64::from(f32::from_sql(ty, raw)?)),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::NUMERIC => numeric(raw)?,
            Type::BYTEA => Value::Blob(raw.to_vec()),
            Type::JSONB => Value::Text(String::from_utf8(
                raw.get(1..).unwrap_or_default().to_vec(),
            )?),
            _ if is_text(ty) || *ty == Type::JSON => Value::Text(String::from_utf8(raw.to_vec())?),
            _ => {
                return Err(format!("a {ty} column has no SQLite type (cast it in the SQL)").into())
            }
        }))
    }

    fn from_sql_null(_: &Type) -> std::result::Result<Column, BoxError> {
        Ok(Column(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PostgreSQL's binary `numeric`: digit count, weight, sign, display scale, then the
    /// base-10000 digits.
    fn wire(weight: i16, sign: u16, scale: u16, digits: &[i16]) -> Vec<u8> {
        let mut raw = Vec::new();
        for word in [digits.len() as i16, weight, sign as i16, scale as i16] {
            raw.extend_from_slice(&word.to_be_bytes());
        }
        for digit in digits {
            raw.extend_from_slice(&digit.to_be_bytes());
        }
        raw
    }

    #[test]
    fn sums_come_back_as_sqlite_would_give_them() -> std::result::Result<(), BoxError> {
        // 123456789 = 1 · 10000² + 2345 · 10000 + 6789
        assert_eq!(
            numeric(&wire(2, 0, 0, &[1, 2345, 6789]))?,
            Value::Integer(123_456_789)
        );
        assert_eq!(numeric(&wire(0, 0x4000, 0, &[42]))?, Value::Integer(-42));
        // Trailing zero groups are left out on the wire: 50000 = 5 · 10000¹.
        assert_eq!(numeric(&wire(1, 0, 0, &[5]))?, Value::Integer(50_000));
        assert_eq!(numeric(&wire(0, 0, 0, &[]))?, Value::Integer(0));
        // 1.5 = 1 · 10000⁰ + 5000 · 10000⁻¹: not whole, so a float.
        assert_eq!(numeric(&wire(0, 0, 1, &[1, 5000]))?, Value::Real(1.5));
        // Past i64: a float rather than a wrong integer.
        let huge = numeric(&wire(5, 0, 0, &[1]))?;
        assert_eq!(huge, Value::Real(1e20));
        assert!(numeric(&[0, 1]).is_err(), "a truncated value is an error");
        Ok(())
    }
}
