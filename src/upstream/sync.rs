//! Sync tasks (cnpmcore's Package Sync API): a durable queue in the database. A task is
//! created `waiting`; a worker (started by `serve`) claims it (`processing`), fetches the
//! package's documents and the tarball of every version (or of `specificVersions`) through the
//! proxy — which verifies each against its integrity and stores it — so that the package is
//! served while the upstream is down, queues its dependencies as tasks of the same tree (each
//! name once per tree), and ends it `success` or `error`. Every step is a timestamped log line.
//! A task found `processing` at start-up was interrupted and is queued again.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::client::Upstream;
use super::documents::dependencies_of;
use super::proxy;
use super::registries;
use crate::accounts::authz::{require_admin, Writer};
use crate::error::{Error, Result};
use crate::packages::names::{validate_version, PackageName};
use crate::packages::packument::PackumentFlavor;
use crate::registry::blocking;
use crate::registry::Registry;

pub const WAITING: &str = "waiting";
pub const PROCESSING: &str = "processing";
pub const SUCCESS: &str = "success";
pub const ERROR: &str = "error";
/// The `type` of every task, as cnpmcore names it.
pub const TASK_TYPE: &str = "sync_package";
/// A task interrupted this many times (a crash while syncing it, each time) is given up.
const MAX_ATTEMPTS: u64 = 3;
/// How often an idle worker looks for tasks queued by another process (the CLI).
const IDLE_POLL: Duration = Duration::from_millis(500);
/// Log lines are written in batches of at most this many (one transaction each).
const LOG_BATCH: usize = 20;

/// A task as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncTask {
    pub id: String,
    pub package: String,
    /// The `registryName` asked for (none: the upstream that serves the name).
    pub registry: Option<String>,
    pub state: String,
    /// [`SyncOptions`] as JSON.
    pub options: String,
    pub root_id: String,
    pub parent_id: Option<String>,
    pub created_by: Option<String>,
    pub error: Option<String>,
    /// How many times a worker claimed it.
    pub attempts: u64,
    pub created_at: String,
    pub updated_at: String,
    pub claimed_at: Option<String>,
}

impl SyncTask {
    pub fn finished(&self) -> bool {
        self.state == SUCCESS || self.state == ERROR
    }

    pub fn options(&self) -> SyncOptions {
        serde_json::from_str(&self.options).unwrap_or_default()
    }
}

/// A task to queue.
pub struct NewSyncTask<'a> {
    pub id: &'a str,
    pub package: &'a str,
    pub registry: Option<&'a str>,
    pub options: &'a str,
    pub root_id: &'a str,
    pub parent_id: Option<&'a str>,
    pub created_by: Option<&'a str>,
    pub now: &'a str,
}

/// How far the tasks of one tree (a task and the dependencies it queued) are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeProgress {
    pub total: u64,
    /// `success` or `error`.
    pub finished: u64,
    pub errors: u64,
}

/// The body of `PUT /-/package/:name/syncs` (cnpmcore's field names).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SyncOptions {
    pub skip_dependencies: bool,
    pub sync_download_data: bool,
    /// Admin only: jumps the queue.
    pub force: bool,
    /// Admin only. Every version is synced anyway (unless `specific_versions`).
    pub force_sync_history: bool,
    pub tips: Option<String>,
    pub registry_name: Option<String>,
    pub specific_versions: Option<Vec<String>>,
}

