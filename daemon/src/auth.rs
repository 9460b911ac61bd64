//! The caller's identity, from the `Authorization` header (none: anonymous), and the address
//! it calls from (for tokens with a CIDR allow-list).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use registry_core::accounts::auth::{authenticate_from, client_address, decode_basic, Identity};
use registry_core::config::ReadAccess;
use warp::{Filter, Rejection};

use crate::error::reject;
use crate::state::AppState;

/// The TCP peer of the connection a request came on: a request extension set by the accept
/// loop (warp's own remote-address extension is private to warp).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// The client's address: the TCP peer, or what a trusted proxy says in `X-Forwarded-For`.
/// `None` only when the request did not come through the accept loop.
pub fn client_ip(
    state: AppState,
) -> impl Filter<Extract = (Option<IpAddr>,), Error = Rejection> + Clone {
    warp::ext::optional::<PeerAddr>()
        .and(warp::header::optional::<String>("x-forwarded-for"))
        .map(move |peer: Option<PeerAddr>, forwarded: Option<String>| {
            let trusted = &state.registry().config.trusted_proxies;
            peer.map(|PeerAddr(peer)| client_address(peer.ip(), forwarded.as_deref(), trusted))
        })
}

/// Refuses (429, with Retry-After) a request to a password endpoint once its client address
/// has used up its share (`auth_requests_per_second`, `auth_burst`). Goes before the body is
/// read and before any credential is checked: the point is to spare the hashing threads.
pub fn auth_rate_limit(state: AppState) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    client_ip(state.clone())
        .and_then(move |client: Option<IpAddr>| {
            let state = state.clone();
            async move {
                // No address only for requests that bypassed the accept loop.
                match client {
                    Some(address) => state.auth_rate().check(address).map_err(reject),
                    None => Ok(()),
                }
            }
        })
        .untuple_one()
}

/// The user name of a `Basic` Authorization header.
fn basic_user(header: &str) -> Option<String> {
    let (scheme, value) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    decode_basic(value).ok().map(|(user, _)| user)
}

/// A caller already authenticated by [`read_gate`], so that the routes do not do it twice.
#[derive(Clone)]
pub struct GatedCaller(pub Option<Arc<Identity>>);

/// Who sent `header` from `client`: a token lookup, or a (guess-limited) password check.
async fn resolve(
    state: &AppState,
    header: Option<String>,
    client: Option<IpAddr>,
) -> Result<Option<Arc<Identity>>, Rejection> {
    let Some(header) = header else {
        return Ok(None);
    };
    let identity = state
        .run(move |state| {
            let registry = state.registry();
            let authenticate = || {
                authenticate_from(
                    &registry.store,
                    &registry.credentials,
                    Some(&header),
                    client,
                )
            };
            // A password travels in Basic credentials: guess-limit those.
            match basic_user(&header) {
                Some(user) => registry.login_throttle.guard(&user, client, authenticate),
                None => authenticate(),
            }
        })
        .await?;
    if let Some(token) = identity.as_ref().and_then(|i| i.token.as_ref()) {
        state.token_usage().record(token.id);
    }
    Ok(identity.map(Arc::new))
}

pub fn identity(
    state: AppState,
) -> impl Filter<Extract = (Option<Arc<Identity>>,), Error = Rejection> + Clone {
    warp::ext::optional::<GatedCaller>()
        .and(warp::header::optional::<String>("authorization"))
        .and(client_ip(state.clone()))
        .and_then(
            move |gated: Option<GatedCaller>, header: Option<String>, client: Option<IpAddr>| {
                let state = state.clone();
                async move {
                    match gated {
                        Some(GatedCaller(caller)) => Ok(caller),
                        None => resolve(&state, header, client).await,
                    }
                }
            },
        )
}

/// Paths anyone may use when only logged-in users may read: liveness and readiness (probed by
/// load balancers without credentials), logging in (npm's
/// couch and web logins, and the web UI's sign-in and sign-up pages with their assets).
fn open_to_anonymous(method: &http::Method, path: &str) -> bool {
    path == "/-/ping"
        || path == "/-/healthz"
        || path == "/-/readyz"
        || (method == http::Method::PUT && path.starts_with("/-/user/org.couchdb.user:"))
        || path == "/-/v1/login"
        || path.starts_with("/-/v1/done")
        || path.starts_with("/-/v1/login_cli/")
        || path == "/-/web/login"
        || path == "/-/web/signup"
        || path.starts_with("/-/web/cli-login/")
        || path.starts_with("/-/web/static/")
}

