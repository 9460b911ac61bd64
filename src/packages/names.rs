//! Validated names: packages (npm's rules for new packages), users, dist-tags and versions.
//! Everything that comes from a request passes through here before it reaches storage or a path.

use std::fmt;

use crate::error::{Error, Result};

pub const MAX_NAME_LEN: usize = 214;

/// A package name that follows npm's rules for new packages: lowercase, URL-safe, at most
/// 214 characters, optionally `@scope/name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackageName(String);

impl PackageName {
    pub fn parse(raw: &str) -> Result<PackageName> {
        let invalid =
            |why: &str| Error::bad_request(format!("invalid package name {raw:?}: {why}"));
        if raw.is_empty() {
            return Err(invalid("it is empty"));
        }
        if raw.len() > MAX_NAME_LEN {
            return Err(invalid("it is longer than 214 characters"));
        }
        let bare = match raw.strip_prefix('@') {
            Some(scoped) => {
                let (scope, bare) = scoped
                    .split_once('/')
                    .ok_or_else(|| invalid("a scoped name is @scope/name"))?;
                check_part(scope).map_err(|why| invalid(&format!("scope {why}")))?;
                bare
            }
            None => raw,
        };
        check_part(bare).map_err(|why| invalid(&why))?;
        if matches!(bare, "node_modules" | "favicon.ico") && !raw.starts_with('@') {
            return Err(invalid("that name is reserved"));
        }
        Ok(PackageName(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The scope without `@`, for scoped names.
    pub fn scope(&self) -> Option<&str> {
        self.0
            .strip_prefix('@')
            .and_then(|s| s.split_once('/'))
            .map(|(scope, _)| scope)
    }

    /// The name without its scope (`bar` for `@foo/bar`): tarball file names use it.
    pub fn bare(&self) -> &str {
        match self.0.rsplit_once('/') {
            Some((_, bare)) => bare,
            None => &self.0,
        }
    }

    /// The canonical tarball file name for a version: `bar-1.0.0.tgz`.
    pub fn tarball_file(&self, version: &str) -> String {
        format!("{}-{}.tgz", self.bare(), version)
    }

    /// The path of a version's tarball below the registry root: `/@foo/bar/-/bar-1.0.0.tgz`.
    pub fn tarball_path(&self, version: &str) -> String {
        format!("/{}/-/{}", self.0, self.tarball_file(version))
    }
}

impl fmt::Display for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_part(part: &str) -> std::result::Result<(), String> {
    if part.is_empty() {
        return Err("has an empty part".into());
    }
    if part.starts_with('.') || part.starts_with('_') {
        return Err("cannot start with a period or an underscore".into());
    }
    if part.chars().any(|c| c.is_ascii_uppercase()) {
        return Err("cannot contain capital letters".into());
    }
    if let Some(bad) = part
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '_')))
    {
        return Err(format!("cannot contain {bad:?}"));
    }
    Ok(())
}

/// A user name as npm accepts them: lowercase, URL-safe, no leading period.
pub fn validate_username(name: &str) -> Result<()> {
    let invalid = |why: &str| Error::bad_request(format!("invalid user name {name:?}: {why}"));
    if name.is_empty() {
        return Err(invalid("it is empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(invalid("it is longer than 214 characters"));
    }
    if name.starts_with('.') {
        return Err(invalid("it cannot start with a period"));
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(invalid("it must be lowercase"));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '_')))
    {
        return Err(invalid(&format!("it cannot contain {bad:?}")));
    }
    Ok(())
}

/// A version must be strict semver, written the way semver writes it (no `v`, no padding).
pub fn validate_version(version: &str) -> Result<semver::Version> {
    let parsed = semver::Version::parse(version)
        .map_err(|e| Error::bad_request(format!("invalid version {version:?}: {e}")))?;
    if parsed.to_string() != version {
        return Err(Error::bad_request(format!(
            "invalid version {version:?}: write it as {parsed}"
        )));
    }
    Ok(parsed)
}

/// npm's rules for dist-tag names: non-empty, URL-safe as typed, and not something that reads
/// as a version range (else `npm install foo@1.x` could mean a tag or a range).
pub fn validate_tag(tag: &str) -> Result<()> {
    let invalid = |why: &str| Error::bad_request(format!("invalid dist-tag {tag:?}: {why}"));
    if tag.is_empty() || tag.len() > 128 {
        return Err(invalid("it must have 1 to 128 characters"));
    }
    if let Some(bad) = tag.chars().find(|c| {
        !(c.is_ascii_alphanumeric()
            || matches!(c, '-' | '.' | '_' | '~' | '!' | '*' | '(' | ')' | '\''))
    }) {
        return Err(invalid(&format!("it cannot contain {bad:?}")));
    }
    if semver::VersionReq::parse(tag).is_ok()
        || tag.starts_with('v') && semver::Version::parse(&tag[1..]).is_ok()
    {
        return Err(invalid("a tag cannot be a valid semver range"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_and_scoped_names() -> Result<()> {
        let plain = PackageName::parse("left-pad")?;
        assert_eq!(plain.bare(), "left-pad");
        assert_eq!(plain.scope(), None);
        assert_eq!(
            plain.tarball_path("1.0.0"),
            "/left-pad/-/left-pad-1.0.0.tgz"
        );
        let scoped = PackageName::parse("@acme/util.js")?;
        assert_eq!(scoped.scope(), Some("acme"));
        assert_eq!(scoped.bare(), "util.js");
        assert_eq!(
            scoped.tarball_path("2.0.0-beta.1"),
            "/@acme/util.js/-/util.js-2.0.0-beta.1.tgz"
        );
        Ok(())
    }

    #[test]
    fn refuses_names_npm_refuses_and_path_tricks() {
        for bad in [
            "",
            "Foo",
            ".hidden",
            "_under",
            "a b",
            "../etc",
            "..",
            "a/b",
            "@scope",
            "@/x",
            "@s/",
            "@s/../x",
            "@s/a/b",
            "x%2f",
            "node_modules",
            "caf\u{e9}",
            "a\\b",
            "a:b",
            "~tilde",
            "excl!",
            "paren(",
            "star*",
            "quote'",
        ] {
            assert!(
                PackageName::parse(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
        assert!(PackageName::parse(&"a".repeat(215)).is_err());
        assert!(PackageName::parse(&"a".repeat(214)).is_ok());
    }

    #[test]
    fn versions_must_be_canonical_semver() {
        assert!(validate_version("1.0.0").is_ok());
        assert!(validate_version("1.0.0-rc.1+build.5").is_ok());
        for bad in [
            "v1.0.0",
            "1.0",
            "01.0.0",
            "1.0.0 ",
            "latest",
            "",
            "1.0.0/../x",
        ] {
            assert!(validate_version(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn tags_cannot_be_ranges_or_unsafe() {
        assert!(validate_tag("latest").is_ok());
        assert!(validate_tag("next").is_ok());
        assert!(validate_tag("beta-2").is_ok());
        for bad in ["", "1.0.0", "^1", "1.x", "v1.2.3", "a/b", "a b", "<1", "*"] {
            assert!(validate_tag(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn usernames_follow_npm_rules() {
        assert!(validate_username("alice").is_ok());
        assert!(validate_username("acc-u1-12ab").is_ok());
        for bad in ["", "Alice", ".alice", "al ice", "al/ice", "al:ice"] {
            assert!(validate_username(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
