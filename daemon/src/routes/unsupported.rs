//! Parts of npm's protocol this registry does not implement yet answer 400 with a sentence
//! npm prints, rather than a bare 404 that reads like a missing package: `npm trust`. Not a
//! 5xx: npm retries those for about 70 s before it shows anything, and no retry can cure this.

use registry_core::Error;
use warp::filters::path::Tail;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{boxed, Route};
use crate::error::reject;
use crate::package_path::percent_decode;

pub fn routes() -> Route {
    // ANY /-/package/:pkg/trust[/…] — npm trust (trusted publishing)
    let trust = warp::path!("-" / "package" / ..)
        .and(warp::path::tail())
        .and_then(|tail: Tail| async move {
            if is_trust_path(tail.as_str()) {
                Err::<Response, _>(not_supported("npm trust (trusted publishing)"))
            } else {
                Err(warp::reject::not_found())
            }
        });

    boxed(trust)
}

/// Whether a `/-/package/` tail is `NAME/trust[/…]`. The name is not validated: the answer is
/// the same whatever it is.
fn is_trust_path(tail: &str) -> bool {
    let segments: Vec<String> = tail
        .split('/')
        .map(|s| percent_decode(s).unwrap_or_default())
        .collect();
    // `@scope/name` may arrive as one segment (`@scope%2fname`) or two.
    let name_len = match segments.first() {
        Some(first) if first.starts_with('@') && !first.contains('/') => 2,
        _ => 1,
    };
    segments.get(name_len).is_some_and(|s| s == "trust")
}

fn not_supported(what: &str) -> Rejection {
    reject(Error::bad_request(format!(
        "{what} is not supported by this registry yet"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_paths_in_every_spelling() {
        assert!(is_trust_path("foo/trust"));
        assert!(is_trust_path("@a%2fb/trust"));
        assert!(is_trust_path("@a/b/trust/123"));
        assert!(!is_trust_path("foo/access"));
        assert!(!is_trust_path("foo/dist-tags"));
        assert!(!is_trust_path("@a/trust"), "the package @a/trust");
        assert!(!is_trust_path("foo"));
    }
}
