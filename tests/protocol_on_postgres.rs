//! The protocol suite (`protocol.rs`) again, on the PostgreSQL backend: the harness gives
//! each registry a schema of its own on `contrib/services.sh`'s server (`common::on_postgres`).

#[path = "protocol.rs"]
mod protocol;
