//! The web page: one hand-written page (vanilla JS, SVG and canvas, no build step) embedded in
//! the binary and served by the API's listener at `/`, with the few endpoints it needs beside
//! `/api/v1`: live positions over server-sent events, camera stills as JPEG, the floor, zones
//! and lines in force, trajectories and history tables, and (with `[api] allow_setup`) saving
//! zones, counting lines and calibrations to the config file.
//!
//! Input: the API's shared state ([`ApiState`]: counters, live state, database) and this
//! module's [`WebState`] (sessions, the config file, the reload flag). Output: HTML, JS, CSS,
//! JSON, JPEG and event streams. Every route here sits behind the API's host check, token check
//! (which also takes the session cookie [`auth`] sets) and limits; every write also needs the
//! session's CSRF token ([`auth::csrf`]).

mod assets;
pub(super) mod auth;
mod data;
mod frame;
mod live;
mod setup;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::middleware;
use axum::routing::{get, post};
use tokio::sync::Semaphore;

use super::ApiState;
use crate::config::Config;

/// Live event streams open at once (each page holds one); more are refused with 503.
pub const MAX_LIVE_STREAMS: usize = 16;

/// What the web routes need besides the API's state.
#[derive(Debug)]
pub struct WebState {
    /// Login sessions and the CSRF tokens.
    pub sessions: auth::Sessions,
    /// The config file the service runs with (Setup writes it).
    pub config_path: Option<PathBuf>,
    /// Set to ask the service to reload its config (None: no reloads in this run).
    pub reload: Option<Arc<AtomicBool>>,
    /// `[api] allow_setup`.
    pub allow_setup: bool,
    /// `[privacy] blur_people`.
    pub blur_people: bool,
    /// Cookies carry `Secure` (the API speaks HTTPS).
    pub secure_cookie: bool,
    /// Set when the server stops: live streams end at their next tick instead of holding the
    /// graceful shutdown for its whole grace time.
    pub closing: Arc<AtomicBool>,
    live_streams: Arc<Semaphore>,
    /// The whole router, for [`features`] to ask which optional endpoints answer (kept while
    /// the server runs: see [`keep_router`]).
    app: Mutex<Option<Router>>,
}

impl Default for WebState {
    fn default() -> Self {
        Self {
            sessions: auth::Sessions::default(),
            config_path: None,
            reload: None,
            allow_setup: false,
            blur_people: true,
            secure_cookie: false,
            closing: Arc::default(),
            live_streams: Arc::new(Semaphore::new(MAX_LIVE_STREAMS)),
            app: Mutex::new(None),
        }
    }
}

impl WebState {
    /// The web settings of `cfg`; `reload` is the service's reload flag, if it has one.
    pub fn new(cfg: &Config, reload: Option<Arc<AtomicBool>>) -> Self {
        Self {
            config_path: Some(cfg.path.clone()),
            reload,
            allow_setup: cfg.web.allow_setup,
            blur_people: cfg.web.blur_people,
            secure_cookie: cfg.api.as_ref().is_some_and(|a| a.tls.is_some()),
            ..Self::default()
        }
    }
}

/// The login page, open to everyone (behind the host check, the body limit and the health
/// routes' concurrency limit and timeout).
pub(super) fn open_routes() -> Router<Arc<ApiState>> {
    Router::new()
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
}

/// The page and its data (the caller adds the token check and the limits); writes need the
/// CSRF token.
pub(super) fn routes(state: &Arc<ApiState>) -> Router<Arc<ApiState>> {
    Router::new()
        .route("/", get(assets::index))
        .route("/ui/app.js", get(assets::script))
        .route("/ui/lines.js", get(assets::lines_script))
        .route("/ui/app.css", get(assets::style))
        .route("/ui/api/session", get(auth::session))
        .route("/ui/api/features", get(features))
        .route("/ui/api/config", get(data::config))
        .route("/ui/api/plan", get(data::plan))
        .route("/ui/api/today", get(data::today))
        .route("/ui/api/paths", get(data::paths))
        .route("/ui/api/history/{kind}", get(data::history))
        .route("/ui/api/cameras/{id}/boxes", get(frame::boxes))
        .route("/api/v1/cameras/{id}/frame.jpg", get(frame::jpeg))
        .route("/api/v1/zones", get(data::zones))
        .route("/ui/api/setup/zones", post(setup::zones))
        .route("/ui/api/setup/calibration", post(setup::calibration))
        .route("/ui/api/setup/lines", post(setup::lines))
        .route("/api/v1/lines", get(data::lines))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(state),
            auth::csrf,
        ))
}

/// The live event stream (long-lived: no body deadline; its own limit of open streams).
pub(super) fn live_routes() -> Router<Arc<ApiState>> {
    Router::new().route("/ui/live", get(live::stream))
}

/// Endpoints the page shows a panel for when they answer (added by other parts of the service;
/// the page hides the panel of one that is not there).
pub const OPTIONAL: &[&str] = &[
    "/api/v1/footfall",
    "/api/v1/queue",
    "/api/v1/alerts",
    "/api/v1/occupancy",
];

/// Keeps the finished router so [`features`] can ask it. The router holds the state that then
/// holds it: [`forget_router`] breaks that cycle when the server stops.
pub(super) fn keep_router(state: &ApiState, app: &Router) {
    *state.web.app.lock().unwrap_or_else(|e| e.into_inner()) = Some(app.clone());
}

/// Ends the live streams (at their next tick).
pub(super) fn close(closing: &AtomicBool) {
    closing.store(true, Ordering::Relaxed);
}

/// Drops the router kept by [`keep_router`].
pub(super) fn forget_router(state: &ApiState) {
    state
        .web
        .app
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
}

/// `GET /ui/api/features`: which of [`OPTIONAL`] answer, asked of the router in process with
/// the caller's credentials (so the page never requests a missing endpoint, and the browser
/// logs no failed request).
async fn features(
    axum::extract::State(state): axum::extract::State<Arc<ApiState>>,
    headers: axum::http::HeaderMap,
) -> axum::Json<serde_json::Value> {
    use tower::Service;
    let mut found = serde_json::Map::new();
    let app = state
        .web
        .app
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if let Some(app) = app {
        for path in OPTIONAL {
            let mut req = axum::http::Request::get(*path).body(axum::body::Body::empty());
            if let Ok(r) = &mut req {
                for name in [
                    axum::http::header::HOST,
                    axum::http::header::AUTHORIZATION,
                    axum::http::header::COOKIE,
                ] {
                    if let Some(v) = headers.get(&name) {
                        r.headers_mut().insert(name, v.clone());
                    }
                }
            }
            let Ok(req) = req else { continue };
            let status = app.clone().call(req).await.map(|r| r.status());
            let ok = status.is_ok_and(|s| s != axum::http::StatusCode::NOT_FOUND);
            found.insert(path.to_string(), serde_json::Value::Bool(ok));
        }
    }
    axum::Json(serde_json::Value::Object(found))
}
