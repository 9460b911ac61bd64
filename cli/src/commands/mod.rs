//! One module per command group; each turns parsed arguments into calls to the core.

mod docs;
mod serve;
mod token;
mod user;

use registry_core::config::{Config, Overrides};
use registry_core::Registry;

use crate::cli::{Cli, Command, GlobalArgs};

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(&cli.global, args),
        Command::User(command) => user::run(&cli.global, command),
        Command::Token(command) => token::run(&cli.global, command),
        Command::Completions(args) => docs::completions(args),
        Command::Man(args) => docs::man(args),
    }
}

/// The effective configuration: file < env < flags.
pub fn load_config(global: &GlobalArgs, mut overrides: Overrides) -> anyhow::Result<Config> {
    overrides.data_dir = global.data_dir.clone();
    let (config, warnings) = Config::load(global.config.as_deref(), std::env::vars(), &overrides)?;
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    Ok(config)
}

/// Opens the registry's data directly (the local backend), safe while the daemon runs.
pub fn open_local(global: &GlobalArgs) -> anyhow::Result<Registry> {
    let config = load_config(global, Overrides::default())?;
    Ok(Registry::open(config)?)
}
