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
        administer it, directly on its data directory (--data-dir; safe while the daemon runs) \
        or over HTTP (--registry URL --token T).",
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
    /// PostgreSQL for the metadata, postgres://USER:PASSWORD@HOST:5432/DB (default, or empty:
    /// SQLite in the data directory)
    #[arg(
        long,
        global = true,
        env = "REGISTRY_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// A TOML configuration file
    #[arg(long, global = true, env = "REGISTRY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print machine-readable JSON instead of text
    #[arg(long, global = true)]
    pub json: bool,
    /// Print nothing but errors (and what was asked for, like a new token)
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    /// Administer a running registry over HTTP instead of a data directory
    #[arg(long, global = true, env = "REGISTRY_URL", value_name = "URL")]
    pub registry: Option<String>,
    /// The token for --registry (default: the one npm saved in ~/.npmrc for that URL)
    #[arg(
        long,
        global = true,
        env = "REGISTRY_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
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
    /// Packages: list them, or show one
    #[command(subcommand)]
    Package(PackageCommand),
    /// Manage a package's dist-tags
    #[command(subcommand, name = "dist-tag")]
    DistTag(DistTagCommand),
    /// Deprecate the versions of a package in a semver range (an empty message undeprecates)
    Deprecate(DeprecateArgs),
    /// Remove a version, or a whole package (its version numbers stay used)
    Unpublish(UnpublishArgs),
    /// Manage a package's maintainers
    #[command(subcommand)]
    Owner(OwnerCommand),
    /// Orgs: create them, list them, and manage their members
    #[command(subcommand)]
    Org(OrgCommand),
    /// Teams of an org (ORG:TEAM): create, destroy, and manage their members
    #[command(subcommand)]
    Team(TeamCommand),
    /// Who may read and write packages: public or restricted, and team grants
    #[command(subcommand)]
    Access(AccessCommand),
    /// Take a package (or a name) off the registry, with a reason shown to clients
    Block(BlockArgs),
    /// Lift a block
    Unblock(UnblockArgs),
    /// Download counts of a package
    Downloads(DownloadsArgs),
    /// The upstream registries: their state, what is cached, the hit ratio
    #[command(subcommand)]
    Upstream(UpstreamCommand),
    /// The cache of proxied packages
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Mirror a package (and its dependencies) from its upstream, so that it installs while the
    /// upstream is down
    Sync(SyncArgs),
    /// Hooks: signed HTTP notifications of changes to a package, a scope or a user's packages
    #[command(subcommand)]
    Hook(HookCommand),
    /// Find tarball blobs no version refers to; --apply deletes them (local only)
    Gc(GcArgs),
    /// Check every tarball and packument; exits 1 on a problem (local only)
    Doctor(DoctorArgs),
    /// Copy the database and tarballs into a new directory, while the registry runs (local only)
    Backup(BackupArgs),
    /// Restore a backup into a new, empty data directory (the registry must be stopped)
    Restore(RestoreArgs),
    /// Copy the registry into PostgreSQL (tarballs into S3 too), then check the copy (local only)
    #[command(long_about = crate::commands::migrate::LONG_ABOUT)]
    Migrate(crate::commands::migrate::MigrateArgs),
    /// Show the configuration
    #[command(subcommand)]
    Config(ConfigCommand),
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
    /// Who may read packages: anyone, or only callers with a valid token or credentials
    #[arg(long, value_parser = ["public", "authenticated"])]
    pub read_access: Option<String>,
    /// Log filter: error, warn, info, debug, trace
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// PEM certificate (chain) to serve HTTPS with; needs --tls-key (or its config key)
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the TLS certificate; needs --tls-cert (or its config key)
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Proxy and cache this registry for every name not published here (one upstream named
    /// `upstream`; `[[upstreams]]` in the config file for more)
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (asks for the password on a terminal)
    Add(UserAddArgs),
    /// List users
    #[command(alias = "ls")]
    List,
    /// Show a user
    Show(UserNameArg),
    /// Set a user's password (asks on a terminal, or --password-stdin)
    Passwd(UserPasswdArgs),
    /// Delete a user and their tokens
    Rm(UserNameArg),
    /// Grant administrator rights, or withdraw them with --revoke
    Admin(UserAdminArgs),
}

