//! The SQLite backend (the default): the database file in the data directory, one writer
//! connection with group commit, and a pool of read-only connections.

pub(super) mod schema;
pub(super) mod writer;
