//! `npm profile get|set`: `GET|POST /-/npm/v1/user` (the protocol reference, §13).

use std::net::IpAddr;
use std::sync::Arc;

use http::StatusCode;
use registry_core::accounts::auth::Identity;
use registry_core::accounts::authz::require_writer;
use registry_core::accounts::users::UserRecord;
use registry_core::accounts::users::{parse_profile_update, update_profile};
use serde_json::{json, Value};
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{boxed, with_state, Route};
use crate::auth::{auth_rate_limit, client_ip, identity, logged_in};
use crate::body;
use crate::error::{as_password_rejection, reject};
use crate::reply::json_response;
use crate::state::AppState;

pub fn routes(state: AppState) -> Route {
    let limit = body::Limits::of(&state.registry().config);

    // GET /-/npm/v1/user — the caller's profile
    let get = warp::path!("-" / "npm" / "v1" / "user")
        .and(warp::get())
        .and(identity(state.clone()))
        .and_then(|caller: Option<Arc<Identity>>| async move {
            let caller = logged_in(caller, "see or change your profile")?;
            Ok::<_, Rejection>(json_response(StatusCode::OK, &profile_json(&caller.user)))
        });

    // POST /-/npm/v1/user — change profile fields, or the password ({old, new})
    let set = warp::path!("-" / "npm" / "v1" / "user")
        .and(warp::post())
        .and(auth_rate_limit(state.clone()))
        .and(identity(state.clone()))
        .and(client_ip(state.clone()))
        .and(with_state(state))
        .and(body::json(limit))
        .and_then(set);

    boxed(get.or(set).unify())
}

async fn set(
    caller: Option<Arc<Identity>>,
    client: Option<IpAddr>,
    state: AppState,
    body: Value,
) -> Result<Response, Rejection> {
    let caller = logged_in(caller, "see or change your profile")?;
    let update = parse_profile_update(&body).map_err(reject)?;
    let user = state
        .run(move |state| {
            let registry = state.registry();
            let writer = require_writer(Some(&caller))?;
            registry
                .login_throttle
                .guard(&caller.user.name, client, || {
                    update_profile(&registry.store, &writer, &update)
                })
        })
        .await
        .map_err(as_password_rejection)?;
    Ok(json_response(StatusCode::OK, &profile_json(&user)))
}

/// The profile as npm prints it (never the password or its hash). There is no two-factor
/// authentication and no account-wide CIDR allow-list here, hence the nulls.
fn profile_json(user: &UserRecord) -> Value {
    json!({
        "name": user.name,
        "email": user.email,
        "email_verified": false,
        "tfa": null,
        "fullname": user.profile.fullname,
        "homepage": user.profile.homepage,
        "freenode": user.profile.freenode,
        "twitter": user.profile.twitter,
        "github": user.profile.github,
        "created": user.created_at,
        "updated": user.updated_at,
        "cidr_whitelist": null,
    })
}
