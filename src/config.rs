//! One `Config`, layered as a pure function: defaults < TOML file < `REGISTRY_*` environment <
//! command-line flags. Each value remembers where it came from, for `registry config show`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::cidr::Cidr;
use crate::error::{Error, Result};

pub const DEFAULT_DATA_DIR: &str = "./data";
/// npm tarballs are rarely above a few MiB; 100 MiB leaves room for the odd large one.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 100 * 1024 * 1024;
/// Download counts reach the database this often: a crash loses at most this many seconds of
/// counts, and a burst of downloads costs one write per interval.
pub const DEFAULT_DOWNLOAD_FLUSH_SECS: u64 = 5;

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

impl std::fmt::Display for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Registration::Closed => "closed",
            Registration::Open => "open",
        })
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// The URL clients reach the registry at (used for tarball URLs); `None`: the request's Host.
    pub public_url: Option<String>,
    pub registration: Registration,
    pub max_body_bytes: u64,
    pub log_level: String,
    /// Proxies whose `X-Forwarded-For` names the real client (for token CIDR allow-lists).
    /// Empty: the header is never believed, the TCP peer is the client.
    pub trusted_proxies: Vec<Cidr>,
    /// Whether tarball downloads are counted (off only to measure what counting costs).
    pub count_downloads: bool,
    /// Seconds between two writes of the download counts (at least 1).
    pub download_flush_secs: u64,
    /// Where each value came from: "default", the file's path, "env REGISTRY_X" or "flag".
    pub sources: BTreeMap<&'static str, String>,
}

/// The keys of the TOML file; every one optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    public_url: Option<String>,
    registration: Option<Registration>,
    max_body_bytes: Option<u64>,
    log_level: Option<String>,
    trusted_proxies: Option<Vec<String>>,
    count_downloads: Option<bool>,
    download_flush_secs: Option<u64>,
}

/// Values given on the command line; `None` where the flag was not passed.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub public_url: Option<String>,
    pub registration: Option<String>,
    pub log_level: Option<String>,
}

const ENV_KEYS: &[&str] = &[
    "REGISTRY_LISTEN",
    "REGISTRY_DATA_DIR",
    "REGISTRY_PUBLIC_URL",
    "REGISTRY_REGISTRATION",
    "REGISTRY_MAX_BODY_BYTES",
    "REGISTRY_LOG_LEVEL",
    "REGISTRY_TRUSTED_PROXIES",
    "REGISTRY_COUNT_DOWNLOADS",
    "REGISTRY_DOWNLOAD_FLUSH_SECS",
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
            "public_url",
            "registration",
            "max_body_bytes",
            "log_level",
            "trusted_proxies",
            "count_downloads",
            "download_flush_secs",
        ] {
            sources.insert(key, "default".to_string());
        }
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 4873)),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            public_url: None,
            registration: Registration::Closed,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            log_level: "info".to_string(),
            trusted_proxies: Vec::new(),
            count_downloads: true,
            download_flush_secs: DEFAULT_DOWNLOAD_FLUSH_SECS,
            sources,
        }
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
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::bad_request(format!("cannot read config file {}: {e}", path.display()))
            })?;
            let parsed: FileConfig = toml::from_str(&text).map_err(|e| {
                Error::bad_request(format!("invalid config file {}: {e}", path.display()))
            })?;
            config.apply_file(parsed, &path.display().to_string())?;
        }
        for (key, value) in env {
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
                "REGISTRY_PUBLIC_URL" => config.set_public_url(&value, source)?,
                "REGISTRY_REGISTRATION" => config.set("registration", source, |c| {
                    c.registration = value.parse()?;
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
                "REGISTRY_TRUSTED_PROXIES" => {
                    let list: Vec<&str> = value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .collect();
                    config.set_trusted_proxies(&list, source)?;
                }
                "REGISTRY_COUNT_DOWNLOADS" => {
                    let on = match value.as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => {
                            return Err(Error::bad_request(format!(
                                "{key} must be true or false, not {value:?}"
                            )))
                        }
                    };
                    config.set("count_downloads", source, |c| {
                        c.count_downloads = on;
                        Ok(())
                    })?;
                }
                "REGISTRY_DOWNLOAD_FLUSH_SECS" => {
                    let secs = value.parse().map_err(|_| {
                        Error::bad_request(format!("{key} must be a number of seconds"))
                    })?;
                    config.set_download_flush_secs(secs, source)?;
                }
                _ => {}
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
        if let Some(url) = &flags.public_url {
            config.set_public_url(url, flag())?;
        }
        if let Some(registration) = &flags.registration {
            config.set("registration", flag(), |c| {
                c.registration = registration.parse()?;
                Ok(())
            })?;
        }
        if let Some(level) = &flags.log_level {
            config.set("log_level", flag(), |c| {
                c.log_level = level.clone();
                Ok(())
            })?;
        }
        Ok((config, warnings))
    }

    fn apply_file(&mut self, file: FileConfig, source: &str) -> Result<()> {
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
        if let Some(url) = file.public_url {
            self.set_public_url(&url, src())?;
        }
        if let Some(registration) = file.registration {
            self.set("registration", src(), |c| {
                c.registration = registration;
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
        if let Some(secs) = file.download_flush_secs {
            self.set_download_flush_secs(secs, src())?;
        }
        Ok(())
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

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("registry.db")
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.data_dir.join("blobs")
    }
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
}
