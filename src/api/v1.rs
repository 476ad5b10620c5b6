//! `/api/v1/*`: camera states, and the query CLI's questions as JSON with the same parameters
//! and validation (times as RFC 3339, an age such as `15m`, or Unix ms).
//!
//! Input: query-string parameters (unknown ones are refused). Output: the JSON that
//! `storetrack query --format json` prints for the same question, produced by
//! [`crate::query`] on a read-only connection; errors as `{"error": "..."}` with 400/404/500.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::ApiState;
use crate::query::{self, Format, Table, TrackFilter};
use crate::redact;
use crate::store::{self, StoreError};

/// Same default as `storetrack query tracks --limit`.
const DEFAULT_TRACK_LIMIT: i64 = 50;

/// A request that cannot be answered.
#[derive(Debug, thiserror::Error)]
enum V1Error {
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("query failed: {0}")]
    Query(#[from] rusqlite::Error),
    #[error("query task failed")]
    Task,
}

impl IntoResponse for V1Error {
    fn into_response(self) -> Response {
        let code = match &self {
            V1Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            V1Error::Store(StoreError::Missing { .. }) => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let msg = redact::scrub(&self.to_string()).into_owned();
        (code, Json(json!({ "error": msg }))).into_response()
    }
}

impl From<QueryRejection> for V1Error {
    fn from(r: QueryRejection) -> Self {
        V1Error::BadRequest(r.body_text())
    }
}

impl From<PathRejection> for V1Error {
    fn from(r: PathRejection) -> Self {
        V1Error::BadRequest(r.body_text())
    }
}

impl From<query::TimeError> for V1Error {
    fn from(e: query::TimeError) -> Self {
        V1Error::BadRequest(e.to_string())
    }
}

pub(super) fn routes() -> Router<Arc<ApiState>> {
    Router::new()
        .route("/api/v1/cameras", get(cameras))
        .route("/api/v1/summary", get(summary))
        .route("/api/v1/tracks", get(tracks))
        .route("/api/v1/tracks/{track}/points", get(points))
}

async fn cameras(State(state): State<Arc<ApiState>>) -> Json<serde_json::Value> {
    let list: Vec<_> = state
        .stats
        .cameras()
        .iter()
        .map(|c| {
            let up = c.up.load(Ordering::Relaxed);
            let failures = c.failures.load(Ordering::Relaxed);
            let status = match (up, failures) {
                (true, _) => "up",
                (false, 0) => "starting",
                (false, _) => "down",
            };
            json!({
                "id": c.id,
                "name": c.name,
                "url": c.url,
                "state": status,
                "last_error": c.last_error().map(|e| redact::scrub(&e).into_owned()),
                "fps": c.fps(),
                "frames_decoded": c.decoded.load(Ordering::Relaxed),
                "frames_inferred": c.inferred.load(Ordering::Relaxed),
                "frames_not_picked": c.not_picked.load(Ordering::Relaxed),
                "frames_skipped": c.skipped.load(Ordering::Relaxed),
                "frames_dropped": c.dropped.load(Ordering::Relaxed),
                "frames_failed": c.failed.load(Ordering::Relaxed),
                "frame_slots": c.slots.load(Ordering::Relaxed),
                "clock": {
                    "offset_ms": c.clock.offset(),
                    "capture_delay_ms": c.clock.delay(),
                    "jumps": c.clock.jumps.load(Ordering::Relaxed),
                    "corrections": c.clock.corrections.load(Ordering::Relaxed),
                },
                "reconnects": c.reconnects(),
            })
        })
        .collect();
    Json(json!(list))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeParams {
    from: Option<String>,
    to: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrackParams {
    camera: Option<String>,
    from: Option<String>,
    to: Option<String>,
    #[serde(default)]
    min_points: i64,
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    DEFAULT_TRACK_LIMIT
}

fn time(s: &Option<String>, now: SystemTime) -> Result<Option<i64>, V1Error> {
    Ok(s.as_deref()
        .map(|s| query::parse_time(s, now))
        .transpose()?)
}

/// Runs `ask` on a read-only connection off the async thread; answers with the CLI's JSON.
async fn answer(
    state: &ApiState,
    ask: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<Table> + Send + 'static,
) -> Result<Response, V1Error> {
    let db = state.db.clone();
    let table = tokio::task::spawn_blocking(move || -> Result<Table, V1Error> {
        let conn = store::open_read_only(&db)?;
        Ok(ask(&conn)?)
    })
    .await
    .map_err(|_| V1Error::Task)??;
    let body = query::render(&table, Format::Json);
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

async fn summary(
    State(state): State<Arc<ApiState>>,
    params: Result<Query<RangeParams>, QueryRejection>,
) -> Result<Response, V1Error> {
    let Query(p) = params?;
    let now = SystemTime::now();
    let (from, to) = (time(&p.from, now)?, time(&p.to, now)?);
    answer(&state, move |c| query::summary(c, from, to)).await
}

async fn tracks(
    State(state): State<Arc<ApiState>>,
    params: Result<Query<TrackParams>, QueryRejection>,
) -> Result<Response, V1Error> {
    let Query(p) = params?;
    let now = SystemTime::now();
    let f = TrackFilter {
        camera: p.camera,
        from_ms: time(&p.from, now)?,
        to_ms: time(&p.to, now)?,
        min_points: p.min_points,
        limit: p.limit,
    };
    answer(&state, move |c| query::tracks(c, &f)).await
}

async fn points(
    State(state): State<Arc<ApiState>>,
    track: Result<Path<i64>, PathRejection>,
) -> Result<Response, V1Error> {
    let Path(track) = track?;
    answer(&state, move |c| query::points(c, track)).await
}
