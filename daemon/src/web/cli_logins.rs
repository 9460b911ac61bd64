//! npm's web login in progress: `POST /-/v1/login` opens one, the browser approves it at its
//! `loginUrl`, and npm collects the token at its `doneUrl` — once. Each login has two random
//! ids: the one in the login page's URL (seen by the browser, its history, a shoulder) and the
//! one npm polls, which alone can collect the token.
//!
//! The pending logins are in the database, so that any node behind one address can answer any
//! step: npm may poll a node other than the one that answered its POST, and the browser may
//! open the login page on yet another. Only hashes of the two ids are stored, the logins are
//! bounded and expire after five minutes, and no token secret is ever stored (the token is
//! created when npm collects it). Collecting is one conditional delete, so of two polls on two
//! nodes only one gets the token.

use std::sync::Arc;
use std::time::Duration;

use registry_core::accounts::tokens::hash_token;
use registry_core::store::Store;
use registry_core::{Error, Registry};

/// How long npm and the user have to finish a login.
pub const LOGIN_TTL: Duration = Duration::from_secs(5 * 60);
/// At most this many logins pending at once, across all nodes (the POST is under the password
/// endpoints' rate limit, so filling this takes many addresses).
pub const MAX_PENDING: usize = 1024;

/// What npm learns when it polls.
#[derive(Debug, PartialEq, Eq)]
pub enum Poll {
    /// Not approved yet: poll again.
    Pending,
    /// Approved by this user: create their token now (the login is gone from the database).
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

/// The pending logins, reached through the registry's store. Each call runs on a blocking
/// thread: the store may be across the network.
pub struct CliLogins {
    registry: Arc<Registry>,
}

fn random_id() -> String {
    hex::encode(rand::random::<[u8; 24]>())
}

/// Whether `id` looks like one of ours: anything else is refused before a lookup.
pub fn well_formed(id: &str) -> bool {
    id.len() == 48 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Now, in unix milliseconds (the store's clock for these logins).
fn now_ms() -> i64 {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    i64::try_from(nanos).unwrap_or(i64::MAX)
}

fn ttl_ms() -> i64 {
    i64::try_from(LOGIN_TTL.as_millis()).unwrap_or(i64::MAX)
}

impl CliLogins {
    pub fn new(registry: Arc<Registry>) -> CliLogins {
        CliLogins { registry }
    }

    /// Opens a login: `(login id, done id)`.
    pub async fn open(&self, create: bool) -> Result<(String, String), Error> {
        let now = now_ms();
        self.blocking(move |store| open_at(store, create, now))
            .await
    }

    /// The login behind a login page, if it is still pending.
    pub async fn view(&self, login_id: &str) -> Result<Option<PageView>, Error> {
        if !well_formed(login_id) {
            return Ok(None);
        }
        let (id, now) = (login_id.to_string(), now_ms());
        self.blocking(move |store| view_at(store, &id, now)).await
    }

    /// The user approved the login in the browser. `false` if it is gone or expired.
    pub async fn approve(&self, login_id: &str, user_id: i64) -> Result<bool, Error> {
        if !well_formed(login_id) {
            return Ok(false);
        }
        let (id, now) = (login_id.to_string(), now_ms());
        self.blocking(move |store| approve_at(store, &id, user_id, now))
            .await
    }

    /// npm polls with its done id. An approved login is handed out once and forgotten.
    pub async fn poll(&self, done_id: &str) -> Result<Poll, Error> {
        if !well_formed(done_id) {
            return Ok(Poll::Unknown);
        }
        let (id, now) = (done_id.to_string(), now_ms());
        self.blocking(move |store| poll_at(store, &id, now)).await
    }

    async fn blocking<T, F>(&self, operation: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, Error> + Send + 'static,
    {
        let registry = Arc::clone(&self.registry);
        tokio::task::spawn_blocking(move || operation(&registry.store))
            .await
            .map_err(|e| Error::Storage(format!("a blocking task failed: {e}")))?
    }
}

fn open_at(store: &Store, create: bool, now: i64) -> Result<(String, String), Error> {
    let (login_id, done_id) = (random_id(), random_id());
    let (page, done) = (hash_token(&login_id), hash_token(&done_id));
    let expires = now.saturating_add(ttl_ms());
    store.write(|db| db.open_cli_login(&page, &done, create, expires, now, MAX_PENDING))?;
    Ok((login_id, done_id))
}

fn view_at(store: &Store, login_id: &str, now: i64) -> Result<Option<PageView>, Error> {
    let page = hash_token(login_id);
    let login = store.read(|db| db.cli_login_page(&page, now))?;
    Ok(login.map(|login| PageView {
        create: login.create,
        approved: login.approved_by.is_some(),
    }))
}

fn approve_at(store: &Store, login_id: &str, user_id: i64, now: i64) -> Result<bool, Error> {
    let page = hash_token(login_id);
    store.write(|db| db.approve_cli_login(&page, user_id, now))
}

fn poll_at(store: &Store, done_id: &str, now: i64) -> Result<Poll, Error> {
    let done = hash_token(done_id);
    // A login still waiting for the browser (most polls) is answered from a read.
    let Some(login) = store.read(|db| db.cli_login_done(&done))? else {
        return Ok(Poll::Unknown);
    };
    if login.approved_by.is_none() && login.expires_ms > now {
        return Ok(Poll::Pending);
    }
    // Approved or expired: whoever deletes the row has it; a poll that lost the race to
    // another (on this node or another) finds nothing, as a poll after collection does.
    let Some(taken) = store.write(|db| db.collect_cli_login(&done, now))? else {
        return Ok(Poll::Unknown);
    };
    // Only an approved or an expired login is taken: unless approved in time, it expired.
    Ok(match taken.approved_by {
        Some(user) if taken.expires_ms > now => Poll::Approved(user),
        _ => Poll::Expired,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Barrier;

    use super::*;

    fn fresh() -> (tempfile::TempDir, Store, i64) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("r.db")).expect("store");
        let user = store
            .write(|db| db.insert_user("alice", "a@example.com", "x", false, "t"))
            .expect("user");
        (dir, store, user)
    }

    #[test]
    fn a_login_is_pending_then_collected_once() {
        let (_dir, store, user) = fresh();
        let now = now_ms();
        let (login, done) = open_at(&store, false, now).expect("open");
        assert!(well_formed(&login) && well_formed(&done) && login != done);
        assert_eq!(poll_at(&store, &done, now).expect("poll"), Poll::Pending);
        assert_eq!(
            poll_at(&store, &login, now).expect("poll"),
            Poll::Unknown,
            "the page id cannot collect"
        );
        assert_eq!(
            view_at(&store, &login, now).expect("view"),
            Some(PageView {
                create: false,
                approved: false
            })
        );
        assert!(approve_at(&store, &login, user, now).expect("approve"));
        assert!(view_at(&store, &login, now)
            .expect("view")
            .is_some_and(|v| v.approved));
        assert_eq!(
            poll_at(&store, &done, now).expect("poll"),
            Poll::Approved(user)
        );
        assert_eq!(poll_at(&store, &done, now).expect("poll"), Poll::Unknown);
        assert!(!approve_at(&store, &login, user, now).expect("approve"));
        assert_eq!(view_at(&store, &login, now).expect("view"), None);
    }

    #[test]
    fn logins_expire_and_are_bounded() {
        let (_dir, store, user) = fresh();
        let start = now_ms();
        let (login, done) = open_at(&store, false, start).expect("open");
        let end = start + ttl_ms();
        assert_eq!(view_at(&store, &login, end).expect("view"), None);
        assert!(!approve_at(&store, &login, user, end).expect("approve"));
        assert_eq!(poll_at(&store, &done, end).expect("poll"), Poll::Expired);
        assert_eq!(poll_at(&store, &done, end).expect("poll"), Poll::Unknown);
        // Filled in one transaction (a write each would take a while on SQLite).
        store
            .write(|db| {
                for n in 0..MAX_PENDING {
                    let (page, done) = (hash_token(&format!("p{n}")), hash_token(&format!("d{n}")));
                    db.open_cli_login(&page, &done, true, end, start, MAX_PENDING)?;
                }
                Ok(())
            })
            .expect("room");
        assert!(matches!(
            open_at(&store, true, start),
            Err(Error::TooManyAttempts { .. })
        ));
        // Expired ones make room again.
        assert!(open_at(&store, true, end).is_ok());
    }

    #[test]
    fn two_polls_at_once_collect_an_approved_login_once() {
        let (_dir, store, user) = fresh();
        let store = Arc::new(store);
        let now = now_ms();
        for round in 0..10 {
            let (login, done) = open_at(&store, false, now).expect("open");
            assert!(approve_at(&store, &login, user, now).expect("approve"));
            let barrier = Arc::new(Barrier::new(2));
            let polls: Vec<_> = (0..2)
                .map(|_| {
                    let (store, barrier, done) =
                        (Arc::clone(&store), Arc::clone(&barrier), done.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        poll_at(&store, &done, now).expect("poll")
                    })
                })
                .collect();
            let mut answers: Vec<Poll> = polls
                .into_iter()
                .map(|p| p.join().expect("poller"))
                .collect();
            answers.sort_by_key(|p| matches!(p, Poll::Unknown));
            assert_eq!(
                answers,
                [Poll::Approved(user), Poll::Unknown],
                "round {round}"
            );
        }
    }
}
