//! Teams, as libnpmteam and libnpmaccess speak to them: `npm team destroy|add|rm|ls ORG:TEAM`
//! on `/-/team/:org/:team[/user]`, and `npm access grant|revoke|list packages ORG:TEAM` on
//! `/-/team/:org/:team/package`. Org and team arrive encodeURIComponent'd, the org without
//! its `@`. npm's `npm-scope` header says the org again and is not needed.

use std::sync::Arc;

use http::StatusCode;
use registry_core::access::packages::{packages_of, PackageOwner};
use registry_core::access::teams::{self, TeamName};
use registry_core::access::TeamPermission;
use registry_core::accounts::auth::Identity;
use registry_core::accounts::authz::require_writer;
use registry_core::packages::names::PackageName;
use registry_core::upstream::guard::refuse_proxied_write;
use serde_json::{json, Value};
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

/// `/-/team/ORG/TEAM`, then exactly `resource` below it (`None`: the team itself).
fn team_path(
    resource: Option<&'static str>,
) -> impl Filter<Extract = (TeamName,), Error = Rejection> + Clone {
    warp::path!("-" / "team" / String / String / ..)
        .and(warp::path::tail())
        .and_then(
            move |org: String, team: String, tail: warp::path::Tail| async move {
                let matches = match resource {
                    None => tail.as_str().is_empty(),
                    Some(resource) => tail.as_str() == resource,
                };
                if !matches {
                    return Err(warp::reject::not_found());
                }
                let org = percent_decode(&org).map_err(reject)?;
                let team = percent_decode(&team).map_err(reject)?;
                TeamName::new(&org, &team).map_err(reject)
            },
        )
}

pub fn routes(state: AppState) -> Route {
    let limit = body::Limits::of(&state.registry().config);

    // DELETE /-/team/:org/:team — npm team destroy
    let destroy = team_path(None)
        .and(warp::delete())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and_then(destroy);

    // PUT /-/team/:org/:team/user {user} — npm team add (npm needs a JSON answer)
    let add_member = team_path(Some("user"))
        .and(warp::put())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and(body::json(limit))
        .and_then(add_member);

    // DELETE /-/team/:org/:team/user {user} — npm team rm
    let remove_member = team_path(Some("user"))
        .and(warp::delete())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and(body::json(limit))
        .and_then(remove_member);

    // GET /-/team/:org/:team/user[?format=cli] — npm team ls ORG:TEAM: ["user", …]
    let members = team_path(Some("user"))
        .and(warp::get())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and_then(members);

    // PUT /-/team/:org/:team/package {package, permissions} — npm access grant
    let grant = team_path(Some("package"))
        .and(warp::put())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and(body::json(limit))
        .and_then(grant);

    // DELETE /-/team/:org/:team/package {package} — npm access revoke
    let revoke = team_path(Some("package"))
        .and(warp::delete())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and(body::json(limit))
        .and_then(revoke);

    // GET /-/team/:org/:team/package — npm access list packages ORG:TEAM: {"pkg": "read", …}
    let packages = team_path(Some("package"))
        .and(warp::get())
        .and(identity(state.clone()))
        .and(with_state(state))
        .and_then(packages);

    boxed(
        destroy
            .or(add_member)
            .unify()
            .or(remove_member)
            .unify()
            .or(members)
            .unify()
            .or(grant)
            .unify()
            .or(revoke)
            .unify()
            .or(packages)
            .unify(),
    )
}

const USER_BODY: &str = r#"{"user": "NAME"}"#;

async fn destroy(
    team: TeamName,
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    state
        .run(move |state| teams::destroy_team(&state.registry().store, caller.as_deref(), &team))
        .await?;
    Ok(json_response(StatusCode::OK, &json!({ "ok": true })))
}

async fn add_member(
    team: TeamName,
    caller: Option<Arc<Identity>>,
    state: AppState,
    body: Value,
) -> Result<Response, Rejection> {
    let user = body::required_str(&body, "user", USER_BODY).map_err(reject)?;
    state
        .run(move |state| {
            teams::add_member(&state.registry().store, caller.as_deref(), &team, &user)
        })
        .await?;
    Ok(json_response(StatusCode::CREATED, &json!({ "ok": true })))
}

async fn remove_member(
    team: TeamName,
    caller: Option<Arc<Identity>>,
    state: AppState,
    body: Value,
) -> Result<Response, Rejection> {
    let user = body::required_str(&body, "user", USER_BODY).map_err(reject)?;
    state
        .run(move |state| {
            teams::remove_member(&state.registry().store, caller.as_deref(), &team, &user)
        })
        .await?;
    Ok(json_response(StatusCode::OK, &json!({ "ok": true })))
}

async fn members(
    team: TeamName,
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    let members = state
        .run(move |state| teams::list_members(&state.registry().store, caller.as_deref(), &team))
        .await?;
    Ok(json_response(StatusCode::OK, &json!(members)))
}

const GRANT_BODY: &str = r#"{"package": "@org/name", "permissions": "read-only"}"#;

/// The package a grant or revoke names: libnpmaccess sends it unescaped (`@org/name`).
fn package_of(body: &Value) -> Result<PackageName, Rejection> {
    let name = body::required_str(body, "package", GRANT_BODY).map_err(reject)?;
    PackageName::parse(&name).map_err(reject)
}

async fn grant(
    team: TeamName,
    caller: Option<Arc<Identity>>,
    state: AppState,
    body: Value,
) -> Result<Response, Rejection> {
    let package = package_of(&body)?;
    let permission = body::required_str(&body, "permissions", GRANT_BODY)
        .and_then(|text| TeamPermission::parse(&text))
        .map_err(reject)?;
    state
        .run(move |state| {
            require_writer(caller.as_deref())?;
            // A name only an upstream serves has no grants here, like every other write.
            refuse_proxied_write(state.registry(), &package)?;
            teams::grant(
                &state.registry().store,
                caller.as_deref(),
                &team,
                &package,
                permission,
            )
        })
        .await?;
    Ok(json_response(StatusCode::CREATED, &json!({ "ok": true })))
}

async fn revoke(
    team: TeamName,
    caller: Option<Arc<Identity>>,
    state: AppState,
    body: Value,
) -> Result<Response, Rejection> {
    let package = package_of(&body)?;
    state
        .run(move |state| {
            require_writer(caller.as_deref())?;
            refuse_proxied_write(state.registry(), &package)?;
            teams::revoke(&state.registry().store, caller.as_deref(), &team, &package)
        })
        .await?;
    Ok(json_response(StatusCode::OK, &json!({ "ok": true })))
}

async fn packages(
    team: TeamName,
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    let owner = PackageOwner::Team(team);
    let packages = state
        .run(move |state| packages_of(&state.registry().store, caller.as_deref(), &owner))
        .await?;
    Ok(json_response(StatusCode::OK, &permissions_json(packages)))
}