impl SyncOptions {
    /// Reads a request body: booleans, strings, and `specificVersions` as a JSON array or
    /// (as cnpmcore documents it) a string holding one. An empty body is all defaults.
    pub fn from_json(body: &Value) -> Result<SyncOptions> {
        let map = match body {
            Value::Null => return Ok(SyncOptions::default()),
            Value::Object(map) => map,
            _ => return Err(Error::bad_request("the sync options must be a JSON object")),
        };
        let flag = |key: &str| -> Result<bool> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(false),
                Some(Value::Bool(b)) => Ok(*b),
                Some(Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
                Some(_) => Err(Error::bad_request(format!("{key} must be true or false"))),
            }
        };
        let text = |key: &str| -> Result<Option<String>> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
                Some(_) => Err(Error::bad_request(format!("{key} must be a string"))),
            }
        };
        let tips = text("tips")?;
        if tips.as_ref().is_some_and(|t| t.chars().count() > 1024) {
            return Err(Error::bad_request("tips is at most 1024 characters"));
        }
        let specific_versions = match map.get("specificVersions") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => {
                Some(versions_of(&serde_json::from_str(s).map_err(|_| {
                    Error::bad_request(
                        "specificVersions must be a JSON array of versions, like \
                         \"[\\\"1.0.0\\\", \\\"1.0.1\\\"]\"",
                    )
                })?)?)
            }
            Some(list) => Some(versions_of(list)?),
        };
        Ok(SyncOptions {
            skip_dependencies: flag("skipDependencies")?,
            sync_download_data: flag("syncDownloadData")?,
            force: flag("force")?,
            force_sync_history: flag("forceSyncHistory")?,
            tips,
            registry_name: text("registryName")?,
            specific_versions,
        })
    }
}

fn versions_of(list: &Value) -> Result<Vec<String>> {
    let items = list
        .as_array()
        .ok_or_else(|| Error::bad_request("specificVersions must be an array of versions"))?;
    if items.is_empty() || items.len() > 1000 {
        return Err(Error::bad_request(
            "specificVersions must list between 1 and 1000 versions",
        ));
    }
    let mut versions = Vec::with_capacity(items.len());
    for item in items {
        let version = item
            .as_str()
            .ok_or_else(|| Error::bad_request("specificVersions must be an array of strings"))?;
        validate_version(version)?;
        if !versions.iter().any(|v| v == version) {
            versions.push(version.to_string());
        }
    }
    Ok(versions)
}

fn new_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// Queues a sync of `name`. `force` and `forceSyncHistory` take an administrator. Refused at
/// once: a blocked name (451), an unknown `registryName` (404), a name no upstream serves
/// (400). A local or private name is queued, and its task says why nothing was synced.
/// Blocking.
pub fn create(
    registry: &Registry,
    writer: &Writer<'_>,
    name: &PackageName,
    options: &SyncOptions,
) -> Result<SyncTask> {
    if options.force || options.force_sync_history {
        require_admin(Some(writer.identity())).map_err(|_| {
            Error::forbidden("force and forceSyncHistory are for administrators only")
        })?;
    }
    let (local, block) = registry.store.read(|db| {
        Ok((
            db.package_by_name(name.as_str())?.is_some(),
            db.package_block_reason(name.as_str())?,
        ))
    })?;
    if let Some(reason) = block {
        return Err(crate::packages::blocks::blocked(name.as_str(), &reason));
    }
    match &options.registry_name {
        Some(wanted) => {
            if registries::upstream_named(registry, wanted)?.is_none() {
                return Err(Error::not_found(format!(
                    "no registry named {wanted:?}: `GET /-/registry` lists them"
                )));
            }
        }
        None => {
            let servable = local
                || registry.upstreams.is_private(name.as_str())
                || registry.upstreams.for_name(name.as_str()).is_some();
            if !servable {
                return Err(Error::bad_request(format!(
                    "no upstream serves {name}: configure one (`[[upstreams]]`, or `registry \
                     serve --upstream URL`) or name a registry with registryName"
                )));
            }
        }
    }
    let id = new_id();
    let options_json = serde_json::to_string(options)
        .map_err(|e| Error::Storage(format!("cannot serialise sync options: {e}")))?;
    let now = crate::clock::now_iso();
    let user = writer.identity().user.name.clone();
    registry.store.write(|db| {
        db.insert_sync_task(&NewSyncTask {
            id: &id,
            package: name.as_str(),
            registry: options.registry_name.as_deref(),
            options: &options_json,
            root_id: &id,
            parent_id: None,
            created_by: Some(&user),
            now: &now,
        })?;
        let mut line = format!("[queued] sync of {name} requested by {user}");
        if let Some(tips) = &options.tips {
            line.push_str(&format!(": {tips}"));
        }
        db.append_sync_log(&id, &now, &line)
    })?;
    registry
        .store
        .read(|db| db.sync_task(&id))?
        .ok_or_else(|| Error::Storage(format!("sync task {id} vanished")))
}

