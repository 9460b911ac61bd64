//! Registry-wide endpoints: `GET /`, `GET /-/ping`, `GET /-/whoami`.

use std::sync::Arc;

use http::StatusCode;
use registry_core::accounts::auth::Identity;
use registry_core::Error;
use serde_json::json;
use warp::Filter;

use super::{boxed, with_state, Route};
use crate::auth::identity;
use crate::error::reject;
use crate::reply::json_response;
use crate::state::AppState;

pub fn routes(state: AppState) -> Route {
    // GET / — registry information, CouchDB style
    let root = warp::path::end()
        .and(warp::get().or(warp::head()).unify())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and_then(
            |caller: Option<Arc<Identity>>, state: AppState| async move {
                let info = state
                    .run(move |state| state.registry().info(caller.as_deref()))
                    .await?;
                Ok::<_, warp::Rejection>(json_response(
                    StatusCode::OK,
                    &json!({
                        "db_name": "registry",
                        "engine": "registry-rs",
                        "version": env!("CARGO_PKG_VERSION"),
                        "doc_count": info.doc_count,
                        "update_seq": info.update_seq,
                    }),
                ))
            },
        );

    // GET /-/ping — liveness for `npm ping`
    let ping = warp::path!("-" / "ping")
        .and(warp::get().or(warp::head()).unify())
        .map(|| json_response(StatusCode::OK, &json!({})));

    // GET /-/whoami — the user behind the token
    let whoami = warp::path!("-" / "whoami")
        .and(warp::get())
        .and(identity(state))
        .and_then(|identity: Option<Arc<Identity>>| async move {
            let identity = identity.ok_or_else(|| {
                reject(Error::unauthorized(
                    "you are not logged in: run `npm login`",
                ))
            })?;
            Ok::<_, warp::Rejection>(json_response(
                StatusCode::OK,
                &json!({ "username": identity.user.name }),
            ))
        });

    boxed(root.or(ping).unify().or(whoami).unify())
}
