//! The binary mirror (cnpmcore's Binary Sync API): each `[[binaries]]` entry names a
//! directory tree on another server (`dist_url`, e.g. `https://nodejs.org/dist/`). A
//! directory is listed from the upstream's own index page (nginx autoindex, Apache, or a JSON
//! index) on every request; a file is downloaded once, hashed into the blob store, recorded
//! in `binary_files` and served from there ever after, whether or not the upstream is up.
//!
//! Requests go through the upstreams' shared HTTP client (redirects only within a host) with
//! a timeout; a subpath is validated before it becomes part of a URL and never reaches the
//! filesystem (blobs are named by their sha512).

use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{header, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha512};
use time::format_description::well_known::{Rfc2822, Rfc3339};
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time};

use super::config::BinaryConfig;
use crate::blobs::Blob;
use crate::clock::iso;
use crate::error::{Error, Result};
use crate::registry::Registry;

/// How long the upstream has to answer (the headers of a file, all of an index), and how long
/// a file download may sit idle between two chunks.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// The largest index page read.
pub const MAX_INDEX_BYTES: u64 = 16 * 1024 * 1024;
/// The largest file mirrored.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// The longest subpath accepted (decoded).
pub const MAX_SUBPATH_CHARS: usize = 1024;
/// `?limit=` at most (cnpmcore's maximum).
pub const MAX_LIMIT: usize = 1000;

/// A mirrored file as the store records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryFileRecord {
    pub sha512_hex: String,
    pub size: u64,
    pub fetched_at: String,
}

/// A path below a binary's `dist_url`: checked, decoded, relative (no leading slash); empty
/// for the root; a directory exactly when it is empty or ends with `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subpath(String);

impl Subpath {
    /// Checks a decoded subpath: no `.` or `..` segment, no empty segment (`//`), no control
    /// characters or backslashes, at most [`MAX_SUBPATH_CHARS`].
    pub fn parse(decoded: &str) -> Result<Subpath> {
        let bad = |why: &str| Error::bad_request(format!("invalid binary path {decoded:?}: {why}"));
        if decoded.chars().count() > MAX_SUBPATH_CHARS {
            return Err(bad(&format!("longer than {MAX_SUBPATH_CHARS} characters")));
        }
        if decoded.contains(|c: char| c.is_control() || c == '\\') {
            return Err(bad("control characters and backslashes are not allowed"));
        }
        if decoded.starts_with('/') || decoded.contains("//") {
            return Err(bad("empty path segments (//) are not allowed"));
        }
        let segments = decoded.strip_suffix('/').unwrap_or(decoded);
        if !segments.is_empty() && segments.split('/').any(|s| s == "." || s == "..") {
            return Err(bad("'.' and '..' segments are not allowed"));
        }
        Ok(Subpath(decoded.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_dir(&self) -> bool {
        self.0.is_empty() || self.0.ends_with('/')
    }

    /// The path percent-encoded for a URL, segment by segment.
    pub fn encoded(&self) -> String {
        encode_path(&self.0)
    }
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// One path segment; a directory's ends with `/`.
    pub name: String,
    pub date: Option<OffsetDateTime>,
    /// In bytes, for files whose index gives a size (a human size like `1.2M` is approximate).
    pub size: Option<u64>,
}

impl Entry {
    pub fn is_dir(&self) -> bool {
        self.name.ends_with('/')
    }

    /// cnpmcore's shape: `{name, date, size, type, url}`; `url` is ours, under `base_url`
    /// (`ORIGIN/-/binary/NAME/SUBPATH`, ending with `/`). A directory has no size.
    pub fn to_json(&self, base_url: &str) -> Value {
        let mut object = json!({
            "name": self.name,
            "date": self.date.map(iso).unwrap_or_default(),
            "type": if self.is_dir() { "dir" } else { "file" },
            "url": format!("{base_url}{}", encode_path(&self.name)),
        });
        if let (Some(size), false, Some(map)) = (self.size, self.is_dir(), object.as_object_mut()) {
            map.insert("size".into(), json!(size));
        }
        object
    }
}

/// `GET /-/binary/`: the configured binaries, in cnpmcore's shape.
pub fn list(binaries: &[BinaryConfig], origin: &str) -> Value {
    Value::Array(
        binaries
            .iter()
            .map(|b| {
                json!({
                    "name": format!("{}/", b.name),
                    "category": format!("{}/", b.name),
                    "description": b.description,
                    "distUrl": b.dist_url,
                    "repoUrl": b.repo_url,
                    "type": "dir",
                    "url": format!("{origin}/-/binary/{}/", b.name),
                })
            })
            .collect(),
    )
}

/// The configured binary of that name, or a 404.
pub fn find<'a>(binaries: &'a [BinaryConfig], name: &str) -> Result<&'a BinaryConfig> {
    binaries.iter().find(|b| b.name == name).ok_or_else(|| {
        Error::not_found(format!(
            "binary {name:?} not found (no such [[binaries]] entry)"
        ))
    })
}

/// `?since=` and `?limit=` of a directory listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Only entries dated at or after this.
    pub since: Option<OffsetDateTime>,
    pub limit: Option<usize>,
}

