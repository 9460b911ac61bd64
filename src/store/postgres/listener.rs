//! Every write transaction sends `NOTIFY registry_commits` (delivered when it commits); each
//! node listens on a session of its own and counts what it hears. The count is the node's
//! [`CommitStamp`](super::super::CommitStamp): a memoized read is good while it has not
//! moved, as SQLite's WAL-index header serves one node. While the session is down there is
//! no stamp (every read asks the database), and reconnecting moves the count, since commits
//! may have been missed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;

use super::{PgConn, COMMITS_CHANNEL};

/// How often the listening thread looks up from the socket to see whether it should stop.
const POLL: Duration = Duration::from_millis(250);
/// The wait before connecting again after the session was lost.
const RECONNECT: Duration = Duration::from_secs(1);

pub struct CommitListener {
    state: Arc<ListenState>,
}

struct ListenState {
    commits: AtomicU64,
    listening: AtomicBool,
    stopped: AtomicBool,
}

impl CommitListener {
    /// Starts listening on a session of its own; `on_commit` runs on the listening thread
    /// for every commit heard (another node's write may have queued work for this one).
    pub fn start(
        config: postgres::Config,
        on_commit: impl Fn() + Send + 'static,
    ) -> std::io::Result<CommitListener> {
        let state = Arc::new(ListenState {
            commits: AtomicU64::new(0),
            listening: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
        });
        let shared = Arc::clone(&state);
        thread::Builder::new()
            .name("pg-commits".into())
            .spawn(move || {
                while !shared.stopped.load(Ordering::Acquire) {
                    if let Err(e) = listen(&config, &shared, &on_commit) {
                        tracing::warn!(error = %e, "lost the PostgreSQL commit listener; reads are not memoized until it is back");
                    }
                    shared.listening.store(false, Ordering::Release);
                    if !shared.stopped.load(Ordering::Acquire) {
                        thread::sleep(RECONNECT);
                    }
                }
            })?;
        Ok(CommitListener { state })
    }

    /// The commits counted so far; `None` while not listening.
    pub fn stamp(&self) -> Option<u64> {
        if !self.state.listening.load(Ordering::Acquire) {
            return None;
        }
        Some(self.state.commits.load(Ordering::Acquire))
    }

    /// Counts a commit of this node's at once (its own notification comes back later).
    pub fn bump(&self) {
        self.state.commits.fetch_add(1, Ordering::AcqRel);
    }
}

impl Drop for CommitListener {
    fn drop(&mut self) {
        self.state.stopped.store(true, Ordering::Release);
    }
}

fn listen(
    config: &postgres::Config,
    state: &ListenState,
    on_commit: &dyn Fn(),
) -> std::result::Result<(), postgres::Error> {
    let mut session = PgConn::connect(config)?;
    session
        .client
        .batch_execute(&format!("LISTEN {COMMITS_CHANNEL}"))?;
    // Whatever was committed while nobody listened: the count moves.
    state.commits.fetch_add(1, Ordering::AcqRel);
    state.listening.store(true, Ordering::Release);
    while !state.stopped.load(Ordering::Acquire) {
        {
            let mut notifications = session.client.notifications();
            let mut heard = notifications.timeout_iter(POLL);
            while let Some(_notification) = heard.next()? {
                state.commits.fetch_add(1, Ordering::AcqRel);
                on_commit();
            }
        }
        if session.is_closed() {
            break;
        }
    }
    Ok(())
}
