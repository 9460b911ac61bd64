//! What one connection may cost, so that no slow or idle client can take the registry down:
//! - a cap on the connections served at once: past it a new one is answered 503 and closed at
//!   once, long before the process runs out of file descriptors (whose limit is raised to
//!   its hard maximum at start);
//! - the first request's head must arrive within `header_timeout`, and is read into a buffer
//!   of its own size: hyper's connection (and its 8 KiB read buffer) exists only once a
//!   request has come, so thousands of half-open connections cost little memory;
//! - a watchdog closes a connection that sits idle past `idle_timeout`, or stalls in a later
//!   request's head past `header_timeout`. A request being answered is never cut off: only
//!   silence between requests counts, and a response nobody reads is silence too;
//! - a head hyper cannot parse (a malformed request line or header, too many header lines,
//!   headers past its backstop) gets hyper's own bodiless 400, 414 or 431, which [`Watched`]
//!   rewrites on its way out into a JSON `{error, reason}` answer like every other refusal.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// File descriptors left for the database, blobs, and connections to upstreams.
const RESERVED_FDS: u64 = 256;
/// The cap never derives below this, however low the file limit.
const MIN_DERIVED_CAP: u64 = 64;
/// A request head starts in a buffer this size; it grows only for a longer head.
const HEAD_BUFFER: usize = 512;

/// Raises the soft limit on open files to the hard one, and returns the limit in force.
pub fn raise_file_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(err) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!("could not raise the open-file limit to its maximum: {err}");
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// `max_connections` as configured, else what the open-file limit leaves room for.
pub fn connection_cap(configured: Option<u64>, file_limit: u64) -> usize {
    let cap =
        configured.unwrap_or_else(|| file_limit.saturating_sub(RESERVED_FDS).max(MIN_DERIVED_CAP));
    usize::try_from(cap).unwrap_or(usize::MAX)
}

/// The whole answer to a connection over the cap: a retry soon may well find room.
pub fn busy_response() -> Vec<u8> {
    let body = r#"{"error":"too many connections","reason":"this registry is serving as many connections as it allows (max_connections); retry shortly"}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Reads until the end of the first request's head (or `max` bytes, which hyper then
/// refuses with 431). `None`: the client closed before sending a request.
pub async fn read_first_head<I: AsyncRead + Unpin>(
    io: &mut I,
    max: usize,
) -> io::Result<Option<Vec<u8>>> {
    let mut head = Vec::with_capacity(HEAD_BUFFER);
    loop {
        let before = head.len();
        if io.read_buf(&mut head).await? == 0 {
            return Ok(None);
        }
        // The blank line may straddle two reads; httparse also takes bare `\n` line ends.
        let from = before.saturating_sub(3);
        let tail = &head[from..];
        let ended =
            tail.windows(3).any(|w| w == b"\n\r\n") || tail.windows(2).any(|w| w == b"\n\n");
        if ended || head.len() >= max {
            return Ok(Some(head));
        }
    }
}

/// Milliseconds since the process's epoch, from 1: 0 stands for "never" below.
fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_millis())
        .unwrap_or(u64::MAX)
        .saturating_add(1)
}

/// What a connection has been doing, for its watchdog.
#[derive(Debug)]
pub struct Activity {
    /// When a byte was last read or written (ms since the process's epoch).
    last: AtomicU64,
    /// When the first byte of a head not yet handed to a route arrived; 0: none.
    head_since: AtomicU64,
    /// Requests being answered (a route is running).
    in_flight: AtomicUsize,
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            last: AtomicU64::new(now_ms()),
            head_since: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        })
    }

    fn read(&self) {
        let now = now_ms();
        self.last.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            let _ = self
                .head_since
                .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    fn wrote(&self) {
        self.last.store(now_ms(), Ordering::Relaxed);
    }

    pub fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_since.store(0, Ordering::Relaxed);
    }

    pub fn request_answered(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.last.store(now_ms(), Ordering::Relaxed);
    }

    /// When the connection is to be looked at again, or `None` if it is to be closed now.
    pub fn next_check(&self, header_timeout: Duration, idle_timeout: Duration) -> Option<Instant> {
        let now = now_ms();
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            // Never cut off while answering: look again later.
            return Some(Instant::now() + idle_timeout.max(Duration::from_secs(1)));
        }
        let idle_due = self
            .last
            .load(Ordering::Relaxed)
            .saturating_add(ms(idle_timeout));
        let due = match self.head_since.load(Ordering::Relaxed) {
            0 => idle_due,
            since => idle_due.min(since.saturating_add(ms(header_timeout))),
        };
        (due > now).then(|| Instant::now() + Duration::from_millis(due - now))
    }
}