impl ListQuery {
    pub fn parse(since: Option<&str>, limit: Option<&str>) -> Result<ListQuery> {
        let since = match since.map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(text) => Some(parse_date(text).ok_or_else(|| {
                Error::bad_request(format!(
                    "since must be a date like 2024-01-01 or 2024-01-01T10:00:00Z, not {text:?}"
                ))
            })?),
        };
        let limit = match limit {
            None => None,
            Some(raw) => Some(
                raw.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .map(|n| n.min(MAX_LIMIT))
                    .ok_or_else(|| {
                        Error::bad_request(format!(
                            "limit must be a whole number from 1 to {MAX_LIMIT}, not {raw:?}"
                        ))
                    })?,
            ),
        };
        Ok(ListQuery { since, limit })
    }

    pub fn apply(&self, entries: Vec<Entry>) -> Vec<Entry> {
        let kept = entries
            .into_iter()
            .filter(|e| match self.since {
                None => true,
                Some(since) => e.date.is_some_and(|d| d >= since),
            })
            .take(self.limit.unwrap_or(usize::MAX));
        kept.collect()
    }
}

/// A mirrored file, open for streaming.
pub struct MirroredFile {
    pub blob: Blob,
    pub len: u64,
    pub sha512_hex: String,
}

/// What a subpath turned out to be.
pub enum Answer {
    Directory(Vec<Entry>),
    File(MirroredFile),
}

/// A directory's listing (asked of the upstream now) or a file (from the blob store, fetched
/// and stored first if it is not there yet).
pub async fn get(
    registry: &Arc<Registry>,
    binary: &BinaryConfig,
    subpath: &Subpath,
) -> Result<Answer> {
    if subpath.is_dir() {
        return directory(registry, binary, subpath)
            .await
            .map(Answer::Directory);
    }
    if let Some(opened) = open_cached(registry, binary, subpath).await? {
        return Ok(Answer::File(opened));
    }
    // Concurrent misses of one file wait for the first download instead of repeating it.
    let key = format!("bin {}/{}", binary.name, subpath.as_str());
    let lock = registry.upstreams.lock_for(key.clone());
    let _guard = lock.lock().await;
    let result = match open_cached(registry, binary, subpath).await {
        Ok(Some(opened)) => Ok(Answer::File(opened)),
        Ok(None) => fetch_file(registry, binary, subpath).await,
        Err(e) => Err(e),
    };
    registry.upstreams.release(&key);
    result
}

