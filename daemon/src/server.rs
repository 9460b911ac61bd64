//! The accept loop: HTTP/1.1 connections served by hyper with the warp routes as the service.
//! Owning the loop lets a route hand back an open file that is streamed as the body (warp 0.4
//! has no public streaming body), logs every request once, and shuts down gracefully: stop
//! accepting, let requests in flight finish, checkpoint the database. With a certificate
//! configured, each connection first completes a TLS handshake (`tls.rs`). Every request is
//! counted for `/-/metrics` here too; a second listener may serve that page alone.

use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::TryStreamExt;
use http::{Method, Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use registry_core::blobs::{Blob, BlobStream};
use registry_core::config::LogFormat;
use registry_core::Registry;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_util::io::ReaderStream;
use tower_service::Service;

use crate::auth::PeerAddr;
use crate::connections::{self, Activity, Watched};
use crate::metrics::Route;
use crate::routes::routes;
use crate::state::AppState;
use crate::tls::Tls;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ResponseBody = BoxBody<Bytes, BoxError>;

/// How long a graceful shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
const STREAM_CHUNK: usize = 64 * 1024;
/// hyper refuses, without a JSON reason, headers this many times `max_header_bytes`: up to
/// there a client gets our 431 with a reason, past it the memory is not worth spending.
const HEADER_BACKSTOP_FACTOR: usize = 4;
/// Files up to this size are sent from one read instead of being streamed.
const INLINE_FILE_BYTES: u64 = 256 * 1024;
/// How often token last-used times are written (one transaction per flush).
const TOKEN_USAGE_FLUSH: Duration = Duration::from_secs(5);
/// At most one warning this often while connections are refused at the cap.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);
/// Sync tasks run at most this many at a time.
const SYNC_WORKERS: usize = 2;
/// Connections the `metrics_listen` address serves at once: a scraper or two, and no more
/// for anyone else who can reach it.
const METRICS_CONNECTIONS: usize = 16;
/// A metrics connection is closed after this long, however busy: a scrape takes
/// milliseconds, and a scraper opens a new connection when its old one is gone.
const METRICS_CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// A blob a route wants streamed as its response body (a response extension): a local file
/// or a remote store's stream.
#[derive(Clone)]
pub struct StreamFile(Arc<Mutex<Option<Blob>>>);

impl StreamFile {
    pub fn new(blob: Blob) -> StreamFile {
        StreamFile(Arc::new(Mutex::new(Some(blob))))
    }

    fn take(&self) -> Option<Blob> {
        self.0.lock().ok().and_then(|mut blob| blob.take())
    }
}

/// Connections the kernel queues for `accept` (it caps the figure at `net.core.somaxconn`):
/// a burst larger than the queue would see its handshakes dropped and retried seconds later.
const LISTEN_BACKLOG: i32 = 4096;

/// A non-blocking listening socket on `addr`, for [`serve`] (through
/// `tokio::net::TcpListener::from_std`), with a listen queue of [`LISTEN_BACKLOG`].
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As tokio's and std's bind do: a restarted daemon may listen while old connections linger.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Serves the registry on `listener` until `shutdown` completes: over TLS when the
/// configuration names a certificate and key, whose loading is the only error returned.
pub async fn serve(
    registry: Arc<Registry>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> registry_core::Result<()> {
    serve_with_metrics(registry, listener, None, shutdown).await
}

/// [`serve`], and `GET /-/metrics` without authentication on `metrics` (bound from the
/// `metrics_listen` setting), which serves nothing else.
pub async fn serve_with_metrics(
    registry: Arc<Registry>,
    listener: TcpListener,
    metrics: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send,
) -> registry_core::Result<()> {
    let tls = Tls::from_config(&registry.config)?;
    let max_header_bytes = usize::try_from(registry.config.max_header_bytes).unwrap_or(usize::MAX);
    let file_limit = connections::raise_file_limit();
    let cap = connections::connection_cap(registry.config.max_connections, file_limit);
    let open_connections = Arc::new(tokio::sync::Semaphore::new(cap));
    let timeouts = Timeouts {
        header: registry.config.header_timeout,
        idle: registry.config.idle_timeout,
        max_header_bytes,
    };
    let mut last_refusal_logged: Option<Instant> = None;
    // Logged here, once the certificate loaded, so that the line is only seen when serving.
    tracing::info!(
        "registry listening on {}://{} with data in {}",
        if tls.is_some() { "https" } else { "http" },
        listener.local_addr().unwrap_or(registry.config.listen),
        registry.config.data_dir.display()
    );
    let state = AppState::new(registry.clone());
    let service = warp::service(routes(state.clone()));
    let metrics_server = metrics.map(|listener| {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!("metrics for scrapers on http://{addr}/-/metrics");
        }
        tokio::spawn(serve_metrics(state.clone(), listener))
    });
    let usage_flusher = tokio::spawn(every(TOKEN_USAGE_FLUSH, state.clone(), flush_token_usage));
    let download_period = Duration::from_secs(registry.config.download_flush_secs.max(1));
    let download_flusher = tokio::spawn(every(download_period, state.clone(), flush_downloads));
    let sync_workers = start_sync_workers(&state).await;
    // Sends hook deliveries; rows a previous run left leased are sent once their lease ends.
    let hook_dispatcher = tokio::spawn(registry_core::hooks::dispatch::work(registry.clone()));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    tracing::warn!("accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = open_connections.clone().try_acquire_owned() else {
            // Over the cap: answered and closed now, never left to run out of descriptors.
            if tls.is_none() {
                let _ = stream.try_write(&connections::busy_response());
            }
            if last_refusal_logged.is_none_or(|at| at.elapsed() >= REFUSAL_LOG_EVERY) {
                tracing::warn!("refusing connections: {cap} open (max_connections)");
                last_refusal_logged = Some(Instant::now());
            }
            continue;
        };
        // A response is written as headers then body: with Nagle's algorithm on, a small
        // tarball's body waits for the client's delayed ACK (~40 ms per request).
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY for {peer} failed: {err}");
        }
        let service = service.clone();
        let state = state.clone();
        // Watched from before the handshake, so a shutdown also waits (boundedly) for those.
        let watcher = graceful.watcher();
        let tls = tls.clone();
        // The handshake runs on the connection's task: a slow client never stalls accepting.
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => accept_request(stream, peer, service, state, watcher, timeouts).await,
                // Boxed: a handshake's state is large, and a plain connection's task would
                // otherwise reserve room for it.
                Some(tls) => {
                    Box::pin(async move {
                        if let Some(stream) = tls.handshake(stream, peer).await {
                            accept_request(stream, peer, service, state, watcher, timeouts).await;
                        }
                    })
                    .await
                }
            }
        });
    }
    drop(listener);
    if let Some(metrics_server) = metrics_server {
        metrics_server.abort();
    }
    tracing::info!("shutting down: waiting for requests in flight");
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still open after {SHUTDOWN_GRACE:?}");
    }
    usage_flusher.abort();
    download_flusher.abort();
    // A task cut off here stays `processing` and is resumed at the next start.
    for worker in sync_workers {
        worker.abort();
    }
    // Deliveries in flight are dropped with it and sent again after their lease: at least once.
    hook_dispatcher.abort();
    flush_token_usage(state.clone()).await;
    flush_downloads(state).await;
    let checkpoint = tokio::task::spawn_blocking(move || registry.store.checkpoint()).await;
    match checkpoint {
        Ok(Ok(())) => tracing::info!("database checkpointed; bye"),
        Ok(Err(err)) => tracing::warn!("final checkpoint failed: {err}"),
        Err(err) => tracing::warn!("final checkpoint failed: {err}"),
    }
    Ok(())
}

