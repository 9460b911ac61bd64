//! A package's access level and who may use it, as libnpmaccess speaks to them: `npm access
//! get|set status` on `/-/package/:pkg/visibility` and `/-/package/:pkg/access`, `npm access
//! list collaborators` on `/-/package/:pkg/collaborators`, and the user half of `npm access
//! list packages` on `/-/user/:user/package`. A restricted package the caller may not read is
//! a 404 on each of them (the core decides).

use std::sync::Arc;

use http::StatusCode;
use registry_core::access::packages::{
    access_of, collaborators, packages_of, set_access, PackageOwner,
};
use registry_core::access::{Access, TeamPermission};
use registry_core::accounts::auth::Identity;
use registry_core::accounts::authz::require_writer;
use registry_core::packages::names::PackageName;
use registry_core::upstream::guard::refuse_proxied_write;
use registry_core::Error;
use serde_json::{json, Value};
use warp::filters::path::Tail;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{boxed, with_state, Route};
use crate::auth::identity;
use crate::body;
use crate::error::reject;
use crate::package_path::{parse_package_subpath, percent_decode};
use crate::reply::json_response;
use crate::state::AppState;

/// `NAME/RESOURCE` below `/-/package/`; anything else is another route's.
fn package_path(
    resource: &'static str,
) -> impl Filter<Extract = (PackageName,), Error = Rejection> + Clone {
    warp::path!("-" / "package" / ..)
        .and(warp::path::tail())
        .and_then(move |tail: Tail| async move {
            // The neighbours (dist-tags, blocks) are told apart before any name is parsed.
            if tail.as_str().rsplit('/').next() != Some(resource) {
                return Err(warp::reject::not_found());
            }
            let (name, rest) = parse_package_subpath(tail.as_str()).map_err(reject)?;
            match rest.as_slice() {
                [marker] if marker == resource => Ok(name),
                _ => Err(warp::reject::not_found()),
            }
        })
}

pub fn routes(state: AppState) -> Route {
    let limit = body::Limits::of(&state.registry().config);

    // GET /-/package/:pkg/visibility — npm access get status: {"public": bool}
    let visibility = package_path("visibility")
        .and(warp::get())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and_then(visibility);

    // GET /-/package/:pkg/access — {"access": "public"|"restricted"}
    let get_access = package_path("access")
        .and(warp::get())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and_then(get_access);

    // POST /-/package/:pkg/access {"access": "public"|"restricted"} — npm access set status
    let post_access = package_path("access")
        .and(warp::post())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and(body::json(limit))
        .and_then(post_access);

    // GET /-/package/:pkg/collaborators — npm access list collaborators: {"user": "write", …}
    let collaborators = package_path("collaborators")
        .and(warp::get())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and_then(list_collaborators);

    // GET /-/user/:user/package — npm access list packages USER (npm's fallback after a 404
    // from /-/org/:user/package): {"pkg": "read"|"write", …}; 404 for an unknown user
    let user_packages = warp::path!("-" / "user" / String / "package")
        .and(warp::get())
        .and(identity(state.clone()))
        .and(with_state(state))
        .and_then(user_packages);

    boxed(
        visibility
            .or(get_access)
            .unify()
            .or(post_access)
            .unify()
            .or(collaborators)
            .unify()
            .or(user_packages)
            .unify(),
    )
}

/// `{"name": "read"|"write", …}`, the shape of every `npm access list` answer.
pub(super) fn permissions_json(entries: Vec<(String, TeamPermission)>) -> Value {
    Value::Object(
        entries
            .into_iter()
            .map(|(name, permission)| (name, json!(permission.wire())))
            .collect(),
    )
}

async fn read_access(
    name: PackageName,
    caller: Option<Arc<Identity>>,
    state: &AppState,
) -> Result<Access, Rejection> {
    state
        .run(move |state| access_of(&state.registry().store, caller.as_deref(), &name))
        .await
}

async fn visibility(
    name: PackageName,
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    let access = read_access(name, caller, &state).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "public": access == Access::Public }),
    ))
}

async fn get_access(
    name: PackageName,
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    let access = read_access(name, caller, &state).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "access": access.as_str() }),
    ))
}

/// The fields of `npm access set mfa=…`.
const MFA_FIELDS: [&str; 2] = ["publish_requires_tfa", "automation_token_overrides_tfa"];

async fn post_access(
    name: PackageName,
    caller: Option<Arc<Identity>>,
    state: AppState,
    body: Value,
) -> Result<Response, Rejection> {
    // Checked first: no credential makes it possible.
    if MFA_FIELDS.iter().any(|field| body.get(field).is_some()) {
        return Err(reject(Error::bad_request(
            "this registry has no two-factor authentication, so a package's publish_requires_tfa \
             (npm access set mfa=…) cannot be set",
        )));
    }
    let access = body::required_str(&body, "access", r#"{"access": "restricted"}"#)
        .and_then(|text| Access::parse(&text))
        .map_err(reject)?;
    state
        .run(move |state| {
            require_writer(caller.as_deref())?;
            refuse_proxied_write(state.registry(), &name)?;
            set_access(&state.registry().store, caller.as_deref(), &name, access)
        })
        .await?;
    Ok(json_response(StatusCode::OK, &json!({ "ok": true })))
}

async fn list_collaborators(
    name: PackageName,
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    let list = state
        .run(move |state| collaborators(&state.registry().store, caller.as_deref(), &name))
        .await?;
    Ok(json_response(StatusCode::OK, &permissions_json(list)))
}

async fn user_packages(
    user: String,
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    let owner = PackageOwner::User(percent_decode(&user).map_err(reject)?);
    let packages = state
        .run(move |state| packages_of(&state.registry().store, caller.as_deref(), &owner))
        .await?;
    Ok(json_response(StatusCode::OK, &permissions_json(packages)))
}