async fn directory(
    registry: &Arc<Registry>,
    binary: &BinaryConfig,
    subpath: &Subpath,
) -> Result<Vec<Entry>> {
    let url = format!("{}{}", binary.dist_url, subpath.encoded());
    let what = describe(binary, subpath);
    let client = registry.upstreams.client();
    let request = client
        .get(&url)
        .timeout(TIMEOUT)
        .header(
            header::ACCEPT,
            "text/html, application/json;q=0.9, */*;q=0.5",
        )
        .send();
    let response = request.await.map_err(|e| failure(&e, &what))?;
    check_status(response.status(), &what)?;
    let content_type = content_type(&response);
    let path = response.url().path().to_string();
    let body = read_limited(response, MAX_INDEX_BYTES, &what).await?;
    Ok(parse_index(&body, content_type.as_deref(), &path))
}

async fn fetch_file(
    registry: &Arc<Registry>,
    binary: &BinaryConfig,
    subpath: &Subpath,
) -> Result<Answer> {
    let url = format!("{}{}", binary.dist_url, subpath.encoded());
    let what = describe(binary, subpath);
    let client = registry.upstreams.client();
    let sent = tokio::time::timeout(TIMEOUT, client.get(&url).send()).await;
    let response = match sent {
        Err(_) => return Err(timed_out(&what)),
        Ok(result) => result.map_err(|e| failure(&e, &what))?,
    };
    check_status(response.status(), &what)?;
    // `x` redirected (within the host) to `x/`: it is a directory after all.
    if response.url().path().ends_with('/') {
        let content_type = content_type(&response);
        let path = response.url().path().to_string();
        let body = read_limited(response, MAX_INDEX_BYTES, &what).await?;
        return Ok(Answer::Directory(parse_index(
            &body,
            content_type.as_deref(),
            &path,
        )));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_FILE_BYTES)
    {
        return Err(too_large(&what));
    }
    let io_error = |e: std::io::Error| Error::from(e);
    let mut temp = tempfile::NamedTempFile::new_in(registry.blobs.temp_dir()).map_err(io_error)?;
    let mut sha512 = Sha512::new();
    let mut size: u64 = 0;
    let mut stream = response.bytes_stream();
    loop {
        let chunk = match tokio::time::timeout(TIMEOUT, stream.next()).await {
            Err(_) => return Err(timed_out(&what)),
            Ok(None) => break,
            Ok(Some(chunk)) => chunk.map_err(|e| failure(&e, &what))?,
        };
        size += chunk.len() as u64;
        if size > MAX_FILE_BYTES {
            return Err(too_large(&what));
        }
        sha512.update(&chunk);
        temp.write_all(&chunk).map_err(io_error)?;
    }
    temp.as_file().sync_all().map_err(io_error)?;
    let temp = temp.into_temp_path();
    let sha512_hex = hex::encode(sha512.finalize());
    let name = binary.name.clone();
    let path = subpath.as_str().to_string();
    let registry = registry.clone();
    tokio::task::spawn_blocking(move || {
        registry.blobs.put_file(&sha512_hex, &temp)?;
        let record = BinaryFileRecord {
            sha512_hex: sha512_hex.clone(),
            size,
            fetched_at: crate::clock::now_iso(),
        };
        registry
            .store
            .write(|db| db.put_binary_file(&name, &path, &record))?;
        let (blob, len) = registry.blobs.open(&sha512_hex)?;
        Ok(Answer::File(MirroredFile {
            blob,
            len,
            sha512_hex,
        }))
    })
    .await
    .map_err(|e| Error::Storage(format!("a blocking task failed: {e}")))?
}

