//! Signing in and out of the web UI, and signing up when registration is open. The password is
//! checked as for `PUT /-/user/…`: under the per-address rate limit and the failed-login
//! lockout. The sign-in and sign-up forms have no session yet, so they carry a double-submit
//! token against login CSRF (another site signing the browser in as its own account): a random
//! value in a `SameSite=Strict` cookie that the form's hidden field must repeat.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use http::{header, HeaderValue, StatusCode};
use maud::{html as markup, Markup};
use registry_core::accounts::sessions::{self, NewSession, WebSession};
use registry_core::accounts::users::{create_user, validate_email, NewUser};
use registry_core::config::Registration;
use registry_core::Error;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{boxed, with_state, Route};
use crate::auth::{auth_rate_limit, client_ip};
use crate::error::ApiError;
use crate::state::AppState;
use crate::web::{
    clear_session_cookie, cookie_value, encode_next, form, html, layout, redirect, require_csrf,
    session_cookie, session_secret, web_session,
};

const LOGIN_CSRF_COOKIE: &str = "registry_login_csrf";
const LOGIN_CSRF_FIELD: &str = "login_csrf";

pub fn routes(state: AppState) -> Route {
    // GET /-/web/login[?next=/-/web/…] — the sign-in form (signed in already: on to `next`)
    let login_page = warp::path!("-" / "web" / "login")
        .and(warp::get())
        .and(web_session(state.clone()))
        .and(query())
        .and(warp::header::optional::<String>("cookie"))
        .and(with_state(state.clone()))
        .map(login_page);

    // POST /-/web/login — check the password, start a session, go on to `next`
    let login = warp::path!("-" / "web" / "login")
        .and(warp::post())
        .and(auth_rate_limit(state.clone()))
        .and(client_ip(state.clone()))
        .and(warp::header::optional::<String>("cookie"))
        .and(with_state(state.clone()))
        .and(form())
        .and_then(sign_in);

    // POST /-/web/logout — end this browser's session
    let logout = warp::path!("-" / "web" / "logout")
        .and(warp::post())
        .and(web_session(state.clone()))
        .and(session_secret())
        .and(with_state(state.clone()))
        .and(form())
        .and_then(sign_out);

    // GET /-/web/signup[?next=…] — the sign-up form (registration = "open" only)
    let signup_page = warp::path!("-" / "web" / "signup")
        .and(warp::get())
        .and(web_session(state.clone()))
        .and(query())
        .and(warp::header::optional::<String>("cookie"))
        .and(with_state(state.clone()))
        .map(signup_page);

    // POST /-/web/signup — create the account with the core's rules, then sign in
    let signup = warp::path!("-" / "web" / "signup")
        .and(warp::post())
        .and(auth_rate_limit(state.clone()))
        .and(warp::header::optional::<String>("cookie"))
        .and(with_state(state.clone()))
        .and(form())
        .and_then(sign_up);

    let forms = boxed(
        login_page
            .or(login)
            .unify()
            .or(logout)
            .unify()
            .or(signup_page)
            .unify()
            .or(signup)
            .unify(),
    );
    boxed(forms.recover(crate::web::html_refusal).unify())
}

/// The query string as a map; a malformed one is read as empty rather than refused.
fn query(
) -> impl Filter<Extract = (HashMap<String, String>,), Error = std::convert::Infallible> + Clone {
    warp::query::<HashMap<String, String>>()
        .or(warp::any().map(HashMap::new))
        .unify()
}

/// Where to go after signing in: only a path on this site (`/…`, never `//host` or `/\host`,
/// which browsers read as another site), else the home page.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(next)
            if next.starts_with('/')
                && !next.starts_with("//")
                && !next.starts_with("/\\")
                && next.len() <= 2048
                && !next.chars().any(|c| c.is_control() || c == '\\') =>
        {
            next.to_string()
        }
        _ => "/".to_string(),
    }
}

fn random_token() -> String {
    hex::encode(rand::random::<[u8; 24]>())
}