/// A web page (`/-/web/…`, or `/` for a browser): a signed-in browser's session cookie lets it
/// through the gate, and an anonymous browser is sent to the sign-in page.
fn is_page<B>(request: &http::Request<B>) -> bool {
    let path = request.uri().path();
    let wants_html = request
        .headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    path.starts_with("/-/web/") || (path == "/" && wants_html)
}

/// Where an anonymous browser goes instead of a page: signing in, then back (GETs only: a
/// form posted without a session has nothing to come back to).
fn sign_in_first<B>(request: &http::Request<B>) -> Option<warp::reply::Response> {
    let wants_html = request
        .headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if request.method() != http::Method::GET || !wants_html {
        return None;
    }
    let here = request
        .uri()
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_string();
    let next = crate::routes::safe_next(&here);
    Some(crate::web::redirect(&format!(
        "/-/web/login?next={}",
        crate::web::encode_next(&next)
    )))
}

/// Whether the request carries the cookie of a live browser session.
async fn has_web_session<B>(state: &AppState, request: &http::Request<B>) -> bool {
    let secret = request
        .headers()
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| crate::web::cookie_value(c, crate::web::SESSION_COOKIE));
    let Some(secret) = secret else {
        return false;
    };
    state
        .run(move |state| {
            registry_core::accounts::sessions::session(&state.registry().store, &secret)
        })
        .await
        .is_ok_and(|session| session.is_some())
}

/// With `read_access = "authenticated"`, every request but [`open_to_anonymous`] ones needs a
/// valid credential: anonymous ones get a 401 that makes npm suggest `npm login` (a browser
/// asking for a page is sent to the sign-in page instead), and the caller of the others is
/// resolved here, once, for the routes (`Err` is the answer to send). A web page's caller is
/// its session cookie. With `public` reads this does nothing.
pub async fn read_gate<B>(
    state: &AppState,
    request: &mut http::Request<B>,
) -> Result<(), warp::reply::Response> {
    if state.registry().config.read_access != ReadAccess::Authenticated
        || open_to_anonymous(request.method(), request.uri().path())
    {
        return Ok(());
    }
    let page = is_page(request);
    if page && has_web_session(state, request).await {
        return Ok(());
    }
    let header = match request.headers().get(http::header::AUTHORIZATION) {
        None => None,
        Some(value) => match value.to_str() {
            Ok(text) => Some(text.to_string()),
            Err(_) => {
                return Err(crate::error::error_reply(
                    registry_core::Error::unauthorized("the Authorization header is not text"),
                ))
            }
        },
    };
    let client = request
        .extensions()
        .get::<PeerAddr>()
        .map(|PeerAddr(peer)| {
            let forwarded = request
                .headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok());
            client_address(
                peer.ip(),
                forwarded,
                &state.registry().config.trusted_proxies,
            )
        });
    match resolve(state, header, client).await {
        Ok(Some(caller)) => {
            request.extensions_mut().insert(GatedCaller(Some(caller)));
            Ok(())
        }
        Ok(None) if page => Err(sign_in_first(request).unwrap_or_else(|| {
            crate::error::error_reply(registry_core::Error::unauthorized(
                "this registry is readable by signed-in users only: sign in first",
            ))
        })),
        Ok(None) => Err(crate::error::error_reply(
            registry_core::Error::unauthorized(
                "this registry is readable by logged-in users only: run `npm login`",
            ),
        )),
        Err(rejection) => Err(crate::error::rejection_response(&rejection)),
    }
}

/// The caller of an account endpoint, or a 401 saying what needs a login.
pub fn logged_in(caller: Option<Arc<Identity>>, to: &str) -> Result<Arc<Identity>, Rejection> {
    caller.ok_or_else(|| {
        crate::error::reject(registry_core::Error::unauthorized(format!(
            "you must be logged in to {to}: run `npm login`"
        )))
    })
}
