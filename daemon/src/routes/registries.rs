//! cnpmcore's Registry Management API: `GET /-/registry` (paged), `GET /-/registry/:id`, and,
//! for administrators, `POST /-/registry` and `DELETE /-/registry/:id`. Configured upstreams
//! are listed too and cannot be deleted here (409). `/-/registry/admin/…` is admin.rs's: no
//! registry is ever called `admin`.

use std::collections::HashMap;
use std::sync::Arc;

use http::StatusCode;
use registry_core::accounts::auth::Identity;
use registry_core::accounts::authz::require_admin;
use registry_core::upstream::registries::{self, NewRegistry, RegistryEntry};
use registry_core::Error;
use serde_json::{json, Value};
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{boxed, with_state, Route};
use crate::auth::identity;
use crate::body;
use crate::error::reject;
use crate::reply::json_response;
use crate::state::AppState;

/// A registry id from the path; `admin` belongs to the admin API.
fn registry_id() -> impl Filter<Extract = (String,), Error = Rejection> + Clone {
    warp::path::param::<String>().and_then(|id: String| async move {
        if id == "admin" {
            return Err(warp::reject::not_found());
        }
        Ok(id)
    })
}

pub fn routes(state: AppState) -> Route {
    let limit = body::Limits::of(&state.registry().config);

    // GET /-/registry?pageSize=&pageIndex= — every registry, configured ones first
    let list = warp::path!("-" / "registry")
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(with_state(state.clone()))
        .and_then(list);

    // GET /-/registry/:id — one registry
    let show = warp::path!("-" / "registry" / ..)
        .and(registry_id())
        .and(warp::path::end())
        .and(warp::get())
        .and(with_state(state.clone()))
        .and_then(show);

    // POST /-/registry {name, host, changeStream?, type?, userPrefix?} — add one; admin only
    let create = warp::path!("-" / "registry")
        .and(warp::post())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and(body::json(limit))
        .and_then(create);

    // DELETE /-/registry/:id — remove one added over HTTP; admin only
    let delete = warp::path!("-" / "registry" / ..)
        .and(registry_id())
        .and(warp::path::end())
        .and(warp::delete())
        .and(identity(state.clone()))
        .and(with_state(state))
        .and_then(delete);

    boxed(list.or(show).unify().or(create).unify().or(delete).unify())
}

fn entry_json(entry: &RegistryEntry) -> Value {
    json!({
        "registryId": entry.id,
        "name": entry.name,
        "host": entry.host,
        "type": entry.kind,
        "userPrefix": entry.user_prefix,
        "changeStream": entry.change_stream,
        "configured": entry.configured,
        "createdAt": entry.created_at,
        "updatedAt": entry.updated_at,
        "response": null,
    })
}

async fn list(query: HashMap<String, String>, state: AppState) -> Result<Response, Rejection> {
    let (size, index) = registries::page_of(
        query.get("pageSize").map(String::as_str),
        query.get("pageIndex").map(String::as_str),
    )
    .map_err(reject)?;
    let page = state
        .run(move |state| registries::list(state.registry(), size, index))
        .await?;
    let data: Vec<Value> = page.entries.iter().map(entry_json).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "data": data, "total": page.total }),
    ))
}

async fn show(id: String, state: AppState) -> Result<Response, Rejection> {
    let entry = state
        .run(move |state| registries::get(state.registry(), &id))
        .await?;
    Ok(json_response(StatusCode::OK, &entry_json(&entry)))
}

async fn create(
    caller: Option<Arc<Identity>>,
    state: AppState,
    body: Value,
) -> Result<Response, Rejection> {
    let entry = state
        .run(move |state| {
            let admin = require_admin(caller.as_deref())?;
            let new = NewRegistry::from_json(&body)?;
            registries::create(state.registry(), &admin, new)
        })
        .await?;
    let mut body = entry_json(&entry);
    if let Some(map) = body.as_object_mut() {
        map.insert("ok".into(), true.into());
    }
    Ok(json_response(StatusCode::CREATED, &body))
}

async fn delete(
    id: String,
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    state
        .run(move |state| {
            let admin = require_admin(caller.as_deref())?;
            if id.is_empty() {
                return Err(Error::bad_request("a registry id is missing"));
            }
            registries::delete(state.registry(), &admin, &id)
        })
        .await?;
    Ok(json_response(StatusCode::OK, &json!({ "ok": true })))
}
