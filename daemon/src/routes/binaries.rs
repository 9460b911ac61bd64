//! The binary mirror (cnpmcore's Binary Sync API): `GET /-/binary/` lists the configured
//! binaries; `GET /-/binary/:name/:subpath` answers a directory as JSON entries and a file as
//! its bytes (mirrored once, then served from the blob store).

use std::collections::HashMap;

use http::{header, HeaderValue, StatusCode};
use registry_core::upstream::binaries::{self, Answer, ListQuery, MirroredFile, Subpath};
use warp::filters::path::Tail;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{boxed, origin, with_state, Route};
use crate::error::reject;
use crate::package_path::percent_decode;
use crate::reply::{etag_matches, json_response, not_modified};
use crate::server::StreamFile;
use crate::state::AppState;

pub fn routes(state: AppState) -> Route {
    // GET /-/binary/ — the configured binaries
    // GET /-/binary/:name/:subpath?since=&limit= — a directory listing or a file
    let binary = warp::path!("-" / "binary" / ..)
        .and(warp::get())
        .and(warp::path::tail())
        .and(warp::query::<HashMap<String, String>>())
        .and(warp::header::optional::<String>("if-none-match"))
        .and(origin(state.clone()))
        .and(with_state(state))
        .and_then(binary);
    boxed(binary)
}

async fn binary(
    tail: Tail,
    query: HashMap<String, String>,
    if_none_match: Option<String>,
    origin: String,
    state: AppState,
) -> Result<Response, Rejection> {
    let registry = state.registry();
    let configured = &registry.config.binaries;
    let (name, rest) = tail.as_str().split_once('/').unwrap_or((tail.as_str(), ""));
    if name.is_empty() {
        return Ok(json_response(
            StatusCode::OK,
            &binaries::list(configured, &origin),
        ));
    }
    let binary = binaries::find(configured, name).map_err(reject)?;
    let subpath = percent_decode(rest)
        .and_then(|decoded| Subpath::parse(&decoded))
        .map_err(reject)?;
    let list_query = ListQuery::parse(
        query.get("since").map(String::as_str),
        query.get("limit").map(String::as_str),
    )
    .map_err(reject)?;
    match binaries::get(registry, binary, &subpath)
        .await
        .map_err(reject)?
    {
        Answer::Directory(entries) => {
            // Entries of `x` that was a directory without its slash are below `x/`.
            let mut dir = subpath.encoded();
            if !dir.is_empty() && !dir.ends_with('/') {
                dir.push('/');
            }
            let base = format!("{origin}/-/binary/{}/{dir}", binary.name);
            let listed: Vec<_> = list_query
                .apply(entries)
                .iter()
                .map(|e| e.to_json(&base))
                .collect();
            Ok(json_response(
                StatusCode::OK,
                &serde_json::Value::Array(listed),
            ))
        }
        Answer::File(file) => Ok(file_response(file, if_none_match.as_deref())),
    }
}

fn file_response(file: MirroredFile, if_none_match: Option<&str>) -> Response {
    let etag = format!("\"{}\"", &file.sha512_hex[..40]);
    if etag_matches(if_none_match, &etag) {
        return not_modified(&etag);
    }
    let mut response = Response::new(bytes::Bytes::new().into());
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(file.len));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, value);
    }
    response.extensions_mut().insert(StreamFile::new(file.blob));
    response
}
