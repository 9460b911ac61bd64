//! `sync.rs` again, on PostgreSQL: a schema per data directory (`common::on_postgres`).

#[path = "sync.rs"]
mod sync;
