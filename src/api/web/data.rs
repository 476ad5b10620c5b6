//! The page's data besides `/api/v1`'s: the floor, zones, lines and calibrations in force
//! (`/ui/api/config`, `/api/v1/zones`, `/api/v1/lines`, the plan picture), today's figures, store trajectories
//! over a range (for the heatmap and the paths), and the history tables (dwell, flows,
//! visitors, occupancy) as JSON or CSV.
//!
//! Input: the configuration in force ([`crate::live::Live::config`]), the config file (only the
//! calibration point pairs are read from it: the loaded config keeps their homography, not the
//! pairs) and the database through the API's query threads. Output: JSON, CSV, the plan image.
//! No secret is sent: camera URLs never appear here.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rusqlite::params;
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::ApiState;
use super::super::stream;
use super::super::v1::V1Error;
use crate::config::Config;
use crate::query::analytics::{self as aq, Range};
use crate::query::{self, Format, Table};

/// A trajectory point: time (Unix ms), x, y (metres).
type TimedPoint = (i64, f64, f64);

/// Most trajectory points one `/ui/api/paths` answer holds (the newest are left out beyond).
pub const MAX_PATH_POINTS: i64 = 200_000;

fn no_config() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(json!({"error": "the service has not started yet"})),
    )
        .into_response()
}

fn zones_json(cfg: &Config) -> Value {
    Value::Array(
        cfg.zones
            .iter()
            .map(|z| json!({"id": &*z.id, "name": z.name, "polygon": z.polygon}))
            .collect(),
    )
}

/// `GET /api/v1/zones`: the zones in force.
pub(super) async fn zones(State(state): State<Arc<ApiState>>) -> Response {
    match state.stats.live.config() {
        Some(cfg) => axum::Json(zones_json(&cfg)).into_response(),
        None => no_config(),
    }
}

/// The config's counting lines; `counting` says whether the running footfall engine counts
/// the line as written: every line of the config as last loaded does, a reload swaps the
/// lines into the running engine.
fn lines_json(cfg: &Config) -> Value {
    Value::Array(
        cfg.footfall
            .lines
            .iter()
            .map(|l| {
                json!({
                    "id": l.id,
                    "name": l.name,
                    "points": l.points,
                    "camera": l.camera,
                    "pixels": l.pixels,
                    "door": l.door,
                    "counting": true,
                })
            })
            .collect(),
    )
}

/// `GET /api/v1/lines`: the counting lines of the config file as last loaded (after a reload,
/// the reloaded ones), each with whether the footfall engine counts it (it does: a reload
/// swaps them in); `restart_needed` is false (kept for clients that read it).
pub(super) async fn lines(State(state): State<Arc<ApiState>>) -> Response {
    let Some(cfg) = state.stats.live.config() else {
        return no_config();
    };
    axum::Json(json!({
        "lines": lines_json(&cfg),
        "restart_needed": false,
    }))
    .into_response()
}

/// Camera id → calibration point pairs as written in the config file.
fn file_pairs(cfg: &Config) -> std::collections::HashMap<String, Value> {
    let text = std::fs::read_to_string(&cfg.path).unwrap_or_default();
    let doc: toml::Table = toml::from_str(&text).unwrap_or_default();
    let mut out = std::collections::HashMap::new();
    if let Some(toml::Value::Array(cams)) = doc.get("cameras") {
        for c in cams {
            if let (Some(id), Some(pairs)) =
                (c.get("id").and_then(|v| v.as_str()), c.get("calibration"))
            {
                out.insert(
                    id.to_string(),
                    serde_json::to_value(pairs).unwrap_or(Value::Null),
                );
            }
        }
    }
    out
}

