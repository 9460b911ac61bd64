//! One module per command group; each turns parsed arguments into calls to the core.

mod access;
mod backup;
mod block;
mod config;
mod deprecate;
mod dist_tag;
mod docs;
mod doctor;
mod downloads;
mod gc;
mod hook;
pub mod migrate;
mod org;
mod owner;
mod package;
mod serve;
mod sync;
mod team;
mod token;
mod unpublish;
mod upstream;
mod user;

use registry_core::config::{Config, Overrides};
use registry_core::Registry;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::output::Out as Output;

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let global = &cli.global;
    let out = Output::new(global);
    // Commands that do not act on a registry.
    let command = match cli.command {
        Command::Serve(args) => return serve::run(global, args),
        Command::Completions(args) => return docs::completions(args),
        Command::Man(args) => return docs::man(args),
        Command::Config(command) => return config::run(global, &out, command),
        Command::Restore(args) => return backup::run_restore(global, &out, args),
        other => other,
    };
    let backend = crate::backend::open(global)?;
    let backend = backend.as_ref();
    match command {
        Command::User(command) => user::run(backend, &out, command),
        Command::Token(command) => token::run(backend, &out, command),
        Command::Package(command) => package::run(backend, &out, command),
        Command::DistTag(command) => dist_tag::run(backend, &out, command),
        Command::Deprecate(args) => deprecate::run(backend, &out, args),
        Command::Unpublish(args) => unpublish::run(backend, &out, args),
        Command::Owner(command) => owner::run(backend, &out, command),
        Command::Org(command) => org::run(backend, &out, command),
        Command::Team(command) => team::run(backend, &out, command),
        Command::Access(command) => access::run(backend, &out, command),
        Command::Block(args) => block::block(backend, &out, args),
        Command::Unblock(args) => block::unblock(backend, &out, args),
        Command::Downloads(args) => downloads::run(backend, &out, args),
        Command::Upstream(command) => upstream::run(backend, &out, command),
        Command::Cache(command) => upstream::cache(backend, &out, command),
        Command::Sync(args) => sync::run(backend, &out, args),
        Command::Hook(command) => hook::run(backend, &out, command),
        Command::Gc(args) => gc::run(backend, &out, args),
        Command::Doctor(args) => doctor::run(backend, &out, args),
        Command::Backup(args) => backup::run_backup(backend, &out, args),
        Command::Migrate(args) => migrate::run(backend, &out, args),
        Command::Serve(_)
        | Command::Completions(_)
        | Command::Man(_)
        | Command::Config(_)
        | Command::Restore(_) => Ok(()),
    }
}

/// The effective configuration: file < env < flags.
pub fn load_config(global: &GlobalArgs, mut overrides: Overrides) -> anyhow::Result<Config> {
    overrides.data_dir = global.data_dir.clone();
    overrides.database_url = global.database_url.clone();
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
