//! `access.rs` again, on PostgreSQL: a schema per data directory (`common::on_postgres`).

#[path = "access.rs"]
mod access;