/// `GET /ui/api/config`: floor, zones, cameras (ids, names, calibration) and what the page may
/// do.
pub(super) async fn config(State(state): State<Arc<ApiState>>) -> Response {
    let Some(cfg) = state.stats.live.config() else {
        return no_config();
    };
    let pairs = file_pairs(&cfg);
    let cameras: Vec<_> = cfg
        .cameras
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "name": c.name,
                "homography": c.homography,
                "calibration": pairs.get(&c.id),
                "rms_m": c.calibration.as_ref().map(|k| k.rms_m),
                "source": state.stats.live.still(&c.id).map(|(s, _)| [s.source.0, s.source.1]),
            })
        })
        .collect();
    let floor = cfg.floor.as_ref().map(|f| {
        json!({
            "width": f.width_m,
            "height": f.height_m,
            "scale": f.scale_px_per_m,
            "origin": [f.origin_px.0, f.origin_px.1],
            "plan": f.plan.is_some(),
        })
    });
    axum::Json(json!({
        "floor": floor,
        "zones": zones_json(&cfg),
        "lines": lines_json(&cfg),
        "cameras": cameras,
        "setup": state.web.allow_setup,
        "blur_people": state.web.blur_people,
        "join_distance_m": cfg.analytics.join_distance_m,
    }))
    .into_response()
}

