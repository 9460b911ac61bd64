//! Search and listings: `GET /-/v1/search` (npm search), `GET /-/all/since` (packages changed
//! since a time) and `GET /-/by-user/:user[|:user2…]` (packages by maintainer).

use std::collections::HashMap;
use std::sync::Arc;

use http::{header, HeaderValue, StatusCode};
use registry_core::accounts::auth::Identity;
use registry_core::clock::now_iso;
use registry_core::packages::search::{self, SearchRequest};
use registry_core::upstream::search as upstream_search;
use serde_json::json;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{boxed, with_state, Route};
use crate::auth::identity;
use crate::package_path::percent_decode;
use crate::reply::json_response;
use crate::state::AppState;

pub fn routes(state: AppState) -> Route {
    // GET /-/v1/search?text=&size=&from= (quality, popularity, maintenance: ignored)
    let search = warp::path!("-" / "v1" / "search")
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and_then(search);

    // GET /-/all/since?stale=update_after&startkey=MS
    let since = warp::path!("-" / "all" / "since")
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and_then(all_since);

    // GET /-/by-user/:user[|:user2…]
    let by_user = warp::path!("-" / "by-user" / String)
        .and(warp::get())
        .and(identity(state.clone()))
        .and(with_state(state))
        .and_then(by_user);

    boxed(search.or(since).unify().or(by_user).unify())
}

async fn search(
    query: HashMap<String, String>,
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    let (request, mut results) = state
        .run(move |state| {
            let request = SearchRequest::parse(
                query.get("text").map(String::as_str),
                query.get("size").map(String::as_str),
                query.get("from").map(String::as_str),
            )?;
            let results = search::search(&state.registry().store, &request, caller.as_deref())?;
            Ok((request, results))
        })
        .await?;
    // With an upstream, its results follow the local ones (the local path is unchanged
    // without one).
    if !state.registry().upstreams.is_empty() {
        results = upstream_search::merge(state.registry(), &request, results).await;
    }
    Ok(fresh(json_response(
        StatusCode::OK,
        &json!({ "objects": results.objects, "total": results.total, "time": now_iso() }),
    )))
}

async fn all_since(
    query: HashMap<String, String>,
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    let listing = state
        .run(move |state| {
            search::changed_since(
                &state.registry().store,
                query.get("startkey").map(String::as_str),
                caller.as_deref(),
            )
        })
        .await?;
    Ok(fresh(json_response(StatusCode::OK, &listing)))
}

async fn by_user(
    users: String,
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    let listing = state
        .run(move |state| {
            // `|` arrives as is or as %7C, depending on the client.
            let users = percent_decode(&users)?;
            search::packages_by_users(&state.registry().store, &users, caller.as_deref())
        })
        .await?;
    Ok(fresh(json_response(StatusCode::OK, &json!(listing))))
}

/// These answers change with every publish: a client must not reuse them.
fn fresh(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
