//! `npm audit`: the security endpoints are forwarded to the first upstream as they came (the
//! bulk request's body is gzip'd, with `Content-Encoding: gzip`), and its answer relayed.
//! Without an upstream there is nothing to ask: a 404 that npm prints, never a 5xx (npm
//! would retry that for a minute).

use std::sync::Arc;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::registry::Registry;

/// `POST /-/npm/v1/security/advisories/bulk` (npm 7 and later).
pub const BULK_ADVISORIES: &str = "/-/npm/v1/security/advisories/bulk";
/// `POST /-/npm/v1/security/audits/quick` (npm 6; no longer sent by npm 11).
pub const QUICK_AUDIT: &str = "/-/npm/v1/security/audits/quick";

/// The upstream's answer, to relay.
#[derive(Debug, Clone)]
pub struct AuditAnswer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Bytes,
}

/// Forwards an audit request (`path` is one of the two above) to the first upstream.
pub async fn forward(
    registry: &Arc<Registry>,
    path: &str,
    body: Bytes,
    content_encoding: Option<&str>,
) -> Result<AuditAnswer> {
    let Some(upstream) = registry.upstreams.all().first().cloned() else {
        return Err(Error::not_found(
            "npm audit is not available here: this registry has no upstream to forward \
             security advisories to",
        ));
    };
    let what = "npm audit";
    if !upstream.available() {
        return Err(super::client::Failure::Unreachable(
            "skipped after repeated failures".to_string(),
        )
        .to_error(upstream.name(), what));
    }
    let (status, content_type, body) = upstream
        .post_json(registry.upstreams.client(), path, body, content_encoding)
        .await
        .map_err(|failure| failure.to_error(upstream.name(), what))?;
    // Redirects are followed within the upstream's host only; one elsewhere is not an answer.
    if status.is_redirection() {
        return Err(Error::BadGateway(format!(
            "upstream {} answered {} for {what}, a redirect to another host, which is not \
             followed",
            upstream.name(),
            status.as_u16()
        )));
    }
    Ok(AuditAnswer {
        status: status.as_u16(),
        content_type,
        body,
    })
}
