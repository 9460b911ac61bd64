//! `registry`: the daemon and the admin CLI in one binary.

mod backend;
mod cli;
mod commands;
mod exit;
mod output;

use clap::Parser;

/// mimalloc rather than the C library's allocator: a request allocates and frees dozens of
/// small buffers, and the static (musl) build's own allocator is slow at exactly that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => exit::report(&err),
    }
}
