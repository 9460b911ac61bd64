//! Hooks, cnpmcore's Hook Management API (npm's `npm hook`, libnpmhook): create, list, show,
//! update and delete the caller's hooks (an administrator: anyone's; a hook of someone else's
//! is a 404). Our extensions: `GET …/hook/:id/deliveries` (the recent deliveries) and
//! `POST …/hook/:id/ping` (`registry hook test`). Secrets are never answered.

use std::collections::HashMap;
use std::sync::Arc;

use http::StatusCode;
use registry_core::accounts::auth::Identity;
use registry_core::accounts::authz::require_writer;
use registry_core::hooks::{self, Delivery, Hook, HookInput};
use serde_json::{json, Value};
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{boxed, with_state, Route};
use crate::auth::{identity, logged_in};
use crate::body;
use crate::error::reject;
use crate::reply::json_response;
use crate::state::AppState;

/// Hooks per page of `GET /-/npm/v1/hooks` when `limit` is not given.
const DEFAULT_LIMIT: u64 = 100;
/// Deliveries answered when `limit` is not given.
const DEFAULT_DELIVERIES: u64 = 20;

pub fn routes(state: AppState) -> Route {
    let limit = body::Limits::of(&state.registry().config);

    // POST /-/npm/v1/hooks/hook {type, name, endpoint, secret} — a new hook of the caller's
    let create = warp::path!("-" / "npm" / "v1" / "hooks" / "hook")
        .and(warp::post())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and(body::json(limit))
        .and_then(create);

    // GET /-/npm/v1/hooks?package=&limit=&offset= — the caller's hooks (admin: everyone's)
    let list = warp::path!("-" / "npm" / "v1" / "hooks")
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and_then(list);

    // GET /-/npm/v1/hooks/hook/:id — one hook
    let show = warp::path!("-" / "npm" / "v1" / "hooks" / "hook" / String)
        .and(warp::get())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and_then(show);

    // PUT /-/npm/v1/hooks/hook/:id {endpoint, secret?} — a new endpoint (and secret)
    let update = warp::path!("-" / "npm" / "v1" / "hooks" / "hook" / String)
        .and(warp::put())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and(body::json(limit))
        .and_then(update);

    // DELETE /-/npm/v1/hooks/hook/:id — the hook and its undelivered events
    let delete = warp::path!("-" / "npm" / "v1" / "hooks" / "hook" / String)
        .and(warp::delete())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and_then(delete);

    // GET /-/npm/v1/hooks/hook/:id/deliveries?limit= — its recent deliveries, newest first
    let deliveries = warp::path!("-" / "npm" / "v1" / "hooks" / "hook" / String / "deliveries")
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and_then(deliveries);

    // POST /-/npm/v1/hooks/hook/:id/ping — queue a signed `ping` event to it
    let ping = warp::path!("-" / "npm" / "v1" / "hooks" / "hook" / String / "ping")
        .and(warp::post())
        .and(identity(state.clone()))
        .and(with_state(state))
        .and_then(ping);

    boxed(
        create
            .or(list)
            .unify()
            .or(show)
            .unify()
            .or(update)
            .unify()
            .or(delete)
            .unify()
            .or(deliveries)
            .unify()
            .or(ping)
            .unify(),
    )
}

/// A hook as the API shows it: the seed's fields, with npm's `username` and
/// `response_code`; never the secret.
fn hook_json(hook: &Hook) -> Value {
    json!({
        "id": hook.id,
        "username": hook.owner,
        "name": hook.name,
        "type": hook.kind.as_str(),
        "endpoint": hook.endpoint,
        "created": hook.created_at,
        "updated": hook.updated_at,
        "delivered": hook.delivered,
        "last_delivery": hook.last_delivery,
        "response_code": hook.last_response_code,
    })
}

fn delivery_json(delivery: &Delivery) -> Value {
    json!({
        "id": delivery.id,
        "event": delivery.event,
        "package": delivery.package,
        "status": delivery.state,
        "attempts": delivery.attempts,
        "response_code": delivery.response_code,
        "duration_ms": delivery.duration_ms,
        "error": delivery.error,
        "created": delivery.created_at,
        "last_attempt": delivery.last_attempt_at,
        "next_attempt": delivery.next_attempt(),
    })
}

async fn create(
    caller: Option<Arc<Identity>>,
    state: AppState,
    body: Value,
) -> Result<Response, Rejection> {
    let caller = logged_in(caller, "create a hook")?;
    let input = HookInput::from_json(&body).map_err(reject)?;
    let hook = state
        .run(move |state| {
            let writer = require_writer(Some(&caller))?;
            hooks::create(state.registry(), &writer, None, &input)
        })
        .await?;
    Ok(json_response(StatusCode::CREATED, &hook_json(&hook)))
}

async fn list(
    query: HashMap<String, String>,
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    let caller = logged_in(caller, "list hooks")?;
    let (limit, offset) = hooks::page_of(
        query.get("limit").map(String::as_str),
        query.get("offset").map(String::as_str),
        DEFAULT_LIMIT,
    )
    .map_err(reject)?;
    let package = query.get("package").filter(|p| !p.is_empty()).cloned();
    let (page, total) = state
        .run(move |state| hooks::list(state.registry(), &caller, package.as_deref(), limit, offset))
        .await?;
    let objects: Vec<Value> = page.iter().map(hook_json).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "objects": objects, "total": total, "urls": {} }),
    ))
}

async fn show(
    id: String,
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    let caller = logged_in(caller, "see a hook")?;
    let hook = state
        .run(move |state| hooks::get(state.registry(), &caller, &id))
        .await?;
    Ok(json_response(StatusCode::OK, &hook_json(&hook)))
}

async fn update(
    id: String,
    caller: Option<Arc<Identity>>,
    state: AppState,
    body: Value,
) -> Result<Response, Rejection> {
    let caller = logged_in(caller, "change a hook")?;
    let hook = state
        .run(move |state| {
            let writer = require_writer(Some(&caller))?;
            hooks::update(state.registry(), &writer, &id, &body)
        })
        .await?;
    Ok(json_response(StatusCode::OK, &hook_json(&hook)))
}

async fn delete(
    id: String,
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    let caller = logged_in(caller, "delete a hook")?;
    let (hook, deleted) = state
        .run(move |state| {
            let writer = require_writer(Some(&caller))?;
            hooks::delete(state.registry(), &writer, &id)
        })
        .await?;
    let mut body = hook_json(&hook);
    body["deleted"] = json!(deleted);
    Ok(json_response(StatusCode::OK, &body))
}

async fn deliveries(
    id: String,
    query: HashMap<String, String>,
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    let caller = logged_in(caller, "see a hook's deliveries")?;
    let (limit, _) = hooks::page_of(
        query.get("limit").map(String::as_str),
        None,
        DEFAULT_DELIVERIES,
    )
    .map_err(reject)?;
    let list = state
        .run(move |state| hooks::deliveries(state.registry(), &caller, &id, limit))
        .await?;
    let objects: Vec<Value> = list.iter().map(delivery_json).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "objects": objects }),
    ))
}

async fn ping(
    id: String,
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    let caller = logged_in(caller, "test a hook")?;
    let delivery = state
        .run(move |state| {
            let writer = require_writer(Some(&caller))?;
            hooks::ping(state.registry(), &writer, &id)
        })
        .await?;
    Ok(json_response(
        StatusCode::ACCEPTED,
        &json!({ "ok": true, "delivery": delivery }),
    ))
}
