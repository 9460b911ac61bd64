//! The core of the registry: everything that is true of an npm registry whatever the
//! transport. The daemon (HTTP) and the CLI's local backend both call these operations, so an
//! action taken from the shell and the same action over HTTP cannot behave differently.

pub mod admin;
pub mod auth;
pub mod authz;
pub mod blobs;
pub mod blocks;
pub mod cidr;
pub mod clock;
pub mod config;
pub mod documents;
pub mod downloads;
pub mod error;
pub mod names;
pub mod packument;
pub mod password;
pub mod publish;
pub mod registry;
pub mod search;
pub mod store;
pub mod tags;
pub mod tarball;
pub mod throttle;
pub mod tokens;
pub mod unpublish;
pub mod users;

pub use error::{Error, Result};
pub use registry::Registry;
