//! Footfall through the store and the service: a scripted scene through the real analytics
//! stage and writer (rules raise and clear with hysteresis, waits and crossings stored with
//! their outbox events, `storetrack query alerts | queue | footfall` on the file), and the
//! service on the sample video with a door line and a queue, killed with SIGKILL mid-run
//! (every crossing keeps exactly its one outbox row; the restart closes the open zone visits;
//! the CLI and `/api/v1/footfall` count what `line_crossings` holds), and the same service
//! delivering its events to a real mosquitto across a 15 s broker outage.

use crate::common;

#[path = "footfall/mqtt.rs"]
mod mqtt;
#[path = "footfall/scripted.rs"]
mod scripted;
#[path = "footfall/service.rs"]
mod service;

use std::path::Path;
use std::process::Command;

use rusqlite::Connection;

/// `storetrack query --db DB --format json ARGS...` as JSON.
pub fn query_json(db: &Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_storetrack"))
        .args(["query", "--db", db.to_str().unwrap(), "--format", "json"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "query {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// One integer from `sql`.
pub fn count(c: &Connection, sql: &str) -> i64 {
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

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
