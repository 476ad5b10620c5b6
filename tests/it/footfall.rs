//! Footfall through the store and the service: a scripted scene through the real analytics
//! stage and writer (rules raise and clear with hysteresis, waits and crossings stored with
//! their outbox events, `storetrack query alerts | queue | footfall` on the file), and the
//! service on the sample video with a door line and a queue, killed with SIGKILL mid-run
//! (every crossing keeps exactly its one outbox row; the restart closes the open zone visits;
//! the CLI and `/api/v1/footfall` count what `line_crossings` holds), and the same service
//! delivering its events to a real mosquitto across a 15 s broker outage; a line and a zone
//! added by hot reload counting at once while the unchanged door line keeps counting.

use crate::common::count;

#[path = "footfall/mqtt.rs"]
mod mqtt;
#[path = "footfall/reload.rs"]
mod reload;
#[path = "footfall/scripted.rs"]
mod scripted;
#[path = "footfall/service.rs"]
mod service;

use rusqlite::Connection;

/// Rows of `table` (with an `event_id`) without exactly one outbox row of `kind` with the same
/// id, and outbox rows of `kind` without their row: both must be 0.
pub fn unpaired(c: &Connection, table: &str, kind: &str) -> (i64, i64) {
    let rows = count(
        c,
        &format!(
            "SELECT COUNT(*) FROM {table} t WHERE (SELECT COUNT(*) FROM events_outbox o
               WHERE o.event_id = t.event_id AND o.kind = '{kind}') != 1"
        ),
    );
    let events = count(
        c,
        &format!(
            "SELECT COUNT(*) FROM events_outbox o WHERE o.kind = '{kind}' AND NOT EXISTS
               (SELECT 1 FROM {table} t WHERE t.event_id = o.event_id)"
        ),
    );
    (rows, events)
}
