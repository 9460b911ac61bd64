//! The administrator's API below `/-/registry/admin/`, used by `registry --registry URL …`: the
//! account and token administration, orgs, and listings that npm has no endpoint for. Every route
//! takes an administrator (`authz::require_admin`) and calls the same core operations as the
//! CLI's local mode, so both modes answer alike.

use std::collections::HashMap;
use std::sync::Arc;

use http::StatusCode;
use registry_core::access::{self, OrgRecord};
use registry_core::accounts::auth::Identity;
use registry_core::accounts::authz::require_admin;
use registry_core::accounts::tokens::TokenOptions;
use registry_core::accounts::{tokens::TokenRecord, users::UserRecord};
use registry_core::clock::iso;
use registry_core::maintenance;
use registry_core::packages::names::{validate_username, PackageName};
use registry_core::upstream;
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

/// A user name from the path, checked before it goes anywhere.
fn user_name() -> impl Filter<Extract = (String,), Error = Rejection> + Clone {
    warp::path::param::<String>().and_then(|name: String| async move {
        validate_username(&name).map_err(reject)?;
        Ok::<_, Rejection>(name)
    })
}

pub fn routes(state: AppState) -> Route {
    let limit = body::Limits::of(&state.registry().config);
    let base = || warp::path!("-" / "registry" / "admin" / ..);

    // GET /-/registry/admin/users — every user; admin only
    let list_users = base()
        .and(warp::path!("users"))
        .and(warp::get())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and_then(list_users);

    // DELETE /-/registry/admin/users/:name — delete a user and their tokens; admin only
    let delete_user = base()
        .and(warp::path("users"))
        .and(user_name())
        .and(warp::path::end())
        .and(warp::delete())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and_then(delete_user);

    // PUT /-/registry/admin/users/:name/admin {"admin": bool} — grant or withdraw; admin only
    let set_admin = base()
        .and(warp::path("users"))
        .and(user_name())
        .and(warp::path!("admin"))
        .and(warp::put())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and(body::json(limit))
        .and_then(set_admin);

    // PUT /-/registry/admin/users/:name/password {"password": "…"} — set it; admin only
    let set_password = base()
        .and(warp::path("users"))
        .and(user_name())
        .and(warp::path!("password"))
        .and(warp::put())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and(body::json(limit))
        .and_then(set_password);

    // POST /-/registry/admin/users/:name/tokens {readonly, cidr_whitelist, expires, name} — a
    // token for that user, shown once; admin only
    let create_token = base()
        .and(warp::path("users"))
        .and(user_name())
        .and(warp::path!("tokens"))
        .and(warp::post())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and(body::json(limit))
        .and_then(create_token);

    // GET /-/registry/admin/tokens[?user=NAME] — tokens of a user or of everyone; admin only
    let list_tokens = base()
        .and(warp::path!("tokens"))
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and_then(list_tokens);

    // GET /-/registry/admin/packages — every package with its size and state; admin only
    let list_packages = base()
        .and(warp::path!("packages"))
        .and(warp::get())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and_then(list_packages);

    // GET /-/registry/admin/upstreams — each upstream's state, cache and hit ratio; admin only
    let list_upstreams = base()
        .and(warp::path!("upstreams"))
        .and(warp::get())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and_then(list_upstreams);

    // POST /-/registry/admin/orgs {name, owner} — create an org with its first owner (and
    // its developers team); admin only
    let create_org = base()
        .and(warp::path!("orgs"))
        .and(warp::post())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and(body::json(limit))
        .and_then(create_org);

    // GET /-/registry/admin/orgs — every org with its number of members; admin only
    let list_orgs = base()
        .and(warp::path!("orgs"))
        .and(warp::get())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and_then(list_orgs);

    // DELETE /-/registry/admin/cache/:name — forget a proxied package (name as npm escapes
    // it: @scope%2fname); admin only
    let forget_cached = base()
        .and(warp::path("cache"))
        .and(warp::path::tail())
        .and(warp::delete())
        .and(identity(state.clone()))
        .and(with_state(state))
        .and_then(forget_cached);

    boxed(
        list_users
            .or(delete_user)
            .unify()
            .or(set_admin)
            .unify()
            .or(set_password)
            .unify()
            .or(create_token)
            .unify()
            .or(list_tokens)
            .unify()
            .or(list_packages)
            .unify()
            .or(list_upstreams)
            .unify()
            .or(forget_cached)
            .unify()
            .or(create_org)
            .unify()
            .or(list_orgs)
            .unify(),
    )
}

