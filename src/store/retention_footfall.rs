//! Retention of the footfall tables: rows older than the cutoff, oldest first, within the
//! step's budget — line crossings, queue waits and lengths, alerts (by their clear time, or
//! their raise while active) and the events outbox (by the event's time: an event no sink took
//! within `keep_days` is gone, so the outbox is bounded even with a sink that never answers).
//!
//! Input: the step's transaction, the cutoff and the rows left of its budget. Output: the rows
//! deleted.

use rusqlite::{Transaction, params};

/// (table, key, time) of each footfall table, deleted in this order (the time columns are
/// indexed, but the alerts' — a short table).
const TABLES: &[(&str, &str, &str)] = &[
    ("line_crossings", "id", "ts_ms"),
    ("queue_waits", "id", "end_ms"),
    ("queue_lengths", "rowid", "ts_ms"),
    ("alerts", "id", "COALESCE(cleared_ms, raised_ms)"),
    ("events_outbox", "seq", "ts_ms"),
];

/// Deletes at most `budget` footfall rows older than `cutoff_ms`; returns the rows deleted.
pub(super) fn delete_before(
    tx: &Transaction<'_>,
    cutoff_ms: i64,
    budget: i64,
) -> rusqlite::Result<i64> {
    let mut left = budget;
    for (table, key, time) in TABLES {
        if left <= 0 {
            break;
        }
        let sql = if *table == "queue_lengths" {
            // WITHOUT ROWID: deleted by its (queue, ts_ms) key.
            "DELETE FROM queue_lengths WHERE (queue, ts_ms) IN
               (SELECT queue, ts_ms FROM queue_lengths WHERE ts_ms < ?1 ORDER BY ts_ms LIMIT ?2)"
                .to_string()
        } else {
            format!(
                "DELETE FROM {table} WHERE {key} IN
                   (SELECT {key} FROM {table} WHERE {time} < ?1 ORDER BY {time} LIMIT ?2)"
            )
        };
        left -= tx.prepare_cached(&sql)?.execute(params![cutoff_ms, left])? as i64;
    }
    Ok(budget - left)
}
