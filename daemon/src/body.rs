//! Request bodies: size-limited (413 past the configured limit, whether or not the client sent
//! a Content-Length), depth-limited (400 past `max_json_depth` levels of nesting) and parsed as
//! JSON with a clear 400 when they are not.
//!
//! An oversized body is still read (and thrown away, up to [`DRAIN_LIMIT`]) before the 413 is
//! sent: closing a socket with unread data makes the kernel reset the connection, and the
//! client (npm mid-publish) would see EPIPE instead of the reason.

use bytes::{Buf, BytesMut};
use futures_util::{Stream, StreamExt};
use registry_core::config::Config;
use registry_core::Error;
use serde_json::Value;
use warp::{Filter, Rejection};

use crate::error::reject;

/// How much of an oversized body is drained before answering; past this the connection is
/// simply dropped.
const DRAIN_LIMIT: u64 = 512 * 1024 * 1024;

/// What a JSON body may be: at most `bytes` long, nested at most `depth` levels.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    bytes: u64,
    depth: u64,
}

impl Limits {
    pub fn of(config: &Config) -> Limits {
        Limits {
            bytes: config.max_body_bytes,
            depth: config.max_json_depth,
        }
    }
}

pub fn json(limits: Limits) -> impl Filter<Extract = (Value,), Error = Rejection> + Clone {
    parsed(limits, false)
}

/// Like [`json`], but an empty body (or only whitespace) is `null`: for endpoints whose body
/// is optional (a sync request).
pub fn optional_json(limits: Limits) -> impl Filter<Extract = (Value,), Error = Rejection> + Clone {
    parsed(limits, true)
}

fn parsed(
    limits: Limits,
    allow_empty: bool,
) -> impl Filter<Extract = (Value,), Error = Rejection> + Clone {
    bytes(limits).and_then(move |bytes: bytes::Bytes| async move {
        if allow_empty && bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        // Before parsing: the parser would recurse once per level first.
        if nesting_exceeds(&bytes, limits.depth) {
            return Err(reject(Error::bad_request(format!(
                "the request body nests JSON more than {} levels deep, this registry's \
                 limit (max_json_depth)",
                limits.depth
            ))));
        }
        serde_json::from_slice::<Value>(&bytes).map_err(|e| {
            reject(Error::bad_request(format!(
                "the request body is not valid JSON: {e}"
            )))
        })
    })
}

/// The string `field` of a JSON object body; a 400 naming the field when it is missing, empty
/// or not a string. `example` shows the body expected, for the error.
pub fn required_str(body: &Value, field: &str, example: &str) -> Result<String, Error> {
    match body.get(field) {
        Some(Value::String(text)) if !text.is_empty() => Ok(text.clone()),
        None | Some(Value::Null) => Err(Error::bad_request(format!(
            "the body has no {field:?}: send {example}"
        ))),
        Some(Value::String(_)) => Err(Error::bad_request(format!(
            "{field:?} is empty: send {example}"
        ))),
        Some(other) => Err(Error::bad_request(format!(
            "{field:?} must be a non-empty string, not {}: send {example}",
            kind(other)
        ))),
    }
}

/// The string `field` of a JSON object body if it is there (`null` counts as absent); a 400
/// when it is something other than a string.
pub fn optional_str(body: &Value, field: &str) -> Result<Option<String>, Error> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(Error::bad_request(format!(
            "{field:?} must be a string, not {}",
            kind(other)
        ))),
    }
}

/// What a JSON value is, for error messages (the value itself may be large).
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The body as it came (not parsed, not decoded), at most the configured size: for requests
/// relayed elsewhere (the audit endpoints).
pub fn bytes(limits: Limits) -> impl Filter<Extract = (bytes::Bytes,), Error = Rejection> + Clone {
    let limit = limits.bytes;
    warp::header::optional::<u64>("content-length")
        .and(warp::body::stream())
        .and_then(move |declared: Option<u64>, stream| async move {
            let mut stream = std::pin::pin!(stream);
            if declared.is_some_and(|len| len > limit) {
                drain(&mut stream, 0).await;
                return Err(reject(too_large(limit)));
            }
            Ok::<_, Rejection>(collect(&mut stream, limit).await?.freeze())
        })
}

async fn collect<S, B>(
    stream: &mut std::pin::Pin<&mut S>,
    limit: u64,
) -> Result<BytesMut, Rejection>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut bytes = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.map_err(|e| {
            reject(Error::bad_request(format!(
                "the request body could not be read: {e}"
            )))
        })?;
        let total = (bytes.len() + chunk.remaining()) as u64;
        if total > limit {
            drain(stream, total).await;
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

/// Reads and discards the rest of a body, up to [`DRAIN_LIMIT`] bytes in all.
async fn drain<S, B>(stream: &mut std::pin::Pin<&mut S>, mut seen: u64)
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    while seen <= DRAIN_LIMIT {
        match stream.next().await {
            Some(Ok(chunk)) => seen += chunk.remaining() as u64,
            Some(Err(_)) | None => return,
        }
    }
}

/// Whether arrays and objects in `json` nest more than `max` deep. Brackets inside strings
/// do not count; malformed JSON is left for the parser to describe.
fn nesting_exceeds(json: &[u8], max: u64) -> bool {
    let mut depth = 0u64;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in json {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

fn too_large(limit: u64) -> Error {
    Error::PayloadTooLarge(format!(
        "the request body is larger than this registry's limit of {limit} bytes \
         (max_body_bytes)"
    ))
}

#[cfg(test)]
mod tests {
    use super::nesting_exceeds;

    #[test]
    fn nesting_is_counted_outside_strings_only() {
        assert!(!nesting_exceeds(br#"{"a":[1,{"b":2}]}"#, 3));
        assert!(nesting_exceeds(br#"{"a":[1,{"b":[]}]}"#, 3));
        assert!(!nesting_exceeds(br#"{"a":"[[[[{{{{\"[["}"#, 1));
        assert!(nesting_exceeds(br#"{"a":"\\",  "b":{}}"#, 1));
        assert!(!nesting_exceeds(b"[][][]", 1), "siblings are not nested");
        assert!(nesting_exceeds("[".repeat(10_000).as_bytes(), 64));
    }
}