/// The `metrics_listen` address: `GET /-/metrics` for anyone who can reach it, a JSON 404
/// for any other path. Plain HTTP/1.1, a few connections, each for a bounded time.
async fn serve_metrics(state: AppState, listener: TcpListener) {
    let open = Arc::new(tokio::sync::Semaphore::new(METRICS_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                tracing::warn!("accept on the metrics address failed: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Over the cap the connection is dropped, which closes it.
        let Ok(permit) = open.clone().try_acquire_owned() else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let response = metrics_only(&state, &request);
                let (parts, body) = response.into_parts();
                let body: ResponseBody = body.map_err(|e| -> BoxError { Box::new(e) }).boxed();
                std::future::ready(Ok::<_, Infallible>(Response::from_parts(parts, body)))
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            if let Ok(Err(err)) =
                tokio::time::timeout(METRICS_CONNECTION_LIFETIME, connection).await
            {
                tracing::debug!("metrics connection ended: {err}");
            }
        });
    }
}

fn metrics_only<B>(state: &AppState, request: &Request<B>) -> warp::reply::Response {
    if request.uri().path() != "/-/metrics" {
        return crate::error::error_reply(registry_core::Error::not_found(
            "this address serves only GET /-/metrics",
        ));
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return crate::error::error_reply(registry_core::Error::bad_request(
            "/-/metrics is read with GET",
        ));
    }
    crate::routes::metrics_page(state)
}

