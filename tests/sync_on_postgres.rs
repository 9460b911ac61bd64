//! The sync suite (`sync.rs`) again, on the PostgreSQL backend (see `protocol_on_postgres.rs`).

#[path = "sync.rs"]
mod sync;
