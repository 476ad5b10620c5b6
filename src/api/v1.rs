//! `/api/v1/*`: camera states, and the query CLI's questions as JSON with the same parameters
//! and validation (times as RFC 3339, an age such as `15m`, or Unix ms), in bounded pages.
//!
//! Input: query-string parameters (unknown or repeated ones are refused). Output: JSON written
//! row by row while the query runs ([`super::stream`]): `summary` as the array `storetrack query
//! --format json summary` prints for cameras; `tracks` and `points` as pages
//! `{"items": [...], "next": CURSOR | null}` of at most [`MAX_PAGE`] rows, the next page asked
//! with `cursor=CURSOR`. Errors are `{"error": "..."}` with 400/404/500/503.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rusqlite::Connection;
use serde::Deserialize;
use serde_json::json;

use super::ApiState;
use super::stream::{self, Sink};
use crate::query::{self, Cell, PointFilter, TrackCursor, TrackFilter};
use crate::redact;
use crate::store::StoreError;

/// Largest page (`limit`).
pub const MAX_PAGE: i64 = 1000;
/// Tracks per page when `limit` is not given (as `storetrack query tracks`).
const DEFAULT_TRACK_LIMIT: i64 = 50;
/// Points per page when `limit` is not given.
const DEFAULT_POINT_LIMIT: i64 = MAX_PAGE;

