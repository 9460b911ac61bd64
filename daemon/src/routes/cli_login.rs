//! npm's web login (`npm login` / `npm adduser` with the default `auth-type=web`, the protocol
//! reference §1.1), with Verdaccio's paths as aliases: npm opens a login, the user approves it
//! in the browser at `loginUrl` (signing in, or up, first), and npm polls `doneUrl` until it
//! gets its token, once. The pending logins are in [`crate::web::cli_logins`].

use std::collections::HashMap;
use std::sync::Arc;

use http::{header, HeaderValue, StatusCode};
use maud::html as markup;
use registry_core::accounts::sessions::WebSession;
use registry_core::accounts::tokens::{create_token, TokenOptions};
use registry_core::config::Registration;
use registry_core::Error;
use serde_json::{json, Value};
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{boxed, origin, with_state, Route};
use crate::auth::auth_rate_limit;
use crate::error::{error_reply, reject};
use crate::reply::json_response;
use crate::state::AppState;
use crate::web::cli_logins::{well_formed, Poll, LOGIN_TTL};
use crate::web::encode_next;
use crate::web::{error_page, form, html, layout, redirect, require_csrf, web_session};

/// npm waits this long between polls (it busy-loops without a Retry-After).
const POLL_SECONDS: u32 = 1;

pub fn routes(state: AppState) -> Route {
    // POST /-/v1/login — open a web login: `{loginUrl, doneUrl}` (`{"create":true}`: adduser)
    let open = warp::path!("-" / "v1" / "login")
        .and(warp::post())
        .and(auth_rate_limit(state.clone()))
        .and(origin(state.clone()))
        .and(with_state(state.clone()))
        // A body is optional (older clients sent `hostname`, some nothing at all).
        .and(crate::body::bytes(crate::body::Limits::of(
            &state.registry().config,
        )))
        .and_then(open_login);

    // ANY /-/v1/done/:id — npm polls: 202 + Retry-After, then 200 {token} once, then 404.
    // Any method: npm's web-OTP polling reuses the original request's method.
    let done = warp::path!("-" / "v1" / "done" / String)
        .and(with_state(state.clone()))
        .and_then(poll);

    // ANY /-/v1/done?sessionId=ID — Verdaccio's shape of the same
    let done_query = warp::path!("-" / "v1" / "done")
        .and(
            warp::query::<HashMap<String, String>>()
                .or(warp::any().map(HashMap::new))
                .unify(),
        )
        .and(with_state(state.clone()))
        .and_then(|query: HashMap<String, String>, state: AppState| {
            let id = query.get("sessionId").cloned().unwrap_or_default();
            poll(id, state)
        });

    // GET /-/v1/login_cli/:id — Verdaccio's browser page for a login: ours is below
    let login_cli = warp::path!("-" / "v1" / "login_cli" / String)
        .and(warp::get())
        .map(|id: String| {
            if well_formed(&id) {
                redirect(&format!("/-/web/cli-login/{id}"))
            } else {
                error_reply(Error::not_found("no such login"))
            }
        });

    // GET /-/web/cli-login/:id — approve npm's login (signing in first if need be)
    let page = warp::path!("-" / "web" / "cli-login" / String)
        .and(warp::get())
        .and(web_session(state.clone()))
        .and(with_state(state.clone()))
        .and_then(approval_page);

    // POST /-/web/cli-login/:id — the approval (CSRF-checked)
    let approve = warp::path!("-" / "web" / "cli-login" / String)
        .and(warp::post())
        .and(web_session(state.clone()))
        .and(with_state(state.clone()))
        .and(form())
        .and_then(approve);
    let approve = boxed(boxed(approve).recover(crate::web::html_refusal).unify());

    boxed(
        open.or(done)
            .unify()
            .or(done_query)
            .unify()
            .or(login_cli)
            .unify()
            .or(page)
            .unify()
            .or(approve)
            .unify(),
    )
}

async fn open_login(
    origin: String,
    state: AppState,
    body: bytes::Bytes,
) -> Result<Response, Rejection> {
    // npm sends `{}` or `{"create":true}`; anything else is read as a plain login.
    let create = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("create").and_then(Value::as_bool))
        .unwrap_or(false);
    let (login_id, done_id) = state.cli_logins().open(create).await.map_err(reject)?;
    let origin = origin.trim_end_matches('/');
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "loginUrl": format!("{origin}/-/web/cli-login/{login_id}"),
            "doneUrl": format!("{origin}/-/v1/done/{done_id}"),
        }),
    ))
}

