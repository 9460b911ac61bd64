//! `npm search` (`GET /-/v1/search`), and the two listings built on the same index:
//! `/-/all/since` (packages changed since a time) and `/-/by-user/` (packages by maintainer).
//!
//! The index is part of the package: [`reindex`] runs inside every write transaction (it is
//! called by `packument::refresh`), so a search right after a publish finds it. A package is
//! indexed by its latest live version and drops out when none is left.
//!
//! The search text is npm's: free words plus qualifiers (`keywords:a,b,-c`, `author:x`,
//! `maintainer:x`, `scope:x` or `scope:@x`, `is:`/`not:` `deprecated`|`unstable`). Free words
//! match, as prefixes, the name, keywords, description, maintainers and author; a package whose
//! name is exactly the free text comes first, then bm25 relevance.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::access;
use crate::accounts::auth::Identity;
use crate::clock::iso;
use crate::error::{Error, Result};
use crate::packages::names::validate_username;
use crate::store::{Db, SearchEntry, SearchFilter, Store};

pub const DEFAULT_SIZE: u32 = 20;
/// npm's registry refuses larger pages too.
pub const MAX_SIZE: u32 = 250;
/// Search text beyond this is not a search (and would make an expensive FTS query).
pub const MAX_TEXT_CHARS: usize = 256;
pub const MAX_WORDS: usize = 16;
/// Users per `/-/by-user/a|b|…` request.
pub const MAX_USERS: usize = 100;
/// Packages indexed per transaction when the registry catches up on its backfill queue.
const BACKFILL_BATCH: u32 = 500;
/// `startkey` is a JavaScript time: milliseconds up to the end of year 9999.
const MAX_MILLIS: i64 = 253_402_300_799_999;

/// A validated `GET /-/v1/search` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRequest {
    pub text: String,
    pub size: u32,
    pub from: u32,
}

impl SearchRequest {
    /// From the query parameters as sent. npm's ranking weights (`quality`, `popularity`,
    /// `maintenance`) are accepted and ignored: there are no such scores here to weigh.
    pub fn parse(text: Option<&str>, size: Option<&str>, from: Option<&str>) -> Result<Self> {
        let text = text.unwrap_or_default().trim().to_string();
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(Error::bad_request(format!(
                "the search text is longer than {MAX_TEXT_CHARS} characters"
            )));
        }
        let size = match size {
            None => DEFAULT_SIZE,
            // Like npm's registry, a size past the maximum gets the maximum
            // (`npm search --searchlimit=500` must not fail).
            Some(raw) => raw
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .map(|n| n.min(MAX_SIZE))
                .ok_or_else(|| {
                    Error::bad_request(format!(
                        "size must be a whole number of at least 1, not {raw:?}"
                    ))
                })?,
        };
        let from = match from {
            None => 0,
            Some(raw) => raw.trim().parse::<u32>().map_err(|_| {
                Error::bad_request(format!(
                    "from must be a whole number of results to skip, not {raw:?}"
                ))
            })?,
        };
        Ok(SearchRequest { text, size, from })
    }
}

#[derive(Debug, Clone)]
pub struct SearchResults {
    /// Matches in all, not just this page.
    pub total: u64,
    /// `{package, flags?, score, searchScore}` objects, best first.
    pub objects: Vec<Value>,
}

/// One page of the packages `reader` may see that match; the total counts only those too.
pub fn search(
    store: &Store,
    request: &SearchRequest,
    reader: Option<&Identity>,
) -> Result<SearchResults> {
    let mut filter = parse_text(&request.text)?;
    filter.limit = request.size;
    filter.offset = request.from;
    let (total, hits) = store.read(|db| {
        filter.visibility = access::visibility(db, reader)?;
        db.search_packages(&filter, store.search_cache())
    })?;
    let ranked = !filter.words.is_empty();
    let objects = hits
        .into_iter()
        .map(|hit| {
            let mut object = match serde_json::from_str(&hit.document) {
                Ok(Value::Object(map)) => map,
                _ => {
                    return Err(Error::Storage(
                        "a stored search document is not JSON".into(),
                    ))
                }
            };
            // Scores in [0, 1], in the order the results are ranked: an exact name match is 1,
            // the rest grow with bm25 relevance. Without free text every match is as good.
            let score = if hit.exact || !ranked {
                1.0
            } else {
                let r = hit.relevance.max(0.0);
                r / (1.0 + r)
            };
            // npm's quality/popularity/maintenance are not measured here; npm does not read
            // them, and 1 is what npmjs answers since it stopped computing them.
            object.insert(
                "score".into(),
                json!({
                    "final": score,
                    "detail": { "quality": 1.0, "popularity": 1.0, "maintenance": 1.0 },
                }),
            );
            object.insert("searchScore".into(), json!(score));
            Ok(Value::Object(object))
        })
        .collect::<Result<_>>()?;
    Ok(SearchResults { total, objects })
}

