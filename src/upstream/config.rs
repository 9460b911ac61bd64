//! The `[[upstreams]]`, `private` and `[[binaries]]` settings: parsed and checked once, at
//! start-up, so that a bad value is a configuration error (exit 2) and never a surprise at the
//! first request.

use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(120);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_FAILS: u32 = 2;
pub const DEFAULT_FAIL_TIMEOUT: Duration = Duration::from_secs(300);
/// The name `registry serve --upstream URL` gives its one upstream.
pub const SHORTCUT_NAME: &str = "upstream";

/// A name glob: `**` (every name), `@scope/*` (every name of a scope), `*` (every unscoped
/// name), or one exact name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamePattern {
    Everything,
    Unscoped,
    Scope(String),
    Exact(String),
}

impl NamePattern {
    pub fn parse(text: &str) -> Result<NamePattern> {
        let invalid = || {
            Error::bad_request(format!(
                "{text:?} is not a package name pattern: use \"**\", \"*\", \"@scope/*\" or a \
                 package name"
            ))
        };
        match text {
            "**" => return Ok(NamePattern::Everything),
            "*" => return Ok(NamePattern::Unscoped),
            _ => {}
        }
        if let Some(scope) = text.strip_suffix("/*") {
            let bare = scope.strip_prefix('@').ok_or_else(invalid)?;
            if bare.is_empty() || bare.contains(['/', '*']) {
                return Err(invalid());
            }
            return Ok(NamePattern::Scope(scope.to_string()));
        }
        if text.is_empty() || text.contains('*') || text.contains(char::is_whitespace) {
            return Err(invalid());
        }
        Ok(NamePattern::Exact(text.to_string()))
    }

    pub fn matches(&self, name: &str) -> bool {
        match self {
            NamePattern::Everything => true,
            NamePattern::Unscoped => !name.starts_with('@'),
            NamePattern::Scope(scope) => name
                .strip_prefix(scope.as_str())
                .is_some_and(|rest| rest.starts_with('/')),
            NamePattern::Exact(exact) => exact == name,
        }
    }
}

impl std::fmt::Display for NamePattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NamePattern::Everything => f.write_str("**"),
            NamePattern::Unscoped => f.write_str("*"),
            NamePattern::Scope(scope) => write!(f, "{scope}/*"),
            NamePattern::Exact(name) => f.write_str(name),
        }
    }
}

/// One upstream registry, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConfig {
    pub name: String,
    /// Without a trailing slash.
    pub url: String,
    pub packages: Vec<NamePattern>,
    pub max_age: Duration,
    pub timeout: Duration,
    pub max_fails: u32,
    pub fail_timeout: Duration,
    /// The environment variable the Bearer token is read from (the token itself is read at
    /// start-up and never printed).
    pub token_env: Option<String>,
    pub token: Option<String>,
    /// Whether the first fetch of a document also fetches, in the background, the documents
    /// of what its `latest` version depends on (and so on down), so that a client's cold
    /// install does not wait for the upstream once per level of its dependency tree.
    pub prefetch: bool,
}

impl UpstreamConfig {
    /// The shortcut `--upstream URL`: every name, the defaults.
    pub fn shortcut(url: &str) -> Result<UpstreamConfig> {
        UpstreamConfig::from_file(
            UpstreamFile {
                name: SHORTCUT_NAME.to_string(),
                url: url.to_string(),
                ..UpstreamFile::default()
            },
            &|_| None,
        )
    }

    pub fn from_file(
        file: UpstreamFile,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<UpstreamConfig> {
        let name = file.name;
        if !valid_id(&name) {
            return Err(Error::bad_request(format!(
                "upstream name {name:?} must be 1-64 letters, digits, '-', '_' or '.' (and not \
                 \"admin\")"
            )));
        }
        let url = check_url(&file.url).map_err(|reason| {
            Error::bad_request(format!("upstream {name}: url {:?} {reason}", file.url))
        })?;
        let packages = match file.packages {
            None => vec![NamePattern::Everything],
            Some(list) if list.is_empty() => {
                return Err(Error::bad_request(format!(
                    "upstream {name}: packages is empty, so it would serve nothing; leave it \
                     out to serve every name"
                )))
            }
            Some(list) => list
                .iter()
                .map(|p| NamePattern::parse(p))
                .collect::<Result<_>>()
                .map_err(|e| Error::bad_request(format!("upstream {name}: {e}")))?,
        };
        let duration = |key: &str, text: Option<String>, default: Duration| match text {
            None => Ok(default),
            Some(text) => parse_duration(&text)
                .map_err(|e| Error::bad_request(format!("upstream {name}: {key}: {e}"))),
        };
        let max_age = duration("max_age", file.max_age, DEFAULT_MAX_AGE)?;
        let timeout = duration("timeout", file.timeout, DEFAULT_TIMEOUT)?;
        let fail_timeout = duration("fail_timeout", file.fail_timeout, DEFAULT_FAIL_TIMEOUT)?;
        if timeout.is_zero() {
            return Err(Error::bad_request(format!(
                "upstream {name}: timeout must be more than 0s"
            )));
        }
        let max_fails = file.max_fails.unwrap_or(DEFAULT_MAX_FAILS);
        if max_fails == 0 {
            return Err(Error::bad_request(format!(
                "upstream {name}: max_fails must be at least 1"
            )));
        }
        let token = match &file.token_env {
            None => None,
            Some(var) => Some(env(var).filter(|t| !t.is_empty()).ok_or_else(|| {
                Error::bad_request(format!(
                    "upstream {name}: token_env names {var}, which is not set"
                ))
            })?),
        };
        Ok(UpstreamConfig {
            name,
            url,
            packages,
            max_age,
            timeout,
            max_fails,
            fail_timeout,
            token_env: file.token_env,
            token,
            prefetch: file.prefetch.unwrap_or(true),
        })
    }

    pub fn serves(&self, name: &str) -> bool {
        self.packages.iter().any(|p| p.matches(name))
    }

    /// `host[:port]` of the URL, for listings.
    pub fn host(&self) -> &str {
        host_of(&self.url)
    }
}

/// A `[[upstreams]]` table as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamFile {
    pub name: String,
    pub url: String,
    pub packages: Option<Vec<String>>,
    pub max_age: Option<String>,
    pub timeout: Option<String>,
    pub max_fails: Option<u32>,
    pub fail_timeout: Option<String>,
    pub token_env: Option<String>,
    pub prefetch: Option<bool>,
}

