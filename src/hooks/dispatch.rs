//! The dispatcher: a task `serve` starts, off the request path. It leases due outbox rows
//! (woken by every commit, and looking again at least every [`IDLE_POLL`] for rows written by
//! another process), sends each as a signed `POST` with a timeout, at most [`CONCURRENCY`] at
//! a time and one at a time per hook (in order), and records every attempt. A failure is
//! retried after `hooks_retry_base_ms × 2^(attempt−1)`, at most `hooks_retry_cap_secs`, with a
//! little jitter; a delivery still failing [`GIVE_UP_AFTER`] after its event is given up
//! (`failed`), which unblocks the hook's later events.
//!
//! Delivery is at least once: a row is marked delivered only after the endpoint answered 2xx,
//! and a process that dies mid-delivery leaves the row leased until [`LEASE`] has passed, when
//! any dispatcher sends it again. Receivers drop duplicates by the `x-registry-delivery` id.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::task::JoinSet;

use super::guard::{self, Endpoint};
use super::DueDelivery;
use crate::error::{Error, Result};
use crate::registry::Registry;

/// Deliveries in flight at once.
pub const CONCURRENCY: usize = 8;
/// Each delivery's whole exchange, connecting included.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claimed row stays leased: longer than a delivery can take.
pub const LEASE: Duration = Duration::from_secs(30);
/// An event not delivered this long after it happened is given up.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(3 * 24 * 60 * 60);
/// How often an idle dispatcher looks for rows written by another process (the CLI).
const IDLE_POLL: Duration = Duration::from_secs(1);
const USER_AGENT: &str = concat!("registry/", env!("CARGO_PKG_VERSION"), " (hooks)");

/// The header values of a delivery's signature: `sha256=<hex HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The wait before retry number `attempts` (the first failure is attempt 1): the base doubled
/// per earlier failure, at most the cap.
pub fn retry_delay(base: Duration, cap: Duration, attempts: u64) -> Duration {
    // 2^31 times even the smallest base is beyond the largest cap.
    let doublings = attempts.saturating_sub(1).min(31) as u32;
    base.saturating_mul(1u32 << doublings).min(cap)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

async fn blocking<T: Send + 'static>(
    registry: &Arc<Registry>,
    f: impl FnOnce(&Registry) -> Result<T> + Send + 'static,
) -> Result<T> {
    let registry = registry.clone();
    tokio::task::spawn_blocking(move || f(&registry))
        .await
        .map_err(|e| Error::Storage(format!("a blocking task failed: {e}")))?
}

/// Leases up to `limit` due deliveries (a read first: an idle registry costs no writes).
async fn claim(registry: &Arc<Registry>, limit: usize) -> Result<Vec<DueDelivery>> {
    blocking(registry, move |r| {
        let now = super::outbox::now_ms();
        if !r.store.read(|db| db.hook_delivery_due(now))? {
            return Ok(Vec::new());
        }
        let at = crate::clock::now_iso();
        r.store
            .write(|db| db.claim_hook_deliveries(now, now + millis(LEASE), limit, &at))
    })
    .await
}

/// How long to sleep when nothing can be claimed: until the next row is due, at most
/// [`IDLE_POLL`].
async fn idle_wait(registry: &Arc<Registry>) -> Duration {
    let next = blocking(registry, |r| r.store.read(|db| db.next_hook_delivery_ms())).await;
    match next {
        Ok(Some(at)) => {
            let wait = at.saturating_sub(super::outbox::now_ms()).max(1);
            Duration::from_millis(u64::try_from(wait).unwrap_or(0)).min(IDLE_POLL)
        }
        _ => IDLE_POLL,
    }
}