async fn open_cached(
    registry: &Arc<Registry>,
    binary: &BinaryConfig,
    subpath: &Subpath,
) -> Result<Option<MirroredFile>> {
    let name = binary.name.clone();
    let path = subpath.as_str().to_string();
    let registry = registry.clone();
    tokio::task::spawn_blocking(move || {
        let Some(record) = registry.store.read(|db| db.binary_file(&name, &path))? else {
            return Ok(None);
        };
        match registry.blobs.open(&record.sha512_hex) {
            Ok((blob, len)) => Ok(Some(MirroredFile {
                blob,
                len,
                sha512_hex: record.sha512_hex,
            })),
            // A blob that went missing is fetched again.
            Err(Error::MissingBlob(_)) => Ok(None),
            Err(other) => Err(other),
        }
    })
    .await
    .map_err(|e| Error::Storage(format!("a blocking task failed: {e}")))?
}

fn describe(binary: &BinaryConfig, subpath: &Subpath) -> String {
    let shown = if subpath.as_str().is_empty() {
        "/"
    } else {
        subpath.as_str()
    };
    format!("binary {} ({shown})", binary.name)
}

fn check_status(status: StatusCode, what: &str) -> Result<()> {
    match status {
        StatusCode::OK => Ok(()),
        StatusCode::NOT_FOUND | StatusCode::GONE => Err(Error::not_found(format!(
            "{what} not found: its upstream answered {}",
            status.as_u16()
        ))),
        s if s.is_redirection() => Err(Error::BadGateway(format!(
            "the upstream of {what} redirected to another host, which is not followed"
        ))),
        s => Err(Error::BadGateway(format!(
            "the upstream of {what} answered {}; try again later",
            s.as_u16()
        ))),
    }
}

fn failure(err: &reqwest::Error, what: &str) -> Error {
    if err.is_timeout() {
        return timed_out(what);
    }
    let mut cause: &dyn std::error::Error = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    Error::BadGateway(format!(
        "the upstream of {what} cannot be reached ({cause}); try again later"
    ))
}

fn timed_out(what: &str) -> Error {
    Error::GatewayTimeout(format!(
        "the upstream of {what} did not answer within {}s; try again later",
        TIMEOUT.as_secs()
    ))
}

fn too_large(what: &str) -> Error {
    Error::BadGateway(format!(
        "the upstream of {what} sent more than this registry mirrors"
    ))
}

fn content_type(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase)
}

async fn read_limited(response: reqwest::Response, max: u64, what: &str) -> Result<Bytes> {
    if response.content_length().is_some_and(|n| n > max) {
        return Err(too_large(what));
    }
    let mut out = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| failure(&e, what))?;
        if (out.len() + chunk.len()) as u64 > max {
            return Err(too_large(what));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

/// An index page: JSON when it says so (or looks like it), else HTML. `dir_path` is the URL
/// path the page was served at (absolute links below it are accepted).
pub fn parse_index(body: &[u8], content_type: Option<&str>, dir_path: &str) -> Vec<Entry> {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim_start();
    let json = content_type.is_some_and(|t| t.contains("json"))
        || trimmed.starts_with('[')
        || trimmed.starts_with('{');
    let entries = if json {
        parse_json(trimmed)
    } else {
        parse_html(&text, dir_path)
    };
    let mut seen = HashSet::new();
    entries
        .into_iter()
        .filter(|e| seen.insert(e.name.clone()))
        .collect()
}

/// A JSON index: an array of `{name, type?, size?, date|mtime|modified?}` (nginx's
/// `autoindex_format json`, or cnpmcore's own listing), or an object with such an array under
/// `files` or `items`.
fn parse_json(text: &str) -> Vec<Entry> {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return Vec::new();
    };
    let items = match &value {
        Value::Array(items) => items.as_slice(),
        Value::Object(map) => match map.get("files").or_else(|| map.get("items")) {
            Some(Value::Array(items)) => items.as_slice(),
            _ => &[],
        },
        _ => &[],
    };
    items
        .iter()
        .filter_map(|item| {
            let name = item.get("name")?.as_str()?;
            let dir = name.ends_with('/')
                || matches!(
                    item.get("type").and_then(Value::as_str),
                    Some("directory" | "dir")
                );
            let name = entry_name(name.trim_end_matches('/'), dir)?;
            let date = ["date", "mtime", "modified"]
                .iter()
                .find_map(|k| item.get(*k).and_then(Value::as_str).and_then(parse_date));
            let size = match item.get("size") {
                Some(Value::Number(n)) => n.as_u64(),
                Some(Value::String(s)) => parse_size(s),
                _ => None,
            };
            Some(Entry {
                name,
                date,
                size: if dir { None } else { size },
            })
        })
        .collect()
}

