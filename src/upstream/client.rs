//! One upstream as the proxy talks to it: HTTP requests with the upstream's timeout and token,
//! a circuit breaker, and the counters `registry upstream list` shows.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use sha1::Sha1;
use sha2::{Digest, Sha512};

use super::config::{host_of, UpstreamConfig};
use crate::error::Error;
use crate::packages::packument::PackumentFlavor;

const ABBREVIATED_ACCEPT: &str =
    "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*";
/// The largest packument accepted from an upstream (npm's biggest are tens of MiB).
pub const MAX_DOCUMENT_BYTES: u64 = 256 * 1024 * 1024;
/// The largest tarball accepted from an upstream.
pub const MAX_TARBALL_BYTES: u64 = 1024 * 1024 * 1024;
const USER_AGENT: &str = concat!("registry/", env!("CARGO_PKG_VERSION"), " (upstream proxy)");

/// Makes ring the process's TLS provider, as `serve` uses it: every reqwest client of the
/// binary (the upstreams', the CLI's remote mode) needs one, since the build carries no other.
/// Installing twice is a harmless no-op.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds the HTTP client every upstream shares (its connection pool is the reuse that keeps
/// a cold install from paying a handshake per package). Redirects are followed only within
/// the same host.
pub fn http_client() -> Result<reqwest::Client, Error> {
    install_tls_provider();
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            let same_host = attempt
                .previous()
                .first()
                .is_some_and(|first| first.host_str() == attempt.url().host_str());
            if same_host && attempt.previous().len() < 5 {
                attempt.follow()
            } else {
                attempt.stop()
            }
        }))
        .pool_idle_timeout(Duration::from_secs(60))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| Error::Storage(format!("cannot build the upstream HTTP client: {e}")))
}

/// Why an upstream could not be used.
#[derive(Debug, Clone)]
pub enum Failure {
    Timeout,
    /// Refused, reset, DNS, TLS: nothing usable came back.
    Unreachable(String),
    /// A 5xx (or another status that is not an answer about the package).
    Status(u16),
    /// An answer that is not what a registry sends (not JSON, wrong package, too large).
    Invalid(String),
}

impl Failure {
    /// The error a client gets when no cached copy can stand in.
    pub fn to_error(&self, upstream: &str, what: &str) -> Error {
        match self {
            Failure::Timeout => Error::GatewayTimeout(format!(
                "upstream {upstream} did not answer in time for {what}; try again later"
            )),
            Failure::Unreachable(reason) => Error::BadGateway(format!(
                "upstream {upstream} cannot be reached for {what} ({reason}); try again later"
            )),
            Failure::Status(status) => Error::BadGateway(format!(
                "upstream {upstream} answered {status} for {what}; try again later"
            )),
            Failure::Invalid(reason) => Error::BadGateway(format!(
                "upstream {upstream} sent an invalid answer for {what}: {reason}"
            )),
        }
    }

    fn of(err: &reqwest::Error) -> Failure {
        if err.is_timeout() {
            Failure::Timeout
        } else {
            // The innermost cause says most (connection refused, reset).
            let mut cause: &dyn std::error::Error = err;
            while let Some(next) = cause.source() {
                cause = next;
            }
            Failure::Unreachable(cause.to_string())
        }
    }
}

/// What the upstream said about a document.
pub enum DocumentAnswer {
    Modified {
        body: Bytes,
        etag: Option<String>,
        last_modified: Option<String>,
    },
    NotModified,
    NotFound,
}

/// A tarball downloaded into a temporary file and verified.
pub struct Downloaded {
    pub temp: tempfile::TempPath,
    pub sha512_hex: String,
    pub size: u64,
}