#[derive(Debug, Args)]
pub struct UserNameArg {
    /// The user name
    pub name: String,
}

#[derive(Debug, Args)]
pub struct UserPasswdArgs {
    /// The user name
    pub name: String,
    /// Read the password from the first line of standard input
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct UserAdminArgs {
    /// The user name
    pub name: String,
    /// Withdraw the rights instead
    #[arg(long)]
    pub revoke: bool,
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
    /// List tokens (never their secrets): of a user, or of everyone
    #[command(alias = "ls")]
    List(TokenListArgs),
    /// Revoke a token by its key (or the token itself)
    Revoke(TokenRevokeArgs),
}

#[derive(Debug, Args)]
pub struct TokenListArgs {
    /// Only this user's tokens
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
}

#[derive(Debug, Args)]
pub struct TokenRevokeArgs {
    /// The token's key, as `registry token list` shows it
    pub key: String,
}

#[derive(Debug, Subcommand)]
pub enum PackageCommand {
    /// List packages
    #[command(alias = "ls")]
    List,
    /// Versions, tags, maintainers and size of a package
    Info(PackageNameArg),
}

#[derive(Debug, Args)]
pub struct PackageNameArg {
    /// The package name (@scope/name for scoped packages)
    pub package: String,
}

#[derive(Debug, Subcommand)]
pub enum DistTagCommand {
    /// List a package's tags
    Ls(PackageNameArg),
    /// Point a tag at a version: NAME@VERSION TAG
    Add(DistTagAddArgs),
    /// Remove a tag (never latest)
    Rm(DistTagRmArgs),
}

#[derive(Debug, Args)]
pub struct DistTagAddArgs {
    /// NAME@VERSION
    pub spec: String,
    /// The tag
    pub tag: String,
}

#[derive(Debug, Args)]
pub struct DistTagRmArgs {
    /// The package name
    pub package: String,
    /// The tag
    pub tag: String,
}

#[derive(Debug, Args)]
pub struct DeprecateArgs {
    /// NAME or NAME@RANGE (a semver range; NAME alone: every version)
    pub spec: String,
    /// The message npm shows on install; "" undeprecates
    pub message: String,
}

#[derive(Debug, Args)]
pub struct UnpublishArgs {
    /// NAME@VERSION, or NAME for the whole package
    pub spec: String,
    /// Do not ask for confirmation (required when stdin is not a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum OwnerCommand {
    /// List a package's maintainers
    Ls(PackageNameArg),
    /// Add a maintainer: USER PACKAGE
    Add(OwnerChangeArgs),
    /// Remove a maintainer (never the last): USER PACKAGE
    Rm(OwnerChangeArgs),
}

#[derive(Debug, Args)]
pub struct OwnerChangeArgs {
    /// The user
    pub user: String,
    /// The package
    pub package: String,
}

#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// List hooks (remotely: the token's own, every hook for an administrator; locally: all),
    /// optionally only those on one package, @scope or ~user
    Ls(HookLsArgs),
    /// Add a hook on a package, a @scope or a ~user (npm's spelling); --type overrides the guess
    Add(HookAddArgs),
    /// Remove a hook (its undelivered events are dropped)
    Rm(HookIdArgs),
    /// Queue a signed `ping` event to a hook's endpoint
    Test(HookIdArgs),
    /// A hook's recent deliveries: event, status, attempts, response code, duration
    Deliveries(HookDeliveriesArgs),
}

