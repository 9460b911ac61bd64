//! Package paths are parsed here and nowhere else. Scoped names arrive as `@scope%2fname`
//! (npm, any case of `%2f`) or as `@scope/name` (tarball URLs, yarn); the rest of the path
//! says which resource of the package is meant.

use registry_core::packages::names::PackageName;
use registry_core::Error;
use warp::filters::path::FullPath;
use warp::{Filter, Rejection};

use crate::error::reject;

#[derive(Debug, PartialEq, Eq)]
pub enum PackageRoute {
    /// `/name`
    Document(PackageName),
    /// `/name/1.0.0` or `/name/latest`
    Version(PackageName, String),
    /// `/name/-/name-1.0.0.tgz`
    Tarball(PackageName, String),
    /// `/name/-rev/3-abc`
    Revision(PackageName, String),
    /// `/name/-/name-1.0.0.tgz/-rev/3-abc`
    TarballRevision(PackageName, String, String),
}

/// `/-/package/NAME/REST…` paths (dist-tags, blocks, access): the package name, in either
/// spelling, and the remaining decoded segments.
pub fn parse_package_subpath(tail: &str) -> Result<(PackageName, Vec<String>), Error> {
    let segments: Vec<String> = tail
        .trim_start_matches('/')
        .split('/')
        .map(percent_decode)
        .collect::<Result<_, _>>()?;
    let (name, rest) = match segments.as_slice() {
        [scope, bare, rest @ ..] if scope.starts_with('@') && !scope.contains('/') => {
            (format!("{scope}/{bare}"), rest)
        }
        [name, rest @ ..] => (name.clone(), rest),
        [] => {
            return Err(Error::bad_request(
                "a package name is missing from the path",
            ))
        }
    };
    Ok((PackageName::parse(&name)?, rest.to_vec()))
}

/// The packages of a downloads query: one name in either spelling (`@scope/name`,
/// `@scope%2fname`), or several comma-separated names (npm's bulk form; as on npm, a bulk
/// query may name scoped packages only in the `%2f` spelling). Nothing may follow the name.
pub fn parse_package_list(tail: &str) -> Result<Vec<PackageName>, Error> {
    let tail = tail.trim_start_matches('/');
    if tail.contains(',') {
        return tail
            .split(',')
            .map(|name| PackageName::parse(&percent_decode(name)?))
            .collect();
    }
    let (name, rest) = parse_package_subpath(tail)?;
    if !rest.is_empty() {
        return Err(Error::bad_request(format!(
            "unexpected {:?} after the package name {name}",
            rest.join("/")
        )));
    }
    Ok(vec![name])
}

/// Matches every path that is not a `/-/…` endpoint and yields the parsed package route.
pub fn package_route() -> impl Filter<Extract = (PackageRoute,), Error = Rejection> + Clone {
    warp::path::full().and_then(|path: FullPath| async move {
        match parse(path.as_str()) {
            Ok(Some(route)) => Ok(route),
            Ok(None) => Err(warp::reject::not_found()),
            Err(error) => Err(reject(error)),
        }
    })
}

/// `Ok(None)`: not a package path at all (the root, a `/-/` endpoint, or npm's downloads API).
pub fn parse(path: &str) -> Result<Option<PackageRoute>, Error> {
    let raw: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if raw.first().is_none_or(|s| s.is_empty() || *s == "-") {
        return Ok(None);
    }
    // npm's `/downloads/point/:period…` and `/downloads/range/:period…` sit where a package
    // named `downloads` would have its resources; none of its real ones (`/downloads`,
    // `/downloads/:version`, `/downloads/-/…`) has that shape, so the package loses nothing.
    if let ["downloads", "point" | "range", _, ..] = raw.as_slice() {
        return Ok(None);
    }
    let segments: Vec<String> = raw
        .iter()
        .map(|s| percent_decode(s))
        .collect::<Result<_, _>>()?;
    let (name, rest) = if segments[0].starts_with('@') && !segments[0].contains('/') {
        let Some(bare) = segments.get(1) else {
            return Err(Error::bad_request(format!(
                "invalid package name {:?}: a scoped name is @scope/name",
                segments[0]
            )));
        };
        (format!("{}/{}", segments[0], bare), &segments[2..])
    } else {
        (segments[0].clone(), &segments[1..])
    };
    let name = PackageName::parse(&name)?;
    let not_found = || Error::not_found(format!("no such resource: {path}"));
    match rest {
        [] => Ok(Some(PackageRoute::Document(name))),
        [spec] if !spec.is_empty() && spec != "-" => {
            Ok(Some(PackageRoute::Version(name, spec.clone())))
        }
        [dash, file] if dash == "-" && !file.is_empty() && !file.contains('/') => {
            Ok(Some(PackageRoute::Tarball(name, file.clone())))
        }
        [marker, rev] if marker == "-rev" && !rev.is_empty() => {
            Ok(Some(PackageRoute::Revision(name, rev.clone())))
        }
        [dash, file, marker, rev]
            if dash == "-" && marker == "-rev" && !file.is_empty() && !rev.is_empty() =>
        {
            Ok(Some(PackageRoute::TarballRevision(
                name,
                file.clone(),
                rev.clone(),
            )))
        }
        _ => Err(not_found()),
    }
}

