//! Read-only queries on the trajectory database, rendered as an aligned table, CSV or JSON.
//!
//! Input: a read-only connection and a filter. Output: a [`Table`] of typed cells, or the rows
//! one at a time ([`Query::for_each`]) for answers streamed as they are read. Parameters are
//! always bound; time ranges and cursors are bound as ranges the indexes can use.

pub mod analytics;
pub mod analytics_cli;
mod cameras;
pub mod footfall;
mod format;
pub mod picture;
pub mod snapshot;
mod time;

use std::fmt;
use std::ops::ControlFlow;
use std::str::FromStr;

use rusqlite::types::Value;
use rusqlite::{Connection, params};

use crate::track::PointKind;
pub use cameras::cameras;
pub use format::{json_row, render, render_sections};
pub use time::{MAX_MS, MIN_MS, TimeError, format_time, parse_time};

/// How to print a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// RFC 4180 CSV with a header row.
    Csv,
    /// A JSON array of objects.
    Json,
}

/// One cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// Integer.
    Int(i64),
    /// Real number.
    Real(f64),
    /// Text.
    Text(String),
    /// A Unix-millisecond timestamp (printed as RFC 3339, JSON keeps both).
    Time(i64),
}

/// Query results.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Column names.
    pub columns: Vec<&'static str>,
    /// Rows of cells, one per column.
    pub rows: Vec<Vec<Cell>>,
}

/// Runs listed by `query summary` (all of them: `query runs`).
pub const SUMMARY_RUNS: i64 = 10;

/// Which tracks to list.
#[derive(Debug, Clone, Default)]
pub struct TrackFilter {
    /// Only this camera.
    pub camera: Option<String>,
    /// Tracks seen at or after this time (Unix ms).
    pub from_ms: Option<i64>,
    /// Tracks seen at or before this time (Unix ms).
    pub to_ms: Option<i64>,
    /// Only tracks with at least this many points.
    pub min_points: i64,
    /// At most this many rows (newest first).
    pub limit: i64,
    /// Only tracks after this one in the listing's order (the next page).
    pub after: Option<TrackCursor>,
}

/// A place in the listing of tracks (newest first): the first time and id of the last track
/// of a page. Written `FIRST_MS.ID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackCursor {
    /// `first_ms` of the last track listed.
    pub first_ms: i64,
    /// Its id.
    pub id: i64,
}

impl fmt::Display for TrackCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.first_ms, self.id)
    }
}

/// A cursor that is not one this service wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cursor: not a cursor from a previous page's \"next\"")]
pub struct CursorError;

impl FromStr for TrackCursor {
    type Err = CursorError;
    fn from_str(s: &str) -> Result<Self, CursorError> {
        let (a, b) = s.split_once('.').ok_or(CursorError)?;
        Ok(Self {
            first_ms: a.parse().map_err(|_| CursorError)?,
            id: b.parse().map_err(|_| CursorError)?,
        })
    }
}

/// Which points of a track to list (time order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PointFilter {
    /// The track.
    pub track: i64,
    /// Only points after this time (Unix ms): the last time of the previous page.
    pub after_ms: Option<i64>,
    /// At most this many rows (None: all).
    pub limit: Option<i64>,
}

fn cell(v: rusqlite::types::ValueRef<'_>) -> Cell {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(i) => Cell::Int(i),
        ValueRef::Real(f) => Cell::Real(f),
        ValueRef::Text(t) | ValueRef::Blob(t) => Cell::Text(String::from_utf8_lossy(t).into()),
    }
}

/// One statement with its bound parameters and the names of its columns.
#[derive(Debug, Clone)]
pub struct Query {
    sql: String,
    params: Vec<Value>,
    columns: Vec<&'static str>,
    time_columns: &'static [&'static str],
}

impl Query {
    /// The column names, in order.
    pub fn columns(&self) -> &[&'static str] {
        &self.columns
    }

    /// Calls `each` with every row in order until it answers `Break`.
    pub fn for_each(
        &self,
        conn: &Connection,
        each: impl FnMut(&[Cell]) -> ControlFlow<()>,
    ) -> rusqlite::Result<()> {
        let params = rusqlite::params_from_iter(self.params.iter());
        for_each_row(
            conn,
            &self.sql,
            params,
            &self.columns,
            self.time_columns,
            each,
        )
    }

