//! The HTTP API: `/healthz`, `/readyz`, `/metrics` and `/api/v1/*`, served by axum on its own
//! thread with a single-threaded tokio runtime (the pipeline stages keep their own threads).
//!
//! Input: an [`ApiConfig`] and an [`ApiState`] (shared counters, cameras, database path).
//! Output: answers to HTTP requests; database questions go through [`crate::query`] on a fresh
//! read-only connection each. A bearer token, when configured, is required on every route but
//! `/healthz`. The server stops with the service ([`Server::stop`], also on drop) after the
//! requests in progress are answered.

pub mod metrics;
mod v1;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::sync::oneshot;
use tracing::{error, info};

use crate::config::ApiConfig;
use crate::stats::Stats;
pub use metrics::Metrics;

/// Content type of the Prometheus text exposition format.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The address could not be bound (in use, not local, no permission).
    #[error("api.listen {addr}: cannot listen: {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The runtime or its thread could not be created.
    #[error("cannot start the HTTP API: {0}")]
    Start(#[source] std::io::Error),
}

/// What the handlers read.
pub struct ApiState {
    /// Shared counters of the running service.
    pub stats: Arc<Stats>,
    /// The database (opened read-only per request).
    pub db: PathBuf,
    /// Required bearer token, if any.
    pub token: Option<String>,
    /// `/metrics` registry.
    pub metrics: Metrics,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a credential: never printed.
        f.debug_struct("ApiState")
            .field("db", &self.db)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

impl ApiState {
    /// State for a service run counting in `stats` (its camera slots name the cameras) and
    /// writing to `db`.
    pub fn new(stats: Arc<Stats>, db: PathBuf, token: Option<String>) -> Self {
        Self {
            metrics: Metrics::new(Arc::clone(&stats), db.clone()),
            stats,
            db,
            token,
        }
    }
}

/// The running HTTP server.
pub struct Server {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `cfg.listen` (errors now, not later) and serves on a new thread.
    pub fn start(cfg: &ApiConfig, state: ApiState) -> Result<Server, ApiError> {
        let bind = |source| ApiError::Bind {
            addr: cfg.listen,
            source,
        };
        let listener = std::net::TcpListener::bind(cfg.listen).map_err(bind)?;
        listener.set_nonblocking(true).map_err(bind)?;
        let addr = listener.local_addr().map_err(bind)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("api-blocking")
            .build()
            .map_err(ApiError::Start)?;
        let (tx, rx) = oneshot::channel::<()>();
        let app = router(Arc::new(state));
        let thread = std::thread::Builder::new()
            .name("api".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => return error!(error = %e, "HTTP API could not start."),
                    };
                    let served = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = rx.await;
                        })
                        .await;
                    if let Err(e) = served {
                        error!(error = %e, "HTTP API stopped.");
                    }
                });
            })
            .map_err(ApiError::Start)?;
        info!(address = %addr, "HTTP API listening.");
        Ok(Server {
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// The bound address (the real port when the config asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, finishes the requests in progress and joins the thread.
    pub fn stop(mut self) {
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            error!("HTTP API thread panicked.");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}

/// The routes over `state`.
pub fn router(state: Arc<ApiState>) -> Router {
    let guarded = Router::new()
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .merge(v1::routes())
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            require_token,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(guarded)
        .with_state(state)
}

/// Rejects a request without the configured bearer token.
async fn require_token(State(state): State<Arc<ApiState>>, req: Request, next: Next) -> Response {
    if let Some(token) = &state.token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !constant_time_eq(given.trim().as_bytes(), token.as_bytes()) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                axum::Json(json!({"error": "missing or wrong bearer token"})),
            )
                .into_response();
        }
    }
    next.run(req).await
}

/// Compares without stopping at the first difference (the time taken does not tell how much
/// of a guess was right).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Ready when the model is loaded, the detector can run (with a model-server fleet: an endpoint
/// is up or the local fallback stands in), the database takes writes and at least one camera
/// streams.
async fn readyz(State(state): State<Arc<ApiState>>) -> Response {
    let s = &state.stats;
    let model = s.model_loaded.load(Ordering::Relaxed);
    let db = s.db_writable.load(Ordering::Relaxed);
    let cameras = s.cameras();
    let up = cameras
        .iter()
        .filter(|c| c.up.load(Ordering::Relaxed))
        .count();
    let detector = s.remote.ready();
    let ready = model && detector && db && up > 0;
    let body = json!({
        "ready": ready,
        "model_loaded": model,
        "detector_ready": detector,
        "model_servers_up": s.remote.endpoints_up.load(Ordering::Relaxed),
        "model_servers": s.remote.endpoints.load(Ordering::Relaxed),
        "database_writable": db,
        "cameras_up": up,
        "cameras": cameras.len(),
    });
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body)).into_response()
}

async fn metrics_text(State(state): State<Arc<ApiState>>) -> Response {
    match state.metrics.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], text).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