/// How long a client may take, and how large a head may be.
#[derive(Clone, Copy)]
struct Timeouts {
    header: Duration,
    idle: Duration,
    max_header_bytes: usize,
}

/// Waits (at most `header_timeout`) for the first request's head, then serves the connection.
async fn accept_request<I, S>(
    mut io: I,
    peer: std::net::SocketAddr,
    service: S,
    state: AppState,
    watcher: Watcher,
    timeouts: Timeouts,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = warp::reply::Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let limit = timeouts
        .max_header_bytes
        .saturating_mul(HEADER_BACKSTOP_FACTOR);
    let head = match tokio::time::timeout(
        timeouts.header,
        connections::read_first_head(&mut io, limit),
    )
    .await
    {
        Ok(Ok(Some(head))) => head,
        Ok(Ok(None)) => return,
        Ok(Err(err)) => {
            tracing::debug!("connection from {peer} failed before a request: {err}");
            return;
        }
        Err(_) => {
            tracing::debug!(
                "closing {peer}: no request head within {:?}",
                timeouts.header
            );
            return;
        }
    };
    let activity = Activity::new();
    let io = Watched::new(io, head, activity.clone());
    // Boxed: until a request has come, a connection's task holds only the lines above.
    Box::pin(serve_connection(
        io, peer, service, state, watcher, timeouts, activity,
    ))
    .await;
}

/// Serves HTTP/1.1 on one connection, plain or TLS, until it closes, falls silent past its
/// timeouts, or a graceful shutdown has let its request in flight finish.
async fn serve_connection<I, S>(
    io: I,
    peer: std::net::SocketAddr,
    service: S,
    state: AppState,
    watcher: Watcher,
    timeouts: Timeouts,
    activity: Arc<Activity>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = warp::reply::Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let max_header_bytes = timeouts.max_header_bytes;
    let watched = activity.clone();
    let connection = hyper::server::conn::http1::Builder::new()
        // `handle` answers headers past `max_header_bytes` with a JSON 431; this is the
        // backstop for ones too large to be worth buffering at all (hyper's bare 431, then
        // the connection is closed).
        .max_header_size(max_header_bytes.saturating_mul(HEADER_BACKSTOP_FACTOR))
        .serve_connection(
            TokioIo::new(io),
            hyper::service::service_fn(move |request| {
                handle(
                    service.clone(),
                    state.clone(),
                    peer,
                    max_header_bytes,
                    watched.clone(),
                    request,
                )
            }),
        );
    let mut connection = std::pin::pin!(watcher.watch(connection));
    loop {
        let Some(check) = activity.next_check(timeouts.header, timeouts.idle) else {
            // Dropping the connection closes it.
            tracing::debug!("closing {peer}: silent past its timeouts");
            return;
        };
        tokio::select! {
            ended = &mut connection => {
                if let Err(err) = ended {
                    tracing::debug!("connection from {peer} ended: {err}");
                }
                return;
            }
            () = tokio::time::sleep_until(check.into()) => {}
        }
    }
}

