//! The core of the registry: everything that is true of an npm registry whatever the
//! transport. The daemon (HTTP) and the CLI's local backend both call these operations, so an
//! action taken from the shell and the same action over HTTP cannot behave differently.
//!
//! Grouped by domain, one folder a feature: `packages` (what is published and read),
//! `accounts` (who is calling and what they may do), `maintenance` (gc, doctor, backup),
//! `blobs` (tarball bytes), `store` (the only place with SQL).

pub mod access;
pub mod accounts;
pub mod blobs;
pub mod clock;
pub mod config;
pub mod error;
pub mod hooks;
pub mod maintenance;
pub mod metrics;
pub mod packages;
pub mod registry;
pub mod store;
pub mod upstream;

pub use error::{Error, Result};
pub use registry::Registry;
