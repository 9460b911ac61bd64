//! Accounts over the CouchDB-style user API that npm speaks: login / adduser, the user
//! document, logout. npm 11's web login (`POST /-/v1/login`) is in `cli_login`.
//!
//! The same `PUT` is cnpmcore's user API: an administrator's token may create accounts while
//! registration is closed (401 wrong password, 403 registration closed, 409 name taken).

use std::net::IpAddr;

use http::StatusCode;
use registry_core::accounts::auth::{authenticate_from, decode_basic};
use registry_core::accounts::authz::require_admin;
use registry_core::accounts::tokens::{create_token, revoke_token, TokenOptions};
use registry_core::accounts::users::{
    find_user, login_or_register, user_rev, LoginOutcome, LoginRequest,
};
use registry_core::Error;
use serde_json::{json, Value};
use warp::filters::path::Tail;
use warp::{Filter, Rejection};

use super::{boxed, with_state, Route};
use crate::auth::{auth_rate_limit, client_ip};
use crate::body;
use crate::error::{as_password_rejection, reject, reject_with_challenge, Challenge};
use crate::reply::json_response;
use crate::state::AppState;

const USER_PREFIX: &str = "org.couchdb.user:";

pub fn routes(state: AppState) -> Route {
    let limit = body::Limits::of(&state.registry().config);

    // PUT /-/user/org.couchdb.user:NAME[/-rev/REV] — log in (or sign up), answer a new token.
    // A stale token in the Authorization header must not lock the user out of logging in
    // again, so it is only looked at to recognise an administrator creating an account; on
    // the `/-rev/` form (npm's retry after a 409) Basic credentials carry the password.
    let login = warp::path!("-" / "user" / ..)
        .and(warp::put())
        .and(auth_rate_limit(state.clone()))
        .and(warp::path::tail())
        .and(warp::header::optional::<String>("authorization"))
        .and(client_ip(state.clone()))
        .and(with_state(state.clone()))
        .and(body::json(limit))
        .and_then(login);

    // GET /-/user/org.couchdb.user:NAME — a user's public document
    let user_doc = warp::path!("-" / "user" / ..)
        .and(warp::get())
        .and(warp::path::tail())
        .and(with_state(state.clone()))
        .and_then(user_document);

    // DELETE /-/user/token/TOKEN — logout: revoke that token (2xx even if already gone)
    let logout = warp::path!("-" / "user" / "token" / ..)
        .and(warp::delete())
        .and(warp::path::tail())
        .and(with_state(state.clone()))
        .and_then(logout);

    boxed(login.or(user_doc).unify().or(logout).unify())
}

/// A user path: `org.couchdb.user:NAME` or `org.couchdb.user:NAME/-rev/REV`.
struct UserPath {
    name: String,
    rev: Option<String>,
}

fn user_path(tail: &str) -> Result<UserPath, Rejection> {
    let segments: Vec<&str> = tail.split('/').collect();
    let rev = match segments.as_slice() {
        [_] => None,
        [_, "-rev", rev] if !rev.is_empty() => Some(percent_decode(rev)?),
        _ => {
            return Err(reject(Error::not_found(format!(
                "no such resource: /-/user/{tail}"
            ))))
        }
    };
    let decoded = percent_decode(segments[0])?;
    let name = decoded
        .strip_prefix(USER_PREFIX)
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            reject(Error::bad_request(format!(
                "expected /-/user/{USER_PREFIX}NAME, not /-/user/{tail}"
            )))
        })?;
    Ok(UserPath { name, rev })
}