/// Splits npm's search text into free words and qualifiers.
pub fn parse_text(text: &str) -> Result<SearchFilter> {
    let mut filter = SearchFilter::default();
    let mut words = Vec::new();
    for raw in text.split_whitespace() {
        let word = raw.to_lowercase();
        let Some((qualifier, value)) = word.split_once(':') else {
            words.push(word);
            continue;
        };
        match qualifier {
            "keywords" | "keyword" => {
                for keyword in value.split(',').map(str::trim) {
                    match keyword.strip_prefix('-') {
                        Some(excluded) if !excluded.is_empty() => {
                            filter.not_keywords.push(excluded.to_string())
                        }
                        Some(_) => {}
                        None if !keyword.is_empty() => filter.keywords.push(keyword.to_string()),
                        None => {}
                    }
                }
            }
            "author" if !value.is_empty() => filter.authors.push(value.to_string()),
            "maintainer" if !value.is_empty() => filter.maintainers.push(value.to_string()),
            "scope" => {
                let scope = value.trim_start_matches('@').trim_end_matches('/');
                if !scope.is_empty() {
                    filter.scopes.push(scope.to_string());
                }
            }
            "is" | "not" => {
                let wanted = qualifier == "is";
                match value {
                    "deprecated" => filter.deprecated = Some(wanted),
                    "unstable" => filter.unstable = Some(wanted),
                    // npms also knows `insecure`; nothing here can tell, so it filters nothing.
                    _ => {}
                }
            }
            // npms's switch for exact-match boosting; the exact name always comes first here.
            "boost-exact" => {}
            "author" | "maintainer" => {}
            // Not a qualifier we know (a URL, `a:b`): plain text.
            _ => words.push(word),
        }
    }
    let mut seen = BTreeSet::new();
    words.retain(|w| seen.insert(w.clone()));
    if words.len() > MAX_WORDS {
        return Err(Error::bad_request(format!(
            "a search can have at most {MAX_WORDS} words besides its qualifiers"
        )));
    }
    if !words.is_empty() {
        filter.exact_name = Some(words.join(" "));
    }
    filter.words = words;
    Ok(filter)
}

