//! Writing the footfall events: each [`LiveEvent`] becomes its rows (line crossings, zone
//! visits, queue waits and lengths, alerts) and one `events_outbox` row, inside the writer's
//! batch transaction, so a crash keeps both or neither.
//!
//! Input: events with the stitcher's store trajectory ids and the tracker's camera track ids.
//! Output: the rows, and the event rebuilt with the database's ids (`store_tracks.id`,
//! `tracks.id`) before it is serialized — its `event_id` is computed over those, so what a
//! receiver gets names the rows a query shows.

use std::sync::Arc;

use rusqlite::{Transaction, params};

use super::analytics::AnalyticsRows;
use crate::analytics::events::{EventBody, LiveEvent, ZoneEnter, ZoneLeave};
use crate::analytics::rules::{Alert, AlertKind};

/// Writes `event` (with ids mapped) and its outbox row; `track_row` finds a camera track's
/// row of this run; `written_ms` is the transaction's wall time.
pub(super) fn write(
    tx: &Transaction<'_>,
    rows: &mut AnalyticsRows,
    event: &LiveEvent,
    track_row: impl Fn(&(Arc<str>, u64)) -> Option<i64>,
    written_ms: i64,
) -> rusqlite::Result<()> {
    let body = mapped(tx, rows, event, track_row)?;
    let event = LiveEvent::new(event.ts_ms, body);
    match &event.body {
        EventBody::LineCrossing(c) => {
            tx.prepare_cached(
                "INSERT INTO line_crossings(line, direction, ts_ms, crossed_ms, store_track,
                                            camera, camera_track, event_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                c.line,
                c.direction.as_str(),
                event.ts_ms,
                c.crossed_ms,
                c.store_track.map(|t| t as i64),
                c.camera,
                c.camera_track.map(|t| t as i64),
                event.event_id
            ])?;
        }
        EventBody::ZoneEnter(z) => enter(tx, z, event.ts_ms)?,
        EventBody::ZoneLeave(z) => leave(tx, z, event.ts_ms)?,
        EventBody::QueueLength(q) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO queue_lengths(queue, ts_ms, length) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![q.queue, event.ts_ms, q.length])?;
        }
        EventBody::QueueWait(q) => {
            tx.prepare_cached(
                "INSERT INTO queue_waits(queue, store_track, enter_ms, end_ms, wait_ms, outcome,
                                         event_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                q.queue,
                q.store_track as i64,
                q.enter_ms,
                event.ts_ms,
                q.wait_ms,
                outcome(q.outcome),
                event.event_id
            ])?;
        }
        EventBody::Alert(a) => alert(tx, a, event.ts_ms, &event.event_id)?,
        EventBody::Camera(_) | EventBody::Counts(_) => {}
    }
    tx.prepare_cached(
        "INSERT INTO events_outbox(event_id, kind, ts_ms, written_ms, json)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        event.event_id,
        event.body.kind(),
        event.ts_ms,
        written_ms,
        event.to_json()
    ])?;
    Ok(())
}

/// The body with the database's ids in place of the stitcher's and the tracker's.
fn mapped(
    tx: &Transaction<'_>,
    rows: &mut AnalyticsRows,
    event: &LiveEvent,
    track_row: impl Fn(&(Arc<str>, u64)) -> Option<i64>,
) -> rusqlite::Result<EventBody> {
    let ts = event.ts_ms;
    let mut store = |id: u64, first_ms: i64| rows.store_row(tx, id, first_ms).map(|r| r as u64);
    let mut body = event.body.clone();
    match &mut body {
        EventBody::LineCrossing(c) => {
            if let Some(s) = c.store_track {
                c.store_track = Some(store(s, c.crossed_ms)?);
            }
            if let (Some(cam), Some(t)) = (&c.camera, c.camera_track) {
                c.camera_track = track_row(&(Arc::from(cam.as_str()), t)).map(|r| r as u64);
            }
        }
        EventBody::ZoneEnter(z) => z.store_track = store(z.store_track, ts)?,
        EventBody::ZoneLeave(z) => z.store_track = store(z.store_track, z.enter_ms)?,
        EventBody::QueueWait(q) => q.store_track = store(q.store_track, q.enter_ms)?,
        EventBody::QueueLength(_)
        | EventBody::Alert(_)
        | EventBody::Camera(_)
        | EventBody::Counts(_) => {}
    }
    Ok(body)
}

/// A visit begins: written open (`ended = 0`), its `leave_ms` following the trajectory.
fn enter(tx: &Transaction<'_>, z: &ZoneEnter, ts_ms: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO zone_visits(store_track, zone, enter_ms, leave_ms, ended)
         VALUES (?1, ?2, ?3, ?3, 0)",
    )?
    .execute(params![z.store_track as i64, z.zone, ts_ms])?;
    Ok(())
}

/// A visit ends: its open row is closed, or (begun before a restart) written whole.
fn leave(tx: &Transaction<'_>, z: &ZoneLeave, ts_ms: i64) -> rusqlite::Result<()> {
    let closed = tx
        .prepare_cached(
            "UPDATE zone_visits SET leave_ms = ?4, from_zone = ?5, ended = 1
             WHERE store_track = ?1 AND zone = ?2 AND enter_ms = ?3 AND ended = 0",
        )?
        .execute(params![
            z.store_track as i64,
            z.zone,
            z.enter_ms,
            ts_ms,
            z.from_zone
        ])?;
    if closed == 0 {
        tx.prepare_cached(
            "INSERT INTO zone_visits(store_track, zone, from_zone, enter_ms, leave_ms, ended)
             VALUES (?1, ?2, ?3, ?4, ?5, 1)",
        )?
        .execute(params![
            z.store_track as i64,
            z.zone,
            z.from_zone,
            z.enter_ms,
            ts_ms
        ])?;
    }
    Ok(())
}

/// An alert raised (a new row) or cleared (the rule's active row for its subject closed).
fn alert(tx: &Transaction<'_>, a: &Alert, ts_ms: i64, event_id: &str) -> rusqlite::Result<()> {
    let subject = a.subject.as_deref().unwrap_or("");
    match a.kind {
        AlertKind::Raised => {
            tx.prepare_cached(
                "INSERT INTO alerts(rule, rule_kind, subject, raised_ms, value, threshold,
                                    event_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                a.rule,
                rule_kind(a.rule_kind),
                subject,
                ts_ms,
                a.value,
                a.threshold,
                event_id
            ])?;
        }
        AlertKind::Cleared => {
            tx.prepare_cached(
                "UPDATE alerts SET cleared_ms = ?3, cleared_value = ?4
                 WHERE rule = ?1 AND subject = ?2 AND cleared_ms IS NULL",
            )?
            .execute(params![a.rule, subject, ts_ms, a.value])?;
        }
    }
    Ok(())
}

fn rule_kind(k: crate::analytics::rules::RuleKind) -> &'static str {
    use crate::analytics::rules::RuleKind;
    match k {
        RuleKind::Occupancy => "occupancy",
        RuleKind::QueueLength => "queue_length",
        RuleKind::Dwell => "dwell",
        RuleKind::Crossings => "crossings",
        RuleKind::Camera => "camera",
    }
}

fn outcome(o: crate::analytics::queues::Outcome) -> &'static str {
    use crate::analytics::queues::Outcome;
    match o {
        Outcome::Served => "served",
        Outcome::Abandoned => "abandoned",
        Outcome::Left => "left",
    }
}