/// The connection as hyper sees it: the bytes already read for the first head, then the
/// stream itself; every read and write is noted in the connection's [`Activity`], and
/// hyper's bare refusals are sent as JSON answers.
pub struct Watched<I> {
    io: I,
    head: Vec<u8>,
    head_read: usize,
    activity: Arc<Activity>,
    /// A rewritten refusal still to be sent, and how much of it was.
    rewritten: Vec<u8>,
    rewritten_sent: usize,
}

impl<I> Watched<I> {
    pub fn new(io: I, head: Vec<u8>, activity: Arc<Activity>) -> Watched<I> {
        Watched {
            io,
            head,
            head_read: 0,
            activity,
            rewritten: Vec::new(),
            rewritten_sent: 0,
        }
    }
}

impl<I: AsyncWrite + Unpin> Watched<I> {
    /// `Some` when `data` is a bare refusal of hyper's: its JSON rewrite is taken on (and
    /// started) in its place, and hyper is told the whole of `data` went.
    fn poll_write_refusal(
        &mut self,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Option<Poll<io::Result<usize>>> {
        self.rewritten = json_bare_refusal(data)?;
        self.rewritten_sent = 0;
        Some(match self.poll_rewritten(cx) {
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            _ => Poll::Ready(Ok(data.len())),
        })
    }

    /// Sends what is left of a rewritten refusal; ready once none is.
    fn poll_rewritten(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.rewritten_sent < self.rewritten.len() {
            let rest = &self.rewritten[self.rewritten_sent..];
            match Pin::new(&mut self.io).poll_write(cx, rest) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    self.rewritten_sent += n;
                    self.activity.wrote();
                }
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// hyper's automatic answer to a head it could not parse, as JSON: `Some(bytes to send
/// instead)` when `written` is one. Such an answer is a whole bodiless head with
/// `content-length: 0` and a 400, 414 or 431 status; no route answers those without a body,
/// so nothing of ours is ever rewritten.
pub fn json_bare_refusal(written: &[u8]) -> Option<Vec<u8>> {
    const EMPTY_BODY: &[u8] = b"\r\ncontent-length: 0\r\n";
    let status = written.strip_prefix(b"HTTP/1.1 ")?.get(..3)?;
    let message = match status {
        b"400" => "the request line or a header is not valid HTTP/1.1",
        b"414" => "the request's URI is too long",
        b"431" => {
            "the request's headers are too large or too many (at most 100 header lines, \
             and no more bytes than max_header_bytes allows)"
        }
        _ => return None,
    };
    if !written.ends_with(b"\r\n\r\n")
        || written.windows(4).filter(|w| w == b"\r\n\r\n").count() != 1
    {
        return None;
    }
    let at = written
        .windows(EMPTY_BODY.len())
        .position(|w| w == EMPTY_BODY)?;
    let body = serde_json::json!({ "error": message, "reason": message }).to_string();
    let mut rewritten = Vec::with_capacity(written.len() + body.len() + 64);
    rewritten.extend_from_slice(&written[..at]);
    rewritten.extend_from_slice(
        format!(
            "\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        )
        .as_bytes(),
    );
    rewritten.extend_from_slice(&written[at + EMPTY_BODY.len()..]);
    rewritten.extend_from_slice(body.as_bytes());
    Some(rewritten)
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.head_read < this.head.len() {
            let rest = &this.head[this.head_read..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.head_read += n;
            if this.head_read == this.head.len() {
                this.head = Vec::new();
                this.head_read = 0;
            }
            this.activity.read();
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.read();
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_rewritten(cx))?;
        if let Some(polled) = this.poll_write_refusal(cx, data) {
            return polled;
        }
        let polled = Pin::new(&mut this.io).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.wrote();
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_rewritten(cx))?;
        if let [only] = bufs {
            if let Some(polled) = this.poll_write_refusal(cx, only) {
                return polled;
            }
        }
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.wrote();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_rewritten(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_rewritten(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_head_ends_at_its_blank_line_in_any_split() {
        let request = b"GET /x HTTP/1.1\r\nhost: a\r\n\r\n";
        for split in 1..request.len() {
            let (mut client, mut server) = tokio::io::duplex(64);
            let (first, second) = request.split_at(split);
            let (first, second) = (first.to_vec(), second.to_vec());
            let writer = tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                client.write_all(&first).await?;
                tokio::task::yield_now().await;
                client.write_all(&second).await?;
                Ok::<_, io::Error>(client)
            });
            let head = read_first_head(&mut server, 1024).await.expect("read");
            assert_eq!(head.as_deref(), Some(&request[..]), "split at {split}");
            drop(writer.await.expect("join").expect("write"));
        }
    }

    #[tokio::test]
    async fn a_client_that_closes_first_sent_no_request() {
        let (client, mut server) = tokio::io::duplex(64);
        drop(client);
        assert_eq!(
            read_first_head(&mut server, 1024).await.expect("read"),
            None
        );
    }

    #[test]
    fn a_quiet_connection_is_closed_after_its_timeouts_and_a_busy_one_is_not() {
        let quick = Duration::from_millis(0);
        let long = Duration::from_secs(60);
        let activity = Activity::new();
        assert!(activity.next_check(long, long).is_some(), "fresh and idle");
        assert!(activity.next_check(long, quick).is_none(), "idle too long");
        activity.read();
        assert!(activity.next_check(quick, long).is_none(), "a head stalled");
        activity.request_started();
        assert!(activity.next_check(quick, quick).is_some(), "answering");
        activity.request_answered();
        assert!(activity.next_check(quick, long).is_some(), "no head begun");
    }

    #[test]
    fn only_hypers_bodiless_refusals_are_rewritten() {
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\n\
                     content-length: 0\r\ndate: Wed, 02 Dec 2026 01:47:49 GMT\r\n\r\n";
        let rewritten =
            String::from_utf8(json_bare_refusal(bare).expect("rewritten")).expect("utf-8");
        let (head, body) = rewritten.split_once("\r\n\r\n").expect("head");
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(
            head.contains("\r\ncontent-type: application/json\r\n"),
            "{head}"
        );
        assert!(
            head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())),
            "{head}"
        );
        assert!(
            head.ends_with("date: Wed, 02 Dec 2026 01:47:49 GMT"),
            "{head}"
        );
        let error: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert!(error["reason"]
            .as_str()
            .is_some_and(|r| r.contains("too many")));

        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n\
                     content-length: 20\r\n\r\n";
        assert!(
            json_bare_refusal(ours).is_none(),
            "a head of ours with a body"
        );
        let empty_ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert!(json_bare_refusal(empty_ok).is_none(), "not a refusal");
        let with_more = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}";
        assert!(json_bare_refusal(with_more).is_none(), "more than a head");
        let partial = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n";
        assert!(json_bare_refusal(partial).is_none(), "a partial head");
    }

    #[test]
    fn the_derived_cap_leaves_room_for_files() {
        assert_eq!(connection_cap(None, 1024), 768);
        assert_eq!(connection_cap(None, 100), 64);
        assert_eq!(connection_cap(Some(10), 1024), 10);
        let busy = String::from_utf8(busy_response()).expect("utf-8");
        let (head, body) = busy.split_once("\r\n\r\n").expect("a head");
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(serde_json::from_str::<serde_json::Value>(body).is_ok());
    }
}