/// An HTML listing: every `<a href>` naming one entry of this directory, with the date and
/// size that follow it on its line (nginx autoindex, Apache's fancy and table listings).
/// Parent links, sort links and links elsewhere are skipped.
fn parse_html(html: &str, dir_path: &str) -> Vec<Entry> {
    // ASCII lowercasing keeps byte offsets, so positions found in `lower` index `html`.
    let lower = html.to_ascii_lowercase();
    let mut entries = Vec::new();
    let mut pos = 0;
    while let Some(found) = lower[pos..].find("<a ") {
        let start = pos + found;
        let Some(tag_len) = lower[start..].find('>') else {
            break;
        };
        let tag_end = start + tag_len + 1;
        let href = attribute(&html[start..tag_end], "href");
        let after = match lower[tag_end..].find("</a>") {
            Some(n) => tag_end + n + 4,
            None => tag_end,
        };
        let line_end = [lower[after..].find("<a "), lower[after..].find('\n')]
            .into_iter()
            .flatten()
            .min()
            .map_or(lower.len(), |n| after + n);
        pos = after.max(start + 1);
        let Some(name) = href.and_then(|h| href_name(&h, dir_path)) else {
            continue;
        };
        let details = strip_tags(&html[after..line_end]);
        let tokens: Vec<&str> = details.split_whitespace().collect();
        let (date, size) = date_and_size(&tokens);
        let dir = name.ends_with('/');
        entries.push(Entry {
            name,
            date,
            size: if dir { None } else { size },
        });
    }
    entries
}

/// The value of `name="…"` (or `'…'`, or bare) in a tag.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(n) = lower[from..].find(name) {
        let at = from + n;
        from = at + name.len();
        let before_ok = at == 0 || lower.as_bytes()[at - 1].is_ascii_whitespace();
        let rest = lower[from..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let value_start = tag.len() - rest.len() + 1;
        let value = tag[value_start..].trim_start();
        let (quote, body) = match value.chars().next() {
            Some(q @ ('"' | '\'')) => (Some(q), &value[1..]),
            _ => (None, value),
        };
        let end = match quote {
            Some(q) => body.find(q),
            None => body.find(|c: char| c.is_whitespace() || c == '>'),
        }
        .unwrap_or(body.len());
        return Some(unescape_html(&body[..end]));
    }
    None
}

/// The entry an index link names, if it names one of this directory's entries.
fn href_name(href: &str, dir_path: &str) -> Option<String> {
    if href.is_empty() || href.starts_with(['?', '#']) || href.contains("://") {
        return None;
    }
    let relative = match href.strip_prefix('/') {
        Some(_) => href.strip_prefix(dir_path)?,
        None => href.strip_prefix("./").unwrap_or(href),
    };
    let relative = relative.split(['?', '#']).next().unwrap_or_default();
    let decoded = percent_decode(relative)?;
    let dir = decoded.ends_with('/');
    entry_name(decoded.strip_suffix('/').unwrap_or(&decoded), dir)
}

/// One path segment (a directory's with its `/`), or `None` for anything else.
fn entry_name(segment: &str, dir: bool) -> Option<String> {
    if segment.is_empty()
        || segment == "."
        || segment == ".."
        || segment.contains(['/', '\\'])
        || segment.contains(char::is_control)
    {
        return None;
    }
    Some(if dir {
        format!("{segment}/")
    } else {
        segment.to_string()
    })
}

fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' if in_tag => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    unescape_html(&out)
}

