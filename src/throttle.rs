//! Failed logins lock out, per user and per client address, for a growing delay: the first
//! few failures are free, then each one doubles the wait (1 s, 2 s, 4 s … up to 15 minutes).
//! A success clears the user's count. Kept in memory: a restart forgives, which is fine for
//! slowing down guessing, and costs no write per failed attempt.

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
