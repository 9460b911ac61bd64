//! Package documents: `GET /:pkg` (full, or abbreviated on `Accept:
//! application/vnd.npm.install-v1+json`), `GET /:pkg/:version|:tag`, and `PUT /:pkg` (publish).

use std::collections::HashMap;
use std::sync::Arc;

use http::{header, HeaderValue, StatusCode};
use registry_core::auth::Identity;
use registry_core::authz::require_writer;
use registry_core::names::PackageName;
use registry_core::publish::{publish, PublishOutcome};
use registry_core::registry::package_not_found;
use registry_core::store::PackumentFlavor;
use registry_core::Error;
use serde_json::{json, Value};
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{boxed, origin, tarballs, with_state, Route};
use crate::auth::identity;
use crate::body;
use crate::cache::Rendered;
use crate::error::reject;
use crate::package_path::{package_route, PackageRoute};
use crate::reply::{accepts_gzip, etag_matches, json_response, not_modified};
use crate::state::AppState;

const ABBREVIATED_MEDIA_TYPE: &str = "application/vnd.npm.install-v1+json";
/// Clients may reuse a packument this long without asking; short, so that new versions show
/// up quickly (revalidation is a cheap 304).
const PACKUMENT_MAX_AGE: &str = "max-age=60";

/// The request headers a read cares about.
#[derive(Debug, Default, Clone)]
pub struct ReadHeaders {
    pub accept: Option<String>,
    pub accept_encoding: Option<String>,
    pub if_none_match: Option<String>,
}

fn read_headers() -> impl Filter<Extract = (ReadHeaders,), Error = Rejection> + Clone {
    warp::header::optional::<String>("accept")
        .and(warp::header::optional::<String>("accept-encoding"))
        .and(warp::header::optional::<String>("if-none-match"))
        .map(|accept, accept_encoding, if_none_match| ReadHeaders {
            accept,
            accept_encoding,
            if_none_match,
        })
}

pub fn routes(state: AppState) -> Route {
    let limit = state.registry().config.max_body_bytes;

    // GET|HEAD /:pkg, /:pkg/:version|:tag, /:pkg/-/:file.tgz
    let read = package_route()
        .and(warp::get().or(warp::head()).unify())
        .and(warp::query::<HashMap<String, String>>())
        .and(read_headers())
        .and(origin(state.clone()))
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and_then(read);

    // PUT /:pkg — publish (a document with _attachments)
    let write = package_route()
        .and(warp::put())
        .and(identity(state.clone()))
        .and(with_state(state))
        .and(body::json(limit))
        .and_then(write);

    boxed(read.or(write).unify())
}

async fn read(
    route: PackageRoute,
    query: HashMap<String, String>,
    headers: ReadHeaders,
    origin: String,
    _caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    match route {
        PackageRoute::Document(name) => {
            let write_mode = query.get("write").is_some_and(|v| v == "true");
            packument(state, name, write_mode, headers, origin).await
        }
        PackageRoute::Version(name, spec) => version(state, name, spec, origin).await,
        PackageRoute::Tarball(name, file) => tarballs::respond(state, name, file, headers).await,
    }
}

fn wants_abbreviated(accept: Option<&str>) -> bool {
    accept.is_some_and(|accept| {
        accept.split(',').any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default();
            let zero = parts.any(|p| p == "q=0" || p == "q=0.0");
            media.eq_ignore_ascii_case(ABBREVIATED_MEDIA_TYPE) && !zero
        })
    })
}

/// The rendered packument for `origin`, from the cache when the stored document is unchanged.
async fn rendered_packument(
    state: &AppState,
    name: PackageName,
    flavor: PackumentFlavor,
    origin: String,
) -> Result<Arc<Rendered>, Rejection> {
    state
        .run(move |state| {
            let registry = state.registry();
            let meta = registry
                .packument_meta(&name, flavor)?
                .ok_or_else(|| package_not_found(&name))?;
            let cache = state.packuments();
            if let Some(hit) = cache.get(name.as_str(), flavor, &origin, &meta.etag) {
                return Ok(hit);
            }
            let body = registry.packument(&name, flavor)?;
            let rendered = Arc::new(Rendered::render(&body.json, &body.etag, &origin));
            cache.insert(name.as_str(), flavor, &origin, &body.etag, rendered.clone());
            Ok(rendered)
        })
        .await
}

