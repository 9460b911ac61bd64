//! The access_api suite (`access_api.rs`) again, on the PostgreSQL backend (see `protocol_on_postgres.rs`).

#[path = "access_api.rs"]
mod access_api;
