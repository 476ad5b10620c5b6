//! The HTTP/1.1 accept loop (hyper directly, since `axum::serve` sets none of these): a
//! connection limit, a deadline for each request's headers (also between keep-alive requests,
//! so an idle or trickling connection is closed), a bounded read buffer, optional TLS, and a
//! graceful shutdown bounded in time.
//!
//! Input: a bound listener, the router, a shutdown signal. Output: connections served until
//! the signal; counts in [`ApiCounters`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tower::ServiceExt;
use tracing::{debug, warn};

use super::Limits;
use super::counters::ApiCounters;
use super::tls::Tls;

/// Most connections open at once; more are closed as they arrive.
pub const MAX_CONNECTIONS: u64 = 512;
/// Longest a client may take to send a request's headers, counted from the connection (or
/// the end of the previous answer) on: idle and trickling connections are closed.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Read buffer of a connection (bounds the request line and headers).
const MAX_BUF_BYTES: usize = 16 * 1024;
/// Longest wait, at shutdown, for the answers in progress.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Pause after a failed accept (out of file descriptors) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `app` on `listener` within `limits` until `shutdown` fires (or its sender is
/// dropped).
pub(super) async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Tls>,
    (counters, limits): (Arc<ApiCounters>, Limits),
    mut shutdown: oneshot::Receiver<()>,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_BUF_BYTES)
        .keep_alive(true);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    warn!(error = %e, "HTTP API: accept failed.");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        if counters.connections.load(Ordering::Relaxed) >= limits.max_connections {
            ApiCounters::inc(&counters.connections_refused);
            debug!(peer = %peer, "HTTP API: connection limit reached; closed.");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let open = Open::new(&counters);
        // The handlers see the client's address (`ConnectInfo`), as with `axum::serve`.
        let app = app.clone().map_request(move |mut r: Request<_>| {
            r.extensions_mut().insert(ConnectInfo(peer));
            r
        });
        let (builder, watcher) = (builder.clone(), graceful.watcher());
        let tls = tls.clone();
        tokio::spawn(async move {
            let _open = open;
            match tls {
                None => connection(&builder, stream, app, watcher).await,
                Some(tls) => match tls.accept(stream, limits.header_read_timeout).await {
                    Some(s) => connection(&builder, s, app, watcher).await,
                    None => debug!(peer = %peer, "HTTP API: TLS handshake failed."),
                },
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        warn!("HTTP API: answers still in progress at shutdown were cut off.");
    }
}

/// Serves one connection (plain or TLS) until it closes or shutdown is signalled.
async fn connection<I, S>(
    builder: &http1::Builder,
    io: I,
    app: S,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: tower::Service<
            Request<hyper::body::Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let conn = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(app));
    if let Err(e) = watcher.watch(conn).await {
        debug!(error = %e, "HTTP API: connection ended with an error.");
    }
}

/// Counts a connection as open while it lives.
struct Open(Arc<ApiCounters>);

impl Open {
    fn new(c: &Arc<ApiCounters>) -> Self {
        c.connections.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(c))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}