/// A task of `name` and how far its tree is; 404 when there is no such task of that package.
/// Blocking.
pub fn get(registry: &Registry, name: &PackageName, id: &str) -> Result<(SyncTask, TreeProgress)> {
    registry.store.read(|db| {
        let task = db
            .sync_task(id)?
            .filter(|t| t.package == name.as_str())
            .ok_or_else(|| Error::not_found(format!("no sync task {id:?} of {name}")))?;
        let progress = db.sync_tree_progress(&task.root_id)?;
        Ok((task, progress))
    })
}

/// A task's log: one `[timestamp] text` line each. Blocking.
pub fn log(registry: &Registry, name: &PackageName, id: &str) -> Result<String> {
    let (task, _) = get(registry, name, id)?;
    let lines = registry.store.read(|db| db.sync_log(&task.id))?;
    let mut text = String::new();
    for (at, line) in lines {
        text.push_str(&format!("[{at}] {line}\n"));
    }
    Ok(text)
}

/// At start-up: tasks left `processing` by a process that stopped go back to `waiting`.
/// Blocking.
pub fn resume_interrupted(registry: &Registry) -> Result<usize> {
    let now = crate::clock::now_iso();
    registry
        .store
        .write(|db| db.requeue_interrupted_sync_tasks(&now))
}

/// Claims the next waiting task, if any.
pub async fn claim(registry: &Arc<Registry>) -> Result<Option<SyncTask>> {
    blocking(registry, |r| {
        // Idle workers look often: only a read, unless there is something to claim.
        if !r.store.read(|db| db.sync_task_waiting())? {
            return Ok(None);
        }
        let now = crate::clock::now_iso();
        r.store.write(|db| db.claim_sync_task(&now))
    })
    .await
}

/// A worker: claims and runs tasks one at a time, forever (until its task is aborted). An
/// idle worker waits for `wake` or looks again after a short while.
pub async fn work(registry: Arc<Registry>, wake: Arc<tokio::sync::Notify>) {
    loop {
        match claim(&registry).await {
            Ok(Some(task)) => run(&registry, task).await,
            Ok(None) => {
                let _ = tokio::time::timeout(IDLE_POLL, wake.notified()).await;
            }
            Err(err) => {
                tracing::warn!("claiming a sync task failed (will retry): {err}");
                tokio::time::sleep(IDLE_POLL).await;
            }
        }
    }
}

/// Timestamped log lines of one task, written in batches.
struct Log {
    registry: Arc<Registry>,
    task_id: String,
    pending: Vec<(String, String)>,
}

impl Log {
    async fn line(&mut self, text: impl Into<String>) {
        self.pending.push((crate::clock::now_iso(), text.into()));
        if self.pending.len() >= LOG_BATCH {
            self.flush().await;
        }
    }

    async fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let lines = std::mem::take(&mut self.pending);
        let id = self.task_id.clone();
        let written = blocking(&self.registry, move |r| {
            r.store.write(|db| {
                for (at, line) in &lines {
                    db.append_sync_log(&id, at, line)?;
                }
                Ok(())
            })
        })
        .await;
        if let Err(err) = written {
            tracing::warn!(task = %self.task_id, "writing a sync log failed: {err}");
        }
    }
}

/// Runs a claimed task to its end, and records the end.
pub async fn run(registry: &Arc<Registry>, task: SyncTask) {
    let mut log = Log {
        registry: registry.clone(),
        task_id: task.id.clone(),
        pending: Vec::new(),
    };
    let outcome = sync(registry, &task, &mut log).await;
    let (state, error) = match &outcome {
        Ok(summary) => {
            log.line(format!("[done] {summary}")).await;
            (SUCCESS, None)
        }
        Err(err) => {
            log.line(format!("[error] {}", err.public_message())).await;
            (ERROR, Some(err.public_message()))
        }
    };
    log.flush().await;
    let id = task.id.clone();
    let finished = blocking(registry, move |r| {
        let now = crate::clock::now_iso();
        r.store
            .write(|db| db.finish_sync_task(&id, state, error.as_deref(), &now))
    })
    .await;
    match finished {
        Ok(()) => tracing::info!(task = %task.id, package = %task.package, "sync task {state}"),
        Err(err) => tracing::warn!(task = %task.id, "recording the end of a sync failed: {err}"),
    }
}