/// The browser's login-CSRF token if it has a usable one, else a fresh one.
fn login_csrf(cookie: Option<&str>) -> String {
    cookie
        .and_then(|c| cookie_value(c, LOGIN_CSRF_COOKIE))
        .filter(|t| t.len() == 48 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(random_token)
}

fn login_csrf_cookie(state: &AppState, token: &str) -> HeaderValue {
    let secure = if crate::web::secure(state) {
        "; Secure"
    } else {
        ""
    };
    // Strict: a cross-site form post arrives without it, so it can never match.
    HeaderValue::from_str(&format!(
        "{LOGIN_CSRF_COOKIE}={token}; Path=/-/web/; Max-Age=3600; HttpOnly; SameSite=Strict{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Whether a sign-in or sign-up post repeats the token of the browser's cookie.
fn login_csrf_ok(cookie: Option<&str>, form: &HashMap<String, String>) -> bool {
    let expected = cookie.and_then(|c| cookie_value(c, LOGIN_CSRF_COOKIE));
    match (expected, form.get(LOGIN_CSRF_FIELD)) {
        (Some(expected), Some(sent)) if !expected.is_empty() => {
            let (a, b) = (expected.as_bytes(), sent.as_bytes());
            a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
        }
        _ => false,
    }
}

fn registration_open(state: &AppState) -> bool {
    state.registry().config.registration == Registration::Open
}

/// A form page with its login-CSRF cookie set.
fn form_response(state: &AppState, status: StatusCode, token: &str, page: Markup) -> Response {
    let mut response = html(status, page);
    response
        .headers_mut()
        .append(header::SET_COOKIE, login_csrf_cookie(state, token));
    response
}

fn error_line(error: Option<&str>) -> Markup {
    markup! {
        @if let Some(error) = error {
            p.error role="alert" { (error) }
        }
    }
}

fn login_form(
    state: &AppState,
    token: &str,
    next: &str,
    name: &str,
    error: Option<&str>,
) -> Markup {
    let signup = format!("/-/web/signup?next={}", encode_next(next));
    layout(
        "Sign in",
        None,
        markup! {
            section.narrow {
                h1 { "Sign in" }
                (error_line(error))
                form.stacked action="/-/web/login" method="post" {
                    input type="hidden" name=(LOGIN_CSRF_FIELD) value=(token);
                    input type="hidden" name="next" value=(next);
                    label for="login-name" { "Name" }
                    input #login-name type="text" name="name" value=(name)
                        autocomplete="username" autocapitalize="none" spellcheck="false"
                        required autofocus;
                    label for="login-password" { "Password" }
                    input #login-password type="password" name="password"
                        autocomplete="current-password" required;
                    button type="submit" { "Sign in" }
                }
                @if registration_open(state) {
                    p { "No account yet? " a #signup-link href=(signup) { "Create one" } }
                }
            }
        },
    )
}

fn login_page(
    session: Option<Arc<WebSession>>,
    query: HashMap<String, String>,
    cookie: Option<String>,
    state: AppState,
) -> Response {
    let next = safe_next(query.get("next").map(String::as_str));
    if session.is_some() {
        return redirect(&next);
    }
    let token = login_csrf(cookie.as_deref());
    let page = login_form(&state, &token, &next, "", None);
    form_response(&state, StatusCode::OK, &token, page)
}

/// The session started: its cookie set, the login-CSRF cookie dropped, on to `next`.
fn signed_in(state: &AppState, new: &NewSession, next: &str) -> Response {
    let mut response = redirect(next);
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, session_cookie(state, &new.secret));
    headers.append(header::SET_COOKIE, login_csrf_cookie(state, "").clone());
    response
}

/// A refused password check as the user should see it, or the rejection to pass on.
fn refusal(rejection: Rejection) -> Result<(StatusCode, String, Option<u64>), Rejection> {
    let Some(api) = rejection.find::<ApiError>() else {
        return Err(rejection);
    };
    match &api.error {
        // One sentence for a wrong name or a wrong password: names cannot be probed.
        Error::Unauthorized(_) => Ok((
            StatusCode::UNAUTHORIZED,
            "Incorrect name or password.".to_string(),
            None,
        )),
        Error::TooManyAttempts {
            message,
            retry_after_secs,
        } => Ok((
            StatusCode::TOO_MANY_REQUESTS,
            format!("{}.", message.trim_end_matches('.')),
            Some(*retry_after_secs),
        )),
        _ => Err(rejection),
    }
}

async fn sign_in(
    client: Option<IpAddr>,
    cookie: Option<String>,
    state: AppState,
    form: HashMap<String, String>,
) -> Result<Response, Rejection> {
    let next = safe_next(form.get("next").map(String::as_str));
    let name = form
        .get("name")
        .map(|n| n.trim().to_string())
        .unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    let fresh = random_token();
    if !login_csrf_ok(cookie.as_deref(), &form) {
        let page = login_form(
            &state,
            &fresh,
            &next,
            &name,
            Some("This form has expired or did not come from this site: please sign in again."),
        );
        return Ok(form_response(&state, StatusCode::FORBIDDEN, &fresh, page));
    }
    if name.is_empty() || password.is_empty() {
        let page = login_form(
            &state,
            &fresh,
            &next,
            &name,
            Some("Enter your name and password."),
        );
        return Ok(form_response(&state, StatusCode::BAD_REQUEST, &fresh, page));
    }
    let user = name.clone();
    let outcome = state
        .run(move |state| {
            let registry = state.registry();
            registry.login_throttle.guard(&user, client, || {
                sessions::sign_in(&registry.store, &user, &password)
            })
        })
        .await;
    match outcome {
        Ok(new) => Ok(signed_in(&state, &new, &next)),
        Err(rejection) => {
            let (status, message, retry_after) = refusal(rejection)?;
            let page = login_form(&state, &fresh, &next, &name, Some(&message));
            let mut response = form_response(&state, status, &fresh, page);
            if let Some(secs) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            Ok(response)
        }
    }
}

async fn sign_out(
    session: Option<Arc<WebSession>>,
    secret: Option<String>,
    state: AppState,
    form: HashMap<String, String>,
) -> Result<Response, Rejection> {
    // Without a live session there is nothing to end (or to protect): just forget the cookie.
    if let (Some(session), Some(secret)) = (session, secret) {
        require_csrf(&session, &form)?;
        state
            .run(move |state| sessions::end_session(&state.registry().store, &secret))
            .await?;
    }
    let mut response = redirect("/");
    response
        .headers_mut()
        .append(header::SET_COOKIE, clear_session_cookie(&state));
    Ok(response)
}

struct SignupValues<'a> {
    next: &'a str,
    name: &'a str,
    email: &'a str,
}

fn signup_form(token: &str, values: &SignupValues<'_>, error: Option<&str>) -> Markup {
    let login = format!("/-/web/login?next={}", encode_next(values.next));
    layout(
        "Create an account",
        None,
        markup! {
            section.narrow {
                h1 { "Create an account" }
                (error_line(error))
                form.stacked action="/-/web/signup" method="post" {
                    input type="hidden" name=(LOGIN_CSRF_FIELD) value=(token);
                    input type="hidden" name="next" value=(values.next);
                    label for="signup-name" { "Name" }
                    input #signup-name type="text" name="name" value=(values.name)
                        autocomplete="username" autocapitalize="none" spellcheck="false"
                        required autofocus;
                    label for="signup-email" { "Email (public)" }
                    input #signup-email type="email" name="email" value=(values.email)
                        autocomplete="email" required;
                    label for="signup-password" { "Password" }
                    input #signup-password type="password" name="password"
                        autocomplete="new-password" required;
                    button type="submit" { "Create account" }
                }
                p { "Have an account? " a href=(login) { "Sign in" } }
            }
        },
    )
}

fn registration_closed(state: &AppState) -> Response {
    crate::web::error_page(
        None,
        &Error::not_found(if registration_open(state) {
            "no such page"
        } else {
            "registration is closed on this registry: ask an administrator for an account"
        }),
    )
}

fn signup_page(
    session: Option<Arc<WebSession>>,
    query: HashMap<String, String>,
    cookie: Option<String>,
    state: AppState,
) -> Response {
    if !registration_open(&state) {
        return registration_closed(&state);
    }
    let next = safe_next(query.get("next").map(String::as_str));
    if session.is_some() {
        return redirect(&next);
    }
    let token = login_csrf(cookie.as_deref());
    let values = SignupValues {
        next: &next,
        name: "",
        email: "",
    };
    form_response(
        &state,
        StatusCode::OK,
        &token,
        signup_form(&token, &values, None),
    )
}

async fn sign_up(
    cookie: Option<String>,
    state: AppState,
    form: HashMap<String, String>,
) -> Result<Response, Rejection> {
    if !registration_open(&state) {
        return Ok(registration_closed(&state));
    }
    let next = safe_next(form.get("next").map(String::as_str));
    let name = form
        .get("name")
        .map(|n| n.trim().to_string())
        .unwrap_or_default();
    let email = form
        .get("email")
        .map(|e| e.trim().to_string())
        .unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    let fresh = random_token();
    let values = SignupValues {
        next: &next,
        name: &name,
        email: &email,
    };
    if !login_csrf_ok(cookie.as_deref(), &form) {
        let page = signup_form(
            &fresh,
            &values,
            Some("This form has expired or did not come from this site: please try again."),
        );
        return Ok(form_response(&state, StatusCode::FORBIDDEN, &fresh, page));
    }
    let (user, mail) = (name.clone(), email.clone());
    let outcome = state
        .run(move |state| {
            let store = &state.registry().store;
            validate_email(&mail)?;
            let user = create_user(
                store,
                &NewUser {
                    name: &user,
                    email: &mail,
                    password: &password,
                    admin: false,
                },
            )?;
            sessions::start_session(store, &user)
        })
        .await;
    match outcome {
        Ok(new) => Ok(signed_in(&state, &new, &next)),
        Err(rejection) => {
            // The core's own sentence (name rules, password policy, name taken, bad email).
            let Some(api) = rejection.find::<ApiError>() else {
                return Err(rejection);
            };
            if api.error.status() >= 500 {
                return Err(rejection);
            }
            let status =
                StatusCode::from_u16(api.error.status()).unwrap_or(StatusCode::BAD_REQUEST);
            let message = api.error.public_message();
            let page = signup_form(&fresh, &values, Some(&message));
            Ok(form_response(&state, status, &fresh, page))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(safe_next(Some("/-/web/tokens")), "/-/web/tokens");
        assert_eq!(
            safe_next(Some("/-/web/cli-login/ab?x=1")),
            "/-/web/cli-login/ab?x=1"
        );
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "javascript:alert(1)",
            "",
            "/a\nb",
            "/a\\b",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode_next("/-/web/a?b=c&d"), "/-/web/a%3Fb%3Dc%26d");
    }
}
