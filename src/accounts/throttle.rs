//! Failed logins lock out, per user and per client address, for a growing delay: the first
//! few failures are free, then each one doubles the wait (1 s, 2 s, 4 s … up to 15 minutes).
//! A success clears the user's count. Kept in memory: a restart forgives, which is fine for
//! slowing down guessing, and costs no write per failed attempt.
//!
//! Apart from that, [`AuthRateLimiter`] caps how often one address may call the password
//! endpoints at all, failed or not.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Failures allowed before the delays start.
const FREE_FAILURES_PER_USER: u32 = 5;
/// Higher per address: one address (a NAT, a CI runner) may carry many users.
const FREE_FAILURES_PER_ADDRESS: u32 = 20;
const FIRST_DELAY: Duration = Duration::from_secs(1);
const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// A count that has not grown for this long is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Address(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    locked_until: Option<Instant>,
}

#[derive(Default)]
pub struct LoginThrottle {
    entries: Mutex<HashMap<Key, Entry>>,
}

impl LoginThrottle {
    /// Runs a password check for `user` from `address` unless either is locked out; records
    /// its outcome. Only a 401 counts as a failure.
    pub fn guard<T>(
        &self,
        user: &str,
        address: Option<IpAddr>,
        check: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let keys = keys(user, address);
        self.refuse_if_locked(&keys, Instant::now())?;
        let outcome = check();
        match &outcome {
            Err(error) if error.status() == 401 => self.record_failure(&keys, Instant::now()),
            Ok(_) => self.forget(&Key::User(user.to_string())),
            Err(_) => {}
        }
        outcome
    }

    fn refuse_if_locked(&self, keys: &[Key], now: Instant) -> Result<()> {
        let Ok(entries) = self.entries.lock() else {
            return Ok(());
        };
        let wait = keys
            .iter()
            .filter_map(|key| entries.get(key)?.locked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max();
        match wait {
            Some(wait) => {
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                Err(Error::TooManyAttempts {
                    message: format!("too many failed logins: try again in {secs} seconds"),
                    retry_after_secs: secs,
                })
            }
            None => Ok(()),
        }
    }

    fn record_failure(&self, keys: &[Key], now: Instant) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| now.duration_since(e.last_failure) < FORGET_AFTER);
        }
        for key in keys {
            let entry = entries.entry(key.clone()).or_insert(Entry {
                failures: 0,
                last_failure: now,
                locked_until: None,
            });
            if now.duration_since(entry.last_failure) >= FORGET_AFTER {
                entry.failures = 0;
            }
            entry.failures += 1;
            entry.last_failure = now;
            let free = match key {
                Key::User(_) => FREE_FAILURES_PER_USER,
                Key::Address(_) => FREE_FAILURES_PER_ADDRESS,
            };
            if entry.failures > free {
                entry.locked_until = Some(now + delay_after(entry.failures - free));
            }
        }
    }

    fn forget(&self, key: &Key) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key);
        }
    }
}

fn keys(user: &str, address: Option<IpAddr>) -> Vec<Key> {
    let mut keys = vec![Key::User(user.to_string())];
    keys.extend(address.map(Key::Address));
    keys
}

/// 1 s after the first failure past the free ones, doubling, capped.
fn delay_after(excess: u32) -> Duration {
    let doublings = excess.saturating_sub(1).min(20);
    FIRST_DELAY.saturating_mul(1u32 << doublings).min(MAX_DELAY)
}

/// How many requests a second each client address may make to the endpoints that check a
/// password (login, token creation, profile changes), as a token bucket: `burst` requests at
/// once, then `per_second`. Unlike [`LoginThrottle`] it counts every request, not only
/// failures, so that a guesser cannot keep the hashing threads busy with successes either.
pub struct AuthRateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<RateKey, Bucket>>,
}

