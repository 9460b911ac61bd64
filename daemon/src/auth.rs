//! The caller's identity, from the `Authorization` header (none: anonymous), and the address
//! it calls from (for tokens with a CIDR allow-list).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use registry_core::accounts::auth::{authenticate_from, client_address, decode_basic, Identity};
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

pub fn identity(
    state: AppState,
) -> impl Filter<Extract = (Option<Arc<Identity>>,), Error = Rejection> + Clone {
    warp::header::optional::<String>("authorization")
        .and(client_ip(state.clone()))
        .and_then(move |header: Option<String>, client: Option<IpAddr>| {
            let state = state.clone();
            async move {
                let Some(header) = header else {
                    return Ok::<_, Rejection>(None);
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
                            Some(user) => {
                                registry.login_throttle.guard(&user, client, authenticate)
                            }
                            None => authenticate(),
                        }
                    })
                    .await?;
                if let Some(token) = identity.as_ref().and_then(|i| i.token.as_ref()) {
                    state.token_usage().record(token.id);
                }
                Ok(identity.map(Arc::new))
            }
        })
}

/// The caller of an account endpoint, or a 401 saying what needs a login.
pub fn logged_in(caller: Option<Arc<Identity>>, to: &str) -> Result<Arc<Identity>, Rejection> {
    caller.ok_or_else(|| {
        crate::error::reject(registry_core::Error::unauthorized(format!(
            "you must be logged in to {to}: run `npm login`"
        )))
    })
}