/// Runs forever (until its task is aborted; deliveries in flight are then dropped and sent
/// again once their lease runs out).
pub async fn work(registry: Arc<Registry>) {
    let mut running = JoinSet::new();
    loop {
        let free = CONCURRENCY.saturating_sub(running.len());
        if free > 0 {
            match claim(&registry, free).await {
                Ok(batch) => {
                    for delivery in batch {
                        running.spawn(deliver_and_record(registry.clone(), delivery));
                    }
                }
                Err(err) => tracing::warn!("claiming hook deliveries failed (will retry): {err}"),
            }
        }
        // With every slot taken, a finished delivery wakes the loop; else the next due row.
        let wait = if running.len() < CONCURRENCY {
            idle_wait(&registry).await
        } else {
            IDLE_POLL
        };
        tokio::select! {
            Some(_) = running.join_next(), if !running.is_empty() => {}
            () = registry.store.committed().notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// What one attempt came to.
#[derive(Debug)]
struct Attempt {
    response_code: Option<u16>,
    error: Option<String>,
    duration: Duration,
}

async fn deliver_and_record(registry: Arc<Registry>, delivery: DueDelivery) {
    let started = Instant::now();
    let outcome = send(&registry, &delivery).await;
    let attempt = match outcome {
        Ok(code) if (200..300).contains(&code) => Attempt {
            response_code: Some(code),
            error: None,
            duration: started.elapsed(),
        },
        Ok(code) => Attempt {
            response_code: Some(code),
            error: Some(format!("the endpoint answered {code}")),
            duration: started.elapsed(),
        },
        Err(err) => Attempt {
            response_code: None,
            error: Some(err),
            duration: started.elapsed(),
        },
    };
    let (id, hook) = (delivery.id.clone(), delivery.hook_id.clone());
    match &attempt.error {
        None => {
            tracing::info!(delivery = %id, hook = %hook, event = %delivery.event, "hook delivered")
        }
        Some(error) => tracing::info!(
            delivery = %id, hook = %hook, attempt = delivery.attempts, "hook delivery failed: {error}"
        ),
    }
    let recorded = blocking(&registry, move |r| record(r, &delivery, &attempt)).await;
    if let Err(err) = recorded {
        // The lease runs out and the delivery is sent again: at least once.
        tracing::warn!(delivery = %id, "recording a hook delivery failed: {err}");
    }
}

fn record(registry: &Registry, delivery: &DueDelivery, attempt: &Attempt) -> Result<()> {
    let now_ms = super::outbox::now_ms();
    let (state, next) = if attempt.error.is_none() {
        ("delivered", now_ms)
    } else if now_ms.saturating_sub(delivery.created_ms) >= millis(GIVE_UP_AFTER) {
        ("failed", now_ms)
    } else {
        let config = &registry.config;
        let delay = retry_delay(
            Duration::from_millis(config.hooks_retry_base_ms),
            Duration::from_secs(config.hooks_retry_cap_secs),
            delivery.attempts,
        );
        // Up to a tenth more, so that hooks failing together do not all retry together.
        let jitter = rand::random::<u64>() % (u64::try_from(millis(delay)).unwrap_or(0) / 10 + 1);
        (
            "pending",
            now_ms
                .saturating_add(millis(delay))
                .saturating_add(jitter as i64),
        )
    };
    let at = crate::clock::now_iso();
    let duration = u64::try_from(attempt.duration.as_millis()).unwrap_or(u64::MAX);
    registry.store.write(|db| {
        db.record_hook_attempt(
            delivery.row_id,
            &delivery.hook_id,
            state,
            next,
            attempt.response_code,
            duration,
            attempt.error.as_deref(),
            &at,
        )
    })
}

/// Resolves the endpoint's host and checks every address (unless private ones are allowed);
/// answers the address to connect to, so that a second lookup (DNS rebinding) cannot swap it.
async fn resolve(
    endpoint: &Endpoint,
    allow_private: bool,
) -> std::result::Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = match endpoint.literal_ip() {
        Some(ip) => vec![SocketAddr::new(ip, endpoint.port)],
        None => tokio::net::lookup_host((endpoint.host.as_str(), endpoint.port))
            .await
            .map_err(|e| format!("cannot resolve {}: {e}", endpoint.host))?
            .collect(),
    };
    if !allow_private {
        guard::check_addresses(&endpoint.host, &addrs).map_err(|e| e.public_message())?;
    }
    addrs
        .first()
        .copied()
        .ok_or_else(|| format!("{} does not resolve to any address", endpoint.host))
}

/// One POST; answers the status, or why there was none.
async fn send(registry: &Registry, delivery: &DueDelivery) -> std::result::Result<u16, String> {
    let endpoint = Endpoint::parse(&delivery.endpoint).map_err(|e| e.public_message())?;
    let addr = resolve(&endpoint, registry.config.hooks_allow_private).await?;
    crate::upstream::client::install_tls_provider();
    let mut builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        // A proxy would do its own lookup of the host, around the check above.
        .no_proxy()
        .timeout(DELIVERY_TIMEOUT)
        .connect_timeout(DELIVERY_TIMEOUT);
    if endpoint.literal_ip().is_none() {
        builder = builder.resolve(&endpoint.host, addr);
    }
    let client = builder
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let response = client
        .post(endpoint.url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(
            "x-npm-signature",
            signature(&delivery.secret, delivery.body.as_bytes()),
        )
        .header("x-npm-event", &delivery.event)
        .header("x-registry-delivery", &delivery.id)
        .body(delivery.body.clone())
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                format!("no answer within {}s", DELIVERY_TIMEOUT.as_secs())
            } else {
                format!("cannot reach the endpoint: {e}")
            }
        })?;
    Ok(response.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_in_hex() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn retries_back_off_exponentially_up_to_the_cap() {
        let base = Duration::from_secs(2);
        let cap = Duration::from_secs(86_400);
        assert_eq!(retry_delay(base, cap, 1), Duration::from_secs(2));
        assert_eq!(retry_delay(base, cap, 2), Duration::from_secs(4));
        assert_eq!(retry_delay(base, cap, 5), Duration::from_secs(32));
        assert_eq!(retry_delay(base, cap, 17), cap);
        assert_eq!(retry_delay(base, cap, u64::MAX), cap);
        assert_eq!(
            retry_delay(base, Duration::from_secs(3), 3),
            Duration::from_secs(3)
        );
    }
}
