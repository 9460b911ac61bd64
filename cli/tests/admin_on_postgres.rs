//! `admin.rs` again, on PostgreSQL: a schema per data directory (`common::on_postgres`).

#[path = "admin.rs"]
mod admin;
