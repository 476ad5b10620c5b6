//! The HTTP API: `/healthz`, `/readyz`, `/metrics` and `/api/v1/*`, served by axum over hyper's
//! HTTP/1.1 (optionally TLS) on its own thread with a single-threaded tokio runtime (the
//! pipeline stages keep their own threads; queries run on a few low-priority threads).
//!
//! Input: an [`ApiConfig`] and an [`ApiState`] (shared counters, cameras, database path,
//! limits). Output: answers to HTTP requests; database questions go through [`crate::query`]
//! on a fresh read-only connection each, streamed. Every limit is a layer or a setting of the
//! accept loop ([`router`], [`serve`]); requests must name an allowed `Host`, and carry the
//! bearer token (or the web page's session cookie) when one is configured (every route but
//! `/healthz` and `/login`). The web page ([`web`]) is served at `/`. The server stops with the
//! service ([`Server::stop`], also on drop) after the requests in progress are answered, for a
//! few seconds at most.

pub mod counters;
mod footfall;
mod guard;
pub mod metrics;
pub mod serve;
pub mod sse;
mod stream;
pub mod throttle;
pub mod tls;
mod v1;
pub mod web;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::sync::oneshot;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::{ResponseBodyDeadlineLayer, TimeoutLayer};
use tracing::{error, info, warn};

use crate::config::ApiConfig;
use crate::stats::Stats;
pub use counters::ApiCounters;
pub use metrics::Metrics;
pub use serve::{HEADER_READ_TIMEOUT, MAX_CONNECTIONS};
pub use v1::MAX_PAGE;
pub use web::WebState;

/// Content type of the Prometheus text exposition format.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Data requests in progress at once (waiting for a query thread included); more wait for a
/// slot, within [`DATA_TIMEOUT`].
pub const DATA_IN_FLIGHT: usize = 64;
/// Queries running at once, each on its own low-priority thread.
pub const QUERY_WORKERS: usize = 2;
/// Longest a data request may take to its first byte (waiting for a slot included): then 503.
pub const DATA_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a data answer's body may take to be sent whole: then the connection is cut and the
/// query stopped.
pub const DATA_BODY_DEADLINE: Duration = Duration::from_secs(30);
/// Health and metrics requests in progress at once: their own budget, never behind data.
const HEALTH_IN_FLIGHT: usize = 32;
/// Longest a health or metrics request may take.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest request body accepted (only the login form and the web page's setup saves take one).
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Nice value of the query threads: detection comes first, the API takes the CPU left over.
const QUERY_THREAD_NICE: libc::c_int = 10;

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
    /// The certificate or key cannot be used.
    #[error("api.tls_cert: {0}")]
    Tls(#[from] tls::TlsError),
    /// The runtime or its thread could not be created.
    #[error("cannot start the HTTP API: {0}")]
    Start(#[source] std::io::Error),
}

/// The API's time and size limits (the constants above; tests shorten them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// See [`DATA_TIMEOUT`].
    pub data_timeout: Duration,
    /// See [`DATA_BODY_DEADLINE`].
    pub data_body_deadline: Duration,
    /// See [`HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
    /// See [`MAX_CONNECTIONS`].
    pub max_connections: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            data_timeout: DATA_TIMEOUT,
            data_body_deadline: DATA_BODY_DEADLINE,
            header_read_timeout: HEADER_READ_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
        }
    }
}

/// What the handlers read.
pub struct ApiState {
    /// Shared counters of the running service.
    pub stats: Arc<Stats>,
    /// The database (opened read-only per request).
    pub db: PathBuf,
    /// Required bearer token, if any.
    pub token: Option<String>,
    /// Host names answered besides IP addresses and `localhost`.
    pub hosts: Vec<String>,
    /// `/metrics` registry.
    pub metrics: Metrics,
    /// The API's own counters (also in `/metrics`).
    pub counters: Arc<ApiCounters>,
    /// Time and size limits.
    pub limits: Limits,
    /// Event delivery figures (SSE streams counted here too).
    pub events: Arc<crate::events::EventsMetrics>,
    /// `/api/v1/events` streams: their limit and stop flag.
    pub sse: sse::SseHub,
    /// The web page's sessions and settings.
    pub web: WebState,
    /// Clients that sent wrong tokens lately (refused with 429 after too many).
    pub throttle: throttle::Throttle,
    queries: stream::QueryPool,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a credential: never printed.
        f.debug_struct("ApiState")
            .field("db", &self.db)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

impl ApiState {
    /// State for a service run counting in `stats` (its camera slots name the cameras) and
    /// writing to `db`.
    pub fn new(stats: Arc<Stats>, db: PathBuf, token: Option<String>) -> Self {
        let counters = Arc::new(ApiCounters::default());
        let mut metrics = Metrics::new(Arc::clone(&stats), db.clone());
        metrics.register(counters.collector());
        Self {
            metrics,
            queries: stream::QueryPool::new(db.clone(), QUERY_WORKERS),
            stats,
            db,
            token,
            hosts: Vec::new(),
            counters,
            limits: Limits::default(),
            events: Arc::default(),
            sse: sse::SseHub::default(),
            web: WebState::default(),
            throttle: throttle::Throttle::default(),
        }
    }

