//! Sync tasks, cnpmcore's Package Sync API: `PUT /-/package/:pkg/syncs` queues one (logged in;
//! `force`/`forceSyncHistory` take an administrator), `GET /-/package/:pkg/syncs/:id` and
//! `…/:id/log` show it; and cnpmjs.org's legacy `PUT /:pkg/sync?nodeps=` and
//! `GET /:pkg/sync/log/:id`. The worker that runs the tasks is started by `serve`.

use std::collections::HashMap;
use std::sync::Arc;

use http::{header, HeaderValue, StatusCode};
use registry_core::accounts::auth::Identity;
use registry_core::accounts::authz::require_writer;
use registry_core::packages::names::PackageName;
use registry_core::upstream::sync::{self, SyncOptions, SyncTask, TreeProgress};
use serde_json::{json, Value};
use warp::filters::path::{FullPath, Tail};
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{boxed, origin, with_state, Route};
use crate::auth::identity;
use crate::body;
use crate::error::{reject, rejection_response};
use crate::package_path::parse_package_subpath;
use crate::reply::json_response;
use crate::state::AppState;

/// What a `/-/package/NAME/syncs…` path names.
enum SyncPath {
    Tasks(PackageName),
    Task(PackageName, String),
    Log(PackageName, String),
}

/// `NAME/syncs[/ID[/log]]` below `/-/package/`; anything else is another route's.
fn syncs_path() -> impl Filter<Extract = (SyncPath,), Error = Rejection> + Clone {
    warp::path!("-" / "package" / ..)
        .and(warp::path::tail())
        .and_then(|tail: Tail| async move {
            if !tail.as_str().contains("/syncs") {
                return Err(warp::reject::not_found());
            }
            let (name, rest) = parse_package_subpath(tail.as_str()).map_err(reject)?;
            match rest.as_slice() {
                [marker] if marker == "syncs" => Ok(SyncPath::Tasks(name)),
                [marker, id] if marker == "syncs" && !id.is_empty() => {
                    Ok(SyncPath::Task(name, id.clone()))
                }
                [marker, id, log] if marker == "syncs" && log == "log" => {
                    Ok(SyncPath::Log(name, id.clone()))
                }
                _ => Err(warp::reject::not_found()),
            }
        })
}

/// The legacy package paths: `/NAME/sync` and `/NAME/sync/log/ID` (either spelling of a
/// scoped name). Every other path is left to the package routes.
enum LegacyPath {
    Sync(PackageName),
    Log(PackageName, String),
}

fn legacy_path() -> impl Filter<Extract = (LegacyPath,), Error = Rejection> + Clone {
    warp::path::full().and_then(|path: FullPath| async move {
        let path = path.as_str();
        if path.starts_with("/-/") || !path.contains("/sync") {
            return Err(warp::reject::not_found());
        }
        let Ok((name, rest)) = parse_package_subpath(path) else {
            return Err(warp::reject::not_found());
        };
        match rest.as_slice() {
            [marker] if marker == "sync" => Ok(LegacyPath::Sync(name)),
            [marker, log, id] if marker == "sync" && log == "log" && !id.is_empty() => {
                Ok(LegacyPath::Log(name, id.clone()))
            }
            _ => Err(warp::reject::not_found()),
        }
    })
}

pub fn routes(state: AppState) -> Route {
    let limit = body::Limits::of(&state.registry().config);

    // PUT /-/package/:pkg/syncs {skipDependencies, force, specificVersions, registryName, …}
    // — queue a sync; logged in (force and forceSyncHistory: admin only)
    let create = syncs_path()
        .and(warp::put())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and(body::optional_json(limit))
        .and_then(create);

    // GET /-/package/:pkg/syncs/:id — the task's state; GET …/:id/log — its log, as text
    let show = syncs_path()
        .and(warp::get())
        .and(origin(state.clone()))
        .and(with_state(state.clone()))
        .and_then(show);

    // PUT /:pkg/sync?nodeps=true — cnpmjs.org's form of the same; logged in
    let legacy_create = legacy_path()
        .and(warp::put())
        .and(warp::query::<HashMap<String, String>>())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and_then(legacy_create);

    // GET /:pkg/sync/log/:id — cnpmjs.org's task log: {ok, syncDone, log, logUrl}
    let legacy_log = legacy_path()
        .and(warp::get())
        .and(origin(state.clone()))
        .and(with_state(state))
        .and_then(legacy_log);

    boxed(
        create
            .or(show)
            .unify()
            .or(legacy_create)
            .unify()
            .or(legacy_log)
            .unify(),
    )
}

