//! The registry's HTTP face: warp routes over the core library, served by our own hyper
//! accept loop (so that tarballs stream straight from their files and every request is
//! logged once with its status and duration).

mod auth;
mod body;
mod cache;
mod connections;
mod error;
mod logging;
mod metrics;
mod package_path;
mod reply;
mod routes;
mod server;
mod state;
mod tls;
mod web;

pub use logging::subscriber;
pub use server::{bind, serve, serve_with_metrics};