async fn login(
    tail: Tail,
    authorization: Option<String>,
    client: Option<IpAddr>,
    state: AppState,
    body: Value,
) -> Result<warp::reply::Response, Rejection> {
    let path = user_path(tail.as_str())?;
    let name = path.name;
    let field = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_string);
    if let Some(body_name) = field("name") {
        if body_name != name {
            return Err(reject(Error::bad_request(format!(
                "the document's name {body_name:?} does not match {name:?} in the URL"
            ))));
        }
    }
    let (scheme, credential) = authorization
        .as_deref()
        .map(str::trim)
        .and_then(|h| h.split_once(' '))
        .map(|(scheme, value)| (scheme.to_ascii_lowercase(), value.trim().to_string()))
        .unwrap_or_default();
    let mut password = field("password");
    if path.rev.is_some() && scheme == "basic" {
        let (basic_name, basic_password) =
            decode_basic(&credential).map_err(|e| reject_with_challenge(e, Challenge::Basic))?;
        if basic_name != name {
            return Err(reject_with_challenge(
                Error::unauthorized(format!(
                    "the Basic credentials are for {basic_name:?}, not {name:?}"
                )),
                Challenge::Basic,
            ));
        }
        password = Some(basic_password);
    }
    let email = field("email");
    let Some(password) = password else {
        return Err(reject(Error::bad_request(
            "a password is required to log in",
        )));
    };
    let bearer = (scheme == "bearer").then_some(credential);
    let (outcome, token) = state
        .run(move |state| {
            let registry = state.registry();
            // Only a valid administrator token matters here; anything else is ignored.
            let caller = bearer.and_then(|token| {
                authenticate_from(
                    &registry.store,
                    &registry.credentials,
                    Some(&format!("Bearer {token}")),
                    client,
                )
                .ok()
                .flatten()
            });
            let admin = caller.as_ref().and_then(|c| require_admin(Some(c)).ok());
            let outcome = registry.login_throttle.guard(&name, client, || {
                login_or_register(
                    &registry.store,
                    registry.config.registration,
                    &LoginRequest {
                        name: &name,
                        password: &password,
                        email: email.as_deref(),
                        admin: admin.as_ref(),
                    },
                )
            })?;
            let user = match &outcome {
                LoginOutcome::LoggedIn(user) | LoginOutcome::Registered(user) => user,
            };
            let token = create_token(&registry.store, user.id, &TokenOptions::default())?;
            Ok((outcome, token.secret))
        })
        .await
        .map_err(as_password_rejection)?;
    let (user, message) = match &outcome {
        LoginOutcome::LoggedIn(user) => (user, format!("you are authenticated as '{}'", user.name)),
        LoginOutcome::Registered(user) => (user, format!("user '{}' created", user.name)),
    };
    Ok(json_response(
        StatusCode::CREATED,
        &json!({
            "ok": message,
            "id": format!("{USER_PREFIX}{}", user.name),
            "rev": user_rev(user),
            "username": user.name,
            "token": token,
        }),
    ))
}

async fn user_document(tail: Tail, state: AppState) -> Result<warp::reply::Response, Rejection> {
    let path = user_path(tail.as_str())?;
    if path.rev.is_some() {
        return Err(reject(Error::not_found(format!(
            "no such resource: /-/user/{}",
            tail.as_str()
        ))));
    }
    let name = path.name;
    let lookup = name.clone();
    let user = state
        .run(move |state| find_user(&state.registry().store, &lookup))
        .await?
        .ok_or_else(|| reject(Error::not_found(format!("user {name:?} not found"))))?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "_id": format!("{USER_PREFIX}{}", user.name),
            "_rev": user_rev(&user),
            "name": user.name,
            "email": user.email,
            "type": "user",
            "roles": [],
            "date": user.created_at,
        }),
    ))
}

async fn logout(tail: Tail, state: AppState) -> Result<warp::reply::Response, Rejection> {
    let token = percent_decode(tail.as_str())?;
    state
        .run(move |state| revoke_token(&state.registry().store, &token))
        .await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "ok": "logged out" }),
    ))
}

fn percent_decode(raw: &str) -> Result<String, Rejection> {
    crate::package_path::percent_decode(raw).map_err(reject)
}
