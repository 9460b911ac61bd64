//! `npm audit`: `POST /-/npm/v1/security/advisories/bulk` (and npm 6's `audits/quick`) are
//! forwarded to the first upstream, body and `Content-Encoding` as received, and its status,
//! content type and body relayed. Without an upstream: a 404 whose reason npm prints.

use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use registry_core::upstream::audit::{self, BULK_ADVISORIES, QUICK_AUDIT};
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{boxed, with_state, Route};
use crate::body;
use crate::state::AppState;

pub fn routes(state: AppState) -> Route {
    let limits = body::Limits::of(&state.registry().config);

    // POST /-/npm/v1/security/advisories/bulk — npm audit (npm 7+)
    let bulk = warp::path!("-" / "npm" / "v1" / "security" / "advisories" / "bulk")
        .map(|| BULK_ADVISORIES);
    // POST /-/npm/v1/security/audits/quick — npm audit (npm 6)
    let quick =
        warp::path!("-" / "npm" / "v1" / "security" / "audits" / "quick").map(|| QUICK_AUDIT);

    let forward = bulk
        .or(quick)
        .unify()
        .and(warp::post())
        .and(warp::header::optional::<String>("content-encoding"))
        .and(body::bytes(limits))
        .and(with_state(state))
        .and_then(forward);
    boxed(forward)
}

async fn forward(
    path: &'static str,
    content_encoding: Option<String>,
    body: Bytes,
    state: AppState,
) -> Result<Response, Rejection> {
    let answer = audit::forward(state.registry(), path, body, content_encoding.as_deref())
        .await
        .map_err(crate::error::reject)?;
    let mut response = Response::new(answer.body.into());
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = answer
        .content_type
        .and_then(|t| HeaderValue::from_str(&t).ok())
        .unwrap_or(HeaderValue::from_static("application/json"));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    Ok(response)
}
