//! Accounts over the CouchDB-style user API that npm speaks: login / adduser, the user
//! document, logout. npm 11's web login is answered 404 so that npm falls back to asking for a
//! username and password (the protocol reference, §1.1).

use http::StatusCode;
use registry_core::tokens::{create_token, revoke_token, TokenOptions};
use registry_core::users::{find_user, login_or_register, LoginOutcome, LoginRequest};
use registry_core::Error;
use serde_json::{json, Value};
use warp::filters::path::Tail;
use warp::{Filter, Rejection};

use super::{boxed, with_state, Route};
use crate::body;
use crate::error::{reject, reject_with_challenge, Challenge};
use crate::reply::json_response;
use crate::state::AppState;

const USER_PREFIX: &str = "org.couchdb.user:";

pub fn routes(state: AppState) -> Route {
    let limit = state.registry().config.max_body_bytes;

    // PUT /-/user/org.couchdb.user:NAME[/-rev/REV] — log in (or sign up), answer a new token.
    // The Authorization header is deliberately not checked: npm sends whatever token it still
    // has, and a stale one must not lock the user out of logging in again.
    let login = warp::path!("-" / "user" / ..)
        .and(warp::put())
        .and(warp::path::tail())
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

    // POST /-/v1/login — web login is not offered; 404 makes npm fall back to the couch flow
    let web_login = warp::path!("-" / "v1" / "login").and(warp::post()).map(|| {
        crate::error::error_response(
            StatusCode::NOT_FOUND,
            "web login is not supported by this registry; npm falls back to asking for a \
             username and password",
        )
    });

    boxed(
        login
            .or(user_doc)
            .unify()
            .or(logout)
            .unify()
            .or(web_login)
            .unify(),
    )
}

/// `org.couchdb.user:NAME[/-rev/REV]` → NAME
fn user_name_from(tail: &str) -> Result<String, Rejection> {
    let first = tail.split('/').next().unwrap_or_default();
    let decoded = percent_decode(first)?;
    decoded
        .strip_prefix(USER_PREFIX)
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            reject(Error::bad_request(format!(
                "expected /-/user/{USER_PREFIX}NAME, not /-/user/{tail}"
            )))
        })
}

async fn login(
    tail: Tail,
    state: AppState,
    body: Value,
) -> Result<warp::reply::Response, Rejection> {
    let name = user_name_from(tail.as_str())?;
    let field = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_string);
    if let Some(body_name) = field("name") {
        if body_name != name {
            return Err(reject(Error::bad_request(format!(
                "the document's name {body_name:?} does not match {name:?} in the URL"
            ))));
        }
    }
    let password = field("password");
    let email = field("email");
    let Some(password) = password else {
        return Err(reject(Error::bad_request(
            "a password is required to log in",
        )));
    };
    let (outcome, token) = state
        .run(move |state| {
            let registry = state.registry();
            let outcome = login_or_register(
                &registry.store,
                registry.config.registration,
                &LoginRequest {
                    name: &name,
                    password: &password,
                    email: email.as_deref(),
                },
            )?;
            let user = match &outcome {
                LoginOutcome::LoggedIn(user) | LoginOutcome::Registered(user) => user,
            };
            let token = create_token(&registry.store, user.id, &TokenOptions::default())?;
            Ok((outcome, token.secret))
        })
        .await
        .map_err(as_login_rejection)?;
    let (user, message) = match &outcome {
        LoginOutcome::LoggedIn(user) => (user, format!("you are authenticated as '{}'", user.name)),
        LoginOutcome::Registered(user) => (user, format!("user '{}' created", user.name)),
    };
    Ok(json_response(
        StatusCode::CREATED,
        &json!({
            "ok": message,
            "id": format!("{USER_PREFIX}{}", user.name),
            "username": user.name,
            "token": token,
        }),
    ))
}

/// A failed login asks for a password (Basic), not for a token.
fn as_login_rejection(rejection: Rejection) -> Rejection {
    match rejection.find::<crate::error::ApiError>() {
        Some(api) if api.error.status() == 401 => reject_with_challenge(
            Error::unauthorized(api.error.public_message()),
            Challenge::Basic,
        ),
        _ => rejection,
    }
}

async fn user_document(tail: Tail, state: AppState) -> Result<warp::reply::Response, Rejection> {
    if tail.as_str().contains('/') {
        return Err(reject(Error::not_found(format!(
            "no such resource: /-/user/{}",
            tail.as_str()
        ))));
    }
    let name = user_name_from(tail.as_str())?;
    let lookup = name.clone();
    let user = state
        .run(move |state| find_user(&state.registry().store, &lookup))
        .await?
        .ok_or_else(|| reject(Error::not_found(format!("user {name:?} not found"))))?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "_id": format!("{USER_PREFIX}{}", user.name),
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
