//! `npm dist-tag ls|add|rm`: `/-/package/:pkg/dist-tags[/:tag]`.

use std::sync::Arc;

use http::{header, HeaderValue, StatusCode};
use registry_core::accounts::auth::Identity;
use registry_core::accounts::authz::require_writer;
use registry_core::packages::names::PackageName;
use registry_core::packages::tags;
use registry_core::upstream::guard::refuse_proxied_write;
use registry_core::upstream::proxy;
use registry_core::Error;
use serde_json::{json, Value};
use warp::filters::path::Tail;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{boxed, with_state, Route};
use crate::auth::identity;
use crate::body;
use crate::error::reject;
use crate::package_path::parse_package_subpath;
use crate::reply::json_response;
use crate::state::AppState;

/// `NAME/dist-tags[/TAG]` below `/-/package/`; anything else is another route's.
fn dist_tag_path(
) -> impl Filter<Extract = ((PackageName, Option<String>),), Error = Rejection> + Clone {
    warp::path!("-" / "package" / ..)
        .and(warp::path::tail())
        .and_then(|tail: Tail| async move {
            let (name, rest) = parse_package_subpath(tail.as_str()).map_err(reject)?;
            match rest.as_slice() {
                [marker] if marker == "dist-tags" => Ok((name, None)),
                [marker, tag] if marker == "dist-tags" && !tag.is_empty() => {
                    Ok((name, Some(tag.clone())))
                }
                _ => Err(warp::reject::not_found()),
            }
        })
}

pub fn routes(state: AppState) -> Route {
    let limit = body::Limits::of(&state.registry().config);

    // GET /-/package/:pkg/dist-tags — all tags
    let list = dist_tag_path()
        .and(warp::get())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and_then(
            |(name, tag): (PackageName, Option<String>),
             caller: Option<Arc<Identity>>,
             state: AppState| async move {
                if tag.is_some() {
                    return Err(warp::reject::not_found());
                }
                let local = name.clone();
                let tags = state
                    .run(move |state| {
                        let registry = state.registry();
                        let proxied = registry.upstreams.for_name(local.as_str()).is_some()
                            && registry
                                .store
                                .read(|db| db.package_by_name(local.as_str()))?
                                .is_none();
                        if proxied {
                            return Ok(None);
                        }
                        tags::list(&registry.store, &local, caller.as_deref()).map(Some)
                    })
                    .await?;
                let tags = match tags {
                    Some(tags) => tags,
                    None => proxy::dist_tags(state.registry(), &name)
                        .await
                        .map_err(reject)?,
                };
                let mut response = json_response(StatusCode::OK, &json!(tags));
                // npm's dist-tag commands read this right after changing a tag.
                response
                    .headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                Ok(response)
            },
        );

    // PUT /-/package/:pkg/dist-tags/:tag — point a tag at a version (body: "1.0.0")
    let add = dist_tag_path()
        .and(warp::put())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and(body::json(limit))
        .and_then(add);

    // DELETE /-/package/:pkg/dist-tags/:tag — remove a tag (never latest)
    let remove = dist_tag_path()
        .and(warp::delete())
        .and(identity(state.clone()))
        .and(with_state(state))
        .and_then(remove);

    boxed(list.or(add).unify().or(remove).unify())
}

fn tag_required(tag: Option<String>) -> Result<String, Rejection> {
    tag.ok_or_else(|| {
        reject(Error::bad_request(
            "name the tag: /-/package/:pkg/dist-tags/:tag",
        ))
    })
}

async fn add(
    (name, tag): (PackageName, Option<String>),
    caller: Option<Arc<Identity>>,
    state: AppState,
    body: Value,
) -> Result<Response, Rejection> {
    let tag = tag_required(tag)?;
    let version = body.as_str().map(str::to_string).ok_or_else(|| {
        reject(Error::bad_request(
            "the body must be the version as a JSON string, like \"1.0.0\"",
        ))
    })?;
    state
        .run(move |state| {
            let writer = require_writer(caller.as_deref())?;
            refuse_proxied_write(state.registry(), &name)?;
            tags::set(&state.registry().store, &writer, &name, &tag, &version)
        })
        .await?;
    Ok(json_response(StatusCode::CREATED, &json!({ "ok": true })))
}

async fn remove(
    (name, tag): (PackageName, Option<String>),
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    let tag = tag_required(tag)?;
    state
        .run(move |state| {
            let writer = require_writer(caller.as_deref())?;
            refuse_proxied_write(state.registry(), &name)?;
            tags::remove(&state.registry().store, &writer, &name, &tag)
        })
        .await?;
    Ok(json_response(StatusCode::OK, &json!({ "ok": true })))
}