async fn list_upstreams(
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    let report = state
        .run(move |state| {
            require_admin(caller.as_deref())?;
            upstream::status::report(state.registry(), true)
        })
        .await?;
    Ok(json_response(StatusCode::OK, &json!(report)))
}

async fn forget_cached(
    tail: warp::path::Tail,
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    let raw = tail
        .as_str()
        .replacen("%2f", "/", 1)
        .replacen("%2F", "/", 1);
    let name = PackageName::parse(&raw).map_err(reject)?;
    state
        .run(move |state| {
            let admin = require_admin(caller.as_deref())?;
            upstream::status::forget(state.registry(), &admin, &name)
        })
        .await?;
    Ok(json_response(StatusCode::OK, &json!({ "ok": true })))
}

fn org_json(org: &OrgRecord) -> Value {
    json!({ "name": org.name, "members": org.members, "created": org.created_at })
}

async fn create_org(
    caller: Option<Arc<Identity>>,
    state: AppState,
    body: Value,
) -> Result<Response, Rejection> {
    let org = state
        .run(move |state| {
            let admin = require_admin(caller.as_deref())?;
            let example = r#"{"name": "ORG", "owner": "USER"}"#;
            let name = body::required_str(&body, "name", example)?;
            let owner = body::required_str(&body, "owner", example)?;
            access::orgs::create_org(&state.registry().store, &admin, &name, &owner)
        })
        .await?;
    Ok(json_response(StatusCode::CREATED, &org_json(&org)))
}

async fn list_orgs(caller: Option<Arc<Identity>>, state: AppState) -> Result<Response, Rejection> {
    let orgs = state
        .run(move |state| {
            let admin = require_admin(caller.as_deref())?;
            access::orgs::list_orgs(&state.registry().store, &admin)
        })
        .await?;
    let body: Vec<Value> = orgs.iter().map(org_json).collect();
    Ok(json_response(StatusCode::OK, &json!(body)))
}

pub fn user_json(user: &UserRecord) -> Value {
    json!({ "name": user.name, "email": user.email, "admin": user.is_admin,
            "created": user.created_at })
}

fn token_json(user: &str, token: &TokenRecord) -> Value {
    json!({
        "key": token.key, "user": user, "name": token.name,
        "kind": if token.readonly { "readonly" } else { "publish" },
        "cidr_whitelist": token.cidr_whitelist, "created": token.created_at,
        "last_used": token.last_used_at, "expires": token.expires_at,
    })
}

async fn list_users(caller: Option<Arc<Identity>>, state: AppState) -> Result<Response, Rejection> {
    let users = state
        .run(move |state| {
            let admin = require_admin(caller.as_deref())?;
            maintenance::list_users(&state.registry().store, &admin)
        })
        .await?;
    let body: Vec<Value> = users.iter().map(user_json).collect();
    Ok(json_response(StatusCode::OK, &json!(body)))
}

async fn delete_user(
    name: String,
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    state
        .run(move |state| {
            let admin = require_admin(caller.as_deref())?;
            maintenance::delete_user(&state.registry().store, &admin, &name)
        })
        .await?;
    Ok(json_response(StatusCode::OK, &json!({ "ok": true })))
}

