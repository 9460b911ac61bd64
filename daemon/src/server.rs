//! The accept loop: HTTP/1.1 connections served by hyper with the warp routes as the service.
//! Owning the loop lets a route hand back an open file that is streamed as the body (warp 0.4
//! has no public streaming body), logs every request once, and shuts down gracefully: stop
//! accepting, let requests in flight finish, checkpoint the database.

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
use hyper_util::server::graceful::GracefulShutdown;
use registry_core::Registry;
use tokio::net::TcpListener;
use tokio_util::io::ReaderStream;
use tower_service::Service;

use crate::auth::PeerAddr;
use crate::routes::routes;
use crate::state::AppState;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ResponseBody = BoxBody<Bytes, BoxError>;

/// How long a graceful shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
const STREAM_CHUNK: usize = 64 * 1024;
/// Files up to this size are sent from one read instead of being streamed.
const INLINE_FILE_BYTES: u64 = 256 * 1024;
/// How often token last-used times are written (one transaction per flush).
const TOKEN_USAGE_FLUSH: Duration = Duration::from_secs(5);

/// A file a route wants streamed as its response body (a response extension).
#[derive(Clone)]
pub struct StreamFile(Arc<Mutex<Option<std::fs::File>>>);

impl StreamFile {
    pub fn new(file: std::fs::File) -> StreamFile {
        StreamFile(Arc::new(Mutex::new(Some(file))))
    }

    fn take(&self) -> Option<std::fs::File> {
        self.0.lock().ok().and_then(|mut file| file.take())
    }
}

/// Serves the registry on `listener` until `shutdown` completes.
pub async fn serve(
    registry: Arc<Registry>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let state = AppState::new(registry.clone());
    let service = warp::service(routes(state.clone()));
    let usage_flusher = tokio::spawn(every(TOKEN_USAGE_FLUSH, state.clone(), flush_token_usage));
    let download_period = Duration::from_secs(registry.config.download_flush_secs.max(1));
    let download_flusher = tokio::spawn(every(download_period, state.clone(), flush_downloads));
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
        // A response is written as headers then body: with Nagle's algorithm on, a small
        // tarball's body waits for the client's delayed ACK (~40 ms per request).
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY for {peer} failed: {err}");
        }
        let service = service.clone();
        let connection = hyper::server::conn::http1::Builder::new().serve_connection(
            TokioIo::new(stream),
            hyper::service::service_fn(move |request| handle(service.clone(), peer, request)),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!("connection from {peer} ended: {err}");
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: waiting for requests in flight");
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still open after {SHUTDOWN_GRACE:?}");
    }
    usage_flusher.abort();
    download_flusher.abort();
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
    peer: std::net::SocketAddr,
    mut request: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible>
where
    S: Service<Request<Incoming>, Response = warp::reply::Response, Error = Infallible>,
{
    // Routes read the peer for token CIDR allow-lists.
    request.extensions_mut().insert(PeerAddr(peer));
    let started = Instant::now();
    let method = request.method().clone();
    let path = loggable_path(request.uri().path());
    let response = match service.call(request).await {
        Ok(response) => response,
        Err(never) => match never {},
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
        Some(file) if method != Method::HEAD => file_body(file),
        _ => body.map_err(|e| -> BoxError { Box::new(e) }).boxed(),
    };
    tracing::info!(
        "{method} {path} {} {:.1}ms",
        parts.status.as_u16(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(Response::from_parts(parts, body))
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
