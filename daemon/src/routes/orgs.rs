//! Orgs, as libnpmorg and libnpmteam speak to them: `npm org set|rm|ls` on
//! `/-/org/:org/user`, `npm team create|ls` on `/-/org/:org/team`, and the org half of `npm
//! access list packages` on `/-/org/:org/package`. The org arrives encodeURIComponent'd
//! without its `@`; the core normalizes and validates it.

use std::sync::Arc;

use http::StatusCode;
use registry_core::access::orgs;
use registry_core::access::packages::{packages_of, PackageOwner};
use registry_core::access::teams::{self, TeamName};
use registry_core::accounts::auth::Identity;
use serde_json::{json, Map, Value};
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::access::permissions_json;
use super::{boxed, with_state, Route};
use crate::auth::identity;
use crate::body;
use crate::error::reject;
use crate::package_path::percent_decode;
use crate::reply::json_response;
use crate::state::AppState;

/// `/-/org/ORG/RESOURCE` and nothing below it: the org, percent-decoded.
fn org_path(resource: &'static str) -> impl Filter<Extract = (String,), Error = Rejection> + Clone {
    warp::path!("-" / "org" / String / ..)
        .and(warp::path(resource))
        .and(warp::path::end())
        .and_then(|raw: String| async move { percent_decode(&raw).map_err(reject) })
}

pub fn routes(state: AppState) -> Route {
    let limit = body::Limits::of(&state.registry().config);

    // PUT /-/org/:org/user {user, role?} — npm org set: add a member or change their role
    let set_member = org_path("user")
        .and(warp::put())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and(body::json(limit))
        .and_then(set_member);

    // DELETE /-/org/:org/user {user} — npm org rm: remove a member (and from every team)
    let remove_member = org_path("user")
        .and(warp::delete())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and(body::json(limit))
        .and_then(remove_member);

    // GET /-/org/:org/user — npm org ls: {"user": "role", …}; members and admins only
    let members = org_path("user")
        .and(warp::get())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and_then(members);

    // PUT /-/org/:org/team {name, description?} — npm team create
    let create_team = org_path("team")
        .and(warp::put())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and(body::json(limit))
        .and_then(create_team);

    // GET /-/org/:org/team[?format=cli] — npm team ls ORG: ["org:team", …]
    let teams = org_path("team")
        .and(warp::get())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and_then(list_teams);

    // GET /-/org/:org/package — npm access list packages ORG: {"@org/pkg": "write", …}; 404
    // when there is no such org, on which npm asks /-/user/:name/package instead
    let packages = org_path("package")
        .and(warp::get())
        .and(identity(state.clone()))
        .and(with_state(state))
        .and_then(packages);

    boxed(
        set_member
            .or(remove_member)
            .unify()
            .or(members)
            .unify()
            .or(create_team)
            .unify()
            .or(teams)
            .unify()
            .or(packages)
            .unify(),
    )
}

async fn set_member(
    org: String,
    caller: Option<Arc<Identity>>,
    state: AppState,
    body: Value,
) -> Result<Response, Rejection> {
    let example = r#"{"user": "NAME", "role": "developer"}"#;
    let user = body::required_str(&body, "user", example).map_err(reject)?;
    let role = body::optional_str(&body, "role").map_err(reject)?;
    let membership = state
        .run(move |state| {
            orgs::set_member(
                &state.registry().store,
                caller.as_deref(),
                &org,
                &user,
                role.as_deref(),
            )
        })
        .await?;
    Ok(json_response(StatusCode::OK, &json!(membership)))
}

async fn remove_member(
    org: String,
    caller: Option<Arc<Identity>>,
    state: AppState,
    body: Value,
) -> Result<Response, Rejection> {
    let user = body::required_str(&body, "user", r#"{"user": "NAME"}"#).map_err(reject)?;
    state
        .run(move |state| {
            orgs::remove_member(&state.registry().store, caller.as_deref(), &org, &user)
        })
        .await?;
    Ok(json_response(StatusCode::OK, &json!({ "ok": true })))
}

async fn members(
    org: String,
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    let members = state
        .run(move |state| orgs::members(&state.registry().store, caller.as_deref(), &org))
        .await?;
    let roster: Map<String, Value> = members
        .into_iter()
        .map(|(user, role)| (user, json!(role.as_str())))
        .collect();
    Ok(json_response(StatusCode::OK, &Value::Object(roster)))
}

async fn create_team(
    org: String,
    caller: Option<Arc<Identity>>,
    state: AppState,
    body: Value,
) -> Result<Response, Rejection> {
    let example = r#"{"name": "TEAM", "description": "…"}"#;
    let team = body::required_str(&body, "name", example).map_err(reject)?;
    let description = match body.get("description") {
        // libnpmteam sends npm's `description` option, which is a boolean of `npm search`
        // unless a caller set a text: a boolean is no description.
        Some(Value::Bool(_)) => None,
        _ => body::optional_str(&body, "description").map_err(reject)?,
    };
    let name = TeamName::new(&org, &team).map_err(reject)?;
    let created = state
        .run(move |state| {
            teams::create_team(
                &state.registry().store,
                caller.as_deref(),
                &name,
                description.as_deref(),
            )
        })
        .await?;
    Ok(json_response(StatusCode::CREATED, &json!(created)))
}

async fn list_teams(
    org: String,
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    let teams = state
        .run(move |state| teams::list_teams(&state.registry().store, caller.as_deref(), &org))
        .await?;
    Ok(json_response(StatusCode::OK, &json!(teams)))
}

async fn packages(
    org: String,
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    let owner = PackageOwner::Org(org);
    let packages = state
        .run(move |state| packages_of(&state.registry().store, caller.as_deref(), &owner))
        .await?;
    Ok(json_response(StatusCode::OK, &permissions_json(packages)))
}