/// Queues again the sync tasks a previous run left unfinished, then starts the workers that
/// run sync tasks (from HTTP, or queued by the CLI on the same data directory).
async fn start_sync_workers(state: &AppState) -> Vec<tokio::task::JoinHandle<()>> {
    let registry = state.registry().clone();
    let resumed = tokio::task::spawn_blocking(move || {
        registry_core::upstream::sync::resume_interrupted(&registry)
    })
    .await;
    match resumed {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => tracing::info!("resuming {n} interrupted sync tasks"),
        Ok(Err(err)) => tracing::warn!("resuming interrupted sync tasks failed: {err}"),
        Err(err) => tracing::warn!("resuming interrupted sync tasks failed: {err}"),
    }
    (0..SYNC_WORKERS)
        .map(|_| {
            tokio::spawn(registry_core::upstream::sync::work(
                state.registry().clone(),
                state.sync_wake().clone(),
            ))
        })
        .collect()
}

/// Runs `flush` every `period`, until aborted: the in-memory counters (token last-used times,
/// downloads) reach the database in one transaction per tick, never one write per request.
async fn every<F, Fut>(period: Duration, state: AppState, flush: F)
where
    F: Fn(AppState) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        flush(state.clone()).await;
    }
}

async fn flush_token_usage(state: AppState) {
    let flushed =
        tokio::task::spawn_blocking(move || state.token_usage().flush(&state.registry().store))
            .await;
    match flushed {
        Ok(Ok(_)) => {}
        Ok(Err(err)) => tracing::warn!("recording token use failed (will retry): {err}"),
        Err(err) => tracing::warn!("recording token use failed: {err}"),
    }
}

async fn flush_downloads(state: AppState) {
    let flushed =
        tokio::task::spawn_blocking(move || state.downloads().flush(&state.registry().store)).await;
    match flushed {
        Ok(Ok(report)) if report.rows > 0 => {
            tracing::debug!(
                "recorded {} downloads in {} rows",
                report.downloads,
                report.rows
            )
        }
        Ok(Ok(_)) => {}
        Ok(Err(err)) => tracing::warn!("recording downloads failed (will retry): {err}"),
        Err(err) => tracing::warn!("recording downloads failed: {err}"),
    }
}