async fn packument(
    state: AppState,
    name: PackageName,
    write_mode: bool,
    headers: ReadHeaders,
    origin: String,
) -> Result<Response, Rejection> {
    // `?write=true` always gets the full document, whatever the Accept header says.
    let flavor = if !write_mode && wants_abbreviated(headers.accept.as_deref()) {
        PackumentFlavor::Abbreviated
    } else {
        PackumentFlavor::Full
    };
    let rendered = rendered_packument(&state, name, flavor, origin).await?;
    let cache_control = if write_mode {
        "no-store"
    } else {
        PACKUMENT_MAX_AGE
    };
    let mut response = if etag_matches(headers.if_none_match.as_deref(), &rendered.etag) {
        not_modified(&rendered.etag)
    } else if accepts_gzip(headers.accept_encoding.as_deref()) {
        let mut response = Response::new(rendered.gzip().into());
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        response
    } else {
        Response::new(rendered.json.clone().into())
    };
    let content_type = match flavor {
        PackumentFlavor::Full => "application/json",
        PackumentFlavor::Abbreviated => ABBREVIATED_MEDIA_TYPE,
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    h.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Accept-Encoding"),
    );
    if let Ok(etag) = HeaderValue::from_str(&rendered.etag) {
        h.insert(header::ETAG, etag);
    }
    Ok(response)
}

/// `GET /:pkg/:version` or `GET /:pkg/:tag`: one version's manifest.
async fn version(
    state: AppState,
    name: PackageName,
    spec: String,
    origin: String,
) -> Result<Response, Rejection> {
    let rendered = rendered_packument(&state, name.clone(), PackumentFlavor::Full, origin).await?;
    let doc: Value = serde_json::from_slice(&rendered.json).map_err(|e| {
        reject(Error::Storage(format!(
            "stored packument of {name} is not JSON: {e}"
        )))
    })?;
    let version = doc["dist-tags"]
        .get(&spec)
        .and_then(Value::as_str)
        .unwrap_or(&spec);
    let manifest = doc["versions"].get(version).ok_or_else(|| {
        reject(Error::not_found(format!(
            "version or tag {spec:?} of {name} not found"
        )))
    })?;
    Ok(json_response(StatusCode::OK, manifest))
}

async fn write(
    route: PackageRoute,
    caller: Option<Arc<Identity>>,
    state: AppState,
    body: Value,
) -> Result<Response, Rejection> {
    let PackageRoute::Document(name) = route else {
        return Err(warp::reject::not_found());
    };
    if body.get("_attachments").is_none() {
        return Err(reject(Error::bad_request(
            "this registry does not support this kind of document update yet (only publishes, \
             which carry _attachments)",
        )));
    }
    let outcome = state
        .run(move |state| {
            let registry = state.registry();
            let writer = require_writer(caller.as_deref())?;
            publish(
                &registry.store,
                registry.blobs.as_ref(),
                &writer,
                &name,
                &body,
            )
        })
        .await?;
    let (status, rev) = match outcome {
        PublishOutcome::Published { rev } => (StatusCode::CREATED, Some(rev)),
        PublishOutcome::AlreadyPublished => (StatusCode::OK, None),
    };
    Ok(json_response(
        status,
        &json!({ "ok": true, "success": true, "rev": rev }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corgi_accept_headers() {
        assert!(wants_abbreviated(Some(
            "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"
        )));
        assert!(!wants_abbreviated(Some("application/json")));
        assert!(!wants_abbreviated(Some(
            "application/vnd.npm.install-v1+json;q=0"
        )));
        assert!(!wants_abbreviated(None));
    }
}
