//! Read-only queries on the store analytics tables: store trajectories, zone visits, dwell,
//! zone-to-zone flows, occupancy and unique visitors over time. Zone visits count once they
//! are over (`ended = 1`, including those a crash interrupted, which end at their last
//! position written); visits still open are in `query occupancy --now`.
//!
//! Input: a read-only connection and a [`Range`]. Output: a [`Table`] like every other query.
//! Parameters are always bound. Time ranges are bound as concrete numbers (never
//! `?1 IS NULL OR …`) so SQLite can use the range indexes; the indexes are the ones the plans
//! of these statements ask for (see docs/analytics.md, Query speed).

use std::collections::{BTreeMap, HashSet};

use rusqlite::{Connection, params};

use crate::query::{Cell, Table, run};

/// Longest a zone visit can last; bounds how far before the range visits are looked up.
const MAX_VISIT_MS: i64 = 12 * 3_600_000;
/// Longest a store trajectory can last, for the same reason.
const MAX_STORE_TRACK_MS: i64 = 24 * 3_600_000;
/// Most time buckets one answer may have (a year of hours is 8,760; a week of minutes 10,080).
pub const MAX_BUCKETS: i64 = 100_000;

/// Why an analytics query could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// SQLite failed.
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    /// The range holds more buckets than one answer may have.
    #[error(
        "{from} .. {to} in buckets of {bucket} is {buckets} buckets; at most {MAX_BUCKETS}: \
         use a longer --bucket or a shorter range",
        from = crate::query::format_time(*from_ms),
        to = crate::query::format_time(*to_ms),
        bucket = humantime::format_duration(std::time::Duration::from_millis(*bucket_ms as u64))
    )]
    TooManyBuckets {
        /// Range start, Unix ms.
        from_ms: i64,
        /// Range end, Unix ms.
        to_ms: i64,
        /// Bucket length, ms.
        bucket_ms: i64,
        /// Buckets the range would hold.
        buckets: i64,
    },
}

/// A time range, Unix ms; `None` ends are open.
#[derive(Debug, Clone, Copy, Default)]
pub struct Range {
    /// From (inclusive).
    pub from_ms: Option<i64>,
    /// To (inclusive).
    pub to_ms: Option<i64>,
}

impl Range {
    fn from(&self) -> i64 {
        self.from_ms.unwrap_or(i64::MIN / 4)
    }
    fn to(&self) -> i64 {
        self.to_ms.unwrap_or(i64::MAX / 4)
    }
}

/// Store trajectories in the range, newest first.
pub fn stores(
    conn: &Connection,
    r: &Range,
    min_points: i64,
    limit: i64,
) -> rusqlite::Result<Table> {
    run(
        conn,
        "SELECT t.id, t.first_ms, t.last_ms, ROUND((t.last_ms - t.first_ms) / 1000.0, 1),
                t.points, t.cameras,
                (SELECT COUNT(*) FROM store_members m WHERE m.store_track = t.id),
                (SELECT COUNT(*) FROM zone_visits v WHERE v.store_track = t.id AND v.ended = 1)
         FROM store_tracks t
         WHERE t.first_ms BETWEEN ?1 - ?5 AND ?2 AND t.last_ms >= ?1 AND t.points >= ?3
         ORDER BY t.first_ms DESC, t.id DESC
         LIMIT ?4",
        params![r.from(), r.to(), min_points, limit, MAX_STORE_TRACK_MS],
        vec![
            "store_track",
            "first_seen",
            "last_seen",
            "duration_s",
            "points",
            "cameras",
            "camera_tracks",
            "visits",
        ],
        &["first_seen", "last_seen"],
    )
}

/// Zone visits that began in the range, in time order.
pub fn visits(
    conn: &Connection,
    r: &Range,
    zone: Option<&str>,
    limit: i64,
) -> rusqlite::Result<Table> {
    run(
        conn,
        "SELECT store_track, zone, from_zone, enter_ms, leave_ms,
                ROUND((leave_ms - enter_ms) / 1000.0, 1)
         FROM zone_visits
         WHERE enter_ms BETWEEN ?1 AND ?2 AND (?3 IS NULL OR zone = ?3) AND ended = 1
         ORDER BY enter_ms, id
         LIMIT ?4",
        params![r.from(), r.to(), zone, limit],
        vec![
            "store_track",
            "zone",
            "from_zone",
            "enter",
            "leave",
            "dwell_s",
        ],
        &["enter", "leave"],
    )
}

