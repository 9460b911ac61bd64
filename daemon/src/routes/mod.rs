//! The route table. Each resource has a module with its filters (one route comment each) and
//! thin handlers that call the core.

mod access;
mod admin;
mod audit;
mod binaries;
mod blocks;
mod cli_login;
mod dist_tags;
mod downloads;
mod hooks;
mod meta;
mod ops;
mod orgs;
mod packages;
mod profile;
mod registries;
mod search;
mod stars;
mod sync;
mod tarballs;
mod teams;
mod tokens;
mod unsupported;
mod users;
mod web;
mod web_login;
mod web_pages;

use std::convert::Infallible;

use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Rejection};

use crate::error::recover;
use crate::state::AppState;

pub fn routes(state: AppState) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    // Package paths first: they carry nearly all the traffic, and their parser leaves every
    // other route's path (`/`, `/-/…`, `/downloads/point|range/…`) alone. Only the legacy
    // sync paths (`PUT /:pkg/sync`, `GET /:pkg/sync/log/:id`) go before them, as the package
    // routes would take the first for a dist-tag named `sync`; anonymous installs never come
    // this way (`answer_hot_read`), and the sync filter rejects any other path at a glance.
    // In boxed groups: one chain of every route is too deep a type for the compiler's
    // recursion limit in the binary that monomorphizes it.
    let npm = boxed(
        sync::routes(state.clone())
            .or(packages::routes(state.clone()))
            .unify()
            // Before `meta`: `GET /` from a browser is the home page; from npm it falls through.
            .or(web_pages::routes(state.clone()))
            .unify()
            .or(meta::routes(state.clone()))
            .unify()
            .or(users::routes(state.clone()))
            .unify()
            .or(tokens::routes(state.clone()))
            .unify()
            .or(profile::routes(state.clone()))
            .unify()
            .or(dist_tags::routes(state.clone()))
            .unify()
            .or(stars::routes(state.clone()))
            .unify()
            .or(search::routes(state.clone()))
            .unify()
            .or(blocks::routes(state.clone()))
            .unify()
            .or(admin::routes(state.clone()))
            .unify()
            .or(registries::routes(state.clone()))
            .unify()
            .or(hooks::routes(state.clone()))
            .unify()
            .or(downloads::routes(state.clone()))
            .unify()
            .or(binaries::routes(state.clone()))
            .unify()
            .or(audit::routes(state.clone()))
            .unify(),
    );
    let accounts_and_web = boxed(
        // After the user routes: their `GET /-/user/…` refuses every path below `/-/user/`
        // it does not know, and when several routes refuse a request warp answers the last
        // refusal, so an unknown user of `GET /-/user/:user/package` is told as such.
        access::routes(state.clone())
            .or(orgs::routes(state.clone()))
            .unify()
            .or(teams::routes(state.clone()))
            .unify()
            .or(web_login::routes(state.clone()))
            .unify()
            .or(cli_login::routes(state.clone()))
            .unify()
            .or(ops::routes(state.clone()))
            .unify()
            .or(web::routes())
            .unify()
            .or(unsupported::routes())
            .unify(),
    );
    npm.or(accounts_and_web).unify().recover(recover).unify()
}

/// The origin (`https://host:port`) that tarball URLs should carry: the configured public URL,
/// else the one the client used to reach us.
pub use packages::answer_hot_read;

/// For the `metrics_listen` address, which serves this page and nothing else.
pub use ops::metrics_page;

/// For the read gate: where a browser that must sign in first comes back to.
pub fn safe_next(next: &str) -> String {
    web_login::safe_next(Some(next))
}

fn origin(state: AppState) -> BoxedFilter<(String,)> {
    warp::header::optional::<String>("host")
        .map(move |host: Option<String>| origin_of(&state, host.as_deref()))
        .boxed()
}

fn origin_of(state: &AppState, host: Option<&str>) -> String {
    let config = &state.registry().config;
    if let Some(public) = &config.public_url {
        return public.clone();
    }
    // `serve` listens with TLS exactly when a certificate is configured.
    let scheme = if config.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    match host.filter(|h| is_plain_host(h)) {
        Some(host) => format!("{scheme}://{host}"),
        None => format!("{scheme}://{}", config.listen),
    }
}

/// A Host header goes into JSON and URLs only if it is a plain `host[:port]`.
fn is_plain_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

type Route = BoxedFilter<(Response,)>;

fn boxed<F>(filter: F) -> Route
where
    F: Filter<Extract = (Response,), Error = Rejection> + Clone + Send + Sync + 'static,
{
    filter.boxed()
}

fn with_state(state: AppState) -> impl Filter<Extract = (AppState,), Error = Infallible> + Clone {
    warp::any().map(move || state.clone())
}