    /// Every row, as a table.
    pub fn table(&self, conn: &Connection) -> rusqlite::Result<Table> {
        let mut rows = Vec::new();
        self.for_each(conn, |r| {
            rows.push(r.to_vec());
            ControlFlow::Continue(())
        })?;
        Ok(Table {
            columns: self.columns.clone(),
            rows,
        })
    }
}

fn for_each_row(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    columns: &[&'static str],
    time_columns: &[&str],
    mut each: impl FnMut(&[Cell]) -> ControlFlow<()>,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare(sql)?;
    let is_time: Vec<bool> = columns.iter().map(|c| time_columns.contains(c)).collect();
    let mut rows = stmt.query(params)?;
    let mut cells = Vec::with_capacity(columns.len());
    while let Some(r) = rows.next()? {
        cells.clear();
        for (i, time) in is_time.iter().enumerate() {
            cells.push(match cell(r.get_ref(i)?) {
                Cell::Int(ms) if *time => Cell::Time(ms),
                other => other,
            });
        }
        if each(&cells).is_break() {
            break;
        }
    }
    Ok(())
}

pub(crate) fn run(
    conn: &Connection,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
    columns: Vec<&'static str>,
    time_columns: &[&str],
) -> rusqlite::Result<Table> {
    let mut rows = Vec::new();
    for_each_row(conn, sql, params, &columns, time_columns, |r| {
        rows.push(r.to_vec());
        ControlFlow::Continue(())
    })?;
    Ok(Table { columns, rows })
}

/// The statement listing tracks matching `f`, newest first. Each condition is added only when
/// given, so the `(camera, first_ms)` and `first_ms` indexes serve the range and the cursor.
pub fn tracks_query(f: &TrackFilter) -> Query {
    let mut sql = String::from(
        "SELECT id, camera, first_ms, last_ms, ROUND((last_ms - first_ms) / 1000.0, 1), points,
                ended, interrupted, run
         FROM tracks WHERE points >= ?",
    );
    let mut params = vec![Value::Integer(f.min_points)];
    if let Some(c) = &f.camera {
        sql += " AND camera = ?";
        params.push(Value::Text(c.clone()));
    }
    if let Some(from) = f.from_ms {
        sql += " AND last_ms >= ?";
        params.push(Value::Integer(from));
    }
    if let Some(to) = f.to_ms {
        sql += " AND first_ms <= ?";
        params.push(Value::Integer(to));
    }
    if let Some(c) = f.after {
        sql += " AND first_ms <= ? AND (first_ms < ? OR id < ?)";
        params.extend([c.first_ms, c.first_ms, c.id].map(Value::Integer));
    }
    sql += " ORDER BY first_ms DESC, id DESC LIMIT ?";
    params.push(Value::Integer(f.limit));
    Query {
        sql,
        params,
        columns: vec![
            "track",
            "camera",
            "first_seen",
            "last_seen",
            "duration_s",
            "points",
            "ended",
            "interrupted",
            "run",
        ],
        time_columns: &["first_seen", "last_seen"],
    }
}

/// Tracks matching `f`, newest first.
pub fn tracks(conn: &Connection, f: &TrackFilter) -> rusqlite::Result<Table> {
    tracks_query(f).table(conn)
}

/// The cursor of a row of [`tracks_query`] (None when the row is not one).
pub fn track_cursor(row: &[Cell]) -> Option<TrackCursor> {
    match (row.first(), row.get(2)) {
        (Some(Cell::Int(id)), Some(Cell::Time(first_ms))) => Some(TrackCursor {
            first_ms: *first_ms,
            id: *id,
        }),
        _ => None,
    }
}

/// SQL turning `points.kind` into its name.
fn kind_name_sql() -> String {
    let arms: String = [
        PointKind::Observed,
        PointKind::Interpolated,
        PointKind::Predicted,
    ]
    .iter()
    .map(|k| format!(" WHEN {} THEN '{}'", k.code(), k.name()))
    .collect();
    format!("CASE kind{arms} ELSE CAST(kind AS TEXT) END")
}

/// The statement listing a track's points in time order, with how each was obtained
/// (observed, interpolated, predicted).
pub fn points_query(f: &PointFilter) -> Query {
    let mut sql = format!(
        "SELECT ts_ms, {}, ROUND(x, 1), ROUND(y, 1), ROUND(w, 1), ROUND(h, 1),
                ROUND(score, 3), floor_x, floor_y
         FROM points WHERE track = ?",
        kind_name_sql()
    );
    let mut params = vec![Value::Integer(f.track)];
    if let Some(after) = f.after_ms {
        sql += " AND ts_ms > ?";
        params.push(Value::Integer(after));
    }
    sql += " ORDER BY ts_ms";
    if let Some(limit) = f.limit {
        sql += " LIMIT ?";
        params.push(Value::Integer(limit));
    }
    Query {
        sql,
        params,
        columns: vec![
            "ts", "kind", "x", "y", "w", "h", "score", "floor_x", "floor_y",
        ],
        time_columns: &["ts"],
    }
}

/// Every point of one track in time order.
pub fn points(conn: &Connection, track: i64) -> rusqlite::Result<Table> {
    points_query(&PointFilter {
        track,
        after_ms: None,
        limit: None,
    })
    .table(conn)
}

/// Service runs overlapping a time range, newest first. `status` is `clean` (orderly stop),
/// `crashed` (found dead and closed by a later start), `running` (not ended, and a service
/// holds the database's run lock: `writer_alive`) or `dead` (not ended and no service holds
/// the lock: the next start closes it as crashed). `ended` of a crashed run is its last commit.
pub fn runs(
    conn: &Connection,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    limit: i64,
    writer_alive: bool,
) -> rusqlite::Result<Table> {
    run(
        conn,
        &"SELECT r.id, r.started_ms, r.ended_ms, r.last_ms,
                ROUND((COALESCE(r.ended_ms, r.last_ms) - r.started_ms) / 1000.0, 1),
                CASE WHEN r.ended_ms IS NULL AND ?4 THEN 'running'
                     WHEN r.ended_ms IS NULL THEN 'dead'
                     WHEN r.clean = 1 THEN 'clean' ELSE 'crashed' END,
                (SELECT COUNT(*) FROM tracks t WHERE t.run = r.id),
                (SELECT COUNT(*) FROM tracks t WHERE t.run = r.id AND t.interrupted = 1),
                (SELECT COALESCE(SUM(points), 0) FROM tracks t WHERE t.run = r.id),
                r.cameras,
                (SELECT SUM(analysed) FROM run_cameras c WHERE c.run = r.id),
                (SELECT COUNT(*) FROM run_cameras c WHERE c.run = r.id
                   AND c.analysed < {SHORTFALL} * c.slots),
                (SELECT SUM(clock_jumps) FROM run_cameras c WHERE c.run = r.id),
                r.version, r.host, r.pid, r.config_path, r.config_sha256, r.closed_by
         FROM runs r
         WHERE (?1 IS NULL OR COALESCE(r.ended_ms, r.last_ms, r.started_ms) >= ?1)
           AND (?2 IS NULL OR r.started_ms <= ?2)
         ORDER BY r.id DESC
         LIMIT ?3"
            .replace("{SHORTFALL}", &crate::stats::SHORTFALL.to_string()),
        params![from_ms, to_ms, limit, writer_alive],
        vec![
            "run",
            "started",
            "ended",
            "last_commit",
            "duration_s",
            "status",
            "tracks",
            "interrupted",
            "points",
            "cameras",
            "analysed",
            "below_rate",
            "clock_jumps",
            "version",
            "host",
            "pid",
            "config",
            "config_sha256",
            "closed_by",
        ],
        &["started", "ended", "last_commit"],
    )
}

/// Per-second frame rows whose second overlaps the range [?1, ?2] (ms), bound as a range the
/// `(camera, second)` key serves.
const SECONDS_IN_RANGE: &str = "AND f.second BETWEEN ?1 / 1000 AND ?2 / 1000";

/// Per-camera totals within an optional time range (frames counted by whole seconds).
pub fn summary(
    conn: &Connection,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
) -> rusqlite::Result<Table> {
    run(
        conn,
        &"SELECT c.id, c.name,
                (SELECT COALESCE(SUM(frames), 0) FROM frames_second f WHERE f.camera = c.id {SECONDS}),
                (SELECT ROUND(SUM(persons_sum) * 1.0 / SUM(frames), 2) FROM frames_second f
                   WHERE f.camera = c.id {SECONDS}),
                (SELECT MAX(persons_max) FROM frames_second f WHERE f.camera = c.id {SECONDS}),
                (SELECT COUNT(*) FROM tracks t WHERE t.camera = c.id
                   AND t.first_ms <= ?2 AND t.last_ms >= ?1),
                (SELECT COALESCE(SUM(points), 0) FROM tracks t WHERE t.camera = c.id
                   AND t.first_ms <= ?2 AND t.last_ms >= ?1),
                (SELECT COUNT(*) FROM tracks t WHERE t.camera = c.id AND t.interrupted = 1
                   AND t.first_ms <= ?2 AND t.last_ms >= ?1),
                (SELECT MIN(first_ms) FROM frames_second f WHERE f.camera = c.id {SECONDS}),
                (SELECT MAX(last_ms) FROM frames_second f WHERE f.camera = c.id {SECONDS})
         FROM cameras c ORDER BY c.id"
            .replace("{SECONDS}", SECONDS_IN_RANGE),
        params![from_ms.unwrap_or(i64::MIN / 4), to_ms.unwrap_or(i64::MAX / 4)],
        vec![
            "camera",
            "name",
            "frames",
            "avg_persons",
            "max_persons",
            "tracks",
            "points",
            "interrupted",
            "first_seen",
            "last_seen",
        ],
        &["first_seen", "last_seen"],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database with three runs: 1 crashed (one track left open), 2 clean, 3 not ended.
    fn runs_db(dir: &tempfile::TempDir) -> Connection {
        use crate::store::runs;
        let mut c = Connection::open(dir.path().join("t.db")).unwrap();
        crate::store::schema::migrate(&mut c).unwrap();
        let info = runs::RunInfo::current(std::path::Path::new("c.toml"), "ab12", 1);
        c.execute_batch(
            "INSERT INTO cameras(id, name, url, added_ms) VALUES ('cam1', 'c', 'rtsp://x', 0);",
        )
        .unwrap();
        let a = runs::begin(&mut c, &info, 1_000).unwrap().id;
        c.execute(
            "INSERT INTO tracks(camera, first_ms, last_ms, points, run) VALUES ('cam1', 1100, 1300, 3, ?1)",
            [a],
        )
        .unwrap();
        for (ts, kind) in [(1100, 0), (1200, 1), (1300, 2)] {
            c.execute(
                "INSERT INTO points(track, ts_ms, x, y, w, h, score, kind) VALUES (1, ?1, 1, 2, 3, 4, 0.9, ?2)",
                [ts, kind],
            )
            .unwrap();
        }
        let b = runs::begin(&mut c, &info, 5_000).unwrap().id;
        runs::finish(&mut c, b, 6_000, true).unwrap();
        runs::begin(&mut c, &info, 7_000).unwrap();
        c
    }

    #[test]
    fn runs_show_status_and_their_tracks() {
        let dir = tempfile::tempdir().unwrap();
        let c = runs_db(&dir);
        let t = runs(&c, None, None, 10, true).unwrap();
        let col = |name| t.columns.iter().position(|c| *c == name).unwrap();
        let get = |row: usize, name| t.rows[row][col(name)].clone();
        assert_eq!(t.rows.len(), 3);
        let status: Vec<Cell> = (0..3).map(|r| get(r, "status")).collect();
        assert_eq!(
            status,
            ["running", "clean", "crashed"].map(|s| Cell::Text(s.into()))
        );
        let t = runs(&c, None, None, 1, false).unwrap();
        assert_eq!(t.rows[0][col("status")], Cell::Text("dead".into()));
        assert_eq!(
            get(2, "ended"),
            Cell::Time(1_000),
            "ended at its last commit"
        );
        assert_eq!(get(2, "tracks"), Cell::Int(1));
        assert_eq!(get(2, "interrupted"), Cell::Int(1));
        assert_eq!(get(2, "points"), Cell::Int(3));
        assert_eq!(get(2, "closed_by"), Cell::Int(2));
        assert_eq!(get(1, "duration_s"), Cell::Real(1.0));
        assert_eq!(get(0, "config_sha256"), Cell::Text("ab12".into()));
        // Only runs that overlap the range.
        assert_eq!(
            runs(&c, Some(5_500), Some(6_500), 10, false)
                .unwrap()
                .rows
                .len(),
            1
        );
    }

    #[test]
    fn points_show_how_each_was_obtained() {
        let dir = tempfile::tempdir().unwrap();
        let c = runs_db(&dir);
        let t = points(&c, 1).unwrap();
        assert_eq!(t.columns[1], "kind");
        let kinds: Vec<Cell> = t.rows.iter().map(|r| r[1].clone()).collect();
        assert_eq!(
            kinds,
            ["observed", "interpolated", "predicted"].map(|s| Cell::Text(s.into()))
        );
    }
}