/// Why a package is not synced at all (the task still succeeds).
pub(super) fn skip_reason(registry: &Registry, name: &PackageName) -> Result<Option<String>> {
    let (local, block) = registry.store.read(|db| {
        Ok((
            db.package_by_name(name.as_str())?.is_some(),
            db.package_block_reason(name.as_str())?,
        ))
    })?;
    if let Some(reason) = block {
        return Err(crate::packages::blocks::blocked(name.as_str(), &reason));
    }
    if local {
        return Ok(Some(format!(
            "{name} is published on this registry: a local package is never synced"
        )));
    }
    if registry.upstreams.is_private(name.as_str()) {
        return Ok(Some(format!(
            "{name} is private here (the `private` setting): it is never asked for upstream"
        )));
    }
    Ok(None)
}

async fn sync(registry: &Arc<Registry>, task: &SyncTask, log: &mut Log) -> Result<String> {
    let name = PackageName::parse(&task.package)?;
    let options = task.options();
    if task.attempts > MAX_ATTEMPTS {
        return Err(Error::conflict(format!(
            "the task was interrupted {} times; giving up",
            task.attempts - 1
        )));
    }
    if task.attempts > 1 {
        log.line(format!(
            "[resume] attempt {} (the registry restarted while syncing)",
            task.attempts
        ))
        .await;
    }
    let checked = name.clone();
    if let Some(reason) = blocking(registry, move |r| skip_reason(r, &checked)).await? {
        log.line(format!("[skip] {reason}")).await;
        return Ok(format!("nothing to sync: {reason}"));
    }
    let upstream = upstream_of(registry, task, &name).await?;
    log.line(format!(
        "[start] syncing {name} from {} ({})",
        upstream.name(),
        upstream.config.url
    ))
    .await;
    log.flush().await;

    // Asked again however fresh the cached documents are: a sync is for what is there now.
    let expired = name.clone();
    blocking(registry, move |r| {
        r.upstreams.forget(expired.as_str());
        r.store
            .write(|db| db.expire_cached_documents(expired.as_str()))
    })
    .await?;
    for flavor in [PackumentFlavor::Full, PackumentFlavor::Abbreviated] {
        let document = proxy::document(registry, &upstream, &name, flavor).await?;
        if document.outcome == proxy::CacheOutcome::Stale {
            log.line(format!(
                "[warn] {} did not answer; using the {flavor:?} document cached earlier",
                upstream.name()
            ))
            .await;
        }
    }
    let read = name.clone();
    let (body, _) = blocking(registry, move |r| {
        proxy::document_body(r, &read, PackumentFlavor::Full)
    })
    .await?;
    let doc: Value = serde_json::from_slice(&body).map_err(|e| {
        Error::BadGateway(format!("the stored document of {name} is not JSON: {e}"))
    })?;
    let versions = doc
        .get("versions")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut failures = Vec::new();
    let wanted: Vec<String> = match &options.specific_versions {
        Some(list) => {
            for missing in list.iter().filter(|v| !versions.contains_key(v.as_str())) {
                log.line(format!(
                    "[missing] {name}@{missing} is not on {}",
                    upstream.name()
                ))
                .await;
                failures.push(format!("{missing} (not on the upstream)"));
            }
            list.iter()
                .filter(|v| versions.contains_key(v.as_str()))
                .cloned()
                .collect()
        }
        None => versions.keys().cloned().collect(),
    };
    log.line(format!(
        "[versions] {} of {} versions to sync",
        wanted.len(),
        versions.len()
    ))
    .await;

    let mut bytes = 0u64;
    for version in &wanted {
        let file = name.tarball_file(version);
        match proxy::tarball(registry, &upstream, &name, &file).await {
            Ok(tarball) => {
                bytes += tarball.len;
                log.line(format!(
                    "[tarball] {name}@{version}: {} bytes, sha512 {}…, stored",
                    tarball.len,
                    &tarball.sha512_hex[..16.min(tarball.sha512_hex.len())]
                ))
                .await;
            }
            Err(err) => {
                log.line(format!(
                    "[tarball] {name}@{version} failed: {}",
                    err.public_message()
                ))
                .await;
                failures.push(version.clone());
            }
        }
    }
    log.flush().await;

    let mut queued = 0;
    if options.skip_dependencies {
        log.line("[deps] skipped (skipDependencies)").await;
    } else {
        let dependencies = dependencies_of(&versions, &wanted);
        if !dependencies.is_empty() {
            queued = queue_dependencies(registry, task, dependencies, log).await?;
        }
    }
    if !failures.is_empty() {
        return Err(Error::BadGateway(format!(
            "{} of {} versions of {name} could not be synced: {}",
            failures.len(),
            options
                .specific_versions
                .as_ref()
                .map_or(wanted.len(), Vec::len),
            failures.join(", ")
        )));
    }
    Ok(format!(
        "synced {name}: {} versions, {bytes} bytes of tarballs, {queued} dependencies queued",
        wanted.len()
    ))
}

