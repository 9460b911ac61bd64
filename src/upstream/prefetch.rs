//! Documents and tarballs fetched ahead of the client. A cold `npm install` asks for a
//! package's document, reads which versions its dependencies need, asks for theirs, and so on
//! down, then for the tarballs of the versions it chose: through a proxy, each of those
//! requests waits for the upstream. When an install's document is fetched for the first time,
//! the documents of what its `latest` version depends on are fetched in the background (and
//! theirs in turn), each with the tarball of the version the dependency's range picks, so that
//! most of the client's later requests find them cached or already on their way (concurrent
//! misses of one name share one fetch).
//!
//! Bounded: a few fetches at a time, a capped number of names waiting, each name at most once
//! while it is cached fresh, one tarball per name fetched ahead; local, blocked and private
//! names are never asked for.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use semver::{Version, VersionReq};
use tokio::sync::Semaphore;

use super::client::Upstream;
use super::documents::Outline;
use super::{proxy, sync};
use crate::error::Result;
use crate::packages::names::PackageName;
use crate::packages::packument::PackumentFlavor;
use crate::registry::{blocking, Registry};

/// Documents fetched ahead at once, and tarballs: the upstream connections they may hold
/// besides clients'. Apart, so that tarballs never hold up the documents the client waits on.
const DOCUMENTS_AT_ONCE: usize = 8;
const TARBALLS_AT_ONCE: usize = 8;
/// Names waiting or being fetched, beyond which further ones are not fetched ahead.
const MAX_WAITING: usize = 2048;

/// The names being fetched ahead, and the permits that bound how many at once.
pub struct Prefetch {
    documents: Semaphore,
    tarballs: Semaphore,
    waiting: Mutex<HashSet<String>>,
}

impl Default for Prefetch {
    fn default() -> Prefetch {
        Prefetch {
            documents: Semaphore::new(DOCUMENTS_AT_ONCE),
            tarballs: Semaphore::new(TARBALLS_AT_ONCE),
            waiting: Mutex::new(HashSet::new()),
        }
    }
}

impl Prefetch {
    /// Takes a name on unless it is waiting already or too many are.
    fn admit(&self, name: &str) -> bool {
        match self.waiting.lock() {
            Ok(mut waiting) if waiting.len() < MAX_WAITING => waiting.insert(name.to_string()),
            _ => false,
        }
    }

    fn done(&self, name: &str) {
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.remove(name);
        }
    }
}

/// Fetches in the background the documents, in `flavor` (the one the install reads), of the
/// `wanted` dependencies (name → range) an upstream that prefetches serves and that are not
/// known fresh already, and the tarball each range picks. Needs a Tokio runtime.
pub fn dependencies(
    registry: &Arc<Registry>,
    flavor: PackumentFlavor,
    wanted: BTreeMap<String, String>,
) {
    let upstreams = &registry.upstreams;
    for (name, range) in wanted {
        let Ok(name) = PackageName::parse(&name) else {
            continue;
        };
        let Some(upstream) = upstreams.for_name(name.as_str()) else {
            continue;
        };
        if !upstream.config.prefetch
            || upstreams.fresh(name.as_str(), flavor).is_some()
            || !upstreams.prefetch.admit(name.as_str())
        {
            continue;
        }
        let registry = registry.clone();
        tokio::spawn(async move {
            let fetched = document(&registry, &upstream, &name, flavor).await;
            registry.upstreams.prefetch.done(name.as_str());
            match fetched {
                Ok(Some(outline)) => {
                    if let Some(version) = chosen_version(&range, &outline) {
                        tokio::spawn(tarball(registry.clone(), upstream, name, version));
                    }
                    dependencies(&registry, flavor, outline.latest_dependencies);
                }
                Ok(None) => {}
                Err(err) => tracing::debug!(
                    upstream = upstream.name(),
                    package = %name,
                    "not fetched ahead: {}",
                    err.public_message()
                ),
            }
        });
    }
}

/// One document fetched ahead; its outline when this was its first fetch.
async fn document(
    registry: &Arc<Registry>,
    upstream: &Arc<Upstream>,
    name: &PackageName,
    flavor: PackumentFlavor,
) -> Result<Option<Outline>> {
    let _permit = registry.upstreams.prefetch.documents.acquire().await;
    let checked = name.clone();
    if blocking(registry, move |r| sync::skip_reason(r, &checked))
        .await?
        .is_some()
    {
        return Ok(None);
    }
    Ok(proxy::document(registry, upstream, name, flavor)
        .await?
        .first_fetch)
}

/// One tarball fetched ahead into the cache (verified as any fetched tarball).
async fn tarball(
    registry: Arc<Registry>,
    upstream: Arc<Upstream>,
    name: PackageName,
    version: String,
) {
    let _permit = registry.upstreams.prefetch.tarballs.acquire().await;
    let file = name.tarball_file(&version);
    if let Err(err) = proxy::tarball(&registry, &upstream, &name, &file).await {
        tracing::debug!(
            upstream = upstream.name(),
            package = %name,
            %version,
            "tarball not fetched ahead: {}",
            err.public_message()
        );
    }
}

