//! The hooks suite (`hooks.rs`) again, on the PostgreSQL backend (see `protocol_on_postgres.rs`).

#[path = "hooks.rs"]
mod hooks;