#[derive(Default)]
pub struct Counters {
    /// Answered from the cache without asking (fresh, 304, or stale while down).
    pub hits: AtomicU64,
    /// Answered by asking the upstream (a new document, a 404, a tarball fetched).
    pub misses: AtomicU64,
    pub revalidated: AtomicU64,
    pub stale: AtomicU64,
    /// Requests sent (for `/-/metrics`; `failures` counts those that failed).
    pub requests: AtomicU64,
    pub failures: AtomicU64,
}

/// A configured upstream, live.
pub struct Upstream {
    pub config: UpstreamConfig,
    breaker: Mutex<Breaker>,
    pub counters: Counters,
}

struct Breaker {
    consecutive_failures: u32,
    open_until: Option<Instant>,
}

/// The breaker as `registry upstream list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakerState {
    Up,
    /// Failing, but not yet skipped.
    Failing(u32),
    /// Skipped until the timeout passes; then one request tries it again.
    Down {
        retry_in: Duration,
    },
}

impl Upstream {
    pub fn new(config: UpstreamConfig) -> Upstream {
        Upstream {
            config,
            breaker: Mutex::new(Breaker {
                consecutive_failures: 0,
                open_until: None,
            }),
            counters: Counters::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// False while the breaker is open: requests go to the cache (or fail) without asking.
    pub fn available(&self) -> bool {
        let Ok(breaker) = self.breaker.lock() else {
            return true;
        };
        breaker
            .open_until
            .is_none_or(|until| Instant::now() >= until)
    }

    pub fn state(&self) -> BreakerState {
        let Ok(breaker) = self.breaker.lock() else {
            return BreakerState::Up;
        };
        match breaker.open_until {
            Some(until) => BreakerState::Down {
                retry_in: until.saturating_duration_since(Instant::now()),
            },
            None if breaker.consecutive_failures > 0 => {
                BreakerState::Failing(breaker.consecutive_failures)
            }
            None => BreakerState::Up,
        }
    }

    fn succeeded(&self) {
        let Ok(mut breaker) = self.breaker.lock() else {
            return;
        };
        if breaker.open_until.is_some() {
            tracing::warn!(upstream = %self.config.name, "upstream is back; using it again");
        }
        breaker.consecutive_failures = 0;
        breaker.open_until = None;
    }

    fn failed(&self, failure: &Failure) {
        self.counters.failures.fetch_add(1, Ordering::Relaxed);
        let Ok(mut breaker) = self.breaker.lock() else {
            return;
        };
        breaker.consecutive_failures = breaker.consecutive_failures.saturating_add(1);
        let was_open = breaker.open_until.is_some();
        if breaker.consecutive_failures >= self.config.max_fails {
            breaker.open_until = Some(Instant::now() + self.config.fail_timeout);
            // Logged once when it opens; a failed retry after the timeout reopens it quietly.
            if !was_open {
                tracing::warn!(
                    upstream = %self.config.name,
                    failures = breaker.consecutive_failures,
                    skipped_for = %super::config::format_duration(self.config.fail_timeout),
                    "upstream is down ({failure:?}); serving from the cache meanwhile"
                );
            }
        }
    }

    fn request(&self, client: &reqwest::Client, url: &str) -> reqwest::RequestBuilder {
        let mut request = client.get(url).timeout(self.config.timeout);
        // The token goes only to the upstream's own host, never to a CDN a document names.
        if let Some(token) = &self.config.token {
            if host_of(url) == self.config.host() {
                request = request.bearer_auth(token);
            }
        }
        request
    }

    /// Asks for a document, conditionally when validators are given.
    pub async fn fetch_document(
        &self,
        client: &reqwest::Client,
        name: &str,
        flavor: PackumentFlavor,
        etag: Option<&str>,
        last_modified: Option<&str>,
    ) -> Result<DocumentAnswer, Failure> {
        let url = format!("{}/{}", self.config.url, name.replace('/', "%2f"));
        let mut request = self.request(client, &url);
        request = match flavor {
            PackumentFlavor::Abbreviated => request.header(header::ACCEPT, ABBREVIATED_ACCEPT),
            PackumentFlavor::Full => request.header(header::ACCEPT, "application/json"),
        };
        if let Some(etag) = etag {
            request = request.header(header::IF_NONE_MATCH, etag);
        }
        if let Some(last_modified) = last_modified {
            request = request.header(header::IF_MODIFIED_SINCE, last_modified);
        }
        let result = async {
            let response = request.send().await.map_err(|e| Failure::of(&e))?;
            match response.status() {
                StatusCode::NOT_MODIFIED => Ok(DocumentAnswer::NotModified),
                StatusCode::NOT_FOUND => Ok(DocumentAnswer::NotFound),
                StatusCode::OK => {
                    let headers = response.headers().clone();
                    let body = read_limited(response, MAX_DOCUMENT_BYTES).await?;
                    Ok(DocumentAnswer::Modified {
                        body,
                        etag: header_text(&headers, header::ETAG),
                        last_modified: header_text(&headers, header::LAST_MODIFIED),
                    })
                }
                other => Err(Failure::Status(other.as_u16())),
            }
        }
        .await;
        self.record(&result);
        result
    }

    /// Any GET of the upstream's API (search, a binary index), body capped.
    pub async fn fetch_bytes(
        &self,
        client: &reqwest::Client,
        url: &str,
        max_bytes: u64,
    ) -> Result<(StatusCode, Bytes), Failure> {
        let (status, _, body) = self
            .send_capped(self.request(client, url), max_bytes)
            .await?;
        Ok((status, body))
    }

    /// POSTs a JSON body (the audit endpoints) and returns the answer as it came.
    pub async fn post_json(
        &self,
        client: &reqwest::Client,
        path: &str,
        body: Bytes,
        content_encoding: Option<&str>,
    ) -> Result<(StatusCode, Option<String>, Bytes), Failure> {
        let url = format!("{}{path}", self.config.url);
        let mut request = client
            .post(&url)
            .timeout(self.config.timeout)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(encoding) = content_encoding {
            request = request.header(header::CONTENT_ENCODING, encoding);
        }
        if let Some(token) = &self.config.token {
            request = request.bearer_auth(token);
        }
        self.send_capped(request, MAX_DOCUMENT_BYTES).await
    }

    /// Sends a request whose answer is relayed: a 5xx or no answer is a [`Failure`] (and
    /// counts for the breaker), anything else comes back with its content type and its body,
    /// at most `max_bytes`.
    async fn send_capped(
        &self,
        request: reqwest::RequestBuilder,
        max_bytes: u64,
    ) -> Result<(StatusCode, Option<String>, Bytes), Failure> {
        let result = async {
            let response = request.send().await.map_err(|e| Failure::of(&e))?;
            let status = response.status();
            if status.is_server_error() {
                return Err(Failure::Status(status.as_u16()));
            }
            let content_type = header_text(response.headers(), header::CONTENT_TYPE);
            Ok((
                status,
                content_type,
                read_limited(response, max_bytes).await?,
            ))
        }
        .await;
        self.record(&result);
        result
    }

    /// Downloads a tarball into `temp_dir`, hashing as it goes, and checks it against the
    /// document's integrity and shasum; the file is not synced (the caller does, before it
    /// enters the blob store). Upstream trouble is a [`Failure`]; a tarball that
    /// does not match is `Ok(Err(reason))`: the upstream answered, wrongly.
    pub async fn fetch_tarball(
        &self,
        client: &reqwest::Client,
        url: &str,
        integrity: &str,
        shasum: &str,
        temp_dir: &std::path::Path,
    ) -> Result<Result<Downloaded, String>, Failure> {
        let result = async {
            let response = self
                .request(client, url)
                .send()
                .await
                .map_err(|e| Failure::of(&e))?;
            match response.status() {
                StatusCode::OK => {}
                StatusCode::NOT_FOUND => {
                    return Ok(Err("the upstream has no such tarball (404)".to_string()))
                }
                other => return Err(Failure::Status(other.as_u16())),
            }
            let mut file = tempfile::NamedTempFile::new_in(temp_dir)
                .map_err(|e| Failure::Unreachable(format!("cannot write a temporary file: {e}")))?;
            let mut sha512 = Sha512::new();
            let mut sha1 = Sha1::new();
            let mut size: u64 = 0;
            let mut stream = response.bytes_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| Failure::of(&e))?;
                size += chunk.len() as u64;
                if size > MAX_TARBALL_BYTES {
                    return Err(Failure::Invalid(format!(
                        "the tarball is larger than {MAX_TARBALL_BYTES} bytes"
                    )));
                }
                sha512.update(&chunk);
                sha1.update(&chunk);
                file.write_all(&chunk).map_err(|e| {
                    Failure::Unreachable(format!("cannot write a temporary file: {e}"))
                })?;
            }
            let sha512 = sha512.finalize();
            let sha1_hex = hex::encode(sha1.finalize());
            if let Err(reason) = verify(integrity, shasum, &sha512, &sha1_hex) {
                return Ok(Err(reason));
            }
            Ok(Ok(Downloaded {
                temp: file.into_temp_path(),
                sha512_hex: hex::encode(sha512),
                size,
            }))
        }
        .await;
        self.record(&result);
        result
    }