fn unescape_html(text: &str) -> String {
    text.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The date (two tokens: day and time) and the size (the token after the date) of a line.
fn date_and_size(tokens: &[&str]) -> (Option<OffsetDateTime>, Option<u64>) {
    for i in 0..tokens.len().saturating_sub(1) {
        if let Some(date) = parse_date(&format!("{} {}", tokens[i], tokens[i + 1])) {
            let size = tokens.get(i + 2).and_then(|s| parse_size(s));
            return (Some(date), size);
        }
    }
    (None, None)
}

/// Dates as indexes write them: `01-Jan-2024 10:00` (nginx, old Apache), `2024-01-01 10:00`
/// (Apache), with or without seconds; RFC 3339; RFC 2822 / HTTP dates (nginx's JSON); and a
/// bare `2024-01-01`. All in UTC.
pub fn parse_date(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(at);
    }
    if let Ok(at) = OffsetDateTime::parse(&text.replace(" GMT", " +0000"), &Rfc2822) {
        return Some(at);
    }
    let formats = [
        format_description!("[day]-[month repr:short]-[year] [hour]:[minute]"),
        format_description!("[day]-[month repr:short]-[year] [hour]:[minute]:[second]"),
        format_description!("[year]-[month]-[day] [hour]:[minute]"),
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
    ];
    for format in formats {
        if let Ok(at) = PrimitiveDateTime::parse(text, format) {
            return Some(at.assume_utc());
        }
    }
    Date::parse(text, format_description!("[year]-[month]-[day]"))
        .ok()
        .map(|d| PrimitiveDateTime::new(d, Time::MIDNIGHT).assume_utc())
}

/// `12345` bytes, or a human size (`1.2K`, `12M`, `3G`, as Apache and nginx's
/// `autoindex_exact_size off` print them), approximately; `-` is no size.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    if let Ok(bytes) = text.parse::<u64>() {
        return Some(bytes);
    }
    let unit = text.chars().last()?;
    let multiplier: f64 = match unit.to_ascii_uppercase() {
        'K' => 1024.0,
        'M' => 1024.0 * 1024.0,
        'G' => 1024.0 * 1024.0 * 1024.0,
        'T' => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let number: f64 = text[..text.len() - unit.len_utf8()].parse().ok()?;
    (number.is_finite() && number >= 0.0).then(|| (number * multiplier).round() as u64)
}

/// Percent-encodes each segment of a path (keeping `/` between them).
pub fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NGINX: &str = r#"<html>
<head><title>Index of /dist/</title></head>
<body>
<h1>Index of /dist/</h1><hr><pre><a href="../">../</a>
<a href="v18.0.0/">v18.0.0/</a>                                           19-Apr-2022 18:16                   -
<a href="latest/">latest/</a>                                            01-Jan-2024 10:00                   -
<a href="index.json">index.json</a>                                         01-Jan-2024 10:00              123456
<a href="a%20b.txt">a b.txt</a>                                            02-Feb-2024 03:04:05                 7
</pre><hr></body>
</html>
"#;

    const APACHE: &str = r#"<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">
