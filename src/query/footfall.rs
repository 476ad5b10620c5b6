//! Footfall queries: crossings of counting lines per time bucket (in, out, net), queues per
//! bucket (waits, outcomes, median and p90 wait, length, Little's law), alerts (newest first,
//! in pages), and occupancy now (open zone visits, queue lengths, the store).
//!
//! Input: a read-only connection, a time range and a bucket length. Output: [`Table`]s.
//! Parameters are always bound; time ranges are bound as numbers so the `ts_ms` / `end_ms`
//! indexes serve them.

use std::collections::BTreeMap;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};

use super::{Cell, Query, Table, run};
use crate::query::analytics::percentile;

/// A trajectory seen this recently (before the newest position stored) counts as in the
/// store now.
const PRESENT_MS: i64 = 2_000;

/// Range bounds, Unix ms (open ends as far as SQLite integers go comfortably).
fn bounds(from_ms: Option<i64>, to_ms: Option<i64>) -> (i64, i64) {
    (
        from_ms.unwrap_or(i64::MIN / 4),
        to_ms.unwrap_or(i64::MAX / 4),
    )
}

/// Per line and bucket with crossings: crossings in, out, and in − out.
pub fn footfall(
    conn: &Connection,
    range: (Option<i64>, Option<i64>),
    bucket_ms: i64,
    line: Option<&str>,
) -> rusqlite::Result<Table> {
    let (from, to) = bounds(range.0, range.1);
    run(
        conn,
        "SELECT line, (ts_ms / ?3) * ?3 AS b,
                SUM(direction = 'in'), SUM(direction = 'out'),
                SUM(direction = 'in') - SUM(direction = 'out')
         FROM line_crossings
         WHERE ts_ms BETWEEN ?1 AND ?2 AND (?4 IS NULL OR line = ?4)
         GROUP BY line, b ORDER BY line, b",
        params![from, to, bucket_ms.max(1), line],
        vec!["line", "from", "in", "out", "net"],
        &["from"],
    )
}

/// One queue's waits and lengths in a bucket.
#[derive(Default)]
struct Bucket {
    arrivals: i64,
    waits: Vec<i64>,
    served: i64,
    abandoned: i64,
    left: i64,
    /// Person-ms waiting, the ms of the bucket the lengths cover, and the longest length.
    busy_ms: i64,
    covered_ms: i64,
    max_len: i64,
}

/// Per queue and bucket: arrivals, waits ended by outcome, median / p90 / mean wait, mean and
/// longest queue length, and Little's law (arrivals per ms × mean wait) beside the mean length
/// — both over the part of the bucket the stored lengths cover (from the queue's first length
/// change to its last change or wait).
pub fn queue(
    conn: &Connection,
    range: (Option<i64>, Option<i64>),
    bucket_ms: i64,
    queue: Option<&str>,
) -> rusqlite::Result<Table> {
    let (from, to) = bounds(range.0, range.1);
    let b = bucket_ms.max(1);
    let mut buckets: BTreeMap<(String, i64), Bucket> = BTreeMap::new();
    let mut stmt = conn.prepare(
        "SELECT queue, enter_ms, end_ms, wait_ms, outcome FROM queue_waits
         WHERE end_ms BETWEEN ?1 AND ?2 AND (?3 IS NULL OR queue = ?3)",
    )?;
    let rows = stmt.query_map(params![from, to, queue], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, String>(4)?,
        ))
    })?;
    for row in rows {
        let (q, enter, end, wait, outcome) = row?;
        let e = buckets
            .entry((q.clone(), end.div_euclid(b) * b))
            .or_default();
        e.waits.push(wait);
        match outcome.as_str() {
            "served" => e.served += 1,
            "abandoned" => e.abandoned += 1,
            _ => e.left += 1,
        }
        if enter >= from {
            buckets
                .entry((q, enter.div_euclid(b) * b))
                .or_default()
                .arrivals += 1;
        }
    }
    lengths(conn, (from, to), b, queue, &mut buckets)?;
    let secs = |ms: f64| Cell::Real((ms / 100.0).round() / 10.0);
    let rows = buckets
        .into_iter()
        .map(|((q, start), mut k)| {
            k.waits.sort_unstable();
            let n = k.waits.len();
            let mean = (n > 0).then(|| k.waits.iter().sum::<i64>() as f64 / n as f64);
            let pct = |p| (n > 0).then(|| secs(percentile(&k.waits, p)));
            let round2 = |v: f64| Cell::Real((v * 100.0).round() / 100.0);
            // Over the part of the bucket the lengths cover (not the hours after the data).
            let span = k.covered_ms.max(1) as f64;
            vec![
                Cell::Text(q),
                Cell::Time(start),
                Cell::Int(k.arrivals),
                Cell::Int(k.served),
                Cell::Int(k.abandoned),
                Cell::Int(k.left),
                pct(0.5).unwrap_or(Cell::Null),
                pct(0.9).unwrap_or(Cell::Null),
                mean.map_or(Cell::Null, secs),
                round2(k.busy_ms as f64 / span),
                Cell::Int(k.max_len),
                mean.map_or(Cell::Null, |m| round2(k.arrivals as f64 / span * m)),
            ]
        })
        .collect();
    Ok(Table {
        columns: vec![
            "queue",
            "from",
            "arrivals",
            "served",
            "abandoned",
            "left",
            "median_wait_s",
            "p90_wait_s",
            "mean_wait_s",
            "mean_length",
            "max_length",
            "little_length",
        ],
        rows,
    })
}

