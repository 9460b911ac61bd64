//! `npm stars [user]`: the CouchDB view of packages a user starred. (Starring itself is a
//! document update on `PUT /:pkg`.)

use std::sync::Arc;

use http::StatusCode;
use registry_core::accounts::auth::Identity;
use registry_core::packages::search;
use registry_core::Error;
use serde_json::json;
use warp::Filter;

use super::{boxed, with_state, Route};
use crate::auth::identity;
use crate::error::reject;
use crate::reply::json_response;
use crate::state::AppState;

#[derive(serde::Deserialize)]
struct ViewQuery {
    /// The user name as a JSON string: `key="alice"`.
    key: String,
}

pub fn routes(state: AppState) -> Route {
    // GET /-/_view/starredByUser?key="USER" — {rows: [{value: package}]}
    boxed(
        warp::path!("-" / "_view" / "starredByUser")
            .and(warp::get())
            .and(warp::query::<ViewQuery>())
            .and(identity(state.clone()))
            .and(with_state(state))
            .and_then(
                |query: ViewQuery, caller: Option<Arc<Identity>>, state: AppState| async move {
                    let user: String = serde_json::from_str(&query.key).map_err(|_| {
                        reject(Error::bad_request(
                            "key must be a user name as a JSON string, like key=\"alice\"",
                        ))
                    })?;
                    let packages = state
                        .run(move |state| {
                            search::starred_by(&state.registry().store, &user, caller.as_deref())
                        })
                        .await?;
                    let rows: Vec<_> = packages
                        .into_iter()
                        .map(|name| json!({ "value": name }))
                        .collect();
                    Ok::<_, warp::Rejection>(json_response(
                        StatusCode::OK,
                        &json!({ "rows": rows }),
                    ))
                },
            ),
    )
}
