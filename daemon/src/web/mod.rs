//! The web UI's shared parts: pages are server-rendered HTML (maud: compiled, auto-escaping
//! templates), under `/-/web/` so they never collide with a package name; `GET /` serves the
//! home page to browsers only (`Accept: text/html`). Every page goes out through [`html`],
//! which sets the security headers; every signed-in page knows its [`WebSession`], whose CSRF
//! token each form carries back ([`require_csrf`]).
//!
//! The assets are embedded in the binary: one stylesheet (light and dark, readable from 375 px
//! up) and one small script (progressive: every page works without it).

use std::collections::HashMap;
use std::sync::Arc;

use http::{header, HeaderValue, StatusCode};
use maud::{html as markup, Markup, DOCTYPE};
use registry_core::accounts::sessions::{self, WebSession, SESSION_DAYS};
use registry_core::Error;
use warp::reply::Response;
use warp::{Filter, Rejection};

use crate::error::{add_retry_after, reject, ApiError};
use crate::state::AppState;

pub mod chart;
pub mod cli_logins;
pub mod home;
pub mod listing;
pub mod markdown;
pub mod package;
pub mod search;
pub mod tokens;
pub mod user;

pub const SESSION_COOKIE: &str = "registry_session";
pub const STYLESHEET_PATH: &str = "/-/web/static/style.css";
pub const SCRIPT_PATH: &str = "/-/web/static/app.js";
pub const STYLESHEET: &str = include_str!("static/style.css");
pub const SCRIPT: &str = include_str!("static/app.js");

/// No inline script or style anywhere: only our own assets, no frames, forms post only here.
/// Images may come from any https site: READMEs show their badges and screenshots from
/// elsewhere (an image cannot run script; the sanitizer has already dropped its handlers).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: https:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A page with its status and the security headers every page carries.
pub fn html(status: StatusCode, page: Markup) -> Response {
    let mut response = Response::new(page.into_string().into());
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    // Pages show who is signed in and carry CSRF tokens: never stored by a shared cache.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept, Cookie"));
    response
}

/// A `303 See Other` to `location` (after a form post).
pub fn redirect(location: &str) -> Response {
    let mut response = Response::new(bytes::Bytes::new().into());
    *response.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The frame of every page: the header with the search box and who is signed in, then `body`.
pub fn layout(title: &str, session: Option<&WebSession>, body: Markup) -> Markup {
    markup! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · registry" }
                link rel="stylesheet" href=(STYLESHEET_PATH);
                script src=(SCRIPT_PATH) defer {}
            }
            body {
                header.site {
                    a.brand href="/" { "registry" }
                    form.search role="search" action="/-/web/search" method="get" {
                        label for="site-search" class="visually-hidden" { "Search packages" }
                        input #site-search type="search" name="q" placeholder="Search packages";
                        button type="submit" { "Search" }
                    }
                    nav aria-label="Account" {
                        @if let Some(session) = session {
                            a href={ "/-/web/user/" (session.user.name) } { (session.user.name) }
                            " "
                            a href="/-/web/tokens" { "Tokens" }
                            " "
                            form.inline action="/-/web/logout" method="post" {
                                input type="hidden" name="csrf" value=(session.csrf);
                                button type="submit" { "Sign out" }
                            }
                        } @else {
                            a href="/-/web/login" { "Sign in" }
                        }
                    }
                }
                main #content { (body) }
            }
        }
    }
}

/// A page that says what went wrong, with the status of the error.
pub fn error_page(session: Option<&WebSession>, error: &Error) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let message = error.public_message();
    html(
        status,
        layout(
            status.canonical_reason().unwrap_or("Error"),
            session,
            markup! {
                h1 { (status.canonical_reason().unwrap_or("Error")) }
                p.error role="alert" { (message) }
                p { a href="/" { "Back to the home page" } }
            },
        ),
    )
}

/// A browser form's refusal before its handler ran (the rate limit, a stale CSRF token) as
/// an HTML page with the same status; any other rejection goes on to the other routes.
pub async fn html_refusal(rejection: Rejection) -> Result<Response, Rejection> {
    let Some(api) = rejection.find::<ApiError>() else {
        return Err(rejection);
    };
    let mut page = error_page(None, &api.error);
    add_retry_after(&api.error, &mut page);
    Ok(page)
}

pub fn cookie_value(header: &str, name: &str) -> Option<String> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name).then(|| value.trim().to_string())
    })
}

/// The browser's session, if its cookie names a live one.
pub fn web_session(
    state: AppState,
) -> impl Filter<Extract = (Option<Arc<WebSession>>,), Error = Rejection> + Clone {
    warp::header::optional::<String>("cookie").and_then(move |cookie: Option<String>| {
        let state = state.clone();
        async move {
            let Some(secret) = cookie.and_then(|c| cookie_value(&c, SESSION_COOKIE)) else {
                return Ok::<_, Rejection>(None);
            };
            let found = state
                .run(move |state| sessions::session(&state.registry().store, &secret))
                .await?;
            Ok(found.map(Arc::new))
        }
    })
}

/// The secret of the browser's session cookie, to end it.
pub fn session_secret() -> impl Filter<Extract = (Option<String>,), Error = Rejection> + Clone {
    warp::header::optional::<String>("cookie")
        .map(|cookie: Option<String>| cookie.and_then(|c| cookie_value(&c, SESSION_COOKIE)))
}

/// Whether cookies must be `Secure`: the registry is reached over https.
pub fn secure(state: &AppState) -> bool {
    let config = &state.registry().config;
    config.tls_cert.is_some()
        || config
            .public_url
            .as_deref()
            .is_some_and(|url| url.starts_with("https://"))
}

/// The `Set-Cookie` that starts a session in the browser.
pub fn session_cookie(state: &AppState, secret: &str) -> HeaderValue {
    let max_age = SESSION_DAYS * 24 * 3600;
    let secure = if secure(state) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={secret}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The `Set-Cookie` that forgets the session in the browser.
pub fn clear_session_cookie(state: &AppState) -> HeaderValue {
    let secure = if secure(state) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A form post must come from a page of this session: its `csrf` field is the session's token.
pub fn require_csrf(session: &WebSession, form: &HashMap<String, String>) -> Result<(), Rejection> {
    match form.get("csrf") {
        Some(token) if session.csrf_matches(token) => Ok(()),
        _ => Err(reject(Error::forbidden(
            "this form has expired or did not come from this site: reload the page and try again",
        ))),
    }
}

/// Percent-encodes a query-string value: every byte but the unreserved ones and `keep`.
fn percent_encode(value: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) || keep.contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Free text (a search query) as a query-string value.
pub fn encode_query(value: &str) -> String {
    percent_encode(value, b"")
}

/// A local path (`next=`) as a query-string value; its slashes stay readable.
pub fn encode_next(path: &str) -> String {
    percent_encode(path, b"/")
}

/// A form body (`application/x-www-form-urlencoded`), at most this size.
pub const MAX_FORM_BYTES: u64 = 64 * 1024;

pub fn form() -> impl Filter<Extract = (HashMap<String, String>,), Error = Rejection> + Clone {
    warp::body::content_length_limit(MAX_FORM_BYTES).and(warp::body::form())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_name() {
        let header = "a=1; registry_session=abc ; other=x";
        assert_eq!(cookie_value(header, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie_value("registry_sessionx=1", SESSION_COOKIE), None);
        assert_eq!(cookie_value("", SESSION_COOKIE), None);
    }
}