/// `GET /ui/api/plan`: the floor plan picture, when `[floor] plan` names one.
pub(super) async fn plan(State(state): State<Arc<ApiState>>) -> Response {
    let Some(path) = state
        .stats
        .live
        .config()
        .and_then(|c| c.floor.as_ref()?.plan.clone())
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let kind = match path.extension().and_then(|e| e.to_str()) {
        Some("png") => "image/png",
        _ => "image/jpeg",
    };
    match tokio::task::spawn_blocking(move || std::fs::read(&path)).await {
        Ok(Ok(b)) => ([(header::CONTENT_TYPE, kind)], b).into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RangeParams {
    from: Option<String>,
    to: Option<String>,
    bucket: Option<String>,
    zone: Option<String>,
    format: Option<String>,
}

impl RangeParams {
    fn range(&self) -> Result<Range, V1Error> {
        let now = SystemTime::now();
        let t = |s: &Option<String>| s.as_deref().map(|s| query::parse_time(s, now)).transpose();
        Ok(Range {
            from_ms: t(&self.from)?,
            to_ms: t(&self.to)?,
        })
    }

    fn bucket_ms(&self) -> Result<i64, V1Error> {
        let Some(b) = &self.bucket else {
            return Ok(3_600_000);
        };
        match humantime::parse_duration(b) {
            Ok(d) if d.as_millis() >= 1000 => Ok(d.as_millis() as i64),
            _ => Err(V1Error::BadRequest(format!(
                "bucket = {b:?}: expected a duration of at least 1s such as 15m or 1h"
            ))),
        }
    }
}

/// Writes `t` as `{"columns": [...], "rows": [[...]]}` (times as Unix ms).
fn write_json(sink: &mut stream::Sink, t: &Table) -> Result<(), V1Error> {
    let rows: Vec<Value> = t
        .rows
        .iter()
        .map(|r| Value::Array(r.iter().map(cell).collect()))
        .collect();
    serde_json::to_writer(&mut *sink, &json!({"columns": t.columns, "rows": rows}))
        .map_err(std::io::Error::from)?;
    Ok(())
}

fn cell(c: &query::Cell) -> Value {
    match c {
        query::Cell::Null => Value::Null,
        query::Cell::Int(i) | query::Cell::Time(i) => json!(i),
        query::Cell::Real(r) => json!(r),
        query::Cell::Text(s) => json!(s),
    }
}

/// `GET /ui/api/history/{kind}?from&to&bucket&zone&format=csv`: `dwell`, `flows`,
/// `visitors` or `occupancy` over the range.
pub(super) async fn history(
    State(state): State<Arc<ApiState>>,
    kind: Result<Path<String>, PathRejection>,
    params: Result<Query<RangeParams>, QueryRejection>,
) -> Result<Response, V1Error> {
    let Path(kind) = kind?;
    let Query(p) = params?;
    let (range, bucket) = (p.range()?, p.bucket_ms()?);
    let csv = match p.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(f) => return Err(V1Error::BadRequest(format!("format = {f:?}: json or csv"))),
    };
    if !["dwell", "flows", "visitors", "occupancy"].contains(&kind.as_str()) {
        return Err(V1Error::BadRequest(format!(
            "{kind:?}: expected dwell, flows, visitors or occupancy"
        )));
    }
    let (k, zone) = (kind.clone(), p.zone.clone());
    let mut r = stream::answer(&state.queries, &state.counters, move |conn, sink| {
        let bad = |e: aq::QueryError| match e {
            aq::QueryError::Sql(e) => V1Error::Query(e),
            other => V1Error::BadRequest(other.to_string()),
        };
        let t = match k.as_str() {
            "dwell" => aq::dwell(conn, &range)?,
            "flows" => aq::flows(conn, &range)?,
            "visitors" => aq::visitors(conn, &range, bucket, zone.as_deref()).map_err(bad)?,
            _ => aq::occupancy(conn, &range, bucket, zone.as_deref()).map_err(bad)?,
        };
        if csv {
            use std::io::Write;
            sink.write_all(query::render(&t, Format::Csv).as_bytes())?;
            Ok(())
        } else {
            write_json(sink, &t)
        }
    })
    .await?;
    if csv {
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv"));
        let name = format!("attachment; filename=\"storetrack-{kind}.csv\"");
        if let Ok(v) = name.parse() {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    Ok(r)
}

/// `GET /ui/api/today?from=...`: store visitors and zone visits since `from` (the page sends
/// its local midnight), with dwell per zone.
pub(super) async fn today(
    State(state): State<Arc<ApiState>>,
    params: Result<Query<RangeParams>, QueryRejection>,
) -> Result<Response, V1Error> {
    let Query(p) = params?;
    let range = p.range()?;
    let from = range.from_ms.unwrap_or(0);
    stream::answer(&state.queries, &state.counters, move |conn, sink| {
        let visitors: i64 = conn.query_row(
            "SELECT COUNT(*) FROM store_tracks WHERE first_ms >= ?1 - 86400000 AND last_ms >= ?1",
            params![from],
            |r| r.get(0),
        )?;
        let dwell = aq::dwell(conn, &range)?;
        let visits: i64 = dwell
            .rows
            .iter()
            .filter_map(|r| match r.get(1) {
                Some(query::Cell::Int(n)) => Some(*n),
                _ => None,
            })
            .sum();
        let rows: Vec<Value> = dwell
            .rows
            .iter()
            .map(|r| Value::Array(r.iter().map(cell).collect()))
            .collect();
        let body = json!({"visitors": visitors, "visits": visits,
                          "dwell": {"columns": dwell.columns, "rows": rows}});
        serde_json::to_writer(&mut *sink, &body).map_err(std::io::Error::from)?;
        Ok(())
    })
    .await
}

/// `GET /ui/api/paths?from&to`: store trajectories crossing the range, as
/// `{"tracks": [[id, [[ts_ms, x, y], ...]], ...], "truncated": bool}`.
pub(super) async fn paths(
    State(state): State<Arc<ApiState>>,
    params: Result<Query<RangeParams>, QueryRejection>,
) -> Result<Response, V1Error> {
    let Query(p) = params?;
    let r = p.range()?;
    let (from, to) = (
        r.from_ms.unwrap_or(i64::MIN / 4),
        r.to_ms.unwrap_or(i64::MAX / 4),
    );
    stream::answer(&state.queries, &state.counters, move |conn, sink| {
        let mut stmt = conn.prepare(
            "SELECT p.store_track, p.ts_ms, ROUND(p.x, 2), ROUND(p.y, 2)
             FROM store_tracks t JOIN store_points p ON p.store_track = t.id
             WHERE t.first_ms BETWEEN ?1 - 86400000 AND ?2 AND t.last_ms >= ?1
               AND p.ts_ms BETWEEN ?1 AND ?2
             ORDER BY p.store_track, p.ts_ms LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![from, to, MAX_PATH_POINTS], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, f64>(2)?,
                r.get::<_, f64>(3)?,
            ))
        })?;
        let mut tracks: Vec<(i64, Vec<TimedPoint>)> = Vec::new();
        let mut n = 0i64;
        for row in rows {
            let (id, t, x, y) = row?;
            n += 1;
            match tracks.last_mut() {
                Some((last, pts)) if *last == id => pts.push((t, x, y)),
                _ => tracks.push((id, vec![(t, x, y)])),
            }
            if sink.cancelled() {
                break;
            }
        }
        let body = json!({"tracks": tracks, "truncated": n >= MAX_PATH_POINTS});
        serde_json::to_writer(&mut *sink, &body).map_err(std::io::Error::from)?;
        Ok(())
    })
    .await
}