    fn record<T>(&self, result: &Result<T, Failure>) {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(_) => self.succeeded(),
            Err(failure) => self.failed(failure),
        }
    }
}

/// Checks a download against `dist.integrity` (every sha512 or sha1 SRI hash it lists must
/// match) and `dist.shasum`. A document with neither gets its tarball unchecked, as npm does.
fn verify(integrity: &str, shasum: &str, sha512: &[u8], sha1_hex: &str) -> Result<(), String> {
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine;
    for item in integrity.split_whitespace() {
        let (algorithm, digest) = item.split_once('-').unwrap_or((item, ""));
        let digest = digest.split('?').next().unwrap_or_default();
        let expected = match algorithm {
            "sha512" => B64.encode(sha512),
            "sha1" => match hex::decode(sha1_hex) {
                Ok(bytes) => B64.encode(bytes),
                Err(_) => continue,
            },
            _ => continue,
        };
        if digest != expected {
            return Err(format!(
                "its {algorithm} does not match the document's integrity"
            ));
        }
    }
    if !shasum.is_empty() && !shasum.eq_ignore_ascii_case(sha1_hex) {
        return Err("its sha1 does not match the document's shasum".to_string());
    }
    Ok(())
}

async fn read_limited(response: reqwest::Response, max: u64) -> Result<Bytes, Failure> {
    if response.content_length().is_some_and(|len| len > max) {
        return Err(Failure::Invalid(format!(
            "the answer is larger than {max} bytes"
        )));
    }
    let mut out = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Failure::of(&e))?;
        if (out.len() + chunk.len()) as u64 > max {
            return Err(Failure::Invalid(format!(
                "the answer is larger than {max} bytes"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

fn header_text(headers: &HeaderMap<HeaderValue>, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine;

    #[test]
    fn downloads_are_checked_against_integrity_and_shasum() {
        let bytes = b"tarball";
        let sha512 = Sha512::digest(bytes);
        let sha1_hex = hex::encode(Sha1::digest(bytes));
        let integrity = format!("sha512-{}", B64.encode(sha512));
        assert!(verify(&integrity, &sha1_hex, &sha512, &sha1_hex).is_ok());
        assert!(
            verify("", "", &sha512, &sha1_hex).is_ok(),
            "nothing to check"
        );
        let other = Sha512::digest(b"other");
        let wrong = format!("sha512-{}", B64.encode(other));
        assert!(verify(&wrong, &sha1_hex, &sha512, &sha1_hex).is_err());
        assert!(verify(&integrity, "00", &sha512, &sha1_hex).is_err());
    }
}
