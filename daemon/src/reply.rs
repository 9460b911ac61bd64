//! Building responses.

use http::{header, HeaderValue, StatusCode};
use warp::reply::Response;

pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut response = Response::new(body.to_string().into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// True if a comma-separated `If-None-Match` names `etag` (or is `*`).
pub fn etag_matches(if_none_match: Option<&str>, etag: &str) -> bool {
    if_none_match.is_some_and(|header| {
        header.split(',').map(str::trim).any(|candidate| {
            candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
        })
    })
}

/// True if the client takes gzip (`Accept-Encoding` lists it with a non-zero quality).
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    accept_encoding.is_some_and(|header| {
        header.split(',').any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or_default();
            let zero_quality = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !zero_quality
        })
    })
}

pub fn not_modified(etag: &str) -> Response {
    let mut response = Response::new(bytes::Bytes::new().into());
    *response.status_mut() = StatusCode::NOT_MODIFIED;
    if let Ok(value) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_lists_and_weak_tags() {
        assert!(etag_matches(Some("\"a\", \"b\""), "\"b\""));
        assert!(etag_matches(Some("W/\"b\""), "\"b\""));
        assert!(etag_matches(Some("*"), "\"b\""));
        assert!(!etag_matches(Some("\"c\""), "\"b\""));
        assert!(!etag_matches(None, "\"b\""));
    }

    #[test]
    fn gzip_negotiation() {
        assert!(accepts_gzip(Some("gzip,deflate")));
        assert!(accepts_gzip(Some("zstd, gzip;q=0.5")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(Some("br")));
        assert!(!accepts_gzip(None));
    }
}
