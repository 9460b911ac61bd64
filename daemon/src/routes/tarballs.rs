//! Tarballs: streamed from the blob store with their length, a strong ETag and an immutable
//! cache header (a published tarball never changes). A GET answered with the tarball counts
//! one download of that version; HEAD, 304 and errors do not (nothing was downloaded).

use std::sync::Arc;

use http::{header, HeaderValue, Method, StatusCode};
use registry_core::accounts::auth::Identity;
use registry_core::packages::names::PackageName;
use registry_core::registry::TarballFile;
use registry_core::store::CommitStamp;
use registry_core::upstream::proxy;
use registry_core::Error;
use warp::reply::Response;
use warp::Rejection;

use super::packages::ReadHeaders;
use crate::error::reject;
use crate::reply::{etag_matches, not_modified};
use crate::server::StreamFile;
use crate::state::AppState;

pub async fn respond(
    state: AppState,
    caller: Option<Arc<Identity>>,
    name: PackageName,
    file: String,
    method: Method,
    headers: ReadHeaders,
) -> Result<Response, Rejection> {
    let counted_name = name.clone();
    // On this thread (the state from memory or one indexed statement, the bytes from memory
    // or an open(2)) when a connection is free; else on a blocking thread. One look at
    // whether anything was committed serves every memo this read consults.
    let stamp = state.registry().store.commit_stamp();
    let local = match state
        .registry()
        .tarball_now(&name, &file, caller.as_deref(), stamp)
    {
        Some(opened) => opened.map_err(reject)?,
        None => {
            let (name, file) = (name.clone(), file.clone());
            state
                .run(move |state| state.registry().tarball(&name, &file, caller.as_deref()))
                .await?
        }
    };
    let tarball = match local {
        Some(tarball) => tarball,
        None => proxied(&state, &name, &file, stamp).await?,
    };
    let etag = format!("\"{}\"", &tarball.sha512_hex[..40]);
    if etag_matches(headers.if_none_match.as_deref(), &etag) {
        return Ok(not_modified(&etag));
    }
    if method == Method::GET {
        state.metrics().downloaded();
        // Counted in memory only (a map insert under a lock); the flush task writes the batch.
        if state.registry().config.count_downloads {
            state.downloads().record(&counted_name, &tarball.version);
        }
    }
    let mut response = Response::new(bytes::Bytes::new().into());
    *response.status_mut() = StatusCode::OK;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(tarball.len));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, value);
    }
    response
        .extensions_mut()
        .insert(StreamFile::new(tarball.blob));
    Ok(response)
}

/// A tarball of a name that is not local: from the upstream that serves the name (fetched and
/// verified on the first GET), else 404.
async fn proxied(
    state: &AppState,
    name: &PackageName,
    file: &str,
    stamp: Option<CommitStamp>,
) -> Result<TarballFile, Rejection> {
    let registry = state.registry();
    let upstream = match registry.upstreams.for_name(name.as_str()) {
        Some(upstream) => upstream,
        None => {
            // A name synced from a registry added over HTTP is served from what was synced.
            super::packages::synced_source(state, name, stamp)
                .await?
                .ok_or_else(|| {
                    reject(Error::not_found(format!(
                        "tarball {file} of {name} not found"
                    )))
                })?
        }
    };
    proxy::tarball(registry, &upstream, name, file)
        .await
        .map_err(reject)
}
