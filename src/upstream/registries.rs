//! cnpmcore's Registry Management API: the registries packages can be synced from. The
//! configured upstreams (`[[upstreams]]`, `--upstream`) are listed first and are read-only
//! here (the config file owns them); registries added over HTTP live in the database and are
//! usable at once, without a restart.

use std::sync::Arc;

use serde_json::Value;

use super::client::Upstream;
use super::config::{
    check_url, NamePattern, UpstreamConfig, DEFAULT_FAIL_TIMEOUT, DEFAULT_MAX_AGE,
    DEFAULT_MAX_FAILS, DEFAULT_TIMEOUT,
};
use crate::accounts::authz::Admin;
use crate::error::{Error, Result};
use crate::registry::{Reach, Registry};
use crate::store::CommitStamp;

pub const DEFAULT_PAGE_SIZE: u64 = 20;
pub const MAX_PAGE_SIZE: u64 = 100;
const KINDS: [&str; 3] = ["npm", "cnpm", "cnpmcore"];

/// A registry added over HTTP, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRegistry {
    pub id: String,
    pub name: String,
    /// `http(s)://host[:port][/path]`, without a trailing slash.
    pub host: String,
    pub change_stream: String,
    pub user_prefix: String,
    /// `npm`, `cnpm` or `cnpmcore`.
    pub kind: String,
    /// Sent as a Bearer token to the registry; never listed.
    pub auth_token: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A registry as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEntry {
    pub id: String,
    pub name: String,
    pub host: String,
    pub kind: String,
    pub user_prefix: String,
    pub change_stream: String,
    /// From the configuration (read-only over HTTP) rather than the database.
    pub configured: bool,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

impl RegistryEntry {
    fn of_config(config: &UpstreamConfig) -> RegistryEntry {
        RegistryEntry {
            id: config.name.clone(),
            name: config.name.clone(),
            host: config.url.clone(),
            kind: "npm".to_string(),
            user_prefix: String::new(),
            change_stream: String::new(),
            configured: true,
            created_at: None,
            updated_at: None,
        }
    }

    fn of_stored(stored: &StoredRegistry) -> RegistryEntry {
        RegistryEntry {
            id: stored.id.clone(),
            name: stored.name.clone(),
            host: stored.host.clone(),
            kind: stored.kind.clone(),
            user_prefix: stored.user_prefix.clone(),
            change_stream: stored.change_stream.clone(),
            configured: false,
            created_at: Some(stored.created_at.clone()),
            updated_at: Some(stored.updated_at.clone()),
        }
    }
}

/// One page of registries and how many there are in all.
pub struct Page {
    pub entries: Vec<RegistryEntry>,
    pub total: u64,
}

/// `pageSize` (1-100, default 20) and `pageIndex` (from 0) from a query string.
pub fn page_of(page_size: Option<&str>, page_index: Option<&str>) -> Result<(u64, u64)> {
    let number = |key: &str, text: Option<&str>, default: u64| match text {
        None => Ok(default),
        Some(text) => text
            .parse::<u64>()
            .map_err(|_| Error::bad_request(format!("{key} must be a whole number, not {text:?}"))),
    };
    let size = number("pageSize", page_size, DEFAULT_PAGE_SIZE)?;
    if !(1..=MAX_PAGE_SIZE).contains(&size) {
        return Err(Error::bad_request(format!(
            "pageSize must be between 1 and {MAX_PAGE_SIZE}"
        )));
    }
    let index = number("pageIndex", page_index, 0)?;
    Ok((size, index))
}

/// Every registry: the configured upstreams first, then those added over HTTP. Blocking.
pub fn all(registry: &Registry) -> Result<Vec<RegistryEntry>> {
    let mut entries: Vec<RegistryEntry> = registry
        .upstreams
        .all()
        .iter()
        .map(|u| RegistryEntry::of_config(&u.config))
        .collect();
    let stored = registry.store.read(|db| db.stored_registries())?;
    entries.extend(stored.iter().map(RegistryEntry::of_stored));
    Ok(entries)
}

pub fn list(registry: &Registry, page_size: u64, page_index: u64) -> Result<Page> {
    let entries = all(registry)?;
    let total = entries.len() as u64;
    let skip = usize::try_from(page_size.saturating_mul(page_index)).unwrap_or(usize::MAX);
    let take = usize::try_from(page_size).unwrap_or(usize::MAX);
    Ok(Page {
        entries: entries.into_iter().skip(skip).take(take).collect(),
        total,
    })
}

fn no_such_registry(id: &str) -> Error {
    Error::not_found(format!("no registry {id:?}: `GET /-/registry` lists them"))
}

/// By id (a configured upstream's id is its name). Blocking.
pub fn get(registry: &Registry, id: &str) -> Result<RegistryEntry> {
    if let Some(upstream) = registry.upstreams.by_name(id) {
        return Ok(RegistryEntry::of_config(&upstream.config));
    }
    registry
        .store
        .read(|db| db.stored_registry(id))?
        .filter(|stored| stored.id == id)
        .map(|stored| RegistryEntry::of_stored(&stored))
        .ok_or_else(|| no_such_registry(id))
}

/// What `POST /-/registry` takes: `name`, `host`, and optionally `changeStream`, `type`,
/// `userPrefix`, `authToken`.
pub struct NewRegistry {
    pub name: String,
    pub host: String,
    pub change_stream: String,
    pub kind: String,
    pub user_prefix: String,
    pub auth_token: Option<String>,
}

impl NewRegistry {
    pub fn from_json(body: &Value) -> Result<NewRegistry> {
        let text = |key: &str| -> Result<Option<String>> {
            match body.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
                Some(_) => Err(Error::bad_request(format!("{key} must be a string"))),
            }
        };
        if !body.is_object() {
            return Err(Error::bad_request(
                "send a JSON object: {\"name\": \"…\", \"host\": \"https://…\"}",
            ));
        }
        let name = text("name")?
            .filter(|n| !n.is_empty())
            .ok_or_else(|| Error::bad_request("a registry needs a name"))?;
        if name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(Error::bad_request(
                "a registry name is at most 100 characters, without control characters",
            ));
        }
        if name == "admin" {
            return Err(Error::bad_request("\"admin\" cannot name a registry"));
        }
        let host =
            text("host")?.ok_or_else(|| Error::bad_request("a registry needs a host (its URL)"))?;
        let host = check_url(&host)
            .map_err(|reason| Error::bad_request(format!("host {host:?} {reason}")))?;
        let change_stream = match text("changeStream")?.filter(|c| !c.is_empty()) {
            None => String::new(),
            Some(url) => check_url(&url)
                .map_err(|reason| Error::bad_request(format!("changeStream {url:?} {reason}")))?,
        };
        let kind = text("type")?.unwrap_or_else(|| "npm".to_string());
        if !KINDS.contains(&kind.as_str()) {
            return Err(Error::bad_request(format!(
                "type must be one of {}, not {kind:?}",
                KINDS.join(", ")
            )));
        }
        Ok(NewRegistry {
            name,
            host,
            change_stream,
            kind,
            user_prefix: text("userPrefix")?.unwrap_or_default(),
            auth_token: text("authToken")?.filter(|t| !t.is_empty()),
        })
    }
}

