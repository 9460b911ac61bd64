//! npm's web login in progress: `POST /-/v1/login` opens one, the browser approves it at its
//! `loginUrl`, and npm collects the token at its `doneUrl` — once. Each login has two random
//! ids: the one in the login page's URL (seen by the browser, its history, a shoulder) and the
//! one npm polls, which alone can collect the token.
//!
//! These live in this process's memory only, bounded and expiring after five minutes: a
//! pending login is worth nothing after a restart, and no token secret is ever held here (the
//! token is created when npm collects it). Several nodes behind one address (a later issue)
//! will need a shared store for these, since npm may poll a node other than the one that
//! answered its POST.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use registry_core::Error;

/// How long npm and the user have to finish a login.
pub const LOGIN_TTL: Duration = Duration::from_secs(5 * 60);
/// At most this many logins pending at once (each costs a few hundred bytes; the POST is
/// under the password endpoints' rate limit, so filling this takes many addresses).
pub const MAX_PENDING: usize = 1024;

#[derive(Debug, Clone)]
struct Pending {
    done_id: String,
    /// npm asked to create an account (`npm adduser`).
    create: bool,
    /// The user who approved it in the browser.
    approved_by: Option<i64>,
    expires: Instant,
}

/// What npm learns when it polls.
#[derive(Debug, PartialEq, Eq)]
pub enum Poll {
    /// Not approved yet: poll again.
    Pending,
    /// Approved by this user: create their token now (the login is gone from the map).
    Approved(i64),
    /// It expired before npm collected it.
    Expired,
    /// No such login (never was, or already collected).
    Unknown,
}

/// What the login page learns about its login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageView {
    pub create: bool,
    pub approved: bool,
}

#[derive(Default)]
pub struct CliLogins {
    /// Keyed by the login page's id.
    pending: Mutex<HashMap<String, Pending>>,
}

fn random_id() -> String {
    hex::encode(rand::random::<[u8; 24]>())
}

/// Whether `id` looks like one of ours: anything else is refused before a lookup.
pub fn well_formed(id: &str) -> bool {
    id.len() == 48 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

impl CliLogins {
    /// Opens a login: `(login id, done id)`.
    pub fn open(&self, create: bool) -> Result<(String, String), Error> {
        self.open_at(create, Instant::now())
    }

    fn open_at(&self, create: bool, now: Instant) -> Result<(String, String), Error> {
        let mut pending = self.lock()?;
        pending.retain(|_, login| login.expires > now);
        if pending.len() >= MAX_PENDING {
            return Err(Error::TooManyAttempts {
                message: "too many web logins are in progress: try again in a minute".into(),
                retry_after_secs: 60,
            });
        }
        let (login_id, done_id) = (random_id(), random_id());
        pending.insert(
            login_id.clone(),
            Pending {
                done_id: done_id.clone(),
                create,
                approved_by: None,
                expires: now + LOGIN_TTL,
            },
        );
        Ok((login_id, done_id))
    }

    /// The login behind a login page, if it is still pending.
    pub fn view(&self, login_id: &str) -> Option<PageView> {
        let now = Instant::now();
        let pending = self.lock().ok()?;
        pending
            .get(login_id)
            .filter(|login| login.expires > now)
            .map(|login| PageView {
                create: login.create,
                approved: login.approved_by.is_some(),
            })
    }

    /// The user approved the login in the browser. `false` if it is gone or expired.
    pub fn approve(&self, login_id: &str, user_id: i64) -> bool {
        let now = Instant::now();
        let Ok(mut pending) = self.lock() else {
            return false;
        };
        match pending
            .get_mut(login_id)
            .filter(|login| login.expires > now)
        {
            Some(login) => {
                login.approved_by = Some(user_id);
                true
            }
            None => false,
        }
    }

    /// npm polls with its done id. An approved login is handed out once and forgotten.
    pub fn poll(&self, done_id: &str) -> Poll {
        self.poll_at(done_id, Instant::now())
    }

    fn poll_at(&self, done_id: &str, now: Instant) -> Poll {
        let Ok(mut pending) = self.lock() else {
            return Poll::Unknown;
        };
        let Some(login_id) = pending
            .iter()
            .find(|(_, login)| ids_match(&login.done_id, done_id))
            .map(|(id, _)| id.clone())
        else {
            return Poll::Unknown;
        };
        let Some(login) = pending.get(&login_id).cloned() else {
            return Poll::Unknown;
        };
        if login.expires <= now {
            pending.remove(&login_id);
            return Poll::Expired;
        }
        match login.approved_by {
            Some(user) => {
                pending.remove(&login_id);
                Poll::Approved(user)
            }
            None => Poll::Pending,
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, Pending>>, Error> {
        self.pending
            .lock()
            .map_err(|_| Error::Storage("the web login table is poisoned".into()))
    }
}

/// Constant-time comparison: the done id is a bearer secret.
fn ids_match(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_is_pending_then_collected_once() {
        let logins = CliLogins::default();
        let (login, done) = logins.open(false).expect("open");
        assert!(well_formed(&login) && well_formed(&done) && login != done);
        assert_eq!(logins.poll(&done), Poll::Pending);
        assert_eq!(
            logins.poll(&login),
            Poll::Unknown,
            "the page id cannot collect"
        );
        assert!(logins.approve(&login, 7));
        assert_eq!(logins.poll(&done), Poll::Approved(7));
        assert_eq!(logins.poll(&done), Poll::Unknown);
        assert!(!logins.approve(&login, 7));
    }

    #[test]
    fn logins_expire_and_are_bounded() {
        let logins = CliLogins::default();
        let start = Instant::now();
        let (_, done) = logins.open_at(false, start).expect("open");
        assert_eq!(logins.poll_at(&done, start + LOGIN_TTL), Poll::Expired);
        assert_eq!(logins.poll_at(&done, start + LOGIN_TTL), Poll::Unknown);
        for _ in 0..MAX_PENDING {
            logins.open_at(true, start).expect("room");
        }
        assert!(logins.open_at(true, start).is_err());
        // Expired ones make room again.
        assert!(logins.open_at(true, start + LOGIN_TTL).is_ok());
    }
}