/// A request that cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum V1Error {
    /// Bad parameters.
    #[error("{0}")]
    BadRequest(String),
    /// The database cannot be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The query failed.
    #[error("query failed: {0}")]
    Query(#[from] rusqlite::Error),
    /// The answer could not be written (the client left).
    #[error("answer not written: {0}")]
    Write(#[from] std::io::Error),
    /// A query thread failed.
    #[error("query task failed")]
    Task,
}

impl IntoResponse for V1Error {
    fn into_response(self) -> Response {
        let code = match &self {
            V1Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            V1Error::Store(StoreError::Missing { .. }) => StatusCode::NOT_FOUND,
            V1Error::Query(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted) =>
            {
                StatusCode::SERVICE_UNAVAILABLE
            }
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

impl From<query::CursorError> for V1Error {
    fn from(e: query::CursorError) -> Self {
        V1Error::BadRequest(e.to_string())
    }
}

/// The data routes (layers are added by the caller).
pub(super) fn routes() -> Router<Arc<ApiState>> {
    Router::new()
        .route("/api/v1/cameras", get(cameras))
        .route("/api/v1/summary", get(summary))
        .route("/api/v1/tracks", get(tracks))
        .route("/api/v1/tracks/{track}/points", get(points))
        .merge(super::footfall::routes())
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
                "frames_shed": c.shed.load(Ordering::Relaxed),
                "frames_damaged": c.damaged.load(Ordering::Relaxed),
                "packets_lost": c.packets_lost.load(Ordering::Relaxed),
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
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PointParams {
    limit: Option<i64>,
    cursor: Option<String>,
}

pub(super) fn time(s: &Option<String>, now: SystemTime) -> Result<Option<i64>, V1Error> {
    Ok(s.as_deref()
        .map(|s| query::parse_time(s, now))
        .transpose()?)
}

/// `limit` within 1..=[`MAX_PAGE`] (`default` when absent).
pub(super) fn page_limit(limit: Option<i64>, default: i64) -> Result<i64, V1Error> {
    match limit.unwrap_or(default) {
        l @ 1..=MAX_PAGE => Ok(l),
        l => Err(V1Error::BadRequest(format!(
            "limit = {l}: must be from 1 to {MAX_PAGE} (ask for the next page with cursor)"
        ))),
    }
}

async fn summary(
    State(state): State<Arc<ApiState>>,
    params: Result<Query<RangeParams>, QueryRejection>,
) -> Result<Response, V1Error> {
    let Query(p) = params?;
    let now = SystemTime::now();
    let (from, to) = (time(&p.from, now)?, time(&p.to, now)?);
    stream::answer(&state.queries, &state.counters, move |conn, sink| {
        let t = query::summary(conn, from, to)?;
        sink.write_all_rows(&t.columns, &t.rows)
    })
    .await
}

async fn tracks(
    State(state): State<Arc<ApiState>>,
    params: Result<Query<TrackParams>, QueryRejection>,
) -> Result<Response, V1Error> {
    let Query(p) = params?;
    let now = SystemTime::now();
    let limit = page_limit(p.limit, DEFAULT_TRACK_LIMIT)?;
    let f = TrackFilter {
        camera: p.camera,
        from_ms: time(&p.from, now)?,
        to_ms: time(&p.to, now)?,
        min_points: p.min_points,
        // One row more than the page tells whether there is a next page.
        limit: limit + 1,
        after: p
            .cursor
            .as_deref()
            .map(str::parse::<TrackCursor>)
            .transpose()?,
    };
    stream::answer(&state.queries, &state.counters, move |conn, sink| {
        let q = query::tracks_query(&f);
        page(conn, &q, limit, sink, |row| {
            query::track_cursor(row).map(|c| c.to_string())
        })
    })
    .await
}

async fn points(
    State(state): State<Arc<ApiState>>,
    track: Result<Path<i64>, PathRejection>,
    params: Result<Query<PointParams>, QueryRejection>,
) -> Result<Response, V1Error> {
    let Path(track) = track?;
    let Query(p) = params?;
    let limit = page_limit(p.limit, DEFAULT_POINT_LIMIT)?;
    let after_ms = p
        .cursor
        .as_deref()
        .map(|c| c.parse::<i64>().map_err(|_| query::CursorError))
        .transpose()?;
    let f = PointFilter {
        track,
        after_ms,
        limit: Some(limit + 1),
    };
    stream::answer(&state.queries, &state.counters, move |conn, sink| {
        page(
            conn,
            &query::points_query(&f),
            limit,
            sink,
            |row| match row.first() {
                Some(Cell::Time(ts)) => Some(ts.to_string()),
                _ => None,
            },
        )
    })
    .await
}

/// Writes `{"items": [...], "next": ...}`: at most `limit` rows of `q` (which asks for one
/// more), `next` the cursor of the last row written when that extra row exists.
pub(super) fn page(
    conn: &Connection,
    q: &query::Query,
    limit: i64,
    sink: &mut Sink,
    cursor: impl Fn(&[Cell]) -> Option<String>,
) -> Result<(), V1Error> {
    use std::io::Write;
    sink.write_all(b"{\"items\":[")?;
    let (mut written, mut more, mut last) = (0i64, false, None);
    let mut failed = None;
    q.for_each(conn, |row| {
        if written == limit {
            more = true;
            return ControlFlow::Break(());
        }
        let sep: &[u8] = if written > 0 { b"," } else { b"" };
        let json = query::json_row(q.columns(), row);
        let wrote = sink
            .write_all(sep)
            .and_then(|()| serde_json::to_writer(&mut *sink, &json).map_err(std::io::Error::from));
        if let Err(e) = wrote {
            failed = Some(e);
            return ControlFlow::Break(());
        }
        written += 1;
        last = cursor(row);
        sink.flow()
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    let next = if more { last } else { None };
    write!(sink, "],\"next\":{}}}", json!(next))?;
    Ok(())
}

impl Sink {
    /// Writes a whole (small) table as a JSON array of row objects.
    pub(super) fn write_all_rows(
        &mut self,
        columns: &[&str],
        rows: &[Vec<Cell>],
    ) -> Result<(), V1Error> {
        use std::io::Write;
        self.write_all(b"[")?;
        for (i, row) in rows.iter().enumerate() {
            if i > 0 {
                self.write_all(b",")?;
            }
            serde_json::to_writer(&mut *self, &query::json_row(columns, row))
                .map_err(std::io::Error::from)?;
        }
        self.write_all(b"]")?;
        Ok(())
    }
}