/// IPv6 clients are counted per /64: one host usually holds a whole /64, and counting each
/// address apart would let it step around the limit and fill the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum RateKey {
    V4([u8; 4]),
    V6Prefix([u8; 8]),
    /// Shared by new addresses while the table is full of active ones: memory stays bounded
    /// and they are still limited, together.
    Overflow,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl AuthRateLimiter {
    pub fn new(per_second: u64, burst: u64) -> AuthRateLimiter {
        AuthRateLimiter {
            // Both are at least 1 (the configuration checks); the floor keeps a hand-built
            // limiter from dividing by zero below.
            per_second: (per_second as f64).max(1.0),
            burst: (burst as f64).max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `address`'s bucket, or says how long to wait (a 429).
    pub fn check(&self, address: IpAddr) -> Result<()> {
        self.check_at(address, Instant::now())
    }

    fn check_at(&self, address: IpAddr, now: Instant) -> Result<()> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let mut key = rate_key(address);
        if !buckets.contains_key(&key) && buckets.len() >= MAX_ENTRIES {
            // A bucket untouched for long enough to refill is the same as no bucket.
            let refill = Duration::from_secs_f64(self.burst / self.per_second);
            buckets.retain(|_, b| now.duration_since(b.updated) < refill);
            if buckets.len() >= MAX_ENTRIES {
                key = RateKey::Overflow;
            }
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let elapsed = now.duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - bucket.tokens) / self.per_second;
        let secs = (wait.ceil() as u64).max(1);
        Err(Error::TooManyAttempts {
            message: format!(
                "too many requests to log in, create tokens or change a profile from your \
                 address: at most {} a second (auth_requests_per_second); try again in \
                 {secs} seconds",
                self.per_second
            ),
            retry_after_secs: secs,
        })
    }
}

fn rate_key(address: IpAddr) -> RateKey {
    match address {
        IpAddr::V4(v4) => RateKey::V4(v4.octets()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => RateKey::V4(v4.octets()),
            None => {
                let mut prefix = [0; 8];
                prefix.copy_from_slice(&v6.octets()[..8]);
                RateKey::V6Prefix(prefix)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrong() -> Result<()> {
        Err(Error::unauthorized("wrong password"))
    }

    #[test]
    fn delays_start_after_the_free_failures_and_double() {
        let throttle = LoginThrottle::default();
        for _ in 0..FREE_FAILURES_PER_USER {
            assert_eq!(
                throttle
                    .guard("alice", None, wrong)
                    .err()
                    .map(|e| e.status()),
                Some(401)
            );
        }
        // The next failure is still checked (and fails), and it starts the lockout.
        assert_eq!(
            throttle
                .guard("alice", None, wrong)
                .err()
                .map(|e| e.status()),
            Some(401)
        );
        let locked = throttle.guard("alice", None, || Ok(()));
        match locked {
            Err(Error::TooManyAttempts {
                retry_after_secs, ..
            }) => assert_eq!(retry_after_secs, 1),
            other => panic!("expected a lockout, got {other:?}"),
        }
        assert!(
            throttle.guard("bob", None, || Ok(())).is_ok(),
            "other users are not locked"
        );
        assert_eq!(delay_after(1), Duration::from_secs(1));
        assert_eq!(delay_after(2), Duration::from_secs(2));
        assert_eq!(delay_after(5), Duration::from_secs(16));
        assert_eq!(delay_after(40), MAX_DELAY);
    }

    #[test]
    fn an_address_guessing_many_users_is_locked_out_too() {
        let throttle = LoginThrottle::default();
        let address: Option<IpAddr> = "10.1.2.3".parse().ok();
        for i in 0..=FREE_FAILURES_PER_ADDRESS {
            let _ = throttle.guard(&format!("user{i}"), address, wrong);
        }
        let locked = throttle.guard("fresh-user", address, || Ok(()));
        assert_eq!(locked.err().map(|e| e.status()), Some(429));
        assert!(throttle
            .guard("fresh-user", "10.9.9.9".parse().ok(), || Ok(()))
            .is_ok());
    }

    #[test]
    fn the_rate_limiter_allows_a_burst_then_one_request_per_refill() {
        let limiter = AuthRateLimiter::new(2, 3);
        let address: IpAddr = [10, 0, 0, 1].into();
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at(address, start).is_ok());
        }
        match limiter.check_at(address, start) {
            Err(Error::TooManyAttempts {
                retry_after_secs, ..
            }) => assert_eq!(retry_after_secs, 1),
            other => panic!("expected a 429, got {other:?}"),
        }
        assert!(
            limiter.check_at([10, 0, 0, 2].into(), start).is_ok(),
            "another address has its own bucket"
        );
        let later = start + Duration::from_millis(500);
        assert!(
            limiter.check_at(address, later).is_ok(),
            "one request refilled"
        );
        assert!(limiter.check_at(address, later).is_err());
    }

    #[test]
    fn the_rate_limiter_counts_an_ipv6_slash_64_as_one_client() {
        let limiter = AuthRateLimiter::new(1, 1);
        let now = Instant::now();
        let first: IpAddr = "2001:db8::1".parse().expect("address");
        let neighbour: IpAddr = "2001:db8::ffff".parse().expect("address");
        let elsewhere: IpAddr = "2001:db8:0:1::1".parse().expect("address");
        assert!(limiter.check_at(first, now).is_ok());
        assert!(limiter.check_at(neighbour, now).is_err());
        assert!(limiter.check_at(elsewhere, now).is_ok());
    }

    #[test]
    fn the_rate_limiter_table_stays_bounded() {
        let limiter = AuthRateLimiter::new(1, 1);
        let now = Instant::now();
        for i in 0..MAX_ENTRIES as u32 + 10 {
            let _ = limiter.check_at(IpAddr::from(i.to_be_bytes()), now);
        }
        let size = limiter.buckets.lock().map(|b| b.len()).unwrap_or_default();
        assert!(size <= MAX_ENTRIES + 1, "{size} buckets");
        // Once the buckets have refilled they are dropped to make room.
        let later = now + Duration::from_secs(2);
        assert!(limiter.check_at([192, 0, 2, 1].into(), later).is_ok());
        let size = limiter.buckets.lock().map(|b| b.len()).unwrap_or_default();
        assert!(size < 10, "{size} buckets after pruning");
    }

    #[test]
    fn success_clears_the_users_count() {
        let throttle = LoginThrottle::default();
        for _ in 0..FREE_FAILURES_PER_USER {
            let _ = throttle.guard("carol", None, wrong);
        }
        assert!(throttle.guard("carol", None, || Ok(())).is_ok());
        for _ in 0..FREE_FAILURES_PER_USER {
            let _ = throttle.guard("carol", None, wrong);
        }
        assert!(
            throttle.guard("carol", None, || Ok(())).is_ok(),
            "the count restarted"
        );
    }
}
