//! The dispatcher: a task `serve` starts, off the request path. It leases due outbox rows
//! (woken by every commit, and looking again at least every [`IDLE_POLL`] for rows written by
//! another process), sends each as a signed `POST` with a timeout, at most [`CONCURRENCY`]
//! hooks at a time and each hook's deliveries one after another (in order), and records every
//! attempt. A failure is retried after `hooks_retry_base_ms × 2^(attempt−1)`, at most
//! `hooks_retry_cap_secs`, with a little jitter; a delivery still failing [`GIVE_UP_AFTER`]
//! after its event is given up (`failed`), which unblocks the hook's later events.
//!
//! Delivery is at least once: a row is marked delivered only after the endpoint answered 2xx,
//! and a process that dies mid-delivery leaves the row leased until [`LEASE`] has passed, when
//! any dispatcher sends it again. Receivers drop duplicates by the `x-registry-delivery` id.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::task::JoinSet;

use super::guard::{self, Endpoint};
use super::DueDelivery;
use crate::config::Config;
use crate::error::Result;
use crate::registry::blocking;
use crate::registry::Registry;
use crate::store::{Db, Store};

/// Hooks delivered to at once.
pub const CONCURRENCY: usize = 8;
/// Deliveries of one hook leased together and sent one after another: under a stream of
/// changes, one claim and one record cover many events rather than one each.
pub const PER_HOOK: usize = 32;
/// Each delivery's whole exchange, connecting included.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long claimed rows stay leased: a hook's deliveries stop being sent before it ends.
pub const LEASE: Duration = Duration::from_secs(30);
/// An event not delivered this long after it happened is given up.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(3 * 24 * 60 * 60);
/// How long events a commit wrote wait for the next commits' to join their claim. The writer
/// is the registry's bottleneck and every publish waits for it: a claim per commit made a
/// publish with ten hooks cost half as much again.
const GATHER: Duration = Duration::from_millis(25);
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

/// What the dispatcher has to write down: finished attempts, and leased deliveries that were
/// not sent.
#[derive(Debug, Default)]
struct Sent {
    attempts: Vec<(DueDelivery, Attempt)>,
    unsent: Vec<DueDelivery>,
}

impl Sent {
    fn is_empty(&self) -> bool {
        self.attempts.is_empty() && self.unsent.is_empty()
    }

    fn absorb(&mut self, other: Sent) {
        self.attempts.extend(other.attempts);
        self.unsent.extend(other.unsent);
    }
}

/// One write: records what was sent and, with `hooks` > 0, leases the deliveries of up to that
/// many hooks (after a read: an idle registry costs no writes). Answers them grouped by hook.
async fn settle_and_claim(
    registry: &Arc<Registry>,
    sent: Sent,
    hooks: usize,
) -> Result<Vec<Vec<DueDelivery>>> {
    blocking(registry, move |r| {
        let now = super::outbox::now_ms();
        let due = hooks > 0 && r.store.read(|db| db.hook_delivery_due(now))?;
        if sent.is_empty() && !due {
            return Ok(Vec::new());
        }
        let at = crate::clock::now_iso();
        // A lease or an attempt record lost with the machine only makes a delivery go out
        // again: at least once.
        let mut claimed = r.store.write_unsynced(|db| {
            record(db, &r.config, &sent, &at)?;
            if !due {
                return Ok(Vec::new());
            }
            db.claim_hook_deliveries(now, now + millis(LEASE), hooks, PER_HOOK, &at)
        })?;
        list_versions(&r.store, &mut claimed)?;
        Ok(by_hook(claimed))
    })
    .await
}

/// Fills in the payload versions of claimed deliveries, once per event, on a read connection:
/// the list grows with the package, and building it while holding the writer made the
/// publishes queued behind the claim wait for it.
fn list_versions(store: &Store, claimed: &mut [DueDelivery]) -> Result<()> {
    if claimed.iter().all(|delivery| delivery.unlisted.is_none()) {
        return Ok(());
    }
    store.read(|db| {
        let mut listed: HashMap<i64, String> = HashMap::new();
        for delivery in claimed.iter_mut() {
            let Some(unlisted) = delivery.unlisted.take() else {
                continue;
            };
            delivery.envelope = match listed.get(&unlisted.event_id) {
                Some(envelope) => envelope.clone(),
                None => {
                    let envelope = db.list_payload_versions(&delivery.envelope, &unlisted)?;
                    listed.insert(unlisted.event_id, envelope.clone());
                    envelope
                }
            };
        }
        Ok(())
    })
}

