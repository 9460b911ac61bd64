//! `hooks.rs` again, on PostgreSQL: a schema per data directory (`common::on_postgres`).

#[path = "hooks.rs"]
mod hooks;