async fn upstream_of(
    registry: &Arc<Registry>,
    task: &SyncTask,
    name: &PackageName,
) -> Result<Arc<Upstream>> {
    match task.registry.clone() {
        Some(wanted) => {
            let lookup = wanted.clone();
            blocking(registry, move |r| registries::upstream_named(r, &lookup))
                .await?
                .ok_or_else(|| Error::not_found(format!("registry {wanted:?} no longer exists")))
        }
        None => registry
            .upstreams
            .for_name(name.as_str())
            .ok_or_else(|| Error::bad_request(format!("no upstream serves {name} (any longer)"))),
    }
}

async fn queue_dependencies(
    registry: &Arc<Registry>,
    task: &SyncTask,
    dependencies: BTreeSet<String>,
    log: &mut Log,
) -> Result<usize> {
    let mut valid = Vec::new();
    for dependency in dependencies {
        match PackageName::parse(&dependency) {
            Ok(name) => valid.push(name.as_str().to_string()),
            Err(_) => {
                log.line(format!(
                    "[deps] {dependency:?} is not a package name; skipped"
                ))
                .await
            }
        }
    }
    let parent = task.clone();
    let candidates = valid.clone();
    let queued = blocking(registry, move |r| {
        let now = crate::clock::now_iso();
        r.store.write(|db| {
            let mut queued = Vec::new();
            for name in &candidates {
                let id = new_id();
                let inserted = db.insert_sync_task(&NewSyncTask {
                    id: &id,
                    package: name,
                    registry: parent.registry.as_deref(),
                    options: "{}",
                    root_id: &parent.root_id,
                    parent_id: Some(&parent.id),
                    created_by: parent.created_by.as_deref(),
                    now: &now,
                })?;
                if inserted {
                    db.append_sync_log(
                        &id,
                        &now,
                        &format!(
                            "[queued] a dependency of {} (task {})",
                            parent.package, parent.id
                        ),
                    )?;
                    queued.push(name.clone());
                }
            }
            Ok(queued)
        })
    })
    .await?;
    log.line(format!(
        "[deps] {} dependencies: {} queued ({}), {} already in this sync",
        valid.len(),
        queued.len(),
        queued.join(", "),
        valid.len() - queued.len()
    ))
    .await;
    Ok(queued.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn options_read_cnpmcore_fields_and_refuse_nonsense() -> Result<()> {
        let options = SyncOptions::from_json(&json!({
            "skipDependencies": true,
            "tips": "because",
            "specificVersions": "[\"1.0.0\", \"1.0.1\", \"1.0.0\"]",
        }))?;
        assert!(options.skip_dependencies);
        assert_eq!(options.tips.as_deref(), Some("because"));
        assert_eq!(
            options.specific_versions,
            Some(vec!["1.0.0".to_string(), "1.0.1".to_string()])
        );
        let array = SyncOptions::from_json(&json!({"specificVersions": ["2.0.0"]}))?;
        assert_eq!(array.specific_versions, Some(vec!["2.0.0".to_string()]));
        assert_eq!(
            SyncOptions::from_json(&Value::Null)?,
            SyncOptions::default()
        );
        for bad in [
            json!({"force": "yes"}),
            json!({"specificVersions": "not json"}),
            json!({"specificVersions": ["x.y"]}),
            json!({"specificVersions": []}),
            json!({"registryName": 3}),
            json!([1]),
        ] {
            assert!(SyncOptions::from_json(&bad).is_err(), "{bad} refused");
        }
        Ok(())
    }
}
