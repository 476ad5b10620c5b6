//! A backlog left by a long broker outage drains at the broker's pace: 100,000 outbox rows
//! written while the broker is down all reach it once it is back. The sender counts its backlog
//! (a walk over every row past its cursor) at most every half second while the count is large;
//! counting at every event of the connection made the drain quadratic.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use storetrack::events::{EventsMetrics, Senders};

use super::{Broker, events_config, insert, new_db};

/// Rows written during the outage.
const ROWS: i64 = 100_000;
/// Longest wait for the drain (measured 70 s on one machine, 13–16 s on another; counting at
/// every event, 29,513 rows in 240 s).
const DRAIN_LIMIT: Duration = Duration::from_secs(240);

/// Waits until `done` holds or `limit` passes; true if it held.
fn wait_until(limit: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

#[test]
fn mqtt_drains_a_large_backlog_left_by_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path());
    let db = new_db(dir.path());
    let metrics = EventsMetrics::default();
    let senders = Senders::start(&events_config(Some(broker.port)), &db, &metrics).unwrap();
    let sink = &metrics.sinks()[0];
    assert!(
        wait_until(Duration::from_secs(10), || sink
            .connected
            .load(Ordering::Relaxed)
            == 1),
        "the sender never connected"
    );
    broker.stop();
    let mut conn = Connection::open(&db).unwrap();
    let tx = conn.transaction().unwrap();
    for n in 1..=ROWS {
        insert(&tx, n);
    }
    tx.commit().unwrap();
    let back = Instant::now();
    broker.restart();
    let delivered = || sink.delivered.load(Ordering::Relaxed) as i64;
    let drained = wait_until(DRAIN_LIMIT, || delivered() >= ROWS);
    let took = back.elapsed().as_secs_f64();
    eprintln!(
        "{ROWS} events written during an outage: {} delivered {took:.1} s after the broker came \
         back ({:.0} events/s)",
        delivered(),
        delivered() as f64 / took
    );
    assert!(
        drained,
        "{} of {ROWS} delivered in {} s",
        delivered(),
        DRAIN_LIMIT.as_secs()
    );
    assert!(
        wait_until(Duration::from_secs(5), || sink
            .backlog
            .load(Ordering::Relaxed)
            == 0),
        "backlog figure {} after the drain",
        sink.backlog.load(Ordering::Relaxed)
    );
    senders.stop();
}