async fn handle<S>(
    mut service: S,
    state: AppState,
    peer: std::net::SocketAddr,
    max_header_bytes: usize,
    activity: Arc<Activity>,
    mut request: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible>
where
    S: Service<Request<Incoming>, Response = warp::reply::Response, Error = Infallible>,
{
    activity.request_started();
    // Answered (or cancelled with the connection) however this returns.
    let _answered = Answered(activity);
    // Routes read the peer for token CIDR allow-lists.
    request.extensions_mut().insert(PeerAddr(peer));
    let started = Instant::now();
    let method = request.method().clone();
    let route = Route::of(&method, request.uri().path());
    // Built only when the request log is on: at `warn`, a busy registry spends nothing on it.
    let path = tracing::enabled!(tracing::Level::INFO).then(|| loggable_path(request.uri().path()));
    let json_log = state.registry().config.log_format == LogFormat::Json;
    let user_agent = match (&path, json_log) {
        (Some(_), true) => request
            .headers()
            .get(http::header::USER_AGENT)
            .map(|agent| String::from_utf8_lossy(agent.as_bytes()).into_owned()),
        _ => None,
    };
    let head = head_size(&request);
    let response = if head > max_header_bytes {
        crate::error::error_reply(registry_core::Error::HeadersTooLarge(format!(
            "the request line and headers take {head} bytes, more than this registry's limit \
             of {max_header_bytes} (max_header_bytes)"
        )))
    } else if let Err(refusal) = crate::auth::read_gate(&state, &mut request).await {
        refusal
    } else if let Some(response) = crate::routes::answer_hot_read(&state, &request).await {
        response
    } else {
        match service.call(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    };
    let (mut parts, body) = response.into_parts();
    // Every answer is JSON or a tarball; no browser should guess otherwise.
    parts.headers.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        http::HeaderValue::from_static("nosniff"),
    );
    let file = parts
        .extensions
        .remove::<StreamFile>()
        .and_then(|f| f.take());
    let body = match file {
        Some(Blob::File(file)) if method != Method::HEAD => file_body(file),
        Some(Blob::Stream(stream)) if method != Method::HEAD => stream_body(stream),
        Some(Blob::Bytes(bytes)) if method != Method::HEAD => {
            Full::new(bytes).map_err(|never| match never {}).boxed()
        }
        _ => body.map_err(|e| -> BoxError { Box::new(e) }).boxed(),
    };
    let took = started.elapsed();
    let status = parts.status.as_u16();
    state.metrics().record(route, status, took);
    if let Some(path) = path {
        let ms = took.as_secs_f64() * 1000.0;
        if json_log {
            // The text line's fields, and what a log shipper also wants.
            let bytes = parts
                .headers
                .get(http::header::CONTENT_LENGTH)
                .and_then(|len| len.to_str().ok()?.parse::<u64>().ok())
                .or_else(|| hyper::body::Body::size_hint(&body).exact());
            tracing::info!(
                method = %method,
                path = %path,
                status,
                duration_ms = ms,
                bytes,
                peer = %peer,
                user_agent = user_agent.as_deref(),
                "{method} {path} {status} {ms:.1}ms"
            );
        } else {
            tracing::info!("{method} {path} {status} {ms:.1}ms");
        }
    }
    Ok(Response::from_parts(parts, body))
}

/// Tells the connection's watchdog a request is over when dropped.
struct Answered(Arc<Activity>);

impl Drop for Answered {
    fn drop(&mut self) {
        self.0.request_answered();
    }
}

/// The size of a request's head as it was sent: the request line, each header line, and the
/// blank line (give or take optional whitespace around header values).
fn head_size<B>(request: &Request<B>) -> usize {
    let target = request
        .uri()
        .path_and_query()
        .map_or(1, |target| target.as_str().len());
    let request_line = request.method().as_str().len() + 1 + target + " HTTP/1.1\r\n".len();
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + ": ".len() + value.len() + "\r\n".len())
        .sum();
    request_line + headers + "\r\n".len()
}

fn file_body(mut file: std::fs::File) -> ResponseBody {
    // Most tarballs are a few KiB: one read(2) from the page cache here costs less than the
    // hops to a blocking thread that streaming through tokio::fs takes for every chunk.
    let len = file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
    if len <= INLINE_FILE_BYTES {
        let mut bytes = Vec::with_capacity(len as usize);
        return match std::io::Read::read_to_end(&mut file, &mut bytes) {
            Ok(_) => Full::new(Bytes::from(bytes))
                .map_err(|never| match never {})
                .boxed(),
            Err(err) => {
                let failed: Result<Frame<Bytes>, BoxError> = Err(Box::new(err));
                StreamBody::new(futures_util::stream::iter([failed])).boxed()
            }
        };
    }
    let stream = ReaderStream::with_capacity(tokio::fs::File::from_std(file), STREAM_CHUNK)
        .map_ok(Frame::data)
        .map_err(|e| -> BoxError { Box::new(e) });
    StreamBody::new(stream).boxed()
}

/// A remote blob, chunk by chunk as the store sends it: never held whole in memory.
fn stream_body(stream: BlobStream) -> ResponseBody {
    let chunks = stream
        .map_ok(Frame::data)
        .map_err(|e| -> BoxError { Box::new(e) });
    StreamBody::new(chunks).boxed()
}

/// Request paths as logged: a logout carries the token itself in its path, and so may a
/// token revocation.
fn loggable_path(path: &str) -> String {
    if path.starts_with("/-/user/token/") {
        "/-/user/token/[redacted]".to_string()
    } else if path.starts_with("/-/npm/v1/tokens/token/") {
        "/-/npm/v1/tokens/token/[redacted]".to_string()
    } else {
        path.to_string()
    }
}
