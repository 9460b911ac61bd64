//! One `Config`, layered as a pure function: defaults < TOML file < `REGISTRY_*` environment <
//! command-line flags. Each value remembers where it came from, for `registry config show`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::access::Access;
use crate::accounts::cidr::Cidr;
use crate::error::{Error, Result};
use crate::upstream::config::{
    parse_duration, BinaryConfig, BinaryFile, NamePattern, UpstreamConfig, UpstreamFile,
};

pub const DEFAULT_DATA_DIR: &str = "./data";
/// npm tarballs are rarely above a few MiB; 100 MiB leaves room for the odd large one.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 100 * 1024 * 1024;
/// Download counts reach the database this often: a crash loses at most this many seconds of
/// counts, and a burst of downloads costs one write per interval.
pub const DEFAULT_DOWNLOAD_FLUSH_SECS: u64 = 5;
/// Real package.json files nest a handful of levels; serde_json itself stops at 128.
pub const DEFAULT_MAX_JSON_DEPTH: u64 = 64;
/// npm's headers (a token, a session id, a user agent) take well under 2 KiB; a 16 KiB cookie
/// or proxy header still fits.
pub const DEFAULT_MAX_HEADER_BYTES: u64 = 16 * 1024;
/// npm publishes one version per request; more is only for other clients and is opt-in.
pub const DEFAULT_MAX_VERSIONS_PER_PUBLISH: u64 = 1;
/// Per decoded tarball; its base64 (4/3 larger) still fits the default body limit.
pub const DEFAULT_MAX_ATTACHMENT_BYTES: u64 = 64 * 1024 * 1024;
/// npm's own rule for new package names; the limit may only be lowered.
pub const DEFAULT_MAX_PACKAGE_NAME_LENGTH: u64 = 214;
/// Per client address on the endpoints that check a password: a person or a CI job logs in
/// a few times, a guesser many times a second.
pub const DEFAULT_AUTH_REQUESTS_PER_SECOND: u64 = 10;
pub const DEFAULT_AUTH_BURST: u64 = 20;
/// A client's request head arrives in one packet or a few; ten seconds is a lost client or
/// one holding the connection on purpose.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// npm's keep-alive agent reuses a connection within seconds; a minute covers a slow build.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The connection timeouts' bounds: below a second drops real clients on a slow network.
const TIMEOUT_RANGE: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(86_400));
const MAX_CONNECTIONS_RANGE: (u64, u64) = (1, 10_000_000);
const WORKERS_RANGE: (u64, u64) = (1, 1024);
/// Hooks one user may own: enough for every package of a busy maintainer, few enough that
/// one account cannot make each publish fan out without bound.
pub const DEFAULT_HOOKS_PER_USER: u64 = 100;
/// The first retry of a failed hook delivery comes this soon; each later one twice as late…
pub const DEFAULT_HOOKS_RETRY_BASE_MS: u64 = 2_000;
/// …but never more than a day after the last.
pub const DEFAULT_HOOKS_RETRY_CAP_SECS: u64 = 86_400;

/// The numeric limits: key, lowest and highest accepted value, and unit. Zero would refuse
/// everything; each upper bound is where a value stops making sense: serde_json stops at 128
/// levels, npm at 214-character names, and beyond the others one client could hold a
/// connection's memory or the password hashing threads.
const LIMITS: &[(&str, u64, u64, &str)] = &[
    ("max_json_depth", 8, 128, "levels"),
    ("max_header_bytes", 4 * 1024, 1024 * 1024, "bytes"),
    ("max_versions_per_publish", 1, 100, "versions"),
    // At most max_body_bytes, which `load` checks once every layer is applied.
    ("max_attachment_bytes", 1024, u64::MAX, "bytes"),
    ("max_package_name_length", 1, 214, "characters"),
    ("auth_requests_per_second", 1, 10_000, "requests per second"),
    ("auth_burst", 1, 100_000, "requests"),
    ("hooks_per_user", 1, 10_000, "hooks"),
    ("hooks_retry_base_ms", 10, 3_600_000, "milliseconds"),
    ("hooks_retry_cap_secs", 1, 86_400, "seconds"),
];

/// Whether `npm adduser` may create accounts. Closed by default: admins add users from the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    Closed,
    Open,
}

impl std::str::FromStr for Registration {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "closed" => Ok(Registration::Closed),
            "open" => Ok(Registration::Open),
            other => Err(Error::bad_request(format!(
                "registration must be \"closed\" or \"open\", not {other:?}"
            ))),
        }
    }
}

/// Who may read packages at all: anyone (`public`, the default) or only callers with a valid
/// token or credentials (`authenticated`, Verdaccio's `$authenticated`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAccess {
    Public,
    Authenticated,
}

impl std::str::FromStr for ReadAccess {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "public" => Ok(ReadAccess::Public),
            "authenticated" => Ok(ReadAccess::Authenticated),
            other => Err(Error::bad_request(format!(
                "read_access must be \"public\" or \"authenticated\", not {other:?}"
            ))),
        }
    }
}

impl std::fmt::Display for ReadAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReadAccess::Public => "public",
            ReadAccess::Authenticated => "authenticated",
        })
    }
}

fn parse_default_access(value: &str) -> Result<Access> {
    match value {
        "public" => Ok(Access::Public),
        "restricted" => Ok(Access::Restricted),
        other => Err(Error::bad_request(format!(
            "default_access must be \"public\" or \"restricted\", not {other:?}"
        ))),
    }
}

/// How the log is written: `text` (one readable line per request or event, the default) or
/// `json` (one JSON object per line, for log shippers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(Error::bad_request(format!(
                "log_format must be \"text\" or \"json\", not {other:?}"
            ))),
        }
    }
}

impl std::fmt::Display for LogFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

impl std::fmt::Display for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Registration::Closed => "closed",
            Registration::Open => "open",
        })
    }
}

/// AWS's default, which most self-hosted stores accept whatever they are configured with.
pub const DEFAULT_S3_REGION: &str = "us-east-1";

/// A credential that `Debug` (and so `registry config show` and logs) never prints.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The S3 blob store's checked settings (see [`Config::s3`]).
#[derive(Debug, Clone)]
pub struct S3Config {
    pub bucket: String,
    /// Without slashes at its ends; may be empty.
    pub prefix: String,
    pub endpoint: Option<String>,
    pub region: String,
    pub path_style: bool,
    pub access_key_id: String,
    pub secret_access_key: Secret,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `postgres://user:password@host:5432/db`: metadata in PostgreSQL; `None` (or empty):
    /// SQLite in the data directory. Checked by [`Config::postgres_url`]; may hold a password,
    /// so show it only through [`Config::database_url_redacted`].
    pub database_url: Option<String>,
    /// The URL clients reach the registry at (used for tarball URLs); `None`: the request's Host.
    pub public_url: Option<String>,
    pub registration: Registration,
    pub read_access: ReadAccess,
    /// A new package's access when its publish does not say.
    pub default_access: Access,
    pub max_body_bytes: u64,
    pub log_level: String,
    pub log_format: LogFormat,
    /// A second address that serves only `GET /-/metrics`, without authentication (for a
    /// Prometheus scraper on a private network); `None`: metrics only on `listen`, for admins.
    pub metrics_listen: Option<SocketAddr>,
    /// Proxies whose `X-Forwarded-For` names the real client (for token CIDR allow-lists).
    /// Empty: the header is never believed, the TCP peer is the client.
    pub trusted_proxies: Vec<Cidr>,
    /// Whether tarball downloads are counted (off only to measure what counting costs).
    pub count_downloads: bool,
    /// Seconds between two writes of the download counts (at least 1).
    pub download_flush_secs: u64,
    /// Deepest nesting of arrays and objects in a JSON request body (400 beyond).
    pub max_json_depth: u64,
    /// Request line plus headers, in bytes (431 beyond).
    pub max_header_bytes: u64,
    /// New versions one publish document may carry, stored all or nothing (400 beyond).
    pub max_versions_per_publish: u64,
    /// Size of each decoded tarball in a publish (413 beyond); at most `max_body_bytes`.
    pub max_attachment_bytes: u64,
    /// Longest name of a new package (400 beyond); at most npm's 214.
    pub max_package_name_length: u64,
    /// Token bucket per client address on the password endpoints (429 beyond).
    pub auth_requests_per_second: u64,
    pub auth_burst: u64,
    /// How long a client may take to send a request's line and headers; then it is closed.
    pub header_timeout: Duration,
    /// How long a kept-alive connection may sit idle (no request, nothing read or written).
    pub idle_timeout: Duration,
    /// Connections served at once; past it new ones are answered 503 and closed. `None`:
    /// derived from the file-descriptor limit at start-up.
    pub max_connections: Option<u64>,
    /// Threads that serve connections. `None`: one per core but one (see [`Config::workers`]).
    pub workers: Option<u64>,
    /// Whether hook endpoints may be loopback, private or link-local addresses (SSRF guard).
    pub hooks_allow_private: bool,
    /// Hooks one user may own (400 beyond).
    pub hooks_per_user: u64,
    /// Backoff of failed hook deliveries: the first wait, doubled per failure, up to the cap.
    pub hooks_retry_base_ms: u64,
    pub hooks_retry_cap_secs: u64,
    /// PEM certificate chain and private key for serving HTTPS without a reverse proxy; both
    /// or neither (`tls_files` checks), `None`: plain HTTP.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Names never looked up upstream: local only, whatever the upstreams serve.
    pub private: Vec<NamePattern>,
    /// Registries whose packages are proxied and cached, tried in order; none by default.
    pub upstreams: Vec<UpstreamConfig>,
    /// Binary mirrors served under `/-/binary/`.
    pub binaries: Vec<BinaryConfig>,
    /// `s3://bucket/prefix`: tarballs in an S3-compatible bucket; `None`: files in the data
    /// directory. Checked with the other `s3_*` keys by [`Config::s3`].
    pub blobs_url: Option<String>,
    /// The S3 API's URL for a store that is not AWS (`http://127.0.0.1:3900`); `None`: AWS.
    pub s3_endpoint: Option<String>,
    pub s3_region: String,
    /// Bucket in the path (`endpoint/bucket/key`, what most self-hosted stores need) rather
    /// than in the host name (`bucket.endpoint/key`, AWS's default).
    pub s3_path_style: bool,
    /// From the standard `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    pub s3_access_key_id: Option<String>,
    pub s3_secret_access_key: Option<Secret>,
    /// Where each value came from: "default", the file's path, "env REGISTRY_X" or "flag".
    pub sources: BTreeMap<&'static str, String>,
}

