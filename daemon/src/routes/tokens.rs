//! `npm token list|create|revoke`: `GET|POST /-/npm/v1/tokens` and
//! `DELETE /-/npm/v1/tokens/token/:keyOrToken` (the protocol reference, §12).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use http::StatusCode;
use registry_core::accounts::auth::Identity;
use registry_core::accounts::authz::require_writer;
use registry_core::accounts::tokens::TokenRecord;
use registry_core::accounts::tokens::{
    create_token_for, list_tokens, parse_token_request, revoke_token_by_key_or_secret,
    MAX_PAGE_SIZE,
};
use registry_core::Error;
use serde_json::{json, Map, Value};
use warp::filters::path::Tail;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{boxed, origin, with_state, Route};
use crate::auth::{auth_rate_limit, client_ip, identity, logged_in};
use crate::body;
use crate::error::{as_password_rejection, reject};
use crate::reply::json_response;
use crate::state::AppState;

const DEFAULT_PAGE_SIZE: u64 = 50;

pub fn routes(state: AppState) -> Route {
    let limit = body::Limits::of(&state.registry().config);

    // GET /-/npm/v1/tokens?page=N&perPage=M — the caller's tokens, a page at a time
    let list = warp::path!("-" / "npm" / "v1" / "tokens")
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(origin(state.clone()))
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and_then(list);

    // POST /-/npm/v1/tokens — a new token, after the caller's password
    let create = warp::path!("-" / "npm" / "v1" / "tokens")
        .and(warp::post())
        .and(auth_rate_limit(state.clone()))
        .and(identity(state.clone()))
        .and(client_ip(state.clone()))
        .and(with_state(state.clone()))
        .and(body::json(limit))
        .and_then(create);

    // DELETE /-/npm/v1/tokens/token/:keyOrToken — revoke by key or by the secret itself
    let revoke = warp::path!("-" / "npm" / "v1" / "tokens" / "token" / ..)
        .and(warp::delete())
        .and(warp::path::tail())
        .and(identity(state.clone()))
        .and(with_state(state))
        .and_then(revoke);

    boxed(list.or(create).unify().or(revoke).unify())
}

fn number(query: &HashMap<String, String>, key: &str, default: u64) -> Result<u64, Rejection> {
    match query.get(key) {
        None => Ok(default),
        Some(text) => text.parse().map_err(|_| {
            reject(Error::bad_request(format!(
                "{key} must be a non-negative whole number, not {text:?}"
            )))
        }),
    }
}

async fn list(
    query: HashMap<String, String>,
    origin: String,
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    let caller = logged_in(caller, "manage tokens")?;
    let page = number(&query, "page", 0)?;
    let per_page = number(&query, "perPage", DEFAULT_PAGE_SIZE)?.clamp(1, MAX_PAGE_SIZE);
    let offset = page.saturating_mul(per_page);
    let user_id = caller.user.id;
    let listed = state
        .run(move |state| list_tokens(&state.registry().store, user_id, offset, per_page))
        .await?;
    let objects: Vec<Value> = listed.tokens.iter().map(token_json).collect();
    // npm follows `urls.next` until it is absent, and crashes without `urls`.
    let mut urls = Map::new();
    if offset.saturating_add(per_page) < listed.total {
        urls.insert(
            "next".into(),
            json!(format!(
                "{origin}/-/npm/v1/tokens?page={}&perPage={per_page}",
                page + 1
            )),
        );
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({ "objects": objects, "total": listed.total, "urls": urls }),
    ))
}

async fn create(
    caller: Option<Arc<Identity>>,
    client: Option<IpAddr>,
    state: AppState,
    body: Value,
) -> Result<Response, Rejection> {
    let caller = logged_in(caller, "manage tokens")?;
    let request = parse_token_request(&body).map_err(reject)?;
    let issued = state
        .run(move |state| {
            let registry = state.registry();
            let writer = require_writer(Some(&caller))?;
            registry
                .login_throttle
                .guard(&caller.user.name, client, || {
                    create_token_for(&registry.store, &writer, &request)
                })
        })
        .await
        .map_err(as_password_rejection)?;
    let mut body = token_json(&issued.record);
    body["token"] = json!(issued.secret);
    Ok(json_response(StatusCode::CREATED, &body))
}

async fn revoke(
    tail: Tail,
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    let caller = logged_in(caller, "manage tokens")?;
    let key_or_secret = crate::package_path::percent_decode(tail.as_str()).map_err(reject)?;
    if key_or_secret.is_empty() || key_or_secret.contains('/') {
        return Err(reject(Error::not_found(
            "no such token: see `npm token list`",
        )));
    }
    state
        .run(move |state| {
            let writer = require_writer(Some(&caller))?;
            revoke_token_by_key_or_secret(&state.registry().store, &writer, &key_or_secret)
        })
        .await?;
    let mut response = Response::new(bytes::Bytes::new().into());
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}

/// A token as listed: never the secret, only its display prefix (`npm_ab12`).
fn token_json(token: &TokenRecord) -> Value {
    let mut object = json!({
        "key": token.key,
        "token": token.display,
        "name": token.name,
        "description": token.description,
        "created": token.created_at,
        // Tokens are never edited, only created and revoked.
        "updated": token.created_at,
        "readonly": token.readonly,
        // npm prints "with IP whitelist:" for any list, even an empty one.
        "cidr_whitelist": (!token.cidr_whitelist.is_empty()).then_some(&token.cidr_whitelist),
        "expires": token.expires_at,
    });
    if let Some(at) = &token.last_used_at {
        object["lastUsedAt"] = json!(at);
    }
    if let Some(packages) = &token.packages {
        object["packages"] = json!(packages);
    }
    if let Some(scopes) = &token.scopes {
        object["scopes"] = json!(scopes);
    }
    object
}
