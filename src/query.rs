//! Read-only queries on the trajectory database, rendered as an aligned table, CSV or JSON.
//!
//! Input: a read-only connection and a filter. Output: a [`Table`] of typed cells.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, params};
use serde_json::{Map, Value as Json};

use crate::track::PointKind;

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
}

/// Why a time argument is not understood.
#[derive(Debug, thiserror::Error)]
#[error(
    "time {0:?}: use RFC 3339 (2026-11-24T09:30:00Z), an age such as 15m, or Unix milliseconds"
)]
pub struct TimeError(pub String);

/// Parses RFC 3339, an age before now (`15m`, `2h`) or Unix milliseconds.
pub fn parse_time(s: &str, now: SystemTime) -> Result<i64, TimeError> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let t = humantime::parse_rfc3339_weak(s)
        .or_else(|_| humantime::parse_duration(s).map(|d| now - d))
        .map_err(|_| TimeError(s.to_string()))?;
    Ok(unix_ms(t))
}

fn unix_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

pub(crate) fn format_time(ms: i64) -> String {
    if ms < 0 {
        return ms.to_string();
    }
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms as u64)).to_string()
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

pub(crate) fn run(
    conn: &Connection,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
    columns: Vec<&'static str>,
    time_columns: &[&str],
) -> rusqlite::Result<Table> {
    let mut stmt = conn.prepare(sql)?;
    let n = columns.len();
    let is_time: Vec<bool> = columns.iter().map(|c| time_columns.contains(c)).collect();
    let rows = stmt
        .query_map(params, |r| {
            (0..n)
                .map(|i| {
                    let c = cell(r.get_ref(i)?);
                    Ok(match c {
                        Cell::Int(ms) if is_time[i] => Cell::Time(ms),
                        other => other,
                    })
                })
                .collect::<rusqlite::Result<Vec<Cell>>>()
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Table { columns, rows })
}

/// Tracks matching `f`, newest first.
pub fn tracks(conn: &Connection, f: &TrackFilter) -> rusqlite::Result<Table> {
    run(
        conn,
        "SELECT id, camera, first_ms, last_ms, ROUND((last_ms - first_ms) / 1000.0, 1), points,
                ended, interrupted, run
         FROM tracks
         WHERE (?1 IS NULL OR camera = ?1)
           AND (?2 IS NULL OR last_ms >= ?2)
           AND (?3 IS NULL OR first_ms <= ?3)
           AND points >= ?4
         ORDER BY first_ms DESC, id DESC
         LIMIT ?5",
        params![f.camera, f.from_ms, f.to_ms, f.min_points, f.limit],
        vec![
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
        &["first_seen", "last_seen"],
    )
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

/// Points of one track in time order, with how each was obtained (observed, interpolated,
/// predicted).
pub fn points(conn: &Connection, track: i64) -> rusqlite::Result<Table> {
    run(
        conn,
        &format!(
            "SELECT ts_ms, {}, ROUND(x, 1), ROUND(y, 1), ROUND(w, 1), ROUND(h, 1),
                    ROUND(score, 3), floor_x, floor_y
             FROM points WHERE track = ?1 ORDER BY ts_ms",
            kind_name_sql()
        ),
        params![track],
        vec![
            "ts", "kind", "x", "y", "w", "h", "score", "floor_x", "floor_y",
        ],
        &["ts"],
    )
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

/// Per camera, run `run` (the latest when None): the analysed and possible rates, where its
/// frames went (decoded = analysed + not picked + skipped + dropped + failed) and what its
/// clock did: the camera's RTCP clock offset from the capture-time reference, the capture
/// delay subtracted (clock in step), jumps of its clock, corrections of the capture times.
pub fn cameras(conn: &Connection, run_id: Option<i64>) -> rusqlite::Result<Table> {
    run(
        conn,
        "SELECT c.run, c.camera, c.streamed_s,
                ROUND(c.analysed / MAX(c.streamed_s, 0.001), 2),
                ROUND(c.slots / MAX(c.streamed_s, 0.001), 2),
                c.decoded, c.analysed, c.not_picked, c.skipped, c.dropped, c.failed, c.undecoded,
                ROUND(c.clock_offset_ms / 1000.0, 3), c.capture_delay_ms, c.clock_jumps,
                c.clock_corrections
         FROM run_cameras c
         WHERE c.run = COALESCE(?1, (SELECT MAX(run) FROM run_cameras))
         ORDER BY c.camera",
        params![run_id],
        vec![
            "run",
            "camera",
            "streamed_s",
            "analysed_fps",
            "possible_fps",
            "decoded",
            "analysed",
            "not_picked",
            "skipped",
            "dropped",
            "failed",
            "not_decoded",
            "clock_offset_s",
            "capture_delay_ms",
            "clock_jumps",
            "corrections",
        ],
        &[],
    )
}

/// Per-second frame rows whose second overlaps the range [?1, ?2] (ms, either may be NULL).
const SECONDS_IN_RANGE: &str = "AND (?1 IS NULL OR f.second >= ?1 / 1000)
                   AND (?2 IS NULL OR f.second <= ?2 / 1000)";

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
                   AND (?1 IS NULL OR t.last_ms >= ?1) AND (?2 IS NULL OR t.first_ms <= ?2)),
                (SELECT COALESCE(SUM(points), 0) FROM tracks t WHERE t.camera = c.id
                   AND (?1 IS NULL OR t.last_ms >= ?1) AND (?2 IS NULL OR t.first_ms <= ?2)),
                (SELECT COUNT(*) FROM tracks t WHERE t.camera = c.id AND t.interrupted = 1
                   AND (?1 IS NULL OR t.last_ms >= ?1) AND (?2 IS NULL OR t.first_ms <= ?2)),
                (SELECT MIN(first_ms) FROM frames_second f WHERE f.camera = c.id {SECONDS}),
                (SELECT MAX(last_ms) FROM frames_second f WHERE f.camera = c.id {SECONDS})
         FROM cameras c ORDER BY c.id"
            .replace("{SECONDS}", SECONDS_IN_RANGE),
        params![from_ms, to_ms],
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

fn text(c: &Cell) -> String {
    match c {
        Cell::Null => String::new(),
        Cell::Int(i) => i.to_string(),
        Cell::Real(f) => f.to_string(),
        Cell::Text(t) => t.clone(),
        Cell::Time(ms) => format_time(*ms),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A table as a JSON array of objects (times as RFC 3339 plus `<name>_ms`).
fn json_rows(t: &Table) -> Json {
    let rows = t
        .rows
        .iter()
        .map(|row| {
            let mut m = Map::new();
            for (name, c) in t.columns.iter().zip(row) {
                let v = match c {
                    Cell::Null => Json::Null,
                    Cell::Int(i) => Json::from(*i),
                    Cell::Real(f) => Json::from(*f),
                    Cell::Text(s) => Json::from(s.clone()),
                    Cell::Time(ms) => Json::from(format_time(*ms)),
                };
                m.insert((*name).to_string(), v);
                if let Cell::Time(ms) = c {
                    m.insert(format!("{name}_ms"), Json::from(*ms));
                }
            }
            Json::Object(m)
        })
        .collect();
    Json::Array(rows)
}

/// Renders named tables as one document: titled tables; CSV blocks (each with its header)
/// separated by a blank line; or one JSON object with a key per table.
pub fn render_sections(sections: &[(&str, &Table)], format: Format) -> String {
    match format {
        Format::Json => {
            let obj: Map<String, Json> = sections
                .iter()
                .map(|(name, t)| ((*name).to_string(), json_rows(t)))
                .collect();
            serde_json::to_string_pretty(&Json::Object(obj)).unwrap_or_default() + "\n"
        }
        Format::Csv => sections
            .iter()
            .map(|(_, t)| render(t, format))
            .collect::<Vec<_>>()
            .join("\n"),
        Format::Table => sections
            .iter()
            .map(|(name, t)| format!("{name}\n{}", render(t, format)))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// Renders a table in `format` (ends with a newline unless empty JSON).
pub fn render(t: &Table, format: Format) -> String {
    match format {
        Format::Csv => {
            let mut out = t.columns.join(",") + "\n";
            for row in &t.rows {
                let line: Vec<String> = row.iter().map(|c| csv_field(&text(c))).collect();
                out += &(line.join(",") + "\n");
            }
            out
        }
        Format::Json => serde_json::to_string_pretty(&json_rows(t)).unwrap_or_default() + "\n",
        Format::Table => {
            let cells: Vec<Vec<String>> = t
                .rows
                .iter()
                .map(|r| r.iter().map(text).collect())
                .collect();
            let widths: Vec<usize> = t
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    cells
                        .iter()
                        .map(|r| r[i].len())
                        .chain([c.len()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let numeric: Vec<bool> = (0..t.columns.len())
                .map(|i| {
                    t.rows
                        .iter()
                        .all(|r| matches!(r[i], Cell::Int(_) | Cell::Real(_) | Cell::Null))
                })
                .collect();
            let line = |vals: Vec<&str>| {
                vals.iter()
                    .enumerate()
                    .map(|(i, v)| {
                        if numeric[i] {
                            format!("{v:>w$}", w = widths[i])
                        } else {
                            format!("{v:<w$}", w = widths[i])
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("  ")
                    .trim_end()
                    .to_string()
                    + "\n"
            };
            let mut out = line(t.columns.clone());
            out += &line(
                widths
                    .iter()
                    .map(|w| "-".repeat(*w))
                    .collect::<Vec<_>>()
                    .iter()
                    .map(|s| s.as_str())
                    .collect(),
            );
            for r in &cells {
                out += &line(r.iter().map(|s| s.as_str()).collect());
            }
            out += &format!("({} rows)\n", t.rows.len());
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        Table {
            columns: vec!["track", "camera", "first_seen", "score"],
            rows: vec![
                vec![
                    Cell::Int(1),
                    Cell::Text("cam,1".into()),
                    Cell::Time(0),
                    Cell::Real(0.5),
                ],
                vec![
                    Cell::Int(22),
                    Cell::Text("cam2".into()),
                    Cell::Time(1500),
                    Cell::Null,
                ],
            ],
        }
    }

    #[test]
    fn csv_quotes_and_formats_times() {
        let s = render(&sample(), Format::Csv);
        assert_eq!(
            s,
            "track,camera,first_seen,score\n1,\"cam,1\",1970-01-01T00:00:00.000Z,0.5\n22,cam2,1970-01-01T00:00:01.500Z,\n"
        );
    }

    #[test]
    fn json_keeps_types_and_raw_ms() {
        let v: serde_json::Value = serde_json::from_str(&render(&sample(), Format::Json)).unwrap();
        assert_eq!(v[1]["track"], 22);
        assert_eq!(v[1]["first_seen_ms"], 1500);
        assert!(v[1]["score"].is_null());
    }

    #[test]
    fn table_aligns_numbers_right() {
        let s = render(&sample(), Format::Table);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "track  camera  first_seen                score");
        assert!(lines[2].starts_with("    1  cam,1"));
        assert_eq!(lines[4], "(2 rows)");
    }

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

    #[test]
    fn sections_render_as_one_json_object_and_csv_blocks() {
        let t = sample();
        let sections = [("cameras", &t), ("runs", &t)];
        let v: serde_json::Value =
            serde_json::from_str(&render_sections(&sections, Format::Json)).unwrap();
        assert_eq!(v["runs"][1]["track"], 22);
        let csv = render_sections(&sections, Format::Csv);
        let blocks: Vec<&str> = csv.split("\n\n").collect();
        assert_eq!(blocks.len(), 2);
        assert!(blocks[1].starts_with("track,camera"));
        let table = render_sections(&sections, Format::Table);
        assert!(table.starts_with("cameras\ntrack"), "{table}");
        assert!(table.contains("\nruns\ntrack"), "{table}");
    }

    #[test]
    fn times_parse_in_three_forms() {
        let now = UNIX_EPOCH + Duration::from_secs(3600);
        assert_eq!(parse_time("1500", now).unwrap(), 1500);
        assert_eq!(parse_time("15m", now).unwrap(), 45 * 60 * 1000);
        assert_eq!(parse_time("1970-01-01T00:00:02Z", now).unwrap(), 2000);
        assert!(parse_time("yesterday-ish", now).is_err());
    }
}