/// The keys of the TOML file; every one optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    public_url: Option<String>,
    registration: Option<Registration>,
    read_access: Option<String>,
    default_access: Option<String>,
    max_body_bytes: Option<u64>,
    log_level: Option<String>,
    log_format: Option<String>,
    metrics_listen: Option<String>,
    trusted_proxies: Option<Vec<String>>,
    count_downloads: Option<bool>,
    download_flush_secs: Option<u64>,
    max_json_depth: Option<u64>,
    max_header_bytes: Option<u64>,
    max_versions_per_publish: Option<u64>,
    max_attachment_bytes: Option<u64>,
    max_package_name_length: Option<u64>,
    auth_requests_per_second: Option<u64>,
    auth_burst: Option<u64>,
    header_timeout: Option<String>,
    idle_timeout: Option<String>,
    max_connections: Option<u64>,
    workers: Option<u64>,
    hooks_allow_private: Option<bool>,
    hooks_per_user: Option<u64>,
    hooks_retry_base_ms: Option<u64>,
    hooks_retry_cap_secs: Option<u64>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    private: Option<Vec<String>>,
    upstreams: Option<Vec<UpstreamFile>>,
    binaries: Option<Vec<BinaryFile>>,
    blobs_url: Option<String>,
    s3_endpoint: Option<String>,
    s3_region: Option<String>,
    s3_path_style: Option<bool>,
}

/// Values given on the command line; `None` where the flag was not passed.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// `--database-url URL`; empty: SQLite, whatever the file or the environment said.
    pub database_url: Option<String>,
    pub public_url: Option<String>,
    pub registration: Option<String>,
    pub read_access: Option<String>,
    pub log_level: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// `--upstream URL`: one upstream for every name, with the defaults.
    pub upstream: Option<String>,
}

const ENV_KEYS: &[&str] = &[
    "REGISTRY_LISTEN",
    "REGISTRY_DATA_DIR",
    "REGISTRY_DATABASE_URL",
    "REGISTRY_PUBLIC_URL",
    "REGISTRY_REGISTRATION",
    "REGISTRY_READ_ACCESS",
    "REGISTRY_DEFAULT_ACCESS",
    "REGISTRY_MAX_BODY_BYTES",
    "REGISTRY_LOG_LEVEL",
    "REGISTRY_LOG_FORMAT",
    "REGISTRY_METRICS_LISTEN",
    "REGISTRY_TRUSTED_PROXIES",
    "REGISTRY_COUNT_DOWNLOADS",
    "REGISTRY_DOWNLOAD_FLUSH_SECS",
    "REGISTRY_MAX_JSON_DEPTH",
    "REGISTRY_MAX_HEADER_BYTES",
    "REGISTRY_MAX_VERSIONS_PER_PUBLISH",
    "REGISTRY_MAX_ATTACHMENT_BYTES",
    "REGISTRY_MAX_PACKAGE_NAME_LENGTH",
    "REGISTRY_AUTH_REQUESTS_PER_SECOND",
    "REGISTRY_AUTH_BURST",
    "REGISTRY_HEADER_TIMEOUT",
    "REGISTRY_IDLE_TIMEOUT",
    "REGISTRY_MAX_CONNECTIONS",
    "REGISTRY_WORKERS",
    "REGISTRY_HOOKS_ALLOW_PRIVATE",
    "REGISTRY_HOOKS_PER_USER",
    "REGISTRY_HOOKS_RETRY_BASE_MS",
    "REGISTRY_HOOKS_RETRY_CAP_SECS",
    "REGISTRY_TLS_CERT",
    "REGISTRY_TLS_KEY",
    "REGISTRY_PRIVATE",
    "REGISTRY_UPSTREAM",
    "REGISTRY_BLOBS_URL",
    "REGISTRY_S3_ENDPOINT",
    "REGISTRY_S3_REGION",
    "REGISTRY_S3_PATH_STYLE",
    "REGISTRY_CONFIG",
    // Read by the CLI's remote mode, not by the server configuration.
    "REGISTRY_URL",
    "REGISTRY_TOKEN",
];

impl Default for Config {
    fn default() -> Self {
        let mut sources = BTreeMap::new();
        for key in [
            "listen",
            "data_dir",
            "database_url",
            "public_url",
            "registration",
            "read_access",
            "default_access",
            "max_body_bytes",
            "log_level",
            "log_format",
            "metrics_listen",
            "trusted_proxies",
            "count_downloads",
            "download_flush_secs",
            "max_json_depth",
            "max_header_bytes",
            "max_versions_per_publish",
            "max_attachment_bytes",
            "max_package_name_length",
            "auth_requests_per_second",
            "auth_burst",
            "header_timeout",
            "idle_timeout",
            "max_connections",
            "workers",
            "hooks_allow_private",
            "hooks_per_user",
            "hooks_retry_base_ms",
            "hooks_retry_cap_secs",
            "tls_cert",
            "tls_key",
            "private",
            "upstreams",
            "binaries",
            "blobs_url",
            "s3_endpoint",
            "s3_region",
            "s3_path_style",
            "s3_credentials",
        ] {
            sources.insert(key, "default".to_string());
        }
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 4873)),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            database_url: None,
            public_url: None,
            registration: Registration::Closed,
            read_access: ReadAccess::Public,
            default_access: Access::Public,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            log_level: "info".to_string(),
            log_format: LogFormat::Text,
            metrics_listen: None,
            trusted_proxies: Vec::new(),
            count_downloads: true,
            download_flush_secs: DEFAULT_DOWNLOAD_FLUSH_SECS,
            max_json_depth: DEFAULT_MAX_JSON_DEPTH,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_versions_per_publish: DEFAULT_MAX_VERSIONS_PER_PUBLISH,
            max_attachment_bytes: DEFAULT_MAX_ATTACHMENT_BYTES,
            max_package_name_length: DEFAULT_MAX_PACKAGE_NAME_LENGTH,
            auth_requests_per_second: DEFAULT_AUTH_REQUESTS_PER_SECOND,
            auth_burst: DEFAULT_AUTH_BURST,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: None,
            workers: None,
            hooks_allow_private: false,
            hooks_per_user: DEFAULT_HOOKS_PER_USER,
            hooks_retry_base_ms: DEFAULT_HOOKS_RETRY_BASE_MS,
            hooks_retry_cap_secs: DEFAULT_HOOKS_RETRY_CAP_SECS,
            tls_cert: None,
            tls_key: None,
            private: Vec::new(),
            upstreams: Vec::new(),
            binaries: Vec::new(),
            blobs_url: None,
            s3_endpoint: None,
            s3_region: DEFAULT_S3_REGION.to_string(),
            s3_path_style: false,
            s3_access_key_id: None,
            s3_secret_access_key: None,
            sources,
        }
    }
}

/// A `REGISTRY_*` switch: `true`/`1` or `false`/`0`.
fn env_flag(key: &str, value: &str) -> Result<bool> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(Error::bad_request(format!(
            "{key} must be true or false, not {value:?}"
        ))),
    }
}