/// A binary mirror (cnpmcore's Binary Sync API): files under `dist_url`, listed from its index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryConfig {
    pub name: String,
    /// With a trailing slash, so that a subpath is appended as it is.
    pub dist_url: String,
    pub description: String,
    pub repo_url: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BinaryFile {
    pub name: String,
    pub dist_url: String,
    pub description: Option<String>,
    pub repo_url: Option<String>,
}

impl BinaryConfig {
    pub fn from_file(file: BinaryFile) -> Result<BinaryConfig> {
        let name = file.name;
        if !valid_id(&name) {
            return Err(Error::bad_request(format!(
                "binary name {name:?} must be 1-64 letters, digits, '-', '_' or '.'"
            )));
        }
        let url = check_url(&file.dist_url).map_err(|reason| {
            Error::bad_request(format!(
                "binary {name}: dist_url {:?} {reason}",
                file.dist_url
            ))
        })?;
        Ok(BinaryConfig {
            name,
            dist_url: format!("{url}/"),
            description: file.description.unwrap_or_default(),
            repo_url: file.repo_url.unwrap_or_default(),
        })
    }
}

/// Ids of upstreams and binaries appear in URLs (`/-/registry/:id`, `/-/binary/:name`).
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id != "admin"
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !id.starts_with('.')
}

/// An `http(s)://host[:port][/path]` URL without query or fragment, returned without its
/// trailing slash.
pub fn check_url(url: &str) -> std::result::Result<String, &'static str> {
    let trimmed = url.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"))
        .ok_or("must start with http:// or https://")?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err("has no host");
    }
    if trimmed.contains(|c: char| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#')) {
        return Err("may not contain spaces, '?' or '#'");
    }
    Ok(trimmed.to_string())
}

pub fn host_of(url: &str) -> &str {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or(url);
    rest.split('/').next().unwrap_or(rest)
}

/// `90s`, `2m`, `1h`, `1d`, `500ms`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 30s, 2m, 1h or 1d"))?;
    let millis = match unit {
        "ms" => Some(value),
        "" | "s" => value.checked_mul(1000),
        "m" => value.checked_mul(60_000),
        "h" => value.checked_mul(3_600_000),
        "d" => value.checked_mul(86_400_000),
        _ => None,
    }
    .filter(|ms| *ms <= 365 * 86_400_000)
    .ok_or_else(|| format!("{text:?} is not a duration like 30s, 2m, 1h or 1d (at most 365d)"))?;
    Ok(Duration::from_millis(millis))
}

pub fn format_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    match ms {
        0 => "0s".to_string(),
        ms if ms % 86_400_000 == 0 => format!("{}d", ms / 86_400_000),
        ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_names_as_globs() -> Result<()> {
        let every = NamePattern::parse("**")?;
        let unscoped = NamePattern::parse("*")?;
        let acme = NamePattern::parse("@acme/*")?;
        let exact = NamePattern::parse("left-pad")?;
        assert!(every.matches("@x/y") && every.matches("y"));
        assert!(unscoped.matches("y") && !unscoped.matches("@x/y"));
        assert!(acme.matches("@acme/tool") && !acme.matches("@acmecorp/tool"));
        assert!(!acme.matches("acme"));
        assert!(exact.matches("left-pad") && !exact.matches("left-pad2"));
        for bad in ["", "@/*", "a*b", "acme/*", "@a/b/*", "x y"] {
            assert!(NamePattern::parse(bad).is_err(), "{bad:?} refused");
        }
        Ok(())
    }

    #[test]
    fn durations_parse_with_units_and_refuse_nonsense() {
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        for bad in ["", "m", "2 weeks", "-1s", "400d", "1.5s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} refused");
        }
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn an_upstream_needs_a_url_a_name_and_a_set_token_env() {
        let file = |name: &str, url: &str| UpstreamFile {
            name: name.into(),
            url: url.into(),
            ..UpstreamFile::default()
        };
        let ok = UpstreamConfig::from_file(file("npmjs", "https://r.example/"), &|_| None);
        assert_eq!(ok.map(|u| u.url).ok().as_deref(), Some("https://r.example"));
        assert!(UpstreamConfig::from_file(file("npmjs", "ftp://x"), &|_| None).is_err());
        assert!(UpstreamConfig::from_file(file("admin", "http://x"), &|_| None).is_err());
        assert!(UpstreamConfig::from_file(file("a b", "http://x"), &|_| None).is_err());
        let with_token = UpstreamFile {
            token_env: Some("T".into()),
            ..file("p", "http://x")
        };
        assert!(UpstreamConfig::from_file(with_token, &|_| None).is_err());
        let with_token = UpstreamFile {
            token_env: Some("T".into()),
            ..file("p", "http://x")
        };
        let read = UpstreamConfig::from_file(with_token, &|_| Some("secret".into()));
        assert_eq!(read.ok().and_then(|u| u.token).as_deref(), Some("secret"));
    }
}