<html><head><title>Index of /pub</title></head><body><h1>Index of /pub</h1>
<table>
<tr><th valign="top"><img src="/icons/blank.gif" alt="[ICO]"></th><th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th><th><a href="?C=S;O=A">Size</a></th></tr>
<tr><td valign="top"><img src="/icons/back.gif" alt="[PARENTDIR]"></td><td><a href="/">Parent Directory</a></td><td>&nbsp;</td><td align="right">  - </td></tr>
<tr><td valign="top"><img src="/icons/folder.gif" alt="[DIR]"></td><td><a href="v1/">v1/</a></td><td align="right">2024-01-01 10:00  </td><td align="right">  - </td></tr>
<tr><td valign="top"><img src="/icons/compressed.gif" alt="[   ]"></td><td><a href="tool.tar.gz">tool.tar.gz</a></td><td align="right">2024-03-05 11:22  </td><td align="right">1.5K</td></tr>
</table></body></html>
"#;

    fn at(text: &str) -> Option<OffsetDateTime> {
        OffsetDateTime::parse(text, &Rfc3339).ok()
    }

    #[test]
    fn nginx_autoindex_listings_are_parsed() {
        let entries = parse_index(NGINX.as_bytes(), Some("text/html"), "/dist/");
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["v18.0.0/", "latest/", "index.json", "a b.txt"]);
        assert_eq!(entries[0].date, at("2022-04-19T18:16:00Z"));
        assert_eq!(entries[0].size, None);
        assert_eq!(entries[2].size, Some(123_456));
        assert_eq!(entries[3].date, at("2024-02-02T03:04:05Z"));
        assert_eq!(entries[3].size, Some(7));
    }

    #[test]
    fn apache_listings_skip_sort_and_parent_links() {
        let entries = parse_index(APACHE.as_bytes(), Some("text/html"), "/pub/");
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["v1/", "tool.tar.gz"]);
        assert_eq!(entries[1].date, at("2024-03-05T11:22:00Z"));
        assert_eq!(entries[1].size, Some(1536));
    }

    #[test]
    fn json_indexes_are_parsed() {
        let body = br#"[{"name":"v1","type":"directory","mtime":"Mon, 01 Jan 2024 10:00:00 GMT"},
                        {"name":"f.bin","type":"file","mtime":"Mon, 01 Jan 2024 10:00:00 GMT","size":42},
                        {"name":"../x","type":"file"}]"#;
        let entries = parse_index(body, Some("application/json"), "/");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].name, "v1/");
        assert_eq!(entries[0].date, at("2024-01-01T10:00:00Z"));
        assert_eq!(
            (entries[1].name.as_str(), entries[1].size),
            ("f.bin", Some(42))
        );
    }

    #[test]
    fn links_elsewhere_are_not_entries() {
        for href in [
            "../",
            "?C=N",
            "#top",
            "https://x.example/y",
            "/other/y",
            "a/b",
            ".",
        ] {
            assert_eq!(href_name(href, "/dist/"), None, "{href}");
        }
        assert_eq!(href_name("/dist/y/", "/dist/").as_deref(), Some("y/"));
        assert_eq!(href_name("./z", "/dist/").as_deref(), Some("z"));
    }

    #[test]
    fn subpaths_are_checked() {
        for good in ["", "v1/", "v1/node.tar.gz", "a b/c"] {
            assert!(Subpath::parse(good).is_ok(), "{good:?}");
        }
        let long = "a".repeat(MAX_SUBPATH_CHARS + 1);
        for bad in [
            "..",
            "../x",
            "a/../b",
            "a//b",
            "/a",
            "a\u{1}b",
            "a\\b",
            "./a",
            long.as_str(),
        ] {
            assert_eq!(
                Subpath::parse(bad).err().map(|e| e.status()),
                Some(400),
                "{bad:?}"
            );
        }
        assert_eq!(
            Subpath::parse("a b/c#d")
                .map(|s| s.encoded())
                .ok()
                .as_deref(),
            Some("a%20b/c%23d")
        );
    }

    #[test]
    fn since_and_limit_filter_listings() -> Result<()> {
        let entries = parse_index(NGINX.as_bytes(), None, "/dist/");
        let query = ListQuery::parse(Some("2024-01-01"), None)?;
        assert_eq!(query.apply(entries.clone()).len(), 3);
        let query = ListQuery::parse(None, Some("2"))?;
        assert_eq!(query.apply(entries.clone()).len(), 2);
        assert_eq!(ListQuery::parse(None, Some("5000"))?.limit, Some(MAX_LIMIT));
        assert!(ListQuery::parse(None, Some("0")).is_err());
        assert!(ListQuery::parse(Some("yesterday"), None).is_err());
        Ok(())
    }
}
