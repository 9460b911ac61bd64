//! The private_packages suite (`private_packages.rs`) again, on the PostgreSQL backend (see `protocol_on_postgres.rs`).

#[path = "private_packages.rs"]
mod private_packages;