impl Config {
    /// Builds the effective configuration. `file` is read if given (it must exist then);
    /// `env` is the process environment (passed in so that tests stay pure).
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &Overrides,
    ) -> Result<(Config, Vec<String>)> {
        let mut config = Config::default();
        let mut warnings = Vec::new();
        let env: Vec<(String, String)> = env.into_iter().collect();
        let lookup = |var: &str| {
            env.iter()
                .find(|(key, _)| key == var)
                .map(|(_, value)| value.clone())
        };
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::bad_request(format!("cannot read config file {}: {e}", path.display()))
            })?;
            let parsed: FileConfig = toml::from_str(&text).map_err(|e| {
                Error::bad_request(format!("invalid config file {}: {e}", path.display()))
            })?;
            config.apply_file(parsed, &path.display().to_string(), &lookup)?;
        }
        for (key, value) in &env {
            let (key, value) = (key.clone(), value.clone());
            if !key.starts_with("REGISTRY_") {
                continue;
            }
            if !ENV_KEYS.contains(&key.as_str()) {
                warnings.push(format!("unknown environment variable {key} is ignored"));
                continue;
            }
            let source = format!("env {key}");
            match key.as_str() {
                "REGISTRY_LISTEN" => config.set_listen(&value, source)?,
                "REGISTRY_DATA_DIR" => config.set("data_dir", source, |c| {
                    c.data_dir = PathBuf::from(&value);
                    Ok(())
                })?,
                // Empty turns off what the file configured: SQLite again.
                "REGISTRY_DATABASE_URL" => config.set_database_url(&value, source)?,
                "REGISTRY_PUBLIC_URL" => config.set_public_url(&value, source)?,
                "REGISTRY_REGISTRATION" => config.set("registration", source, |c| {
                    c.registration = value.parse()?;
                    Ok(())
                })?,
                "REGISTRY_READ_ACCESS" => config.set("read_access", source, |c| {
                    c.read_access = value.parse()?;
                    Ok(())
                })?,
                "REGISTRY_DEFAULT_ACCESS" => config.set("default_access", source, |c| {
                    c.default_access = parse_default_access(&value)?;
                    Ok(())
                })?,
                "REGISTRY_MAX_BODY_BYTES" => config.set("max_body_bytes", source, |c| {
                    c.max_body_bytes = value.parse().map_err(|_| {
                        Error::bad_request(format!("{key} must be a number of bytes"))
                    })?;
                    Ok(())
                })?,
                "REGISTRY_LOG_LEVEL" => config.set("log_level", source, |c| {
                    c.log_level = value.clone();
                    Ok(())
                })?,
                "REGISTRY_LOG_FORMAT" => config.set("log_format", source, |c| {
                    c.log_format = value.parse()?;
                    Ok(())
                })?,
                "REGISTRY_METRICS_LISTEN" => config.set_metrics_listen(&value, source)?,
                "REGISTRY_TRUSTED_PROXIES" => {
                    let list: Vec<&str> = value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .collect();
                    config.set_trusted_proxies(&list, source)?;
                }
                "REGISTRY_COUNT_DOWNLOADS" => {
                    let on = env_flag(&key, &value)?;
                    config.set("count_downloads", source, |c| {
                        c.count_downloads = on;
                        Ok(())
                    })?;
                }
                "REGISTRY_HEADER_TIMEOUT" => {
                    config.set_timeout("header_timeout", &value, source)?
                }
                "REGISTRY_IDLE_TIMEOUT" => config.set_timeout("idle_timeout", &value, source)?,
                "REGISTRY_MAX_CONNECTIONS" => {
                    let cap = value.parse().map_err(|_| {
                        Error::bad_request(format!("{key} must be a number of connections"))
                    })?;
                    config.set_max_connections(cap, source)?;
                }
                "REGISTRY_WORKERS" => {
                    let count = value.parse().map_err(|_| {
                        Error::bad_request(format!("{key} must be a number of threads"))
                    })?;
                    config.set_workers(count, source)?;
                }
                "REGISTRY_HOOKS_ALLOW_PRIVATE" => {
                    let on = env_flag(&key, &value)?;
                    config.set("hooks_allow_private", source, |c| {
                        c.hooks_allow_private = on;
                        Ok(())
                    })?;
                }
                "REGISTRY_DOWNLOAD_FLUSH_SECS" => {
                    let secs = value.parse().map_err(|_| {
                        Error::bad_request(format!("{key} must be a number of seconds"))
                    })?;
                    config.set_download_flush_secs(secs, source)?;
                }
                // An empty value turns off TLS that the file configured.
                "REGISTRY_TLS_CERT" => config.set("tls_cert", source, |c| {
                    c.tls_cert = Some(PathBuf::from(&value)).filter(|p| !p.as_os_str().is_empty());
                    Ok(())
                })?,
                "REGISTRY_TLS_KEY" => config.set("tls_key", source, |c| {
                    c.tls_key = Some(PathBuf::from(&value)).filter(|p| !p.as_os_str().is_empty());
                    Ok(())
                })?,
                "REGISTRY_PRIVATE" => {
                    let list: Vec<&str> = value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .collect();
                    config.set_private(&list, source)?;
                }
                "REGISTRY_UPSTREAM" => config.set_upstream_shortcut(&value, source)?,
                // Empty turns off what the file configured, as for the TLS files.
                "REGISTRY_BLOBS_URL" => config.set("blobs_url", source, |c| {
                    c.blobs_url = Some(value.clone()).filter(|v| !v.is_empty());
                    Ok(())
                })?,
                "REGISTRY_S3_ENDPOINT" => config.set("s3_endpoint", source, |c| {
                    c.s3_endpoint = Some(value.clone()).filter(|v| !v.is_empty());
                    Ok(())
                })?,
                "REGISTRY_S3_REGION" => config.set("s3_region", source, |c| {
                    c.s3_region = value.clone();
                    Ok(())
                })?,
                "REGISTRY_S3_PATH_STYLE" => {
                    let on = env_flag(&key, &value)?;
                    config.set("s3_path_style", source, |c| {
                        c.s3_path_style = on;
                        Ok(())
                    })?;
                }
                other => {
                    let limit = other
                        .strip_prefix("REGISTRY_")
                        .map(str::to_ascii_lowercase)
                        .and_then(|key| LIMITS.iter().find(|(name, ..)| *name == key));
                    if let Some((name, _, _, unit)) = limit {
                        let number = value.parse().map_err(|_| {
                            Error::bad_request(format!("{key} must be a number of {unit}"))
                        })?;
                        config.set_limit(name, number, source)?;
                    }
                }
            }
        }
        let flag = || "flag".to_string();
        if let Some(listen) = &flags.listen {
            config.set_listen(listen, flag())?;
        }
        if let Some(dir) = &flags.data_dir {
            config.set("data_dir", flag(), |c| {
                c.data_dir = dir.clone();
                Ok(())
            })?;
        }
        if let Some(url) = &flags.database_url {
            config.set_database_url(url, flag())?;
        }
        if let Some(url) = &flags.public_url {
            config.set_public_url(url, flag())?;
        }
        if let Some(registration) = &flags.registration {
            config.set("registration", flag(), |c| {
                c.registration = registration.parse()?;
                Ok(())
            })?;
        }
        if let Some(read_access) = &flags.read_access {
            config.set("read_access", flag(), |c| {
                c.read_access = read_access.parse()?;
                Ok(())
            })?;
        }
        if let Some(level) = &flags.log_level {
            config.set("log_level", flag(), |c| {
                c.log_level = level.clone();
                Ok(())
            })?;
        }
        if let Some(cert) = &flags.tls_cert {
            config.set("tls_cert", flag(), |c| {
                c.tls_cert = Some(cert.clone());
                Ok(())
            })?;
        }
        if let Some(key) = &flags.tls_key {
            config.set("tls_key", flag(), |c| {
                c.tls_key = Some(key.clone());
                Ok(())
            })?;
        }
        if let Some(url) = &flags.upstream {
            config.set_upstream_shortcut(url, flag())?;
        }
        config.set_s3_credentials(&lookup);
        // The halves may come from different layers; only the result must be whole.
        config.tls_files()?;
        config.s3()?;
        config.postgres_url()?;
        config.fit_attachment_to_body()?;
        if config.metrics_listen == Some(config.listen) {
            return Err(Error::bad_request(format!(
                "metrics_listen ({}) is the listen address {}: give it its own port",
                config.sources["metrics_listen"], config.listen
            )));
        }
        Ok((config, warnings))
    }

    fn apply_file(
        &mut self,
        file: FileConfig,
        source: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<()> {
        let src = || source.to_string();
        if let Some(listen) = file.listen {
            self.set_listen(&listen, src())?;
        }
        if let Some(dir) = file.data_dir {
            self.set("data_dir", src(), |c| {
                c.data_dir = dir;
                Ok(())
            })?;
        }
        if let Some(url) = file.database_url {
            self.set_database_url(&url, src())?;
        }
        if let Some(url) = file.public_url {
            self.set_public_url(&url, src())?;
        }
        if let Some(registration) = file.registration {
            self.set("registration", src(), |c| {
                c.registration = registration;
                Ok(())
            })?;
        }
        if let Some(read_access) = file.read_access {
            self.set("read_access", src(), |c| {
                c.read_access = read_access.parse()?;
                Ok(())
            })?;
        }
        if let Some(access) = file.default_access {
            self.set("default_access", src(), |c| {
                c.default_access = parse_default_access(&access)?;
                Ok(())
            })?;
        }
        if let Some(bytes) = file.max_body_bytes {
            self.set("max_body_bytes", src(), |c| {
                c.max_body_bytes = bytes;
                Ok(())
            })?;
        }
        if let Some(level) = file.log_level {
            self.set("log_level", src(), |c| {
                c.log_level = level;
                Ok(())
            })?;
        }
        if let Some(format) = file.log_format {
            self.set("log_format", src(), |c| {
                c.log_format = format.parse()?;
                Ok(())
            })?;
        }
        if let Some(listen) = file.metrics_listen {
            self.set_metrics_listen(&listen, src())?;
        }
        if let Some(proxies) = file.trusted_proxies {
            let list: Vec<&str> = proxies.iter().map(String::as_str).collect();
            self.set_trusted_proxies(&list, src())?;
        }
        if let Some(on) = file.count_downloads {
            self.set("count_downloads", src(), |c| {
                c.count_downloads = on;
                Ok(())
            })?;
        }
        if let Some(on) = file.hooks_allow_private {
            self.set("hooks_allow_private", src(), |c| {
                c.hooks_allow_private = on;
                Ok(())
            })?;
        }
        if let Some(secs) = file.download_flush_secs {
            self.set_download_flush_secs(secs, src())?;
        }
        if let Some(text) = &file.header_timeout {
            self.set_timeout("header_timeout", text, src())?;
        }
        if let Some(text) = &file.idle_timeout {
            self.set_timeout("idle_timeout", text, src())?;
        }
        if let Some(cap) = file.max_connections {
            self.set_max_connections(cap, src())?;
        }
        if let Some(count) = file.workers {
            self.set_workers(count, src())?;
        }
        for (key, value) in [
            ("max_json_depth", file.max_json_depth),
            ("max_header_bytes", file.max_header_bytes),
            ("max_versions_per_publish", file.max_versions_per_publish),
            ("max_attachment_bytes", file.max_attachment_bytes),
            ("max_package_name_length", file.max_package_name_length),
            ("auth_requests_per_second", file.auth_requests_per_second),
            ("auth_burst", file.auth_burst),
            ("hooks_per_user", file.hooks_per_user),
            ("hooks_retry_base_ms", file.hooks_retry_base_ms),
            ("hooks_retry_cap_secs", file.hooks_retry_cap_secs),
        ] {
            if let Some(value) = value {
                self.set_limit(key, value, src())?;
            }
        }
        if let Some(cert) = file.tls_cert {
            self.set("tls_cert", src(), |c| {
                c.tls_cert = Some(cert);
                Ok(())
            })?;
        }
        if let Some(key) = file.tls_key {
            self.set("tls_key", src(), |c| {
                c.tls_key = Some(key);
                Ok(())
            })?;
        }
        if let Some(private) = file.private {
            let list: Vec<&str> = private.iter().map(String::as_str).collect();
            self.set_private(&list, src())?;
        }
        if let Some(upstreams) = file.upstreams {
            let parsed = upstreams
                .into_iter()
                .map(|u| UpstreamConfig::from_file(u, env))
                .collect::<Result<Vec<_>>>()
                .map_err(|e| Error::bad_request(format!("{source}: {e}")))?;
            self.set_upstreams(parsed, src())?;
        }
        if let Some(url) = file.blobs_url {
            self.set("blobs_url", src(), |c| {
                c.blobs_url = Some(url);
                Ok(())
            })?;
        }
        if let Some(endpoint) = file.s3_endpoint {
            self.set("s3_endpoint", src(), |c| {
                c.s3_endpoint = Some(endpoint);
                Ok(())
            })?;
        }
        if let Some(region) = file.s3_region {
            self.set("s3_region", src(), |c| {
                c.s3_region = region;
                Ok(())
            })?;
        }
        if let Some(on) = file.s3_path_style {
            self.set("s3_path_style", src(), |c| {
                c.s3_path_style = on;
                Ok(())
            })?;
        }
        if let Some(binaries) = file.binaries {
            let parsed = binaries
                .into_iter()
                .map(BinaryConfig::from_file)
                .collect::<Result<Vec<_>>>()
                .map_err(|e| Error::bad_request(format!("{source}: {e}")))?;
            let mut names: Vec<&str> = parsed.iter().map(|b| b.name.as_str()).collect();
            names.sort_unstable();
            if let Some(twice) = names.windows(2).find(|w| w[0] == w[1]) {
                return Err(Error::bad_request(format!(
                    "{source}: two binaries are named {:?}",
                    twice[0]
                )));
            }
            self.set("binaries", src(), |c| {
                c.binaries = parsed;
                Ok(())
            })?;
        }
        Ok(())
    }

    fn set_private(&mut self, patterns: &[&str], source: String) -> Result<()> {
        let parsed = patterns
            .iter()
            .map(|p| NamePattern::parse(p))
            .collect::<Result<Vec<_>>>()
            .map_err(|e| Error::bad_request(format!("private ({source}): {e}")))?;
        self.set("private", source, |c| {
            c.private = parsed;
            Ok(())
        })
    }

    /// `--upstream URL` (or `REGISTRY_UPSTREAM`) replaces the configured upstreams with one.
    fn set_upstream_shortcut(&mut self, url: &str, source: String) -> Result<()> {
        if url.is_empty() {
            return self.set_upstreams(Vec::new(), source);
        }
        let upstream = UpstreamConfig::shortcut(url)
            .map_err(|e| Error::bad_request(format!("upstream ({source}): {e}")))?;
        self.set_upstreams(vec![upstream], source)
    }

    fn set_upstreams(&mut self, upstreams: Vec<UpstreamConfig>, source: String) -> Result<()> {
        let mut names: Vec<&str> = upstreams.iter().map(|u| u.name.as_str()).collect();
        names.sort_unstable();
        if let Some(twice) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::bad_request(format!(
                "upstreams ({source}): two upstreams are named {:?}",
                twice[0]
            )));
        }
        self.set("upstreams", source, |c| {
            c.upstreams = upstreams;
            Ok(())
        })
    }

    /// `header_timeout` or `idle_timeout`, as a duration like `10s` or `2m`.
    fn set_timeout(&mut self, key: &'static str, text: &str, source: String) -> Result<()> {
        let (low, high) = TIMEOUT_RANGE;
        let timeout = parse_duration(text)
            .ok()
            .filter(|d| (low..=high).contains(d))
            .ok_or_else(|| {
                Error::bad_request(format!(
                    "{key} ({source}) must be a duration from 1s to 1d, like 10s or 2m, \
                     not {text:?}"
                ))
            })?;
        self.set(key, source, |c| {
            match key {
                "header_timeout" => c.header_timeout = timeout,
                _ => c.idle_timeout = timeout,
            }
            Ok(())
        })
    }

    fn set_max_connections(&mut self, cap: u64, source: String) -> Result<()> {
        let cap = Self::in_range("max_connections", MAX_CONNECTIONS_RANGE, cap, &source)?;
        self.set("max_connections", source, |c| {
            c.max_connections = Some(cap);
            Ok(())
        })
    }

    fn set_workers(&mut self, count: u64, source: String) -> Result<()> {
        let count = Self::in_range("workers", WORKERS_RANGE, count, &source)?;
        self.set("workers", source, |c| {
            c.workers = Some(count);
            Ok(())
        })
    }

    /// `value` if within `low..=high`, else a configuration error naming `key` and `source`.
    fn in_range(key: &str, (low, high): (u64, u64), value: u64, source: &str) -> Result<u64> {
        if (low..=high).contains(&value) {
            Ok(value)
        } else {
            Err(Error::bad_request(format!(
                "{key} ({source}) must be between {low} and {high}, not {value}"
            )))
        }
    }

    /// The threads that serve connections: as configured, else one per core but one, which is
    /// left to what a worker would otherwise be preempted by — the kernel's network work, the
    /// database writer, blocking reads. Measured on 2 cores under load, a second worker cost
    /// a fifth of the throughput and multiplied p99 latency by 4–8 (README, Performance).
    pub fn worker_threads(&self) -> usize {
        match self.workers {
            Some(count) => usize::try_from(count).unwrap_or(usize::MAX),
            None => std::thread::available_parallelism()
                .map_or(1, |cores| cores.get().saturating_sub(1).max(1)),
        }
    }

    fn set_download_flush_secs(&mut self, secs: u64, source: String) -> Result<()> {
        // Zero would make the flush task spin; an hour would make a crash lose an hour.
        if !(1..=3600).contains(&secs) {
            return Err(Error::bad_request(format!(
                "download_flush_secs ({source}) must be between 1 and 3600 seconds, not {secs}"
            )));
        }
        self.set("download_flush_secs", source, |c| {
            c.download_flush_secs = secs;
            Ok(())
        })
    }

    /// Sets one of the [`LIMITS`] after checking its range.
    fn set_limit(&mut self, key: &'static str, value: u64, source: String) -> Result<()> {
        let Some((_, low, high, unit)) = LIMITS.iter().find(|(name, ..)| *name == key) else {
            return Err(Error::bad_request(format!("{key} is not a limit")));
        };
        if !(*low..=*high).contains(&value) {
            let range = if *high == u64::MAX {
                format!("at least {low}")
            } else {
                format!("between {low} and {high}")
            };
            return Err(Error::bad_request(format!(
                "{key} ({source}) must be {range} {unit}, not {value}"
            )));
        }
        self.set(key, source, |c| {
            let field = match key {
                "max_json_depth" => &mut c.max_json_depth,
                "max_header_bytes" => &mut c.max_header_bytes,
                "max_versions_per_publish" => &mut c.max_versions_per_publish,
                "max_attachment_bytes" => &mut c.max_attachment_bytes,
                "max_package_name_length" => &mut c.max_package_name_length,
                "auth_requests_per_second" => &mut c.auth_requests_per_second,
                "auth_burst" => &mut c.auth_burst,
                "hooks_per_user" => &mut c.hooks_per_user,
                "hooks_retry_base_ms" => &mut c.hooks_retry_base_ms,
                "hooks_retry_cap_secs" => &mut c.hooks_retry_cap_secs,
                _ => return Err(Error::bad_request(format!("{key} is not a limit"))),
            };
            *field = value;
            Ok(())
        })
    }

    /// A tarball can never be larger than the body that carries it: a lowered
    /// `max_body_bytes` lowers the default attachment limit with it, but an attachment limit
    /// set above the body limit is a mistake worth saying.
    fn fit_attachment_to_body(&mut self) -> Result<()> {
        if self.max_attachment_bytes <= self.max_body_bytes {
            return Ok(());
        }
        match self.sources.get("max_attachment_bytes").map(String::as_str) {
            None | Some("default") => {
                self.max_attachment_bytes = self.max_body_bytes;
                Ok(())
            }
            Some(source) => Err(Error::bad_request(format!(
                "max_attachment_bytes ({source}) is {}, more than max_body_bytes ({}): a \
                 tarball travels inside the request body",
                self.max_attachment_bytes, self.max_body_bytes
            ))),
        }
    }

    fn set_trusted_proxies(&mut self, networks: &[&str], source: String) -> Result<()> {
        let parsed = networks
            .iter()
            .map(|network| {
                Cidr::parse(network).map_err(|_| {
                    Error::bad_request(format!(
                        "trusted_proxies ({source}): {network:?} is not a network like \
                         127.0.0.1/32"
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.set("trusted_proxies", source, |c| {
            c.trusted_proxies = parsed;
            Ok(())
        })
    }

    fn set(
        &mut self,
        key: &'static str,
        source: String,
        apply: impl FnOnce(&mut Config) -> Result<()>,
    ) -> Result<()> {
        apply(self)?;
        self.sources.insert(key, source);
        Ok(())
    }

    fn set_listen(&mut self, value: &str, source: String) -> Result<()> {
        let addr = value.parse().map_err(|_| {
            Error::bad_request(format!(
                "listen address {value:?} ({source}) is not of the form 127.0.0.1:4873"
            ))
        })?;
        self.set("listen", source, |c| {
            c.listen = addr;
            Ok(())
        })
    }

    /// An address, or empty for none (so that the environment can switch off the file's).
    fn set_metrics_listen(&mut self, value: &str, source: String) -> Result<()> {
        let addr = if value.is_empty() {
            None
        } else {
            Some(value.parse().map_err(|_| {
                Error::bad_request(format!(
                    "metrics_listen address {value:?} ({source}) is not of the form \
                     127.0.0.1:9187"
                ))
            })?)
        };
        self.set("metrics_listen", source, |c| {
            c.metrics_listen = addr;
            Ok(())
        })
    }

    fn set_public_url(&mut self, value: &str, source: String) -> Result<()> {
        let trimmed = value.trim_end_matches('/');
        let valid = (trimmed.starts_with("http://") || trimmed.starts_with("https://"))
            && !trimmed.contains(|c: char| c.is_whitespace() || c == '"' || c == '\\');
        if !valid {
            return Err(Error::bad_request(format!(
                "public_url {value:?} ({source}) must be an http:// or https:// URL"
            )));
        }
        self.set("public_url", source, |c| {
            c.public_url = Some(trimmed.to_string());
            Ok(())
        })
    }

    /// The certificate and key files to serve HTTPS with, or `None` for plain HTTP. One
    /// without the other is refused: serving plain HTTP to a user who asked for TLS would
    /// send their passwords in the clear.
    pub fn tls_files(&self) -> Result<Option<(&Path, &Path)>> {
        let source = |key: &str| self.sources.get(key).map_or("default", String::as_str);
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some((cert, key))),
            (None, None) => Ok(None),
            (Some(_), None) => Err(Error::bad_request(format!(
                "tls_cert is set ({}) but tls_key is not: TLS needs both the certificate and \
                 its private key",
                source("tls_cert")
            ))),
            (None, Some(_)) => Err(Error::bad_request(format!(
                "tls_key is set ({}) but tls_cert is not: TLS needs both the certificate and \
                 its private key",
                source("tls_key")
            ))),
        }
    }

    /// The credentials come from AWS's standard variables only (never from the TOML file, so
    /// that a secret is not written next to the configuration).
    fn set_s3_credentials(&mut self, env: &dyn Fn(&str) -> Option<String>) {
        let id = env("AWS_ACCESS_KEY_ID").filter(|v| !v.is_empty());
        let secret = env("AWS_SECRET_ACCESS_KEY").filter(|v| !v.is_empty());
        if id.is_some() || secret.is_some() {
            self.sources
                .insert("s3_credentials", "env AWS_ACCESS_KEY_ID".to_string());
        }
        self.s3_access_key_id = id;
        self.s3_secret_access_key = secret.map(Secret);
    }

    /// The S3 blob store's settings, checked; `None` when `blobs_url` is unset (the
    /// filesystem store). Called by `load`, so that a bad value stops start-up.
    pub fn s3(&self) -> Result<Option<S3Config>> {
        let Some(url) = &self.blobs_url else {
            return Ok(None);
        };
        let source = |key: &str| self.sources.get(key).map_or("default", String::as_str);
        let bad = |why: &str| {
            Error::bad_request(format!("blobs_url {url:?} ({}) {why}", source("blobs_url")))
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad("must be s3://bucket or s3://bucket/prefix"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        // S3's bucket naming rules: 3 to 63 lowercase letters, digits, dots and hyphens.
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !bucket_ok {
            return Err(bad(
                "names no valid bucket (3 to 63 lowercase letters, digits, dots and hyphens)",
            ));
        }
        let prefix = prefix.trim_matches('/');
        let prefix_ok = prefix.is_empty()
            || prefix.split('/').all(|part| {
                !part.is_empty()
                    && part != "."
                    && part != ".."
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            });
        if !prefix_ok {
            return Err(bad(
                "has an invalid prefix (letters, digits, '-', '_', '.' between single slashes)",
            ));
        }
        if let Some(endpoint) = &self.s3_endpoint {
            let valid = (endpoint.starts_with("http://") || endpoint.starts_with("https://"))
                && !endpoint.contains(char::is_whitespace);
            if !valid {
                return Err(Error::bad_request(format!(
                    "s3_endpoint {endpoint:?} ({}) must be an http:// or https:// URL",
                    source("s3_endpoint")
                )));
            }
        }
        let region_ok = !self.s3_region.is_empty()
            && self
                .s3_region
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !region_ok {
            return Err(Error::bad_request(format!(
                "s3_region {:?} ({}) must be a region name like us-east-1",
                self.s3_region,
                source("s3_region")
            )));
        }
        let (Some(access_key_id), Some(secret_access_key)) =
            (&self.s3_access_key_id, &self.s3_secret_access_key)
        else {
            return Err(bad(
                "needs credentials: set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            ));
        };
        Ok(Some(S3Config {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            endpoint: self.s3_endpoint.clone(),
            region: self.s3_region.clone(),
            path_style: self.s3_path_style,
            access_key_id: access_key_id.clone(),
            secret_access_key: secret_access_key.clone(),
        }))
    }

    /// Empty means unset (SQLite), from any layer. Checked once every layer is applied, by
    /// [`Config::postgres_url`] in `load`, so that the error names the winning source.
    fn set_database_url(&mut self, value: &str, source: String) -> Result<()> {
        self.set("database_url", source, |c| {
            c.database_url = Some(value.to_string()).filter(|v| !v.is_empty());
            Ok(())
        })
    }

    /// The PostgreSQL URL for the store, checked; `None` when `database_url` is unset (SQLite
    /// in the data directory). Called by `load`, so that a bad value stops start-up. Its
    /// errors show the URL without its password.
    pub fn postgres_url(&self) -> Result<Option<String>> {
        let Some(url) = &self.database_url else {
            return Ok(None);
        };
        let source = self
            .sources
            .get("database_url")
            .map_or("default", String::as_str);
        let bad = |why: &str| {
            Error::bad_request(format!(
                "database_url {:?} ({source}) {why}",
                redact_database_url(url)
            ))
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(bad(
                "must be a postgres:// or postgresql:// URL (unset or empty: SQLite in the \
                 data directory)",
            ));
        }
        // The parser's messages name an option, never a value (so never the password).
        let parsed = url
            .parse::<postgres::Config>()
            .map_err(|e| bad(&format!("is not a valid PostgreSQL URL: {e}")))?;
        if parsed.get_hosts().is_empty() && parsed.get_hostaddrs().is_empty() {
            return Err(bad(
                "names no host, like postgres://user@db.example:5432/registry",
            ));
        }
        Ok(Some(url.clone()))
    }

    /// `database_url` as `registry config show` prints it: its password, in the user
    /// information or in a `password=` parameter, replaced by `***`.
    pub fn database_url_redacted(&self) -> Option<String> {
        self.database_url.as_deref().map(redact_database_url)
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("registry.db")
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.data_dir.join("blobs")
    }
}

/// A database URL with its password replaced by `***`: in the user information and as the
/// value of any `password` query parameter. The user information runs to the first `@`, as
/// tokio-postgres reads it, or to the last `@` before the host's end (so that a password with
/// an unescaped `@` does not show its tail); when it holds `/`, `?`, `=` or `&` it is no plain
/// `user:password` and is hidden whole. A value that is no URL at all is shown as `***` when
/// it might be a libpq key/value string with a password in it.
pub fn redact_database_url(url: &str) -> String {
    const HIDDEN: &str = "***";
    let Some((scheme, rest)) = url.split_once("://") else {
        let lower = url.to_ascii_lowercase();
        return if lower.contains("password") || lower.contains('@') {
            HIDDEN.to_string()
        } else {
            url.to_string()
        };
    };
    let mut shown = format!("{scheme}://");
    let rest = match rest.find('@') {
        Some(first) => {
            let host_end = rest[first..]
                .find(['/', '?'])
                .map_or(rest.len(), |i| first + i);
            let at = rest[..host_end].rfind('@').unwrap_or(first);
            let userinfo = &rest[..at];
            if userinfo.contains(['/', '?', '=', '&']) {
                shown.push_str(HIDDEN);
            } else if let Some((user, _password)) = userinfo.split_once(':') {
                shown.push_str(&format!("{user}:{HIDDEN}"));
            } else {
                shown.push_str(userinfo);
            }
            shown.push('@');
            &rest[at + 1..]
        }
        None => rest,
    };
    let Some((path, query)) = rest.split_once('?') else {
        shown.push_str(rest);
        return shown;
    };
    shown.push_str(path);
    shown.push('?');
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((key, _)) if percent_decode(key).eq_ignore_ascii_case("password") => {
                format!("{key}={HIDDEN}")
            }
            _ => param.to_string(),
        })
        .collect();
    shown.push_str(&params.join("&"));
    shown
}

/// `%xx` escapes decoded (invalid ones kept as they are), for comparing parameter names.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_listen_on_loopback_with_data_in_dot_data() -> Result<()> {
        let (config, warnings) = Config::load(None, env(&[]), &Overrides::default())?;
        assert_eq!(config.listen.to_string(), "127.0.0.1:4873");
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.registration, Registration::Closed);
        assert!(warnings.is_empty());
        Ok(())
    }

    #[test]
    fn flags_beat_env_which_beats_the_file() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("registry-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("registry.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:1111\"\nregistration = \"open\"\nlog_level = \"debug\"\n",
        )?;
        let flags = Overrides {
            listen: Some("127.0.0.1:3333".into()),
            ..Overrides::default()
        };
        let (config, warnings) = Config::load(
            Some(&file),
            env(&[
                ("REGISTRY_LISTEN", "127.0.0.1:2222"),
                ("REGISTRY_LOG_LEVEL", "warn"),
                ("REGISTRY_NOPE", "x"),
                ("HOME", "/root"),
            ]),
            &flags,
        )?;
        assert_eq!(config.listen.to_string(), "127.0.0.1:3333");
        assert_eq!(config.sources["listen"], "flag");
        assert_eq!(config.log_level, "warn");
        assert_eq!(config.sources["log_level"], "env REGISTRY_LOG_LEVEL");
        assert_eq!(config.registration, Registration::Open);
        assert_eq!(config.sources["registration"], file.display().to_string());
        assert_eq!(
            warnings,
            vec!["unknown environment variable REGISTRY_NOPE is ignored"]
        );
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn read_and_default_access_come_from_every_layer() -> Result<()> {
        let (config, _) = Config::load(None, env(&[]), &Overrides::default())?;
        assert_eq!(config.read_access, ReadAccess::Public);
        assert_eq!(config.default_access, Access::Public);

        let dir = std::env::temp_dir().join(format!("registry-config-ra-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("registry.toml");
        std::fs::write(
            &file,
            "read_access = \"authenticated\"\ndefault_access = \"restricted\"\n",
        )?;
        let (config, _) = Config::load(Some(&file), env(&[]), &Overrides::default())?;
        assert_eq!(config.read_access, ReadAccess::Authenticated);
        assert_eq!(config.default_access, Access::Restricted);

        let (config, _) = Config::load(
            Some(&file),
            env(&[
                ("REGISTRY_READ_ACCESS", "public"),
                ("REGISTRY_DEFAULT_ACCESS", "public"),
            ]),
            &Overrides::default(),
        )?;
        assert_eq!(config.read_access, ReadAccess::Public);
        assert_eq!(config.default_access, Access::Public);
        assert_eq!(config.sources["read_access"], "env REGISTRY_READ_ACCESS");

        let flags = Overrides {
            read_access: Some("authenticated".into()),
            ..Overrides::default()
        };
        let (config, _) = Config::load(None, env(&[]), &flags)?;
        assert_eq!(config.read_access, ReadAccess::Authenticated);
        assert_eq!(config.sources["read_access"], "flag");

        for (key, value) in [
            ("REGISTRY_READ_ACCESS", "everyone"),
            ("REGISTRY_DEFAULT_ACCESS", "private"),
        ] {
            let refused = Config::load(None, env(&[(key, value)]), &Overrides::default());
            assert!(refused.is_err(), "{key}={value} is refused");
        }
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn trusted_proxies_come_from_the_file_or_the_environment() -> Result<()> {
        let (config, _) = Config::load(None, env(&[]), &Overrides::default())?;
        assert!(
            config.trusted_proxies.is_empty(),
            "no proxy is trusted by default"
        );
        assert_eq!(config.sources["trusted_proxies"], "default");

        let dir = std::env::temp_dir().join(format!("registry-config-tp-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("registry.toml");
        std::fs::write(
            &file,
            "trusted_proxies = [\"127.0.0.1/32\", \"10.0.0.0/8\"]\n",
        )?;
        let (config, _) = Config::load(Some(&file), env(&[]), &Overrides::default())?;
        let shown: Vec<String> = config.trusted_proxies.iter().map(Cidr::to_string).collect();
        assert_eq!(shown, ["127.0.0.1/32", "10.0.0.0/8"]);
        assert_eq!(
            config.sources["trusted_proxies"],
            file.display().to_string()
        );

        let (config, _) = Config::load(
            Some(&file),
            env(&[("REGISTRY_TRUSTED_PROXIES", "192.168.0.1, ::1/128")]),
            &Overrides::default(),
        )?;
        let shown: Vec<String> = config.trusted_proxies.iter().map(Cidr::to_string).collect();
        assert_eq!(shown, ["192.168.0.1/32", "::1/128"]);
        assert_eq!(
            config.sources["trusted_proxies"],
            "env REGISTRY_TRUSTED_PROXIES"
        );

        let (config, _) = Config::load(
            Some(&file),
            env(&[("REGISTRY_TRUSTED_PROXIES", "")]),
            &Overrides::default(),
        )?;
        assert!(
            config.trusted_proxies.is_empty(),
            "an empty variable trusts no proxy"
        );

        let err = Config::load(
            None,
            env(&[("REGISTRY_TRUSTED_PROXIES", "127.0.0.1/33")]),
            &Overrides::default(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("env REGISTRY_TRUSTED_PROXIES"), "{err}");
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn download_counting_is_configurable_from_the_file_and_the_environment() -> Result<()> {
        let (config, _) = Config::load(None, env(&[]), &Overrides::default())?;
        assert!(config.count_downloads);
        assert_eq!(config.download_flush_secs, DEFAULT_DOWNLOAD_FLUSH_SECS);
        assert_eq!(config.sources["count_downloads"], "default");

        let dir = std::env::temp_dir().join(format!("registry-config-dl-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("registry.toml");
        std::fs::write(&file, "count_downloads = false\ndownload_flush_secs = 2\n")?;
        let (config, _) = Config::load(Some(&file), env(&[]), &Overrides::default())?;
        assert!(!config.count_downloads);
        assert_eq!(config.download_flush_secs, 2);
        assert_eq!(
            config.sources["count_downloads"],
            file.display().to_string()
        );

        let (config, warnings) = Config::load(
            Some(&file),
            env(&[
                ("REGISTRY_COUNT_DOWNLOADS", "true"),
                ("REGISTRY_DOWNLOAD_FLUSH_SECS", "30"),
            ]),
            &Overrides::default(),
        )?;
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(config.count_downloads);
        assert_eq!(config.download_flush_secs, 30);
        assert_eq!(
            config.sources["download_flush_secs"],
            "env REGISTRY_DOWNLOAD_FLUSH_SECS"
        );

        for bad in [
            ("REGISTRY_DOWNLOAD_FLUSH_SECS", "0"),
            ("REGISTRY_DOWNLOAD_FLUSH_SECS", "soon"),
            ("REGISTRY_COUNT_DOWNLOADS", "yes please"),
        ] {
            let err = Config::load(None, env(&[bad]), &Overrides::default())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(bad.0) || err.contains("env"), "{bad:?}: {err}");
        }
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn hook_settings_come_from_the_file_and_the_environment_and_are_checked() -> Result<()> {
        let (config, _) = Config::load(None, env(&[]), &Overrides::default())?;
        assert!(
            !config.hooks_allow_private,
            "the SSRF guard is on by default"
        );
        assert_eq!(config.hooks_per_user, DEFAULT_HOOKS_PER_USER);
        assert_eq!(config.hooks_retry_base_ms, DEFAULT_HOOKS_RETRY_BASE_MS);
        assert_eq!(config.hooks_retry_cap_secs, DEFAULT_HOOKS_RETRY_CAP_SECS);

        let dir =
            std::env::temp_dir().join(format!("registry-config-hooks-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("registry.toml");
        std::fs::write(
            &file,
            "hooks_allow_private = true\nhooks_per_user = 3\nhooks_retry_base_ms = 50\n",
        )?;
        let (config, warnings) = Config::load(
            Some(&file),
            env(&[("REGISTRY_HOOKS_RETRY_CAP_SECS", "60")]),
            &Overrides::default(),
        )?;
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(config.hooks_allow_private);
        assert_eq!(config.hooks_per_user, 3);
        assert_eq!(config.hooks_retry_base_ms, 50);
        assert_eq!(config.hooks_retry_cap_secs, 60);
        assert_eq!(
            config.sources["hooks_retry_cap_secs"],
            "env REGISTRY_HOOKS_RETRY_CAP_SECS"
        );
        std::fs::remove_dir_all(&dir)?;

        for bad in [
            ("REGISTRY_HOOKS_ALLOW_PRIVATE", "maybe"),
            ("REGISTRY_HOOKS_PER_USER", "0"),
            ("REGISTRY_HOOKS_RETRY_BASE_MS", "1"),
            ("REGISTRY_HOOKS_RETRY_CAP_SECS", "86401"),
        ] {
            assert!(
                Config::load(None, env(&[bad]), &Overrides::default()).is_err(),
                "{bad:?} refused"
            );
        }
        Ok(())
    }

    #[test]
    fn tls_files_are_layered_like_the_other_keys_and_must_come_as_a_pair() -> Result<()> {
        let (config, _) = Config::load(None, env(&[]), &Overrides::default())?;
        assert_eq!(config.tls_files()?, None, "plain HTTP by default");
        assert_eq!(config.sources["tls_cert"], "default");

        let dir = std::env::temp_dir().join(format!("registry-config-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("registry.toml");
        std::fs::write(&file, "tls_cert = \"a.pem\"\ntls_key = \"a.key\"\n")?;
        let (config, _) = Config::load(Some(&file), env(&[]), &Overrides::default())?;
        assert_eq!(
            config.tls_files()?,
            Some((Path::new("a.pem"), Path::new("a.key")))
        );
        assert_eq!(config.sources["tls_key"], file.display().to_string());

        let flags = Overrides {
            tls_key: Some("c.key".into()),
            ..Overrides::default()
        };
        let (config, warnings) = Config::load(
            Some(&file),
            env(&[
                ("REGISTRY_TLS_CERT", "b.pem"),
                ("REGISTRY_TLS_KEY", "b.key"),
            ]),
            &flags,
        )?;
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            config.tls_files()?,
            Some((Path::new("b.pem"), Path::new("c.key")))
        );
        assert_eq!(config.sources["tls_cert"], "env REGISTRY_TLS_CERT");
        assert_eq!(config.sources["tls_key"], "flag");

        // Empty variables switch off what the file switched on, but only both together.
        let (config, _) = Config::load(
            Some(&file),
            env(&[("REGISTRY_TLS_CERT", ""), ("REGISTRY_TLS_KEY", "")]),
            &Overrides::default(),
        )?;
        assert_eq!(config.tls_files()?, None);
        let half = Config::load(
            Some(&file),
            env(&[("REGISTRY_TLS_KEY", "")]),
            &Overrides::default(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            half.contains(&format!(
                "tls_cert is set ({}) but tls_key is not",
                file.display()
            )),
            "{half}"
        );
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn limits_come_from_the_file_and_the_environment_with_their_sources() -> Result<()> {
        let (config, _) = Config::load(None, env(&[]), &Overrides::default())?;
        assert_eq!(config.max_json_depth, DEFAULT_MAX_JSON_DEPTH);
        assert_eq!(config.max_header_bytes, DEFAULT_MAX_HEADER_BYTES);
        assert_eq!(config.max_versions_per_publish, 1);
        assert_eq!(config.max_attachment_bytes, DEFAULT_MAX_ATTACHMENT_BYTES);
        assert_eq!(config.max_package_name_length, 214);
        assert_eq!(
            config.auth_requests_per_second,
            DEFAULT_AUTH_REQUESTS_PER_SECOND
        );
        assert_eq!(config.auth_burst, DEFAULT_AUTH_BURST);
        assert_eq!(config.sources["max_json_depth"], "default");

        let dir = std::env::temp_dir().join(format!("registry-config-lim-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("registry.toml");
        std::fs::write(
            &file,
            "max_json_depth = 16\nmax_header_bytes = 8192\nmax_versions_per_publish = 5\n\
             max_attachment_bytes = 1048576\nmax_package_name_length = 50\n\
             auth_requests_per_second = 3\nauth_burst = 6\n",
        )?;
        let (config, warnings) = Config::load(
            Some(&file),
            env(&[
                ("REGISTRY_MAX_JSON_DEPTH", "32"),
                ("REGISTRY_AUTH_BURST", "9"),
            ]),
            &Overrides::default(),
        )?;
        assert!(warnings.is_empty(), "{warnings:?}");
        let from_file = file.display().to_string();
        assert_eq!(config.max_json_depth, 32);
        assert_eq!(
            config.sources["max_json_depth"],
            "env REGISTRY_MAX_JSON_DEPTH"
        );
        assert_eq!(config.max_header_bytes, 8192);
        assert_eq!(config.sources["max_header_bytes"], from_file);
        assert_eq!(config.max_versions_per_publish, 5);
        assert_eq!(config.max_attachment_bytes, 1_048_576);
        assert_eq!(config.max_package_name_length, 50);
        assert_eq!(config.auth_requests_per_second, 3);
        assert_eq!(config.sources["auth_requests_per_second"], from_file);
        assert_eq!(config.auth_burst, 9);
        assert_eq!(config.sources["auth_burst"], "env REGISTRY_AUTH_BURST");
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn zero_absurd_and_non_numeric_limits_are_refused() {
        for (key, value) in [
            ("REGISTRY_MAX_JSON_DEPTH", "0"),
            ("REGISTRY_MAX_JSON_DEPTH", "129"),
            ("REGISTRY_MAX_HEADER_BYTES", "0"),
            ("REGISTRY_MAX_HEADER_BYTES", "1073741824"),
            ("REGISTRY_MAX_VERSIONS_PER_PUBLISH", "0"),
            ("REGISTRY_MAX_VERSIONS_PER_PUBLISH", "101"),
            ("REGISTRY_MAX_ATTACHMENT_BYTES", "0"),
            ("REGISTRY_MAX_PACKAGE_NAME_LENGTH", "0"),
            ("REGISTRY_MAX_PACKAGE_NAME_LENGTH", "215"),
            ("REGISTRY_AUTH_REQUESTS_PER_SECOND", "0"),
            ("REGISTRY_AUTH_BURST", "0"),
            ("REGISTRY_AUTH_BURST", "-1"),
            ("REGISTRY_MAX_JSON_DEPTH", "deep"),
        ] {
            let err = Config::load(None, env(&[(key, value)]), &Overrides::default())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(key), "{key}={value}: {err:?}");
        }
    }

    #[test]
    fn the_attachment_limit_never_exceeds_the_body_limit() -> Result<()> {
        // Only the body limit lowered: the default attachment limit follows it down.
        let (config, _) = Config::load(
            None,
            env(&[("REGISTRY_MAX_BODY_BYTES", "1048576")]),
            &Overrides::default(),
        )?;
        assert_eq!(config.max_attachment_bytes, 1_048_576);
        // Both set, inconsistently: that is a mistake to report, not to guess at.
        let err = Config::load(
            None,
            env(&[
                ("REGISTRY_MAX_BODY_BYTES", "1048576"),
                ("REGISTRY_MAX_ATTACHMENT_BYTES", "2097152"),
            ]),
            &Overrides::default(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            err.contains("max_attachment_bytes (env REGISTRY_MAX_ATTACHMENT_BYTES)"),
            "{err}"
        );
        Ok(())
    }

    #[test]
    fn bad_values_are_refused_with_their_source() {
        let err = Config::load(
            None,
            env(&[("REGISTRY_PUBLIC_URL", "ftp://x")]),
            &Overrides::default(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("env REGISTRY_PUBLIC_URL"), "{err}");
        let unknown_key = {
            let dir =
                std::env::temp_dir().join(format!("registry-config-bad-{}", std::process::id()));
            let _ = std::fs::create_dir_all(&dir);
            let file = dir.join("r.toml");
            let _ = std::fs::write(&file, "listne = \"x\"\n");
            let r = Config::load(Some(&file), env(&[]), &Overrides::default());
            let _ = std::fs::remove_dir_all(&dir);
            r.is_err()
        };
        assert!(unknown_key, "a misspelt key in the file must be an error");
    }

    #[test]
    fn log_format_and_metrics_listen_are_layered_and_checked() -> Result<()> {
        let (config, _) = Config::load(None, env(&[]), &Overrides::default())?;
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.metrics_listen, None);
        assert_eq!(config.sources["metrics_listen"], "default");

        let dir = tempfile::tempdir()?;
        let file = dir.path().join("registry.toml");
        std::fs::write(
            &file,
            "log_format = \"json\"\nmetrics_listen = \"127.0.0.1:9187\"\n",
        )?;
        let (config, warnings) = Config::load(Some(&file), env(&[]), &Overrides::default())?;
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(
            config.metrics_listen,
            Some(SocketAddr::from(([127, 0, 0, 1], 9187)))
        );
        assert_eq!(config.sources["log_format"], file.display().to_string());

        let (config, _) = Config::load(
            Some(&file),
            env(&[
                ("REGISTRY_LOG_FORMAT", "text"),
                ("REGISTRY_METRICS_LISTEN", "0.0.0.0:9100"),
            ]),
            &Overrides::default(),
        )?;
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(
            config.metrics_listen,
            Some(SocketAddr::from(([0, 0, 0, 0], 9100)))
        );
        assert_eq!(
            config.sources["metrics_listen"],
            "env REGISTRY_METRICS_LISTEN"
        );
        let (config, _) = Config::load(
            Some(&file),
            env(&[("REGISTRY_METRICS_LISTEN", "")]),
            &Overrides::default(),
        )?;
        assert_eq!(
            config.metrics_listen, None,
            "an empty variable switches it off"
        );

        for (key, value, expected) in [
            ("REGISTRY_LOG_FORMAT", "yaml", "log_format must be"),
            (
                "REGISTRY_METRICS_LISTEN",
                "localhost",
                "metrics_listen address",
            ),
            (
                "REGISTRY_METRICS_LISTEN",
                "127.0.0.1:4873",
                "give it its own port",
            ),
        ] {
            let err = Config::load(None, env(&[(key, value)]), &Overrides::default())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(expected), "{key}={value}: {err:?}");
        }
        Ok(())
    }

    #[test]
    fn connection_timeouts_and_cap_are_checked_durations_and_counts() -> Result<()> {
        let (config, _) = Config::load(None, env(&[]), &Overrides::default())?;
        assert_eq!(config.header_timeout, Duration::from_secs(10));
        assert_eq!(config.idle_timeout, Duration::from_secs(60));
        assert_eq!(config.max_connections, None);

        let dir = tempfile::tempdir()?;
        let file = dir.path().join("registry.toml");
        std::fs::write(
            &file,
            "header_timeout = \"5s\"\nidle_timeout = \"2m\"\nmax_connections = 900\nworkers = 3\n",
        )?;
        let (config, _) = Config::load(
            Some(&file),
            env(&[("REGISTRY_IDLE_TIMEOUT", "30s")]),
            &Overrides::default(),
        )?;
        assert_eq!(config.header_timeout, Duration::from_secs(5));
        assert_eq!(config.idle_timeout, Duration::from_secs(30));
        assert_eq!(config.sources["idle_timeout"], "env REGISTRY_IDLE_TIMEOUT");
        assert_eq!(config.max_connections, Some(900));
        assert_eq!(config.worker_threads(), 3);

        for (key, value) in [
            ("REGISTRY_HEADER_TIMEOUT", "0s"),
            ("REGISTRY_HEADER_TIMEOUT", "soon"),
            ("REGISTRY_IDLE_TIMEOUT", "2d"),
            ("REGISTRY_MAX_CONNECTIONS", "0"),
            ("REGISTRY_MAX_CONNECTIONS", "many"),
            ("REGISTRY_WORKERS", "0"),
            ("REGISTRY_WORKERS", "2000"),
            ("REGISTRY_WORKERS", "all"),
        ] {
            let refused = Config::load(None, env(&[(key, value)]), &Overrides::default());
            let Err(error) = refused else {
                panic!("{key}={value} was accepted");
            };
            let message = error.to_string();
            let setting = key.trim_start_matches("REGISTRY_").to_lowercase();
            assert!(
                message.contains(&setting) || message.contains(key),
                "{message}"
            );
        }
        Ok(())
    }

    #[test]
    fn the_s3_blob_store_comes_from_the_file_and_the_environment() -> Result<()> {
        let (config, _) = Config::load(None, env(&[]), &Overrides::default())?;
        assert!(config.s3()?.is_none(), "unset: the filesystem store");

        let dir = std::env::temp_dir().join(format!("registry-config-s3-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("r.toml");
        std::fs::write(
            &file,
            "blobs_url = \"s3://file-bucket\"\ns3_region = \"eu-west-3\"\ns3_path_style = true\n",
        )?;
        let loaded = Config::load(
            Some(&file),
            env(&[
                ("REGISTRY_BLOBS_URL", "s3://tarballs/registry/prod/"),
                ("REGISTRY_S3_ENDPOINT", "http://127.0.0.1:3900"),
                ("AWS_ACCESS_KEY_ID", "key"),
                ("AWS_SECRET_ACCESS_KEY", "secret"),
            ]),
            &Overrides::default(),
        );
        std::fs::remove_dir_all(&dir)?;
        let (config, warnings) = loaded?;
        assert!(warnings.is_empty(), "{warnings:?}");
        let s3 = config
            .s3()?
            .ok_or_else(|| Error::bad_request("expected S3"))?;
        assert_eq!(
            (s3.bucket.as_str(), s3.prefix.as_str()),
            ("tarballs", "registry/prod")
        );
        assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:3900"));
        assert_eq!((s3.region.as_str(), s3.path_style), ("eu-west-3", true));
        assert_eq!(s3.secret_access_key.expose(), "secret");
        assert_eq!(config.sources["blobs_url"], "env REGISTRY_BLOBS_URL");
        assert!(config.sources["s3_region"].ends_with("r.toml"));
        assert!(
            !format!("{config:?}").contains("secret\""),
            "Debug never shows the secret"
        );
        Ok(())
    }

    #[test]
    fn bad_s3_settings_are_refused_at_start_up_with_a_reason() {
        let creds = [("AWS_ACCESS_KEY_ID", "k"), ("AWS_SECRET_ACCESS_KEY", "s")];
        for (pairs, expected) in [
            (
                vec![("REGISTRY_BLOBS_URL", "https://bucket")],
                "must be s3://",
            ),
            (vec![("REGISTRY_BLOBS_URL", "s3://")], "no valid bucket"),
            (
                vec![("REGISTRY_BLOBS_URL", "s3://Upper_Case")],
                "no valid bucket",
            ),
            (
                vec![("REGISTRY_BLOBS_URL", "s3://bucket/a//b")],
                "invalid prefix",
            ),
            (
                vec![("REGISTRY_BLOBS_URL", "s3://bucket/../x")],
                "invalid prefix",
            ),
            (
                vec![
                    ("REGISTRY_BLOBS_URL", "s3://bucket"),
                    ("REGISTRY_S3_ENDPOINT", "127.0.0.1:9000"),
                ],
                "s3_endpoint",
            ),
            (
                vec![
                    ("REGISTRY_BLOBS_URL", "s3://bucket"),
                    ("REGISTRY_S3_REGION", ""),
                ],
                "s3_region",
            ),
            (
                vec![
                    ("REGISTRY_BLOBS_URL", "s3://bucket"),
                    ("REGISTRY_S3_PATH_STYLE", "yes"),
                ],
                "true or false",
            ),
        ] {
            let mut all = pairs.clone();
            all.extend_from_slice(&creds);
            let err = Config::load(None, env(&all), &Overrides::default())
                .err()
                .map(|e| (e.status(), e.to_string()));
            assert!(
                matches!(&err, Some((400, text)) if text.contains(expected)),
                "{pairs:?}: {err:?}"
            );
        }
        let err = Config::load(
            None,
            env(&[
                ("REGISTRY_BLOBS_URL", "s3://bucket"),
                ("AWS_ACCESS_KEY_ID", "k"),
            ]),
            &Overrides::default(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("AWS_SECRET_ACCESS_KEY"), "{err}");
    }

    #[test]
    fn the_database_url_comes_from_the_file_the_environment_and_the_flag() -> Result<()> {
        let (config, _) = Config::load(None, env(&[]), &Overrides::default())?;
        assert_eq!(config.database_url, None);
        assert_eq!(
            config.postgres_url()?,
            None,
            "unset: SQLite in the data directory"
        );
        assert_eq!(config.sources["database_url"], "default");

        let dir = tempfile::tempdir()?;
        let file = dir.path().join("registry.toml");
        std::fs::write(
            &file,
            "database_url = \"postgres://registry@file-db:5432/registry\"\n",
        )?;
        let (config, warnings) = Config::load(Some(&file), env(&[]), &Overrides::default())?;
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            config.postgres_url()?.as_deref(),
            Some("postgres://registry@file-db:5432/registry")
        );
        assert_eq!(config.sources["database_url"], file.display().to_string());

        // The environment beats the file, and is no longer an unknown variable.
        let (config, warnings) = Config::load(
            Some(&file),
            env(&[(
                "REGISTRY_DATABASE_URL",
                "postgresql://registry:pw@env-db/registry?sslmode=disable",
            )]),
            &Overrides::default(),
        )?;
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            config.database_url.as_deref(),
            Some("postgresql://registry:pw@env-db/registry?sslmode=disable")
        );
        assert_eq!(config.sources["database_url"], "env REGISTRY_DATABASE_URL");

        // Empty means unset: back to SQLite, whatever the file said.
        let (config, _) = Config::load(
            Some(&file),
            env(&[("REGISTRY_DATABASE_URL", "")]),
            &Overrides::default(),
        )?;
        assert_eq!(config.database_url, None);
        assert_eq!(config.postgres_url()?, None);
        assert_eq!(config.sources["database_url"], "env REGISTRY_DATABASE_URL");

        // The flag beats both; an empty one also means SQLite.
        let flags = Overrides {
            database_url: Some("postgres://flag-db/registry".into()),
            ..Overrides::default()
        };
        let env_url = [("REGISTRY_DATABASE_URL", "postgres://env-db/registry")];
        let (config, _) = Config::load(Some(&file), env(&env_url), &flags)?;
        assert_eq!(
            config.postgres_url()?.as_deref(),
            Some("postgres://flag-db/registry")
        );
        assert_eq!(config.sources["database_url"], "flag");
        let flags = Overrides {
            database_url: Some(String::new()),
            ..Overrides::default()
        };
        let (config, _) = Config::load(Some(&file), env(&env_url), &flags)?;
        assert_eq!(config.database_url, None);
        assert_eq!(config.sources["database_url"], "flag");
        Ok(())
    }

    #[test]
    fn bad_database_urls_are_refused_with_their_source_and_no_password() -> Result<()> {
        for (value, expected) in [
            (
                "mysql://registry:hunter2@db/registry",
                "must be a postgres://",
            ),
            (
                "sqlite:///var/lib/registry/registry.db",
                "must be a postgres://",
            ),
            (
                "host=db user=registry password=hunter2",
                "must be a postgres://",
            ),
            ("POSTGRES://registry:hunter2@db/x", "must be a postgres://"),
            ("postgres://registry:hunter2@db/x?sslmode=maybe", "sslmode"),
            (
                "postgres://registry:hunter2@db:port/x",
                "not a valid PostgreSQL URL",
            ),
            (
                "postgres://registry:hunter2@[::1/x",
                "not a valid PostgreSQL URL",
            ),
            ("postgres://", "names no host"),
        ] {
            let err = Config::load(
                None,
                env(&[("REGISTRY_DATABASE_URL", value)]),
                &Overrides::default(),
            )
            .err()
            .map(|e| (e.status(), e.to_string()));
            assert!(
                matches!(&err, Some((400, text)) if text.contains(expected)
                    && text.contains("database_url")
                    && text.contains("(env REGISTRY_DATABASE_URL)")
                    && !text.contains("hunter2")),
                "{value}: {err:?}"
            );
        }
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("registry.toml");
        std::fs::write(&file, "database_url = \"mysql://db/registry\"\n")?;
        let err = Config::load(Some(&file), env(&[]), &Overrides::default())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains(&format!(
                "database_url \"mysql://db/registry\" ({})",
                file.display()
            )),
            "{err}"
        );
        let flags = Overrides {
            database_url: Some("https://db".into()),
            ..Overrides::default()
        };
        let err = Config::load(None, env(&[]), &flags)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("database_url \"https://db\" (flag)"), "{err}");
        Ok(())
    }

    #[test]
    fn the_database_password_is_redacted_where_the_config_is_shown() -> Result<()> {
        let (config, _) = Config::load(
            None,
            env(&[(
                "REGISTRY_DATABASE_URL",
                "postgres://registry:s3cr%40t@db:5432/registry",
            )]),
            &Overrides::default(),
        )?;
        assert_eq!(
            config.database_url_redacted().as_deref(),
            Some("postgres://registry:***@db:5432/registry")
        );
        assert_eq!(
            config.postgres_url()?.as_deref(),
            Some("postgres://registry:s3cr%40t@db:5432/registry"),
            "the store gets the real URL"
        );
        let (config, _) = Config::load(None, env(&[]), &Overrides::default())?;
        assert_eq!(config.database_url_redacted(), None);

        for (url, shown) in [
            ("postgres://db/registry", "postgres://db/registry"),
            (
                "postgres://registry@db/registry",
                "postgres://registry@db/registry",
            ),
            (
                "postgresql://registry:pw@db/registry?sslmode=require",
                "postgresql://registry:***@db/registry?sslmode=require",
            ),
            (
                "postgres://registry@db/registry?sslmode=disable&password=pw",
                "postgres://registry@db/registry?sslmode=disable&password=***",
            ),
            (
                "postgres://db/registry?pass%77ord=pw",
                "postgres://db/registry?pass%77ord=***",
            ),
            // An unescaped `@` in the password does not leak its tail.
            (
                "postgres://registry:p@ss@db/registry",
                "postgres://registry:***@db/registry",
            ),
            (
                "postgres://registry:pa/ss@db/registry",
                "postgres://***@db/registry",
            ),
            ("postgres://db/registry?password=p@ss", "postgres://***@ss"),
            ("host=db password=pw", "***"),
            ("sqlite:registry.db", "sqlite:registry.db"),
        ] {
            assert_eq!(redact_database_url(url), shown, "{url}");
        }
        Ok(())
    }
}