pub fn percent_decode(segment: &str) -> Result<String, Error> {
    let bad = || Error::bad_request(format!("malformed percent-encoding in {segment:?}"));
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
            let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let decoded = String::from_utf8(out).map_err(|_| bad())?;
    if decoded.contains('\0') {
        return Err(bad());
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> PackageName {
        PackageName::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn scoped_names_in_every_spelling() {
        for path in ["/@a/b", "/@a%2fb", "/@a%2Fb", "/%40a%2fb"] {
            assert_eq!(
                parse(path).ok().flatten(),
                Some(PackageRoute::Document(name("@a/b"))),
                "{path}"
            );
        }
        assert_eq!(
            parse("/@a/b/-/b-1.0.0.tgz").ok().flatten(),
            Some(PackageRoute::Tarball(name("@a/b"), "b-1.0.0.tgz".into()))
        );
        assert_eq!(
            parse("/@a%2fb/-/b-1.0.0.tgz").ok().flatten(),
            Some(PackageRoute::Tarball(name("@a/b"), "b-1.0.0.tgz".into()))
        );
        assert_eq!(
            parse("/@a/b/-/b-1.0.0.tgz/-rev/3-abc").ok().flatten(),
            Some(PackageRoute::TarballRevision(
                name("@a/b"),
                "b-1.0.0.tgz".into(),
                "3-abc".into()
            ))
        );
        assert_eq!(
            parse("/@a%2fb/-rev/3-abc").ok().flatten(),
            Some(PackageRoute::Revision(name("@a/b"), "3-abc".into()))
        );
        assert_eq!(
            parse("/foo/latest").ok().flatten(),
            Some(PackageRoute::Version(name("foo"), "latest".into()))
        );
    }

    #[test]
    fn the_downloads_api_is_not_a_package_path() {
        assert_eq!(parse("/downloads/point/last-week").ok(), Some(None));
        assert_eq!(parse("/downloads/range/last-week/@a/b").ok(), Some(None));
        assert_eq!(
            parse("/downloads/1.0.0").ok().flatten(),
            Some(PackageRoute::Version(name("downloads"), "1.0.0".into()))
        );
    }

    #[test]
    fn endpoints_are_not_packages_and_tricks_are_refused() {
        assert_eq!(parse("/").ok().flatten(), None);
        assert_eq!(parse("/-/ping").ok().flatten(), None);
        assert_eq!(parse("/-/binary/node/v1.0.0/").ok(), Some(None));
        assert_eq!(parse("/-/binary/node/..%2f..%2fx").ok(), Some(None));
        assert_eq!(parse("/-/npm/v1/security/advisories/bulk").ok(), Some(None));
        for bad in [
            "/..",
            "/%2e%2e",
            "/foo%2f..%2fbar",
            "/@a",
            "/Foo",
            "/foo%zz",
            "/a%00b",
            "/@a/..%2f..",
        ] {
            assert!(parse(bad).is_err(), "{bad} should be refused");
        }
        let err = parse("/foo/-/x/y").err().map(|e| e.status());
        assert_eq!(err, Some(404));
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_path_parses_to_a_safe_route_or_a_4xx(
            parts in prop::collection::vec(
                prop::sample::select(vec![
                    "/", "a", "@s", "%2f", "%2F", "%2e", "..", "-", "-rev", "1.0.0", "a-1.0.0.tgz",
                    "%", "%zz", "%00", "%ff", "é", "\\", "~", " ",
                ]),
                0..12,
            ),
        ) {
            let path = format!("/{}", parts.concat());
            match parse(&path) {
                Ok(Some(route)) => {
                    let name = match &route {
                        PackageRoute::Document(name)
                        | PackageRoute::Version(name, _)
                        | PackageRoute::Tarball(name, _)
                        | PackageRoute::Revision(name, _)
                        | PackageRoute::TarballRevision(name, _, _) => name,
                    };
                    prop_assert!(name
                        .as_str()
                        .split('/')
                        .all(|part| !part.is_empty() && part != "." && part != ".."));
                    if let PackageRoute::Tarball(_, file) | PackageRoute::TarballRevision(_, file, _) = &route {
                        prop_assert!(!file.contains('/'));
                    }
                }
                Ok(None) => {}
                Err(error) => prop_assert!((400..500).contains(&error.status())),
            }
        }
    }
}