    /// Counts SSE streams in `events` and exports its figures (the senders') on `/metrics`.
    pub fn with_events(mut self, events: Arc<crate::events::EventsMetrics>) -> Self {
        self.metrics.register(events.collector());
        self.events = events;
        self
    }
}

/// The running HTTP server.
pub struct Server {
    addr: SocketAddr,
    web_closing: Arc<std::sync::atomic::AtomicBool>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    sse_closing: Arc<std::sync::atomic::AtomicBool>,
}

impl Server {
    /// Binds `cfg.listen` and loads the TLS files (errors now, not later) and serves on a new
    /// thread; `state` gets the configured host names.
    pub fn start(cfg: &ApiConfig, mut state: ApiState) -> Result<Server, ApiError> {
        let bind = |source| ApiError::Bind {
            addr: cfg.listen,
            source,
        };
        let tls = cfg.tls.as_ref().map(tls::Tls::load).transpose()?;
        let listener = std::net::TcpListener::bind(cfg.listen).map_err(bind)?;
        listener.set_nonblocking(true).map_err(bind)?;
        let addr = listener.local_addr().map_err(bind)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("api-query")
            .max_blocking_threads(QUERY_WORKERS)
            .on_thread_start(lower_priority)
            .build()
            .map_err(ApiError::Start)?;
        state.hosts = cfg.hosts.clone();
        let counters = Arc::clone(&state.counters);
        let limits = state.limits;
        let sse_closing = Arc::clone(&state.sse.closing);
        let (tx, rx) = oneshot::channel::<()>();
        let web_closing = Arc::clone(&state.web.closing);
        let state = Arc::new(state);
        let app = router(Arc::clone(&state));
        let thread = std::thread::Builder::new()
            .name("api".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => serve::serve(l, app, tls, (counters, limits), rx).await,
                        Err(e) => error!(error = %e, "HTTP API could not start."),
                    }
                    web::forget_router(&state);
                });
            })
            .map_err(ApiError::Start)?;
        let scheme = if cfg.tls.is_some() { "https" } else { "http" };
        info!(address = %addr, scheme, token = cfg.token.is_some(), "HTTP API listening.");
        if cfg.tls.is_none() && !addr.ip().is_loopback() {
            warn!(address = %addr,
                  "HTTP API reachable from other machines without TLS: the token and the \
                   trajectories cross the network in clear text (set api.tls_cert and api.tls_key).");
        }
        Ok(Server {
            addr,
            web_closing,
            shutdown: Some(tx),
            thread: Some(thread),
            sse_closing,
        })
    }

    /// The bound address (the real port when the config asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, finishes the requests in progress (for a few seconds at most) and
    /// joins the thread.
    pub fn stop(mut self) {
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        // Event streams never end by themselves: told first, they end within a poll.
        self.sse_closing.store(true, Ordering::Relaxed);
        web::close(&self.web_closing);
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

/// Lowers the calling thread's scheduling priority (Linux: per thread).
fn lower_priority() {
    // SAFETY: plain system calls on the calling thread's own id; a failure leaves the
    // priority as it was.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, QUERY_THREAD_NICE);
    }
}

/// The routes over `state`, each class with its limits as layers: data routes (`/api/v1`)
/// share a concurrency limit, a time to first byte and a deadline for the whole answer;
/// health and metrics have their own limit and timeout, so they never wait behind data; the
/// event stream (SSE) has its own limit of streams and no deadline; every route has a request
/// body limit and the host check; all but `/healthz` and the web page's `/login` the token (or
/// the page's session cookie, [`web`]).
pub fn router(state: Arc<ApiState>) -> Router {
    let limits = state.limits;
    let data = v1::routes().merge(web::routes(&state)).layer(
        ServiceBuilder::new()
            .layer(ResponseBodyDeadlineLayer::new(limits.data_body_deadline))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                limits.data_timeout,
            ))
            .layer(GlobalConcurrencyLimitLayer::new(DATA_IN_FLIGHT)),
    );
    let health_limits = ServiceBuilder::new()
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            HEALTH_TIMEOUT,
        ))
        .layer(GlobalConcurrencyLimitLayer::new(HEALTH_IN_FLIGHT));
    let guarded = Router::new()
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .layer(health_limits.clone())
        .merge(data)
        .merge(sse::routes())
        .merge(web::live_routes().layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            limits.data_timeout,
        )))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            guard::token,
        ));
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(web::open_routes())
        .layer(health_limits)
        .merge(guarded)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            guard::host,
        ))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), count))
        .with_state(Arc::clone(&state));
    web::keep_router(&state, &app);
    app
}

/// Counts every answer, and the failed ones.
async fn count(State(state): State<Arc<ApiState>>, req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    ApiCounters::inc(&state.counters.requests);
    if response.status().is_server_error() {
        ApiCounters::inc(&state.counters.server_errors);
    }
    response
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
