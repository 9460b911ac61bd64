//! Tarballs: streamed from the blob store with their length, a strong ETag and an immutable
//! cache header (a published tarball never changes).

use http::{header, HeaderValue, StatusCode};
use registry_core::names::PackageName;
use warp::reply::Response;
use warp::Rejection;

use super::packages::ReadHeaders;
use crate::reply::{etag_matches, not_modified};
use crate::server::StreamFile;
use crate::state::AppState;

pub async fn respond(
    state: AppState,
    name: PackageName,
    file: String,
    headers: ReadHeaders,
) -> Result<Response, Rejection> {
    let tarball = state
        .run(move |state| {
            registry_core::blocks::ensure_readable(&state.registry().store, &name)?;
            state.registry().tarball(&name, &file)
        })
        .await?;
    let etag = format!("\"{}\"", &tarball.sha512_hex[..40]);
    if etag_matches(headers.if_none_match.as_deref(), &etag) {
        return Ok(not_modified(&etag));
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
        .insert(StreamFile::new(tarball.file));
    Ok(response)
}