/// The version an install of `range` picks, as npm does: `latest` when it satisfies the
/// range, else the highest version that does. `None` for a range that names no version of the
/// registry's (a git URL, a path, another tag) or that this reading of npm's syntax does not
/// follow: then nothing is fetched ahead.
fn chosen_version(range: &str, outline: &Outline) -> Option<String> {
    let range = range.trim();
    if matches!(range, "" | "*" | "latest" | "x" | "X") {
        return outline.latest.clone();
    }
    let alternatives = npm_range(range)?;
    let satisfies = |version: &Version| alternatives.iter().any(|req| req.matches(version));
    if let Some(latest) = &outline.latest {
        if Version::parse(latest).is_ok_and(|v| satisfies(&v)) {
            return Some(latest.clone());
        }
    }
    outline
        .versions
        .iter()
        .filter_map(|text| Version::parse(text).ok().map(|v| (v, text)))
        .filter(|(version, _)| satisfies(version))
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, text)| text.clone())
}

/// npm's range syntax (`||` alternatives, space-separated comparators, hyphen ranges, bare
/// and partial versions) in the `semver` crate's terms; `None` when a part does not parse.
fn npm_range(range: &str) -> Option<Vec<VersionReq>> {
    range
        .split("||")
        .map(|alternative| {
            let words: Vec<&str> = alternative.split_whitespace().collect();
            let comparators: Vec<String> = match words.as_slice() {
                [] => vec!["*".to_string()],
                [low, "-", high] => vec![
                    format!(">={}", low.trim_start_matches(['v', '='])),
                    format!("<={}", high.trim_start_matches(['v', '='])),
                ],
                _ => {
                    // An operator may stand apart from its version (`>= 1.2.3`).
                    let mut comparators = Vec::new();
                    let mut operator = String::new();
                    for word in words {
                        if word.chars().all(|c| "<>=~^".contains(c)) {
                            operator.push_str(word);
                        } else {
                            comparators.push(comparator(&std::mem::take(&mut operator), word));
                        }
                    }
                    comparators
                }
            };
            VersionReq::parse(&comparators.join(", ")).ok()
        })
        .collect()
}

/// One comparator: npm reads a bare full version as exactly it and a bare partial one
/// (`1.2`, `1`) as any of its patches or minors, where the crate would read both as `^`.
fn comparator(operator: &str, word: &str) -> String {
    let joined = format!("{operator}{word}");
    let split = joined
        .find(|c: char| !"<>=~^".contains(c))
        .unwrap_or(joined.len());
    let (operator, version) = joined.split_at(split);
    let version = version.trim_start_matches('v');
    if operator.is_empty() {
        let wildcard = version
            .split('.')
            .any(|part| matches!(part, "x" | "X" | "*"));
        if wildcard {
            return version.to_string();
        }
        let parts = version.split(['-', '+']).next().unwrap_or_default();
        return if parts.split('.').count() >= 3 {
            format!("={version}")
        } else {
            format!("~{version}")
        };
    }
    format!("{operator}{version}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outline(versions: &[&str], latest: &str) -> Outline {
        Outline {
            versions: versions.iter().map(|v| v.to_string()).collect(),
            latest: Some(latest.to_string()),
            latest_dependencies: BTreeMap::new(),
        }
    }

    #[test]
    fn a_range_picks_latest_when_it_satisfies_it_else_the_highest_version_that_does() {
        let doc = outline(
            &[
                "1.0.0",
                "1.0.5",
                "1.2.0",
                "1.3.0-beta.1",
                "2.0.0",
                "3.0.0-rc.1",
            ],
            "2.0.0",
        );
        for (range, expected) in [
            ("^1.0.0", Some("1.2.0")),
            ("~1.0.0", Some("1.0.5")),
            ("1.0.0", Some("1.0.0")),
            ("=1.0.0", Some("1.0.0")),
            ("v1.0.0", Some("1.0.0")),
            ("1.0", Some("1.0.5")),
            ("1", Some("1.2.0")),
            ("1.x", Some("1.2.0")),
            ("1.0.x", Some("1.0.5")),
            (">=1.0.0 <1.2.0", Some("1.0.5")),
            (">= 1.0.0 < 1.2.0", Some("1.0.5")),
            ("1.0.0 - 1.1.0", Some("1.0.5")),
            ("^1.0.0 || ^2.0.0", Some("2.0.0")),
            ("<2", Some("1.2.0")),
            ("*", Some("2.0.0")),
            ("", Some("2.0.0")),
            ("latest", Some("2.0.0")),
            (">=2", Some("2.0.0")),
            ("^3.0.0-rc.0", Some("3.0.0-rc.1")),
            ("^4.0.0", None),
            ("github:user/repo", None),
            ("file:../lib", None),
            ("next", None),
        ] {
            assert_eq!(
                chosen_version(range, &doc).as_deref(),
                expected,
                "range {range:?}"
            );
        }
        let behind = outline(&["1.0.0", "1.5.0"], "1.0.0");
        assert_eq!(
            chosen_version("^1.0.0", &behind).as_deref(),
            Some("1.0.0"),
            "latest wins over a higher version when it satisfies the range"
        );
    }
}