/// Adds the time-weighted and longest queue length per bucket from `queue_lengths` (one row
/// per change; the length before the range is its last change before it).
fn lengths(
    conn: &Connection,
    (from, to): (i64, i64),
    b: i64,
    queue: Option<&str>,
    buckets: &mut BTreeMap<(String, i64), Bucket>,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare(
        "SELECT queue, ts_ms, length FROM queue_lengths
         WHERE ts_ms BETWEEN ?1 AND ?2 AND (?3 IS NULL OR queue = ?3) ORDER BY queue, ts_ms",
    )?;
    let rows: Vec<(String, i64, i64)> = stmt
        .query_map(params![from, to, queue], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut by_queue: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for (q, ts, len) in rows {
        by_queue.entry(q).or_default().push((ts, len));
    }
    for (q, changes) in by_queue {
        // Each length holds until the next change; the last one until the end of the queue's
        // data in the range (its last change or wait).
        let last_wait: Option<i64> = conn.query_row(
            "SELECT MAX(end_ms) FROM queue_waits WHERE queue = ?1 AND end_ms BETWEEN ?2 AND ?3",
            params![q, from, to],
            |r| r.get(0),
        )?;
        let data_end = changes
            .last()
            .map_or(to, |c| c.0)
            .max(last_wait.unwrap_or(i64::MIN));
        for (i, &(ts, len)) in changes.iter().enumerate() {
            let until = changes.get(i + 1).map_or(data_end, |n| n.0);
            let mut t = ts;
            while t < until {
                let start = t.div_euclid(b) * b;
                let end = (start + b).min(until);
                let e = buckets.entry((q.clone(), start)).or_default();
                e.busy_ms += len * (end - t);
                e.covered_ms += end - t;
                e.max_len = e.max_len.max(len);
                t = end;
            }
        }
    }
    Ok(())
}

/// Alerts raised in the range, newest first, `limit` rows after the cursor (an alert id);
/// `active` only those not cleared.
pub fn alerts_query(
    range: (Option<i64>, Option<i64>),
    active: bool,
    after_id: Option<i64>,
    limit: i64,
) -> Query {
    let (from, to) = bounds(range.0, range.1);
    let mut sql = String::from(
        "SELECT id, rule, rule_kind, NULLIF(subject, ''), raised_ms, cleared_ms,
                value, threshold, cleared_value,
                ROUND((COALESCE(cleared_ms, raised_ms) - raised_ms) / 1000.0, 1)
         FROM alerts WHERE raised_ms BETWEEN ? AND ?",
    );
    let mut params = vec![Value::Integer(from), Value::Integer(to)];
    if active {
        sql += " AND cleared_ms IS NULL";
    }
    if let Some(id) = after_id {
        sql += " AND id < ?";
        params.push(Value::Integer(id));
    }
    sql += " ORDER BY id DESC LIMIT ?";
    params.push(Value::Integer(limit));
    Query {
        sql,
        params,
        columns: vec![
            "alert",
            "rule",
            "kind",
            "subject",
            "raised",
            "cleared",
            "value",
            "threshold",
            "cleared_value",
            "duration_s",
        ],
        time_columns: &["raised", "cleared"],
    }
}

/// Occupancy now: the store (trajectories seen within 2 s of the newest position stored, and
/// the last counts event's estimate, which door lines correct), each zone's open visits, each
/// queue's last length. "Now" is the newest data stored: a stopped service shows its end.
pub fn occupancy_now(conn: &Connection) -> rusqlite::Result<Table> {
    let mut rows = Vec::new();
    let newest: Option<i64> =
        conn.query_row("SELECT MAX(last_ms) FROM store_tracks", [], |r| r.get(0))?;
    if let Some(newest) = newest {
        let tracked: i64 = conn.query_row(
            "SELECT COUNT(*) FROM store_tracks WHERE ended = 0 AND last_ms >= ?1",
            [newest - PRESENT_MS],
            |r| r.get(0),
        )?;
        rows.push(vec![
            Cell::Text("store".into()),
            Cell::Text("tracked".into()),
            Cell::Int(tracked),
            Cell::Time(newest),
        ]);
    }
    let counts: Option<(i64, String)> = conn
        .query_row(
            "SELECT ts_ms, json FROM events_outbox WHERE kind = 'counts' ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((ts, json)) = counts
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(&json)
        && let Some(est) = v.pointer("/store/estimate").and_then(|e| e.as_i64())
    {
        rows.push(vec![
            Cell::Text("store".into()),
            Cell::Text("estimate".into()),
            Cell::Int(est),
            Cell::Time(ts),
        ]);
    }
    let zones = run(
        conn,
        "SELECT 'zone', zone, COUNT(*), MAX(leave_ms) FROM zone_visits WHERE ended = 0
         GROUP BY zone ORDER BY zone",
        &[],
        vec!["what", "id", "people", "as_of"],
        &["as_of"],
    )?;
    rows.extend(zones.rows);
    let queues = run(
        conn,
        "SELECT 'queue', q.queue, q.length, q.ts_ms FROM queue_lengths q
         WHERE q.ts_ms = (SELECT MAX(ts_ms) FROM queue_lengths r WHERE r.queue = q.queue)
         ORDER BY q.queue",
        &[],
        vec!["what", "id", "people", "as_of"],
        &["as_of"],
    )?;
    rows.extend(queues.rows);
    Ok(Table {
        columns: vec!["what", "id", "people", "as_of"],
        rows,
    })
}
