//! Package blocks, cnpmcore's admin API: `PUT|DELETE|GET /-/package/:pkg/blocks`. Setting and
//! lifting a block takes an administrator; reading one does not (a blocked package's reason is
//! in every 451 it answers anyway).

use std::sync::Arc;

use http::StatusCode;
use registry_core::accounts::auth::Identity;
use registry_core::accounts::authz::require_admin;
use registry_core::packages::blocks;
use registry_core::packages::names::PackageName;
use registry_core::registry::package_not_found;
use registry_core::Error;
use serde_json::{json, Value};
use warp::filters::path::Tail;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{boxed, with_state, Route};
use crate::auth::identity;
use crate::body;
use crate::error::reject;
use crate::package_path::parse_package_subpath;
use crate::reply::json_response;
use crate::state::AppState;

/// `NAME/blocks` below `/-/package/`; anything else is another route's.
fn blocks_path() -> impl Filter<Extract = (PackageName,), Error = Rejection> + Clone {
    warp::path!("-" / "package" / ..)
        .and(warp::path::tail())
        .and_then(|tail: Tail| async move {
            if tail.as_str().rsplit('/').next() != Some("blocks") {
                return Err(warp::reject::not_found());
            }
            let (name, rest) = parse_package_subpath(tail.as_str()).map_err(reject)?;
            match rest.as_slice() {
                [marker] if marker == "blocks" => Ok(name),
                _ => Err(warp::reject::not_found()),
            }
        })
}

pub fn routes(state: AppState) -> Route {
    let limit = body::Limits::of(&state.registry().config);

    // PUT /-/package/:pkg/blocks {"reason": "…"} — block (or change the reason); admin only
    let put = blocks_path()
        .and(warp::put())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and(body::json(limit))
        .and_then(put_block);

    // DELETE /-/package/:pkg/blocks — lift the block; admin only
    let delete = blocks_path()
        .and(warp::delete())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and_then(delete_block);

    // GET /-/package/:pkg/blocks — whether the package is blocked, and why
    let get = blocks_path()
        .and(warp::get())
        .and(with_state(state))
        .and_then(get_block);

    boxed(put.or(delete).unify().or(get).unify())
}

async fn put_block(
    name: PackageName,
    caller: Option<Arc<Identity>>,
    state: AppState,
    body: Value,
) -> Result<Response, Rejection> {
    let outcome = state
        .run(move |state| {
            let admin = require_admin(caller.as_deref())?;
            let reason = body.get("reason").and_then(Value::as_str).ok_or_else(|| {
                Error::bad_request("a block needs a reason: send {\"reason\": \"…\"}")
            })?;
            blocks::block(&state.registry().store, &admin, &name, reason)
        })
        .await?;
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json_response(
        status,
        &json!({ "ok": true, "id": outcome.id, "package_id": outcome.package_id }),
    ))
}

async fn delete_block(
    name: PackageName,
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    state
        .run(move |state| {
            let admin = require_admin(caller.as_deref())?;
            blocks::unblock(&state.registry().store, &admin, &name)
        })
        .await?;
    Ok(json_response(StatusCode::OK, &json!({ "ok": true })))
}

async fn get_block(name: PackageName, state: AppState) -> Result<Response, Rejection> {
    let body = state
        .run(move |state| {
            let store = &state.registry().store;
            match blocks::block_of(store, &name)? {
                Some(block) => Ok(json!({
                    "blocked": true,
                    "reason": block.reason,
                    "createdAt": block.created_at,
                    "updatedAt": block.updated_at,
                })),
                None if blocks::package_exists(store, &name)? => Ok(json!({ "blocked": false })),
                None => Err(package_not_found(&name)),
            }
        })
        .await?;
    Ok(json_response(StatusCode::OK, &body))
}
