//! Parts of npm's protocol this registry does not implement yet answer 501 with a sentence
//! npm prints, rather than a bare 404 that reads like a missing package: `npm hook`, `npm
//! access`, `npm trust`, `npm team` and `npm org`. npm retries a 5xx on anything but POST, so
//! these commands take a few seconds to give up; that is accepted for now.

use registry_core::Error;
use warp::filters::path::Tail;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{boxed, Route};
use crate::error::reject;
use crate::package_path::percent_decode;

/// Per-package resources of `npm access` (and npm 11's `npm trust`) below `/-/package/NAME/`.
const PACKAGE_RESOURCES: &[(&str, &str)] = &[
    ("access", "npm access"),
    ("visibility", "npm access"),
    ("collaborators", "npm access"),
    ("trust", "npm trust"),
];

pub fn routes() -> Route {
    // ANY /-/npm/v1/hooks[/…] — npm hook (libnpmhook)
    let hooks = warp::path!("-" / "npm" / "v1" / "hooks" / ..)
        .and_then(|| async { Err::<Response, _>(not_supported("npm hook (webhooks)")) });

    // ANY /-/package/:pkg/{access,visibility,collaborators,trust}[/…] — npm access, npm trust
    let package = warp::path!("-" / "package" / ..)
        .and(warp::path::tail())
        .and_then(|tail: Tail| async move {
            match package_resource(tail.as_str()) {
                Some(command) => Err::<Response, _>(not_supported(command)),
                None => Err(warp::reject::not_found()),
            }
        });

    // ANY /-/team/… — npm access grant|revoke|list, npm team
    let team = warp::path!("-" / "team" / ..)
        .and_then(|| async { Err::<Response, _>(not_supported("teams (npm team, npm access)")) });

    // ANY /-/org/… — npm org, npm team create|ls, npm access list packages
    let org = warp::path!("-" / "org" / ..)
        .and_then(|| async { Err::<Response, _>(not_supported("organisations (npm org)")) });

    boxed(hooks.or(package).unify().or(team).unify().or(org).unify())
}

/// Which unsupported command a `/-/package/` tail belongs to. The name is not validated: the
/// answer is 501 whatever it is.
fn package_resource(tail: &str) -> Option<&'static str> {
    let segments: Vec<String> = tail
        .split('/')
        .map(|s| percent_decode(s).unwrap_or_default())
        .collect();
    // `@scope/name` may arrive as one segment (`@scope%2fname`) or two.
    let name_len = match segments.first() {
        Some(first) if first.starts_with('@') && !first.contains('/') => 2,
        _ => 1,
    };
    let resource = segments.get(name_len)?;
    PACKAGE_RESOURCES
        .iter()
        .find(|(r, _)| r == resource)
        .map(|(_, command)| *command)
}

fn not_supported(what: &str) -> Rejection {
    reject(Error::NotImplemented(format!(
        "{what} is not supported by this registry yet"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_resources_in_every_spelling() {
        assert_eq!(package_resource("foo/access"), Some("npm access"));
        assert_eq!(package_resource("@a%2fb/visibility"), Some("npm access"));
        assert_eq!(package_resource("@a/b/collaborators"), Some("npm access"));
        assert_eq!(package_resource("@a/b/trust/123"), Some("npm trust"));
        assert_eq!(package_resource("foo/dist-tags"), None);
        assert_eq!(package_resource("foo/blocks"), None);
        assert_eq!(package_resource("@a/access"), None, "the package @a/access");
        assert_eq!(package_resource("foo"), None);
    }
}