/// Rewrites the package's search entry from its latest live version, or removes it when no
/// live version is left. Runs inside the caller's write transaction.
pub fn reindex(db: &Db<'_>, package_id: i64, name: &str) -> Result<()> {
    let tags = db.dist_tags(package_id)?;
    let Some(latest) =
        db.latest_live_version(package_id, tags.get("latest").map(String::as_str))?
    else {
        return db.remove_search_entry(package_id);
    };
    let modified_at = db
        .package_by_name(name)?
        .map(|p| p.modified_at)
        .unwrap_or_else(|| latest.published_at.clone());
    let manifest = match serde_json::from_str(&latest.manifest) {
        Ok(Value::Object(map)) => map,
        _ => {
            return Err(Error::Storage(format!(
                "stored manifest of {name}@{} is not a JSON object",
                latest.version
            )))
        }
    };
    let maintainers = db.maintainers(package_id)?;

    let scope = name
        .strip_prefix('@')
        .and_then(|s| s.split_once('/'))
        .map(|(scope, _)| scope);
    let description = manifest
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let keywords = keywords_of(&manifest);
    let mut index_keywords: Vec<String> = keywords.iter().map(|k| k.to_lowercase()).collect();
    index_keywords.sort();
    index_keywords.dedup();
    let author = manifest.get("author").and_then(person);
    let author_field = |field: &str| {
        author
            .as_ref()
            .and_then(|a| a.get(field))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_lowercase()
    };
    let publisher = manifest
        .get("_npmUser")
        .and_then(Value::as_object)
        .and_then(|u| u.get("name"))
        .and_then(Value::as_str)
        .map(|name| {
            let email = manifest
                .get("_npmUser")
                .and_then(|u| u.get("email"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            json!({ "username": name, "email": email })
        });
    let deprecated = manifest
        .get("deprecated")
        .and_then(Value::as_str)
        .filter(|message| !message.is_empty());
    // npms's rule: anything before 1.0.0 is unstable (0.x and 1.0.0 prereleases).
    let unstable = semver::Version::parse(&latest.version)
        .map(|v| v < semver::Version::new(1, 0, 0))
        .unwrap_or(false);

    let mut package = Map::new();
    package.insert("name".into(), name.into());
    package.insert("scope".into(), scope.unwrap_or("unscoped").into());
    package.insert("version".into(), latest.version.clone().into());
    package.insert("description".into(), description.into());
    package.insert("keywords".into(), json!(keywords));
    package.insert("date".into(), latest.published_at.clone().into());
    package.insert("links".into(), Value::Object(links(&manifest)));
    if let Some(author) = &author {
        package.insert("author".into(), Value::Object(author.clone()));
    }
    if let Some(publisher) = publisher.clone() {
        package.insert("publisher".into(), publisher);
    }
    package.insert(
        "maintainers".into(),
        maintainers
            .iter()
            .map(|(name, email)| json!({ "username": name, "email": email }))
            .collect(),
    );
    if let Some(license) = manifest.get("license").and_then(Value::as_str) {
        package.insert("license".into(), license.into());
    }
    let mut document = Map::new();
    document.insert("package".into(), Value::Object(package));
    let mut flags = Map::new();
    if let Some(message) = deprecated {
        flags.insert("deprecated".into(), message.into());
    }
    if unstable {
        flags.insert("unstable".into(), true.into());
    }
    if !flags.is_empty() {
        document.insert("flags".into(), Value::Object(flags));
    }

    let summary = summary(name, &manifest, &tags, &maintainers, &modified_at);
    let maintainer_names: Vec<String> = maintainers.iter().map(|(n, _)| n.clone()).collect();
    let publisher_name = publisher
        .as_ref()
        .and_then(|p| p["username"].as_str())
        .unwrap_or_default()
        .to_lowercase();
    db.put_search_entry(&SearchEntry {
        package_id,
        name,
        scope,
        description,
        keywords: &index_keywords,
        maintainers: &maintainer_names,
        author_name: &author_field("name"),
        author_email: &author_field("email"),
        publisher: &publisher_name,
        deprecated: deprecated.is_some(),
        unstable,
        document: &Value::Object(document).to_string(),
        summary: &summary.to_string(),
    })
}

/// Indexes packages that were published before the search index existed (queued by the
/// migration that created it). Called when the registry opens; a no-op once caught up.
pub fn index_pending(store: &Store) -> Result<usize> {
    let mut done = 0;
    // A cheap read first, so that opening an up-to-date registry takes no write lock.
    while !store.read(|db| db.search_backfill(1))?.is_empty() {
        done += store.write(|db| {
            let batch = db.search_backfill(BACKFILL_BATCH)?;
            for (package_id, name) in &batch {
                reindex(db, *package_id, name)?;
                db.clear_search_backfill(*package_id)?;
            }
            Ok(batch.len())
        })?;
    }
    Ok(done)
}

/// `GET /-/all/since?startkey=MS`: `{"_updated": MS, NAME: summary, …}` for every package
/// changed at or after `startkey` (milliseconds since the epoch). `_updated` is the time of
/// the latest change included, to be sent as the next `startkey` (a change in that same
/// millisecond is then sent again rather than missed).
pub fn changed_since(
    store: &Store,
    startkey: Option<&str>,
    reader: Option<&Identity>,
) -> Result<Value> {
    let raw = startkey.ok_or_else(|| {
        Error::bad_request("startkey (a time in milliseconds since 1970) is required")
    })?;
    let millis = raw
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|ms| (0..=MAX_MILLIS).contains(ms))
        .ok_or_else(|| {
            Error::bad_request(format!(
                "startkey must be a time in milliseconds since 1970, not {raw:?}"
            ))
        })?;
    let since = OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .map_err(|_| Error::bad_request(format!("startkey {millis} is out of range")))?;
    let changed = store.read(|db| {
        let seen = access::visibility(db, reader)?;
        db.summaries_changed_since(&iso(since), &seen)
    })?;
    let updated = changed
        .latest_change
        .as_deref()
        .and_then(millis_of)
        .unwrap_or(millis);
    let mut out = Map::new();
    out.insert("_updated".into(), updated.into());
    for (name, summary) in changed.summaries {
        let summary = serde_json::from_str(&summary)
            .map_err(|_| Error::Storage(format!("the stored summary of {name} is not JSON")))?;
        out.insert(name, summary);
    }
    Ok(Value::Object(out))
}

/// `GET /-/by-user/alice|bob`: `{"alice": [names…], "bob": […]}`, the packages with a live
/// version that each user maintains. Unknown users have an empty list.
pub fn packages_by_users(
    store: &Store,
    users: &str,
    reader: Option<&Identity>,
) -> Result<BTreeMap<String, Vec<String>>> {
    let names: BTreeSet<&str> = users.split('|').collect();
    if names.len() > MAX_USERS {
        return Err(Error::bad_request(format!(
            "at most {MAX_USERS} users per request"
        )));
    }
    for name in &names {
        validate_username(name)?;
    }
    store.read(|db| {
        let seen = access::visibility(db, reader)?;
        names
            .iter()
            .map(|name| Ok((name.to_string(), db.packages_maintained_by(name, &seen)?)))
            .collect()
    })
}

/// `GET /-/_view/starredByUser`: the packages `user` starred that `reader` may see.
pub fn starred_by(store: &Store, user: &str, reader: Option<&Identity>) -> Result<Vec<String>> {
    store.read(|db| {
        let seen = access::visibility(db, reader)?;
        db.starred_by(user, &seen)
    })
}

fn millis_of(at: &str) -> Option<i64> {
    let at = OffsetDateTime::parse(at, &Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

/// `keywords` as npm allows it: an array of strings, or one string of words.
fn keywords_of(manifest: &Map<String, Value>) -> Vec<String> {
    let raw: Vec<String> = match manifest.get("keywords") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(Value::String(s)) => s
            .split(|c: char| c == ',' || c.is_whitespace())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    raw.into_iter()
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .collect()
}

/// A person field (`author`) as `{name, email?, url?}`, from either the object form or the
/// `"Name <email> (url)"` string form.
fn person(value: &Value) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    match value {
        Value::Object(fields) => {
            for key in ["name", "email", "url"] {
                if let Some(text) = fields.get(key).and_then(Value::as_str) {
                    out.insert(key.into(), text.trim().into());
                }
            }
        }
        Value::String(text) => {
            let (email, without_email) = split_delimited(text, '<', '>');
            let (url, name) = split_delimited(&without_email, '(', ')');
            let name = name.trim();
            if !name.is_empty() {
                out.insert("name".into(), name.into());
            }
            if let Some(email) = email {
                out.insert("email".into(), email.into());
            }
            if let Some(url) = url {
                out.insert("url".into(), url.into());
            }
        }
        _ => {}
    }
    out.get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty())
        .then_some(out)
}

/// Takes the first `open…close` part out of `text`: (its trimmed content, the rest).
fn split_delimited(text: &str, open: char, close: char) -> (Option<String>, String) {
    let Some(start) = text.find(open) else {
        return (None, text.to_string());
    };
    let Some(len) = text[start..].find(close) else {
        return (None, text.to_string());
    };
    let end = start + len;
    let inner = text[start + open.len_utf8()..end].trim();
    let rest = format!("{}{}", &text[..start], &text[end + close.len_utf8()..]);
    ((!inner.is_empty()).then(|| inner.to_string()), rest)
}

/// `links` of a search result: homepage, repository and bugs as plain URLs, where given.
fn links(manifest: &Map<String, Value>) -> Map<String, Value> {
    let url_of = |field: &str| match manifest.get(field) {
        Some(Value::String(url)) => Some(url.clone()),
        Some(Value::Object(fields)) => fields.get("url").and_then(Value::as_str).map(String::from),
        _ => None,
    };
    let mut out = Map::new();
    if let Some(homepage) = url_of("homepage") {
        out.insert("homepage".into(), homepage.into());
    }
    if let Some(repository) = url_of("repository") {
        out.insert("repository".into(), browsable(&repository).into());
    }
    if let Some(bugs) = url_of("bugs") {
        out.insert("bugs".into(), bugs.into());
    }
    out
}

/// `git+https://host/x.git` and `git://host/x` as the https URL a person can open.
fn browsable(repository: &str) -> String {
    let url = repository.strip_prefix("git+").unwrap_or(repository);
    let url = match url.strip_prefix("git://") {
        Some(rest) => format!("https://{rest}"),
        None => url.to_string(),
    };
    url.strip_suffix(".git").unwrap_or(&url).to_string()
}

/// A package's `/-/all` entry (the registry API's shape): top-level fields of its latest
/// version, its tags, maintainers and modification time, and `versions` mapping each tagged
/// version to its tag.
fn summary(
    name: &str,
    manifest: &Map<String, Value>,
    tags: &BTreeMap<String, String>,
    maintainers: &[(String, String)],
    modified_at: &str,
) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), name.into());
    if let Some(description) = manifest.get("description") {
        out.insert("description".into(), description.clone());
    }
    out.insert("dist-tags".into(), json!(tags));
    out.insert(
        "maintainers".into(),
        maintainers
            .iter()
            .map(|(name, email)| json!({ "name": name, "email": email }))
            .collect(),
    );
    for field in [
        "homepage",
        "keywords",
        "repository",
        "author",
        "bugs",
        "license",
        "readmeFilename",
    ] {
        if let Some(value) = manifest.get(field) {
            out.insert(field.into(), value.clone());
        }
    }
    out.insert("time".into(), json!({ "modified": modified_at }));
    let mut versions = Map::new();
    // `latest` last, so that it names a version that other tags share.
    for (tag, version) in tags.iter().filter(|(tag, _)| *tag != "latest") {
        versions.insert(version.clone(), tag.clone().into());
    }
    if let Some(version) = tags.get("latest") {
        versions.insert(version.clone(), "latest".into());
    }
    out.insert("versions".into(), Value::Object(versions));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualifiers_are_taken_out_of_the_text() -> Result<()> {
        let f = parse_text(
            "Fast keywords:JSON,-old,,parse author:Jane maintainer:bob scope:@acme \
             scope:corp/ not:deprecated is:unstable boost-exact:false is:insecure http://x json",
        )?;
        assert_eq!(f.words, ["fast", "http://x", "json"]);
        assert_eq!(f.exact_name.as_deref(), Some("fast http://x json"));
        assert_eq!(f.keywords, ["json", "parse"]);
        assert_eq!(f.not_keywords, ["old"]);
        assert_eq!(f.authors, ["jane"]);
        assert_eq!(f.maintainers, ["bob"]);
        assert_eq!(f.scopes, ["acme", "corp"]);
        assert_eq!(f.deprecated, Some(false));
        assert_eq!(f.unstable, Some(true));

        let only_qualifiers = parse_text("keywords: author: scope:@")?;
        assert!(only_qualifiers.words.is_empty() && only_qualifiers.exact_name.is_none());
        assert!(only_qualifiers.keywords.is_empty() && only_qualifiers.scopes.is_empty());

        let many: Vec<String> = (0..=MAX_WORDS).map(|i| format!("w{i}")).collect();
        assert_eq!(
            parse_text(&many.join(" ")).err().map(|e| e.status()),
            Some(400)
        );
        // Repeats count once.
        assert!(parse_text(&["same"; 40].join(" ")).is_ok());
        Ok(())
    }

    #[test]
    fn request_parameters_are_checked() {
        let ok = SearchRequest::parse(Some(" json "), None, None).ok();
        assert_eq!(
            ok,
            Some(SearchRequest {
                text: "json".into(),
                size: DEFAULT_SIZE,
                from: 0
            })
        );
        for (size, from) in [
            (Some("0"), None),
            (Some("ten"), None),
            (Some("-1"), None),
            (None, Some("-1")),
            (None, Some("1.5")),
        ] {
            assert_eq!(
                SearchRequest::parse(Some("x"), size, from)
                    .err()
                    .map(|e| e.status()),
                Some(400),
                "size {size:?} from {from:?}"
            );
        }
        assert!(SearchRequest::parse(Some("x"), Some("250"), Some("100000")).is_ok());
        let capped = SearchRequest::parse(Some("x"), Some("500"), None).map(|r| r.size);
        assert_eq!(capped.ok(), Some(MAX_SIZE));
        let long = "x".repeat(MAX_TEXT_CHARS + 1);
        assert!(SearchRequest::parse(Some(&long), None, None).is_err());
    }

    #[test]
    fn authors_in_both_spellings() {
        let person_of = |v: Value| person(&v).map(Value::Object);
        assert_eq!(
            person_of(json!("Jane Doe <jane@x.example> (https://jane.example)")),
            Some(
                json!({"name": "Jane Doe", "email": "jane@x.example", "url": "https://jane.example"})
            )
        );
        assert_eq!(
            person_of(json!("(https://u.example) Bob")),
            Some(json!({"name": "Bob", "url": "https://u.example"}))
        );
        assert_eq!(
            person_of(json!({"name": " Ann ", "email": "a@x", "extra": 1})),
            Some(json!({"name": "Ann", "email": "a@x"}))
        );
        assert_eq!(person_of(json!("<only@email>")), None);
        assert_eq!(person_of(json!(42)), None);
    }

    #[test]
    fn repository_links_are_browsable() {
        assert_eq!(
            browsable("git+https://github.com/a/b.git"),
            "https://github.com/a/b"
        );
        assert_eq!(browsable("git://github.com/a/b"), "https://github.com/a/b");
        assert_eq!(browsable("https://x.example/r"), "https://x.example/r");
    }
}