async fn poll(done_id: String, state: AppState) -> Result<Response, Rejection> {
    if !well_formed(&done_id) {
        return Err(reject(Error::not_found("no such login")));
    }
    match state.cli_logins().poll(&done_id).await.map_err(reject)? {
        Poll::Pending => {
            let mut response = json_response(
                StatusCode::ACCEPTED,
                &json!({ "status": "pending", "retryAfter": POLL_SECONDS }),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(POLL_SECONDS));
            Ok(response)
        }
        // The token is made only now, as it is handed over: none sits waiting in memory.
        Poll::Approved(user_id) => {
            let token = state
                .run(move |state| {
                    create_token(
                        &state.registry().store,
                        user_id,
                        &TokenOptions {
                            name: Some("npm web login".into()),
                            ..TokenOptions::default()
                        },
                    )
                })
                .await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({ "token": token.secret }),
            ))
        }
        Poll::Expired => Ok(crate::error::error_response(
            StatusCode::GONE,
            "this web login expired before it was approved: run `npm login` again",
        )),
        Poll::Unknown => Err(reject(Error::not_found(
            "no such login (it was already used, or has expired): run `npm login` again",
        ))),
    }
}

fn gone(session: Option<&WebSession>) -> Response {
    error_page(
        session,
        &Error::not_found(
            "This login link has expired or was already used: run `npm login` again.",
        ),
    )
}

async fn approval_page(
    id: String,
    session: Option<Arc<WebSession>>,
    state: AppState,
) -> Result<Response, Rejection> {
    let view = match state.cli_logins().view(&id).await {
        Ok(Some(view)) => view,
        Ok(None) => return Ok(gone(session.as_deref())),
        Err(error) => return Ok(error_page(session.as_deref(), &error)),
    };
    let here = format!("/-/web/cli-login/{id}");
    let Some(session) = session else {
        // `npm adduser` starts at the sign-up form when anyone may sign up.
        let open = state.registry().config.registration == Registration::Open;
        let start = if view.create && open {
            "signup"
        } else {
            "login"
        };
        return Ok(redirect(&format!(
            "/-/web/{start}?next={}",
            encode_next(&here)
        )));
    };
    if view.approved {
        return Ok(done_page(&session));
    }
    let minutes = LOGIN_TTL.as_secs() / 60;
    Ok(html(
        StatusCode::OK,
        layout(
            "Approve npm login",
            Some(&session),
            markup! {
                section.narrow {
                    h1 { "Log npm in?" }
                    p {
                        "A command line (" code { "npm login" } ") asked to sign in to this "
                        "registry. Approve it only if you started it just now."
                    }
                    p { "It will act as " strong #cli-user { (session.user.name) } "." }
                    form.stacked action=(here) method="post" {
                        input type="hidden" name="csrf" value=(session.csrf);
                        button #approve type="submit" { "Approve npm login" }
                    }
                    p.muted { "This request expires " (minutes) " minutes after it was made." }
                }
            },
        ),
    ))
}

fn done_page(session: &WebSession) -> Response {
    html(
        StatusCode::OK,
        layout(
            "npm is logged in",
            Some(session),
            markup! {
                section.narrow {
                    h1 #approved { "npm is logged in" }
                    p { "npm now acts as " strong { (session.user.name) } ". You can close this page." }
                }
            },
        ),
    )
}

async fn approve(
    id: String,
    session: Option<Arc<WebSession>>,
    state: AppState,
    form: HashMap<String, String>,
) -> Result<Response, Rejection> {
    let Some(session) = session else {
        let here = format!("/-/web/cli-login/{id}");
        return Ok(redirect(&format!(
            "/-/web/login?next={}",
            encode_next(&here)
        )));
    };
    require_csrf(&session, &form)?;
    if !state
        .cli_logins()
        .approve(&id, session.user.id)
        .await
        .map_err(reject)?
    {
        return Ok(gone(Some(&session)));
    }
    Ok(done_page(&session))
}