async fn queue(
    state: &AppState,
    caller: Option<Arc<Identity>>,
    name: PackageName,
    options: SyncOptions,
) -> Result<SyncTask, Rejection> {
    let task = state
        .run(move |state| {
            let writer = require_writer(caller.as_deref())?;
            sync::create(state.registry(), &writer, &name, &options)
        })
        .await?;
    state.sync_wake().notify_one();
    Ok(task)
}

async fn create(
    path: SyncPath,
    caller: Option<Arc<Identity>>,
    state: AppState,
    body: Value,
) -> Result<Response, Rejection> {
    let SyncPath::Tasks(name) = path else {
        return Err(reject(registry_core::Error::bad_request(
            "queue a sync with PUT /-/package/:name/syncs",
        )));
    };
    let options = SyncOptions::from_json(&body).map_err(reject)?;
    let task = queue(&state, caller, name, options).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({ "ok": true, "id": task.id, "type": sync::TASK_TYPE, "state": task.state }),
    ))
}

fn log_url(origin: &str, name: &str, id: &str) -> String {
    format!("{origin}/-/package/{name}/syncs/{id}/log")
}

fn task_json(task: &SyncTask, progress: &TreeProgress, origin: &str) -> Value {
    let name = task.package.as_str();
    json!({
        "ok": true,
        "id": task.id,
        "type": sync::TASK_TYPE,
        "state": task.state,
        "logUrl": log_url(origin, name, &task.id),
        "package": name,
        "registryName": task.registry,
        "error": task.error,
        "attempts": task.attempts,
        "rootId": task.root_id,
        "parentId": task.parent_id,
        "createdAt": task.created_at,
        "updatedAt": task.updated_at,
        // The task and the dependencies it queued (and theirs).
        "tree": progress,
    })
}

async fn show(path: SyncPath, origin: String, state: AppState) -> Result<Response, Rejection> {
    match path {
        SyncPath::Tasks(_) => Err(warp::reject::not_found()),
        SyncPath::Task(name, id) => {
            let (task, progress) = state
                .run(move |state| sync::get(state.registry(), &name, &id))
                .await?;
            Ok(json_response(
                StatusCode::OK,
                &task_json(&task, &progress, &origin),
            ))
        }
        SyncPath::Log(name, id) => {
            let text = state
                .run(move |state| sync::log(state.registry(), &name, &id))
                .await?;
            let mut response = Response::new(text.into());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            Ok(response)
        }
    }
}

/// Once a legacy path matched, its answer is final: the package routes would take `PUT
/// /:pkg/sync` for a dist-tag if a refusal fell through to them.
fn settled(answer: Result<Response, Rejection>) -> Result<Response, Rejection> {
    Ok(answer.unwrap_or_else(|rejection| rejection_response(&rejection)))
}

async fn legacy_create(
    path: LegacyPath,
    query: HashMap<String, String>,
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    let LegacyPath::Sync(name) = path else {
        return Err(warp::reject::not_found());
    };
    settled(legacy_queue(name, query, caller, state).await)
}

async fn legacy_queue(
    name: PackageName,
    query: HashMap<String, String>,
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    let options = SyncOptions {
        skip_dependencies: query.get("nodeps").is_some_and(|v| v == "true"),
        ..SyncOptions::default()
    };
    let task = queue(&state, caller, name, options).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({ "ok": true, "logId": task.id }),
    ))
}

async fn legacy_log(
    path: LegacyPath,
    origin: String,
    state: AppState,
) -> Result<Response, Rejection> {
    let LegacyPath::Log(name, id) = path else {
        return Err(warp::reject::not_found());
    };
    settled(legacy_report(name, id, origin, state).await)
}

async fn legacy_report(
    name: PackageName,
    id: String,
    origin: String,
    state: AppState,
) -> Result<Response, Rejection> {
    let (task, progress, log) = state
        .run(move |state| {
            let (task, progress) = sync::get(state.registry(), &name, &id)?;
            let log = sync::log(state.registry(), &name, &id)?;
            Ok((task, progress, log))
        })
        .await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "ok": true,
            "syncDone": task.finished() && progress.finished == progress.total,
            "state": task.state,
            "log": log,
            "logUrl": log_url(&origin, &task.package, &task.id),
        }),
    ))
}
