//! Upstreams: public (or other) registries whose packages this one proxies and caches, the
//! sync tasks that mirror packages ahead of time, the registries API, and the binary mirror.
//! The only part of the core that talks HTTP.

pub mod audit;
pub mod binaries;
pub mod cache;
pub mod client;
pub mod config;
pub mod documents;
pub mod guard;
pub mod prefetch;
pub mod proxy;
pub mod registries;
pub mod search;
pub mod status;
pub mod sync;
