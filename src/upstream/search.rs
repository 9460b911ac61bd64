//! `npm search` across the first upstream: local hits first, then the upstream's own
//! `/-/v1/search` answer for the same query, without the names that are local (or private,
//! blocked, or not served by that upstream), bounded by the upstream's timeout. Any failure
//! of the upstream leaves the local results as they are.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;

use crate::error::Result;
use crate::packages::search::{SearchRequest, SearchResults};
use crate::registry::Registry;

/// The largest search answer read from an upstream.
const MAX_SEARCH_BYTES: u64 = 8 * 1024 * 1024;

/// `local` with the first upstream's results appended (up to `request.size` in all). Without
/// an upstream, `local` unchanged.
pub async fn merge(
    registry: &Arc<Registry>,
    request: &SearchRequest,
    local: SearchResults,
) -> SearchResults {
    let Some(upstream) = registry.upstreams.all().first().cloned() else {
        return local;
    };
    if !upstream.available() {
        return local;
    }
    let size = request.size.to_string();
    let from = request.from.to_string();
    let base = format!("{}/-/v1/search", upstream.config.url);
    let url = match reqwest::Url::parse_with_params(
        &base,
        [
            ("text", request.text.as_str()),
            ("size", &size),
            ("from", &from),
        ],
    ) {
        Ok(url) => url,
        Err(e) => {
            tracing::debug!(upstream = upstream.name(), "search URL {base}: {e}");
            return local;
        }
    };
    let fetched = upstream
        .fetch_bytes(registry.upstreams.client(), url.as_str(), MAX_SEARCH_BYTES)
        .await;
    let (total, objects) = match fetched {
        Ok((status, body)) if status.is_success() => match parse(&body) {
            Some(parsed) => parsed,
            None => {
                tracing::debug!(
                    upstream = upstream.name(),
                    "search answer is not npm's shape"
                );
                return local;
            }
        },
        Ok((status, _)) => {
            tracing::debug!(upstream = upstream.name(), %status, "upstream search refused");
            return local;
        }
        Err(failure) => {
            tracing::debug!(
                upstream = upstream.name(),
                "upstream search failed: {failure:?}"
            );
            return local;
        }
    };
    let offered = objects.len() as u64;
    let candidates: Vec<(String, Value)> = objects
        .into_iter()
        .filter_map(|object| Some((package_name(&object)?.to_string(), object)))
        .filter(|(name, _)| !registry.upstreams.is_private(name) && upstream.config.serves(name))
        .collect();
    let names: Vec<String> = candidates.iter().map(|(n, _)| n.clone()).collect();
    let local_names = match known_here(registry, names).await {
        Ok(found) => found,
        Err(e) => {
            tracing::debug!("search: cannot check upstream names against local ones: {e}");
            return local;
        }
    };
    let mut seen: HashSet<String> = local
        .objects
        .iter()
        .filter_map(|o| package_name(o).map(str::to_string))
        .collect();
    let mut merged = local.objects;
    let mut added = 0u64;
    for (name, object) in candidates {
        if local_names.contains(&name) || !seen.insert(name) {
            continue;
        }
        merged.push(with_maintainers(object));
        added += 1;
    }
    merged.truncate(usize::try_from(request.size).unwrap_or(usize::MAX));
    SearchResults {
        // The upstream's matches that were dropped here (local, private, duplicates) are
        // not counted twice.
        total: local.total + total.saturating_sub(offered - added),
        objects: merged,
    }
}

/// `(total, objects)` of an npm search answer.
fn parse(body: &[u8]) -> Option<(u64, Vec<Value>)> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let objects = value.get("objects")?.as_array()?.clone();
    let total = value
        .get("total")
        .and_then(Value::as_u64)
        .unwrap_or(objects.len() as u64);
    Some((total, objects))
}

fn package_name(object: &Value) -> Option<&str> {
    object.get("package")?.get("name")?.as_str()
}

/// npm crashes on a result without `package.maintainers` (an array).
fn with_maintainers(mut object: Value) -> Value {
    if let Some(package) = object.get_mut("package").and_then(Value::as_object_mut) {
        if !package.get("maintainers").is_some_and(Value::is_array) {
            package.insert("maintainers".into(), Value::Array(Vec::new()));
        }
    }
    object
}

/// Which of `names` exist here (published, unpublished or blocked): those are answered
/// locally, never from the upstream.
async fn known_here(registry: &Arc<Registry>, names: Vec<String>) -> Result<HashSet<String>> {
    let registry = registry.clone();
    tokio::task::spawn_blocking(move || {
        registry.store.read(|db| {
            let mut found = HashSet::new();
            for name in names {
                if db.package_by_name(&name)?.is_some() || db.package_block_reason(&name)?.is_some()
                {
                    found.insert(name);
                }
            }
            Ok(found)
        })
    })
    .await
    .map_err(|e| crate::error::Error::Storage(format!("a blocking task failed: {e}")))?
}