/// Adds a registry; 409 when a configured upstream or another registry has the name.
/// Blocking.
pub fn create(registry: &Registry, _admin: &Admin<'_>, new: NewRegistry) -> Result<RegistryEntry> {
    if registry.upstreams.by_name(&new.name).is_some() {
        return Err(Error::conflict(format!(
            "{:?} is a configured upstream already",
            new.name
        )));
    }
    let now = crate::clock::now_iso();
    let stored = StoredRegistry {
        id: hex::encode(rand::random::<[u8; 16]>()),
        name: new.name,
        host: new.host,
        change_stream: new.change_stream,
        user_prefix: new.user_prefix,
        kind: new.kind,
        auth_token: new.auth_token,
        created_at: now.clone(),
        updated_at: now,
    };
    registry.store.write(|db| db.insert_registry(&stored))?;
    Ok(RegistryEntry::of_stored(&stored))
}

/// Removes a registry added over HTTP; a configured upstream is a 409 (edit the config file).
/// Blocking.
pub fn delete(registry: &Registry, _admin: &Admin<'_>, id: &str) -> Result<()> {
    if registry.upstreams.by_name(id).is_some() {
        return Err(Error::conflict(format!(
            "{id:?} is a configured upstream: remove it from the configuration file and \
             restart instead"
        )));
    }
    if registry.store.write(|db| db.delete_registry(id))? {
        Ok(())
    } else {
        Err(no_such_registry(id))
    }
}

