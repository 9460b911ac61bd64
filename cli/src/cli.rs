//! The command-line interface: the clap tree, shared by the binary and by the generators of
//! `completions/` and `man/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "registry",
    version,
    about = "A self-hosted npm registry and its admin tool",
    long_about = "A self-hosted npm registry and its admin tool.\n\n\
        `registry serve` runs the registry that npm, pnpm and yarn talk to; the other commands \
        administer it, directly on its data directory (safe while the daemon runs).",
    after_long_help = "EXIT STATUS:\n    0  success\n    1  the operation failed\n    \
        2  usage error\n    3  not found\n    4  permission denied"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The registry's data directory (database and tarballs)
    #[arg(long, global = true, env = "REGISTRY_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// A TOML configuration file
    #[arg(long, global = true, env = "REGISTRY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print machine-readable JSON instead of text
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the registry server
    Serve(ServeArgs),
    /// Manage users
    #[command(subcommand)]
    User(UserCommand),
    /// Manage access tokens
    #[command(subcommand)]
    Token(TokenCommand),
    /// Print shell completions, or write them for every shell with --out-dir
    Completions(CompletionsArgs),
    /// Print the man page, or write every page with --out-dir
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on
    #[arg(
        long,
        value_name = "ADDR",
        help = "Address to listen on [default: 127.0.0.1:4873]"
    )]
    pub listen: Option<String>,
    /// The URL clients use to reach the registry, for tarball URLs (default: the request's Host)
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Whether `npm adduser` may create accounts
    #[arg(long, value_parser = ["closed", "open"])]
    pub registration: Option<String>,
    /// Log filter: error, warn, info, debug, trace
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (asks for the password on a terminal)
    Add(UserAddArgs),
}

#[derive(Debug, Args)]
pub struct UserAddArgs {
    /// The user name (lowercase, URL-safe)
    pub name: String,
    /// The user's email address
    #[arg(long, default_value = "")]
    pub email: String,
    /// Give the user administrator rights
    #[arg(long)]
    pub admin: bool,
    /// Read the password from the first line of standard input
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an access token for a user; prints it once
    Create(TokenCreateArgs),
}

#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// The user the token acts as
    #[arg(long, value_name = "NAME")]
    pub user: String,
    /// The token can read and install, never publish or change anything
    #[arg(long)]
    pub readonly: bool,
    /// Only accept the token from these IPv4 networks (repeatable)
    #[arg(long, value_name = "CIDR")]
    pub cidr: Vec<String>,
    /// Expire the token after this long: 30d, 12h, 45m
    #[arg(long, value_name = "DURATION")]
    pub expires: Option<String>,
    /// A name to tell the token apart in listings
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to print completions for
    #[arg(required_unless_present = "out_dir")]
    pub shell: Option<Shell>,
    /// Write completions for every shell into this directory
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write a page for every command into this directory
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}