#[derive(Debug, Args)]
pub struct HookLsArgs {
    /// Only the hooks on this name
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct HookAddArgs {
    /// A package name, @scope, or ~user
    pub name: String,
    /// The http(s) URL that receives the events
    pub endpoint: String,
    /// The shared secret the signatures (x-npm-signature) are made with
    pub secret: String,
    /// What NAME is (default: scope for @scope, owner for ~user, else package)
    #[arg(long = "type", value_enum)]
    pub kind: Option<HookTypeArg>,
    /// The hook's owner (local mode, where there is no caller; remotely the token's user)
    #[arg(long)]
    pub user: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HookTypeArg {
    Package,
    Scope,
    Owner,
}

#[derive(Debug, Args)]
pub struct HookIdArgs {
    /// The hook's id (`registry hook ls` shows it)
    pub id: String,
}

#[derive(Debug, Args)]
pub struct HookDeliveriesArgs {
    /// The hook's id
    pub id: String,
    /// How many of the most recent deliveries (at most 100)
    #[arg(long, default_value_t = 20)]
    pub limit: u64,
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an org (administrators only), with its first owner and its `developers` team
    Create(OrgCreateArgs),
    /// Every org with its member count; or, given ORG, its members and their roles
    Ls(OrgLsArgs),
    /// Add a user to an org (and its `developers` team), or change their role
    Set(OrgSetArgs),
    /// Remove a user from an org and all of its teams (never its last owner)
    Rm(OrgRmArgs),
}

#[derive(Debug, Args)]
pub struct OrgCreateArgs {
    /// The org's name (its scope: @ORG/…); not the name of a user
    pub org: String,
    /// The user who owns the org at first
    #[arg(long, value_name = "USER")]
    pub owner: String,
}

#[derive(Debug, Args)]
pub struct OrgLsArgs {
    /// List this org's members instead of every org
    pub org: Option<String>,
}

#[derive(Debug, Args)]
pub struct OrgSetArgs {
    /// The org
    pub org: String,
    /// The user
    pub user: String,
    /// The user's role: developers publish, admins also manage members and teams, owners also
    /// manage owners
    #[arg(value_enum, default_value_t = OrgRoleArg::Developer)]
    pub role: OrgRoleArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OrgRoleArg {
    Developer,
    Admin,
    Owner,
}

#[derive(Debug, Args)]
pub struct OrgRmArgs {
    /// The org
    pub org: String,
    /// The user
    pub user: String,
}

#[derive(Debug, Subcommand)]
pub enum TeamCommand {
    /// Create a team in an org
    Create(TeamCreateArgs),
    /// Delete a team (its members stay in the org; its grants go)
    Destroy(TeamArg),
    /// Add a member of the org to a team
    Add(TeamUserArgs),
    /// Remove a user from a team
    Rm(TeamUserArgs),
    /// The teams of an org (ORG), or the members of a team (ORG:TEAM)
    Ls(TeamLsArgs),
}

#[derive(Debug, Args)]
pub struct TeamCreateArgs {
    /// The team: ORG:TEAM (or @ORG:TEAM)
    pub team: String,
    /// What the team is for
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
}

#[derive(Debug, Args)]
pub struct TeamArg {
    /// The team: ORG:TEAM (or @ORG:TEAM)
    pub team: String,
}

#[derive(Debug, Args)]
pub struct TeamUserArgs {
    /// The team: ORG:TEAM (or @ORG:TEAM)
    pub team: String,
    /// The user
    pub user: String,
}

#[derive(Debug, Args)]
pub struct TeamLsArgs {
    /// ORG for its teams, ORG:TEAM for the team's members
    pub target: String,
}

#[derive(Debug, Subcommand)]
pub enum AccessCommand {
    /// Whether a package is public or restricted
    Get(PackageNameArg),
    /// Make a package public, or restricted (readable only by its maintainers, the teams granted
    /// it and the owners and admins of its org)
    Set(AccessSetArgs),
    /// Grant a team a package, read-only or read-write
    Grant(AccessGrantArgs),
    /// Withdraw a team's grant of a package
    Revoke(AccessRevokeArgs),
    /// The packages of an org, team or user, or the collaborators of a package
    #[command(subcommand)]
    Ls(AccessLsCommand),
}

#[derive(Debug, Args)]
pub struct AccessSetArgs {
    /// The package name
    pub package: String,
    /// public or restricted (`private` is taken for restricted, as npm says it)
    #[arg(value_enum)]
    pub level: AccessLevelArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AccessLevelArg {
    Public,
    #[value(alias = "private")]
    Restricted,
}

#[derive(Debug, Args)]
pub struct AccessGrantArgs {
    /// What the team's members may do with the package: install it, or also publish it
    #[arg(value_enum)]
    pub permissions: PermissionArg,
    /// The team: ORG:TEAM (or @ORG:TEAM)
    pub team: String,
    /// The package name
    pub package: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PermissionArg {
    ReadOnly,
    ReadWrite,
}

#[derive(Debug, Args)]
pub struct AccessRevokeArgs {
    /// The team: ORG:TEAM (or @ORG:TEAM)
    pub team: String,
    /// The package name
    pub package: String,
}

#[derive(Debug, Subcommand)]
pub enum AccessLsCommand {
    /// The packages of an org (ORG), a team (ORG:TEAM) or a user (USER), with read or write
    Packages(AccessLsPackagesArgs),
    /// The users who may read or write a package
    Collaborators(PackageNameArg),
}

#[derive(Debug, Args)]
pub struct AccessLsPackagesArgs {
    /// ORG, ORG:TEAM or USER
    pub owner: String,
}

#[derive(Debug, Args)]
pub struct BlockArgs {
    /// The package name (need not be published yet)
    pub package: String,
    /// Why: shown to every client that asks for the package
    #[arg(long, default_value = "blocked by the registry's administrators")]
    pub reason: String,
}

#[derive(Debug, Subcommand)]
pub enum UpstreamCommand {
    /// Each upstream in the order it is tried: state, failures, cached packages and bytes,
    /// and the hit ratio since the daemon started (state and counters over --registry only)
    #[command(alias = "ls")]
    List,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Drop everything cached of a proxied package; `registry gc` reclaims its tarballs
    Forget(CacheForgetArgs),
}

#[derive(Debug, Args)]
pub struct CacheForgetArgs {
    /// The proxied package
    pub package: String,
}

#[derive(Debug, Args)]
pub struct UnblockArgs {
    /// The package name
    pub package: String,
}

#[derive(Debug, Args)]
pub struct DownloadsArgs {
    /// The package name
    #[arg(required_unless_present = "top", conflicts_with = "top")]
    pub package: Option<String>,
    /// Instead of one package, the N most downloaded packages of the range
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub top: Option<u16>,
    /// last-day, last-week, last-month, or YYYY-MM-DD:YYYY-MM-DD
    #[arg(long, value_name = "PERIOD", default_value = "last-month")]
    pub range: String,
    /// Totals per version instead of per day
    #[arg(long)]
    pub by_version: bool,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The package name (@scope/name for scoped packages)
    pub package: String,
    /// Only this package, not its dependencies
    #[arg(long)]
    pub no_deps: bool,
    /// Only these versions, comma-separated: 1.0.0,1.0.1 (default: every version)
    #[arg(long, value_name = "VERSIONS", value_delimiter = ',')]
    pub versions: Vec<String>,
    /// Wait until the package and its dependencies are synced; exits 1 if any failed (locally,
    /// the daemon serving the data directory runs the sync)
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Delete the orphan blobs (default: only list them)
    #[arg(long)]
    pub apply: bool,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Recompute stale packument fragments (missing tarballs need a backup)
    #[arg(long)]
    pub repair: bool,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// A new (or empty) directory to write the backup into
    pub dest: PathBuf,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A directory written by `registry backup`
    pub src: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// The effective configuration and where each value came from
    Show,
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