async fn set_admin(
    name: String,
    caller: Option<Arc<Identity>>,
    state: AppState,
    body: Value,
) -> Result<Response, Rejection> {
    let user = state
        .run(move |state| {
            let admin = require_admin(caller.as_deref())?;
            let wanted = body.get("admin").and_then(Value::as_bool).ok_or_else(|| {
                Error::bad_request("send {\"admin\": true} or {\"admin\": false}")
            })?;
            maintenance::set_admin(&state.registry().store, &admin, &name, wanted)
        })
        .await?;
    Ok(json_response(StatusCode::OK, &user_json(&user)))
}

async fn set_password(
    name: String,
    caller: Option<Arc<Identity>>,
    state: AppState,
    body: Value,
) -> Result<Response, Rejection> {
    state
        .run(move |state| {
            let admin = require_admin(caller.as_deref())?;
            let password = body
                .get("password")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::bad_request("send {\"password\": \"…\"}"))?;
            maintenance::set_password(&state.registry().store, &admin, &name, password)
        })
        .await?;
    Ok(json_response(StatusCode::OK, &json!({ "ok": true })))
}

async fn create_token(
    name: String,
    caller: Option<Arc<Identity>>,
    state: AppState,
    body: Value,
) -> Result<Response, Rejection> {
    let (user, issued) = state
        .run(move |state| {
            let admin = require_admin(caller.as_deref())?;
            let options = token_options(&body)?;
            maintenance::create_token_for_user(&state.registry().store, &admin, &name, &options)
        })
        .await?;
    let mut body = token_json(&user.name, &issued.record);
    body["token"] = json!(issued.secret);
    body["readonly"] = json!(issued.record.readonly);
    Ok(json_response(StatusCode::CREATED, &body))
}

/// `{readonly, cidr_whitelist, expires (ISO time), name}`, each optional.
fn token_options(body: &Value) -> registry_core::Result<TokenOptions> {
    let cidr_whitelist = match body.get("cidr_whitelist") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .map(|c| {
                let text = c
                    .as_str()
                    .ok_or_else(|| Error::bad_request("cidr_whitelist must list strings"))?;
                registry_core::accounts::cidr::Cidr::parse_ipv4(text)
                    .map_err(|_| Error::bad_request(format!("{text:?} is not a CIDR network")))?;
                Ok(text.to_string())
            })
            .collect::<registry_core::Result<_>>()?,
        Some(_) => return Err(Error::bad_request("cidr_whitelist must be an array")),
    };
    let expires_at = match body.get("expires") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => {
            let at = time::OffsetDateTime::parse(
                text,
                &time::format_description::well_known::Rfc3339,
            )
            .map_err(|_| Error::bad_request(format!("expires {text:?} is not an ISO time")))?;
            Some(iso(at))
        }
        Some(_) => return Err(Error::bad_request("expires must be an ISO time")),
    };
    Ok(TokenOptions {
        name: body.get("name").and_then(Value::as_str).map(str::to_string),
        readonly: body
            .get("readonly")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        cidr_whitelist,
        expires_at,
    })
}

async fn list_tokens(
    query: HashMap<String, String>,
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    let tokens = state
        .run(move |state| {
            let admin = require_admin(caller.as_deref())?;
            maintenance::list_all_tokens(
                &state.registry().store,
                &admin,
                query.get("user").map(String::as_str),
            )
        })
        .await?;
    let body: Vec<Value> = tokens.iter().map(|(user, t)| token_json(user, t)).collect();
    Ok(json_response(StatusCode::OK, &json!(body)))
}

async fn list_packages(
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    let packages = state
        .run(move |state| {
            require_admin(caller.as_deref())?;
            maintenance::list_packages(&state.registry().store)
        })
        .await?;
    let body: Vec<Value> = packages
        .iter()
        .map(|p| {
            json!({
                "name": p.name, "latest": p.latest, "versions": p.versions, "size": p.size,
                "modified": p.modified_at,
                "state": if p.unpublished_at.is_some() { "unpublished" } else { "live" },
            })
        })
        .collect();
    Ok(json_response(StatusCode::OK, &json!(body)))
}