/// Per zone: visits that began in the range, median / p90 / mean / total dwell in seconds.
pub fn dwell(conn: &Connection, r: &Range) -> rusqlite::Result<Table> {
    let mut stmt = conn.prepare(
        "SELECT zone, leave_ms - enter_ms FROM zone_visits
         WHERE enter_ms BETWEEN ?1 AND ?2 AND ended = 1",
    )?;
    let mut by_zone: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let rows = stmt.query_map(params![r.from(), r.to()], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
    })?;
    for row in rows {
        let (zone, d) = row?;
        by_zone.entry(zone).or_default().push(d);
    }
    let secs = |ms: f64| Cell::Real((ms / 100.0).round() / 10.0);
    let rows = by_zone
        .into_iter()
        .map(|(zone, mut d)| {
            d.sort_unstable();
            let total: i64 = d.iter().sum();
            vec![
                Cell::Text(zone),
                Cell::Int(d.len() as i64),
                secs(percentile(&d, 0.5)),
                secs(percentile(&d, 0.9)),
                secs(total as f64 / d.len() as f64),
                secs(total as f64),
            ]
        })
        .collect();
    Ok(Table {
        columns: vec!["zone", "visits", "median_s", "p90_s", "mean_s", "total_s"],
        rows,
    })
}

/// Linear-interpolated percentile of sorted values (`q` in 0..=1).
pub fn percentile(sorted: &[i64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (i, f) = (pos.floor() as usize, pos.fract());
    let a = sorted[i] as f64;
    let b = sorted[(i + 1).min(sorted.len() - 1)] as f64;
    a + f * (b - a)
}

/// Zone → zone moves (a visit and the same trajectory's previous one) that began in the range.
pub fn flows(conn: &Connection, r: &Range) -> rusqlite::Result<Table> {
    run(
        conn,
        "SELECT from_zone, zone, COUNT(*), ROUND(AVG(leave_ms - enter_ms) / 1000.0, 1)
         FROM zone_visits
         WHERE enter_ms BETWEEN ?1 AND ?2 AND from_zone IS NOT NULL AND ended = 1
         GROUP BY from_zone, zone
         ORDER BY COUNT(*) DESC, from_zone, zone",
        params![r.from(), r.to()],
        vec!["from_zone", "to_zone", "count", "mean_dwell_s"],
        &[],
    )
}

/// Buckets of `bucket_ms` (≥ 1) covering the range (aligned to the epoch); at most
/// [`MAX_BUCKETS`].
fn buckets(from: i64, to: i64, bucket_ms: i64) -> Result<Vec<i64>, QueryError> {
    let first = from.div_euclid(bucket_ms) * bucket_ms;
    let count = to
        .saturating_sub(first)
        .div_euclid(bucket_ms)
        .saturating_add(1);
    if count > MAX_BUCKETS {
        return Err(QueryError::TooManyBuckets {
            from_ms: from,
            to_ms: to,
            bucket_ms,
            buckets: count,
        });
    }
    Ok((0..count.max(0)).map(|i| first + i * bucket_ms).collect())
}

/// Range ends when open: the data's own extent.
#[derive(Clone, Copy)]
enum Extent {
    Visits,
    Stores,
}

fn extent(conn: &Connection, r: &Range, table: Extent) -> rusqlite::Result<Option<(i64, i64)>> {
    let sql = match table {
        Extent::Visits => "SELECT MIN(enter_ms), MAX(leave_ms) FROM zone_visits WHERE ended = 1",
        Extent::Stores => "SELECT MIN(first_ms), MAX(last_ms) FROM store_tracks",
    };
    let (min, max): (Option<i64>, Option<i64>) =
        conn.query_row(sql, [], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(match (r.from_ms.or(min), r.to_ms.or(max)) {
        (Some(a), Some(b)) if a <= b => Some((a, b)),
        _ => None,
    })
}

/// Unique store trajectories present in each bucket (a zone's visitors with `zone`).
pub fn visitors(
    conn: &Connection,
    r: &Range,
    bucket_ms: i64,
    zone: Option<&str>,
) -> Result<Table, QueryError> {
    let table = if zone.is_some() {
        Extent::Visits
    } else {
        Extent::Stores
    };
    let mut counts: BTreeMap<i64, HashSet<i64>> = BTreeMap::new();
    if let Some((from, to)) = extent(conn, r, table)? {
        for b in buckets(from, to, bucket_ms)? {
            counts.insert(b, Default::default());
        }
        let spans = match zone {
            Some(z) => spans(
                conn,
                "SELECT store_track, enter_ms, leave_ms FROM zone_visits
                 WHERE enter_ms BETWEEN ?1 - ?3 AND ?2 AND leave_ms >= ?1 AND zone = ?4
                   AND ended = 1",
                params![from, to, MAX_VISIT_MS, z],
            )?,
            None => spans(
                conn,
                "SELECT id, first_ms, last_ms FROM store_tracks
                 WHERE first_ms BETWEEN ?1 - ?3 AND ?2 AND last_ms >= ?1",
                params![from, to, MAX_STORE_TRACK_MS],
            )?,
        };
        for (id, a, b) in spans {
            for (_, set) in counts.range_mut(a.div_euclid(bucket_ms) * bucket_ms..=b) {
                set.insert(id);
            }
        }
    }
    Ok(Table {
        columns: vec!["from", "visitors"],
        rows: counts
            .into_iter()
            .map(|(b, s)| vec![Cell::Time(b), Cell::Int(s.len() as i64)])
            .collect(),
    })
}

fn spans(
    conn: &Connection,
    sql: &str,
    p: &[&dyn rusqlite::ToSql],
) -> rusqlite::Result<Vec<(i64, i64, i64)>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(p, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

/// Per zone and bucket: entries, exits, visitors, mean and peak number of people inside.
pub fn occupancy(
    conn: &Connection,
    r: &Range,
    bucket_ms: i64,
    zone: Option<&str>,
) -> Result<Table, QueryError> {
    let mut rows = Vec::new();
    let Some((from, to)) = extent(conn, r, Extent::Visits)? else {
        return Ok(occupancy_table(rows));
    };
    let mut stmt = conn.prepare(
        "SELECT zone, enter_ms, leave_ms FROM zone_visits
         WHERE enter_ms BETWEEN ?1 - ?3 AND ?2 AND leave_ms >= ?1 AND (?4 IS NULL OR zone = ?4)
           AND ended = 1",
    )?;
    let mut by_zone: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for row in stmt.query_map(params![from, to, MAX_VISIT_MS, zone], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })? {
        let (z, a, b) = row?;
        by_zone.entry(z).or_default().push((a, b));
    }
    let buckets = buckets(from, to, bucket_ms)?;
    for (z, visits) in by_zone {
        for &b in &buckets {
            let end = b + bucket_ms;
            let inside: Vec<(i64, i64)> = visits
                .iter()
                .filter(|(a, l)| *a < end && *l >= b)
                .map(|(a, l)| ((*a).max(b), (*l).min(end)))
                .collect();
            let entries = visits.iter().filter(|(a, _)| (b..end).contains(a)).count();
            let exits = visits.iter().filter(|(_, l)| (b..end).contains(l)).count();
            let busy: i64 = inside.iter().map(|(a, l)| l - a).sum();
            rows.push(vec![
                Cell::Text(z.clone()),
                Cell::Time(b),
                Cell::Int(entries as i64),
                Cell::Int(exits as i64),
                Cell::Int(inside.len() as i64),
                Cell::Real((busy as f64 / bucket_ms as f64 * 100.0).round() / 100.0),
                Cell::Int(peak(&inside)),
            ]);
        }
    }
    Ok(occupancy_table(rows))
}

fn occupancy_table(rows: Vec<Vec<Cell>>) -> Table {
    Table {
        columns: vec![
            "zone",
            "from",
            "entries",
            "exits",
            "visitors",
            "mean_inside",
            "peak_inside",
        ],
        rows,
    }
}

/// Most intervals open at once.
fn peak(spans: &[(i64, i64)]) -> i64 {
    let mut ev: Vec<(i64, i64)> = spans
        .iter()
        .flat_map(|(a, b)| [(*a, 1), (*b, -1)])
        .collect();
    // At equal times an arrival counts before a departure (both were inside at that moment).
    ev.sort_by_key(|(t, d)| (*t, -d));
    let (mut now, mut best) = (0, 0);
    for (_, d) in ev {
        now += d;
        best = best.max(now);
    }
    best
}

/// The fused floor positions of one store trajectory, with the camera tracks it is made of.
pub fn path(conn: &Connection, store_track: i64) -> rusqlite::Result<Table> {
    let mut t = run(
        conn,
        "SELECT ts_ms, ROUND(x, 3), ROUND(y, 3), cameras FROM store_points
         WHERE store_track = ?1 ORDER BY ts_ms",
        params![store_track],
        vec!["ts", "floor_x", "floor_y", "cameras"],
        &["ts"],
    )?;
    // Which camera tracks cover each point (their time spans): a short second query.
    let members = spans_of_members(conn, store_track)?;
    t.columns.push("camera_tracks");
    for row in &mut t.rows {
        let Cell::Time(ts) = row[0] else { continue };
        let ids: Vec<String> = members
            .iter()
            .filter(|(_, _, a, b)| (*a..=*b).contains(&ts))
            .map(|(cam, id, _, _)| format!("{cam}/{id}"))
            .collect();
        row.push(Cell::Text(ids.join(" ")));
    }
    Ok(t)
}

fn spans_of_members(
    conn: &Connection,
    store_track: i64,
) -> rusqlite::Result<Vec<(String, i64, i64, i64)>> {
    let mut stmt = conn.prepare(
        "SELECT t.camera, t.id, t.first_ms, t.last_ms FROM store_members m
         JOIN tracks t ON t.id = m.track WHERE m.store_track = ?1 ORDER BY t.first_ms",
    )?;
    let rows = stmt.query_map(params![store_track], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })?;
    rows.collect()
}
