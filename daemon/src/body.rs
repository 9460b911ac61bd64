//! Request bodies: size-limited (413 past the configured limit, whether or not the client sent
//! a Content-Length) and parsed as JSON with a clear 400 when they are not.

use bytes::{Buf, BytesMut};
use futures_util::{Stream, StreamExt};
use registry_core::Error;
use serde_json::Value;
use warp::{Filter, Rejection};

use crate::error::reject;

pub fn json(limit: u64) -> impl Filter<Extract = (Value,), Error = Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and(warp::body::stream())
        .and_then(move |declared: Option<u64>, stream| async move {
            if declared.is_some_and(|len| len > limit) {
                return Err(reject(too_large(limit)));
            }
            let bytes = collect(stream, limit).await?;
            serde_json::from_slice::<Value>(&bytes).map_err(|e| {
                reject(Error::bad_request(format!(
                    "the request body is not valid JSON: {e}"
                )))
            })
        })
}

async fn collect<S, B>(stream: S, limit: u64) -> Result<BytesMut, Rejection>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut stream = std::pin::pin!(stream);
    let mut bytes = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.map_err(|e| {
            reject(Error::bad_request(format!(
                "the request body could not be read: {e}"
            )))
        })?;
        if (bytes.len() + chunk.remaining()) as u64 > limit {
            return Err(reject(too_large(limit)));
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            bytes.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(bytes)
}

fn too_large(limit: u64) -> Error {
    Error::PayloadTooLarge(format!(
        "the request body is larger than this registry's limit of {limit} bytes \
         (max_body_bytes)"
    ))
}
