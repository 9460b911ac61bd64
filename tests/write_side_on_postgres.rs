//! The write_side suite (`write_side.rs`) again, on the PostgreSQL backend (see `protocol_on_postgres.rs`).

#[path = "write_side.rs"]
mod write_side;
