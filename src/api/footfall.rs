//! `/api/v1/footfall`, `/api/v1/queue`, `/api/v1/alerts`, `/api/v1/occupancy`: the footfall
//! queries of the CLI (`storetrack query footfall | queue | alerts | occupancy --now`) as JSON,
//! with the same parameters and checks. `alerts` is paged like `tracks` (`limit` 1..=1000,
//! `cursor`); the others are arrays of rows (one per line or queue and bucket with data).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::ApiState;
use super::stream;
use super::v1::{V1Error, page, page_limit, time};
use crate::query::{self, Cell, footfall as ff};

/// Alerts per page when `limit` is not given (as `storetrack query alerts`).
const DEFAULT_ALERT_LIMIT: i64 = 50;
/// Shortest and longest bucket (as the CLI).
const MIN_BUCKET: Duration = Duration::from_secs(1);
const MAX_BUCKET: Duration = Duration::from_secs(31 * 86_400);

/// The routes (layers are added with the other data routes).
pub(super) fn routes() -> Router<Arc<ApiState>> {
    Router::new()
        .route("/api/v1/footfall", get(footfall))
        .route("/api/v1/queue", get(queue))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/occupancy", get(occupancy))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BucketParams {
    from: Option<String>,
    to: Option<String>,
    bucket: Option<String>,
    line: Option<String>,
    queue: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertParams {
    from: Option<String>,
    to: Option<String>,
    #[serde(default)]
    active: bool,
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

/// `bucket` (default 1h) within 1s..=31days, in ms.
fn bucket_ms(bucket: Option<&str>) -> Result<i64, V1Error> {
    let b = match bucket {
        None => Duration::from_secs(3600),
        Some(s) => humantime::parse_duration(s)
            .map_err(|e| V1Error::BadRequest(format!("bucket = {s:?}: {e}")))?,
    };
    if !(MIN_BUCKET..=MAX_BUCKET).contains(&b) {
        return Err(V1Error::BadRequest(format!(
            "bucket = {}: must be from 1s to 31days",
            humantime::format_duration(b)
        )));
    }
    Ok(b.as_millis() as i64)
}

/// A time range, Unix ms (open ends None).
type Span = (Option<i64>, Option<i64>);

/// Checked range and bucket of a bucketed query.
fn bucketed(p: &BucketParams) -> Result<(Span, i64), V1Error> {
    let now = SystemTime::now();
    Ok((
        (time(&p.from, now)?, time(&p.to, now)?),
        bucket_ms(p.bucket.as_deref())?,
    ))
}

async fn footfall(
    State(state): State<Arc<ApiState>>,
    params: Result<Query<BucketParams>, QueryRejection>,
) -> Result<Response, V1Error> {
    let Query(p) = params?;
    if p.queue.is_some() {
        return Err(V1Error::BadRequest(
            "queue: not a footfall parameter".into(),
        ));
    }
    let (range, bucket) = bucketed(&p)?;
    stream::answer(&state.queries, &state.counters, move |conn, sink| {
        let t = ff::footfall(conn, range, bucket, p.line.as_deref())?;
        sink.write_all_rows(&t.columns, &t.rows)
    })
    .await
}

async fn queue(
    State(state): State<Arc<ApiState>>,
    params: Result<Query<BucketParams>, QueryRejection>,
) -> Result<Response, V1Error> {
    let Query(p) = params?;
    if p.line.is_some() {
        return Err(V1Error::BadRequest("line: not a queue parameter".into()));
    }
    let (range, bucket) = bucketed(&p)?;
    stream::answer(&state.queries, &state.counters, move |conn, sink| {
        let t = ff::queue(conn, range, bucket, p.queue.as_deref())?;
        sink.write_all_rows(&t.columns, &t.rows)
    })
    .await
}

async fn alerts(
    State(state): State<Arc<ApiState>>,
    params: Result<Query<AlertParams>, QueryRejection>,
) -> Result<Response, V1Error> {
    let Query(p) = params?;
    let now = SystemTime::now();
    let limit = page_limit(p.limit, DEFAULT_ALERT_LIMIT)?;
    let after = p
        .cursor
        .as_deref()
        .map(|c| c.parse::<i64>().map_err(|_| query::CursorError))
        .transpose()?;
    let range = (time(&p.from, now)?, time(&p.to, now)?);
    let q = ff::alerts_query(range, p.active, after, limit + 1);
    stream::answer(&state.queries, &state.counters, move |conn, sink| {
        page(conn, &q, limit, sink, |row| match row.first() {
            Some(Cell::Int(id)) => Some(id.to_string()),
            _ => None,
        })
    })
    .await
}

async fn occupancy(
    State(state): State<Arc<ApiState>>,
    params: Result<Query<NoParams>, QueryRejection>,
) -> Result<Response, V1Error> {
    let Query(NoParams {}) = params?;
    stream::answer(&state.queries, &state.counters, move |conn, sink| {
        let t = ff::occupancy_now(conn)?;
        sink.write_all_rows(&t.columns, &t.rows)
    })
    .await
}