/// Rows sorted by hook into one queue per hook.
fn by_hook(claimed: Vec<DueDelivery>) -> Vec<Vec<DueDelivery>> {
    let mut queues: Vec<Vec<DueDelivery>> = Vec::new();
    for delivery in claimed {
        match queues.last_mut() {
            Some(queue) if queue[0].hook_id == delivery.hook_id => queue.push(delivery),
            _ => queues.push(vec![delivery]),
        }
    }
    queues
}

fn record(db: &Db<'_>, config: &Config, sent: &Sent, at: &str) -> Result<()> {
    let mut hooks: Vec<&str> = Vec::new();
    for (delivery, attempt) in &sent.attempts {
        let (state, next) = outcome(config, delivery, attempt);
        let duration = u64::try_from(attempt.duration.as_millis()).unwrap_or(u64::MAX);
        db.record_hook_attempt(
            delivery.row_id,
            &delivery.hook_id,
            state,
            next,
            attempt.response_code,
            duration,
            attempt.error.as_deref(),
            at,
        )?;
        if !hooks.contains(&delivery.hook_id.as_str()) {
            hooks.push(&delivery.hook_id);
        }
    }
    let now = super::outbox::now_ms();
    for delivery in &sent.unsent {
        db.release_hook_delivery(delivery.row_id, now)?;
    }
    for hook in hooks {
        db.prune_hook_deliveries(hook)?;
    }
    Ok(())
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

/// Finished attempts wait at most this long for the deliveries still in flight, so that a
/// burst (one publish, ten hooks) is recorded in one write rather than one per delivery.
const RECORD_DELAY: Duration = Duration::from_millis(20);

/// Runs forever (until its task is aborted; deliveries in flight are then dropped and sent
/// again once their lease runs out). The writer is the registry's bottleneck and every publish
/// waits for it, so the dispatcher writes seldom and in bursts: the events of the commits of
/// [`GATHER`] are claimed together, up to [`PER_HOOK`] per hook; what was sent is recorded once
/// the hooks in flight have all finished (or after [`RECORD_DELAY`]), in the same write as the
/// next claim; and new hooks are claimed once half the slots are free, not one slot at a time.
pub async fn work(registry: Arc<Registry>) {
    let mut running: JoinSet<Sent> = JoinSet::new();
    let clients = Arc::new(Clients::default());
    let mut sent = Sent::default();
    let mut first_sent: Option<Instant> = None;
    // When the events of the commits seen since the last claim are to be claimed.
    let mut gathered_at: Option<Instant> = None;
    loop {
        while let Some(done) = running.try_join_next() {
            sent.absorb(done.unwrap_or_default());
        }
        if !sent.is_empty() {
            first_sent.get_or_insert_with(Instant::now);
        }
        let free = CONCURRENCY.saturating_sub(running.len());
        let may_claim = (running.is_empty() || free >= CONCURRENCY / 2)
            && gathered_at.is_none_or(|at| Instant::now() >= at);
        let must_record =
            first_sent.is_some_and(|at| running.is_empty() || at.elapsed() >= RECORD_DELAY);
        if may_claim || must_record {
            let hooks = if may_claim { free } else { 0 };
            match settle_and_claim(&registry, std::mem::take(&mut sent), hooks).await {
                Ok(queues) => {
                    for queue in queues {
                        let (registry, clients) = (registry.clone(), clients.clone());
                        running.spawn(
                            async move { deliver_in_order(&registry, &clients, queue).await },
                        );
                    }
                }
                // Their leases run out and they are sent again: at least once.
                Err(err) => tracing::warn!("recording or claiming hook deliveries failed: {err}"),
            }
            first_sent = None;
            if may_claim {
                gathered_at = None;
            }
        }
        // A finished hook wakes the loop, and so does a commit (new rows, claimed once the
        // gathering is over); else the next due row, or the moment to record what was sent.
        let mut wait = if running.is_empty() && gathered_at.is_none() {
            idle_wait(&registry).await
        } else {
            IDLE_POLL
        };
        for until in [first_sent.map(|at| at + RECORD_DELAY), gathered_at]
            .into_iter()
            .flatten()
        {
            wait = wait.min(until.saturating_duration_since(Instant::now()));
        }
        tokio::select! {
            Some(done) = running.join_next(), if !running.is_empty() => {
                sent.absorb(done.unwrap_or_default());
            }
            () = registry.store.committed().notified() => {
                gathered_at.get_or_insert_with(|| Instant::now() + GATHER);
            }
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Sends one hook's leased deliveries in order, stopping at the first that fails (the rest
/// wait behind its retry) or when the next might outlast the lease.
async fn deliver_in_order(registry: &Registry, clients: &Clients, queue: Vec<DueDelivery>) -> Sent {
    let leased = Instant::now();
    let mut sent = Sent::default();
    let mut queue = queue.into_iter();
    for delivery in queue.by_ref() {
        if !sent.attempts.is_empty() && leased.elapsed() + DELIVERY_TIMEOUT >= LEASE {
            sent.unsent.push(delivery);
            break;
        }
        let attempt = deliver(registry, clients, &delivery).await;
        let failed = attempt.error.is_some();
        sent.attempts.push((delivery, attempt));
        if failed {
            break;
        }
    }
    sent.unsent.extend(queue);
    sent
}

/// What one attempt came to.
#[derive(Debug)]
struct Attempt {
    response_code: Option<u16>,
    error: Option<String>,
    duration: Duration,
}

async fn deliver(registry: &Registry, clients: &Clients, delivery: &DueDelivery) -> Attempt {
    let started = Instant::now();
    let (response_code, error) = match send(registry, clients, delivery).await {
        Ok(code) if (200..300).contains(&code) => (Some(code), None),
        Ok(code) => (Some(code), Some(format!("the endpoint answered {code}"))),
        Err(err) => (None, Some(err)),
    };
    registry.metrics.hook_attempt(error.is_none());
    match &error {
        None => tracing::info!(delivery = %delivery.id, hook = %delivery.hook_id,
                               event = %delivery.event, "hook delivered"),
        Some(error) => tracing::info!(delivery = %delivery.id, hook = %delivery.hook_id,
                                      attempt = delivery.attempts, "hook delivery failed: {error}"),
    }
    Attempt {
        response_code,
        error,
        duration: started.elapsed(),
    }
}

/// The state an attempt leaves its delivery in, and when it is tried next: delivered, given
/// up, or retried after the backoff (with up to a tenth more, so that hooks failing together
/// do not all retry together).
fn outcome(config: &Config, delivery: &DueDelivery, attempt: &Attempt) -> (&'static str, i64) {
    let now_ms = super::outbox::now_ms();
    if attempt.error.is_none() {
        return ("delivered", now_ms);
    }
    if now_ms.saturating_sub(delivery.created_ms) >= millis(GIVE_UP_AFTER) {
        return ("failed", now_ms);
    }
    let delay = millis(retry_delay(
        Duration::from_millis(config.hooks_retry_base_ms),
        Duration::from_secs(config.hooks_retry_cap_secs),
        delivery.attempts,
    ));
    let jitter = rand::random_range(0..=delay / 10);
    (
        "pending",
        now_ms.saturating_add(delay).saturating_add(jitter),
    )
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
/// HTTP clients by (host, checked address): each connects only to the address its host was
/// checked at, and keeps its connections open for the next delivery to the same endpoint
/// (building a client, TLS roots and all, costs more than a delivery to a nearby receiver).
#[derive(Default)]
struct Clients(Mutex<HashMap<(String, SocketAddr), reqwest::Client>>);

/// Clients kept at most; beyond, the cache starts again (endpoints are few in practice).
const MAX_CLIENTS: usize = 64;

impl Clients {
    fn get(
        &self,
        endpoint: &Endpoint,
        addr: SocketAddr,
    ) -> std::result::Result<reqwest::Client, String> {
        let key = (endpoint.host.clone(), addr);
        let mut clients = self
            .0
            .lock()
            .map_err(|_| "the HTTP client cache is poisoned".to_string())?;
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        crate::upstream::client::install_tls_provider();
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would do its own lookup of the host, around the check.
            .no_proxy()
            .timeout(DELIVERY_TIMEOUT)
            .connect_timeout(DELIVERY_TIMEOUT);
        if endpoint.literal_ip().is_none() {
            builder = builder.resolve(&endpoint.host, addr);
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        if clients.len() >= MAX_CLIENTS {
            clients.clear();
        }
        clients.insert(key, client.clone());
        Ok(client)
    }
}

async fn send(
    registry: &Registry,
    clients: &Clients,
    delivery: &DueDelivery,
) -> std::result::Result<u16, String> {
    let endpoint = Endpoint::parse(&delivery.endpoint).map_err(|e| e.public_message())?;
    let addr = resolve(&endpoint, registry.config.hooks_allow_private).await?;
    let client = clients.get(&endpoint, addr)?;
    let body = delivery.body();
    let response = client
        .post(endpoint.url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(
            "x-npm-signature",
            signature(&delivery.secret, body.as_bytes()),
        )
        .header("x-npm-event", &delivery.event)
        .header("x-registry-delivery", &delivery.id)
        .body(body)
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
