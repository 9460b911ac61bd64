//! `npm stars [user]`: the CouchDB view of packages a user starred. (Starring itself is a
//! document update on `PUT /:pkg`.)

use http::StatusCode;
use registry_core::Error;
use serde_json::json;
use warp::Filter;

use super::{boxed, with_state, Route};
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
            .and(with_state(state))
            .and_then(|query: ViewQuery, state: AppState| async move {
                let user: String = serde_json::from_str(&query.key).map_err(|_| {
                    reject(Error::bad_request(
                        "key must be a user name as a JSON string, like key=\"alice\"",
                    ))
                })?;
                let packages = state
                    .run(move |state| state.registry().store.read(|db| db.starred_by(&user)))
                    .await?;
                let rows: Vec<_> = packages
                    .into_iter()
                    .map(|name| json!({ "value": name }))
                    .collect();
                Ok::<_, warp::Rejection>(json_response(StatusCode::OK, &json!({ "rows": rows })))
            }),
    )
}
