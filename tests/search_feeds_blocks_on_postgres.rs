//! The search_feeds_blocks suite (`search_feeds_blocks.rs`) again, on the PostgreSQL backend (see `protocol_on_postgres.rs`).

#[path = "search_feeds_blocks.rs"]
mod search_feeds_blocks;