/// The upstream a sync with `registryName` uses: a configured upstream of that name, else a
/// registry added over HTTP (by name or id), with the default timeouts. `None`: no such
/// registry. Blocking.
pub fn upstream_named(registry: &Registry, name: &str) -> Result<Option<Arc<Upstream>>> {
    if let Some(upstream) = registry.upstreams.by_name(name) {
        return Ok(Some(upstream));
    }
    let Some(stored) = registry.store.read(|db| db.stored_registry(name))? else {
        return Ok(None);
    };
    Ok(Some(Arc::new(Upstream::new(UpstreamConfig {
        name: stored.name,
        url: stored.host,
        packages: vec![NamePattern::Everything],
        max_age: DEFAULT_MAX_AGE,
        timeout: DEFAULT_TIMEOUT,
        max_fails: DEFAULT_MAX_FAILS,
        fail_timeout: DEFAULT_FAIL_TIMEOUT,
        token_env: None,
        token: stored.auth_token,
        // It serves the names synced from it, not their dependencies.
        prefetch: false,
    }))))
}

/// For a name no configured upstream serves: the registry added over HTTP that a sync
/// fetched it from, so that what was synced is served (and revalidated against its source).
/// Asked on the way to a 404. Blocking; [`synced_source_now`] first spares the common miss
/// the hop to a blocking thread.
pub fn synced_source(registry: &Registry, name: &str) -> Result<Option<Arc<Upstream>>> {
    let stamp = registry.store.commit_stamp();
    match synced_source_name(registry, Reach::Wait, name, stamp)
        .transpose()?
        .flatten()
    {
        Some(source) => upstream_named(registry, &source),
        None => Ok(None),
    }
}

/// [`synced_source`] on the calling thread, when that takes one indexed statement on a free
/// connection or none (remembered as of `stamp`, from `Store::commit_stamp`): a name nothing
/// was synced for (every 404) and one synced from a configured upstream. `None` when the
/// answer needs the blocking path.
pub fn synced_source_now(
    registry: &Registry,
    name: &str,
    stamp: Option<CommitStamp>,
) -> Option<Result<Option<Arc<Upstream>>>> {
    match synced_source_name(registry, Reach::Now, name, stamp)? {
        Err(e) => Some(Err(e)),
        Ok(None) => Some(Ok(None)),
        Ok(Some(source)) => registry.upstreams.by_name(&source).map(|u| Ok(Some(u))),
    }
}

/// The name of the registry `name` was synced from, through the memo both paths share (on
/// PostgreSQL every miss comes the blocking way, and a 404 scan would otherwise ask the
/// database for every name); a private name never has one.
fn synced_source_name(
    registry: &Registry,
    reach: Reach,
    name: &str,
    stamp: Option<CommitStamp>,
) -> Option<Result<Option<String>>> {
    if registry.upstreams.is_private(name) {
        return Some(Ok(None));
    }
    let read = || registry.query(reach, |db| db.cached_document_source(name));
    registry
        .hot_reads
        .synced_sources
        .read_through(stamp, name.to_string(), read)
}
