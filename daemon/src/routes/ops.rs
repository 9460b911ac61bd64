//! For operators: `GET /-/metrics` (Prometheus text, administrators only here; open on the
//! `metrics_listen` address, see `server.rs`), `GET /-/healthz` and `GET /-/readyz`.

use std::sync::Arc;

use http::{header, HeaderValue, StatusCode};
use registry_core::accounts::auth::Identity;
use registry_core::accounts::authz::require_admin;
use serde_json::json;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{boxed, with_state, Route};
use crate::auth::identity;
use crate::error::reject;
use crate::reply::json_response;
use crate::state::AppState;

pub fn routes(state: AppState) -> Route {
    // GET /-/metrics — counters and durations in the Prometheus text format; admin only
    let metrics = warp::path!("-" / "metrics")
        .and(warp::get())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and_then(
            |caller: Option<Arc<Identity>>, state: AppState| async move {
                require_admin(caller.as_deref()).map_err(reject)?;
                Ok::<_, Rejection>(metrics_page(&state))
            },
        );

    // GET /-/healthz — the process answers (liveness); nothing else is looked at
    let healthz = warp::path!("-" / "healthz")
        .and(warp::get().or(warp::head()).unify())
        .map(|| json_response(StatusCode::OK, &json!({ "status": "ok" })));

    // GET /-/readyz — the database and the blob store can be used (readiness); 503 naming
    // the one that cannot
    let readyz = warp::path!("-" / "readyz")
        .and(warp::get().or(warp::head()).unify())
        .and(with_state(state))
        .and_then(|state: AppState| async move {
            state
                .run(|state| {
                    let registry = state.registry();
                    registry.store.check()?;
                    registry.blobs.check()
                })
                .await?;
            Ok::<_, Rejection>(json_response(StatusCode::OK, &json!({ "status": "ok" })))
        });

    boxed(metrics.or(healthz).unify().or(readyz).unify())
}

/// The metrics page as a response (here and on the `metrics_listen` address).
pub fn metrics_page(state: &AppState) -> Response {
    let mut response = Response::new(crate::metrics::render(state).into());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(registry_core::metrics::CONTENT_TYPE),
    );
    response
}
