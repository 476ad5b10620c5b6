//! End to end through the real binary: `storetrack run` on the sample video (one simulated
//! camera) with the demo's door line and queue and `[events] mqtt` pointed at a real mosquitto
//! the test starts; the broker is stopped (SIGTERM) for 15 s mid-run and started again on the
//! same port with the same persistence, so the subscriber's persistent session survives. After
//! the run every outbox row — every `line_crossings` row's event among them — arrived at the
//! subscriber at least once, first arrivals in outbox `seq` order, duplicates only of an
//! `event_id` seen before.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use storetrack::simcam::SimCam;

use super::service::write_config;
use crate::common::{self, count, spawn_run};
use crate::events::{Broker, Subscriber};

/// The run's length (`--duration`), model load included.
const RUN: &str = "40s";
/// How long the broker is down.
const OUTAGE: Duration = Duration::from_secs(15);
/// Topic level of the run's events.
const SITE: &str = "e2e";

/// Milliseconds since the epoch now.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Outbox rows (seq, event_id, kind, written_ms) in `seq` order.
fn outbox(db: &Path) -> Vec<(i64, String, String, i64)> {
    let c = storetrack::store::open_read_only(db).unwrap();
    let mut stmt = c
        .prepare("SELECT seq, event_id, kind, written_ms FROM events_outbox ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// What the subscriber got: event ids in the order of their first arrival, and the number of
/// arrivals of an id seen before.
#[derive(Default)]
struct Got {
    order: Vec<String>,
    seen: HashSet<String>,
    dups: usize,
}

impl Got {
    /// Takes one `topic payload` line: the payload's `event_id` and `kind` must match its topic.
    fn take(&mut self, topic: &str, payload: &str) {
        let v: serde_json::Value =
            serde_json::from_str(payload).unwrap_or_else(|e| panic!("{e}: {payload}"));
        let kind = v["kind"].as_str().unwrap();
        assert_eq!(topic, format!("storetrack/{SITE}/events/{kind}"));
        let id = v["event_id"].as_str().unwrap().to_string();
        if self.seen.insert(id.clone()) {
            self.order.push(id);
        } else {
            self.dups += 1;
        }
    }

    /// Reads `sub` until every id of `want` came or nothing came for `quiet`.
    fn until(&mut self, sub: &Subscriber, want: &[String], quiet: Duration) {
        while !want.iter().all(|id| self.seen.contains(id)) {
            let Some((topic, payload, _)) = sub.next(quiet) else {
                return;
            };
            self.take(&topic, &payload);
        }
    }
}

#[test]
fn the_service_delivers_every_event_over_mqtt_in_order_across_a_broker_outage() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path());
    let sub = Subscriber::start(broker.port, "storetrack/+/events/#", "e2e-footfall-sub");
    let sim = SimCam::start("127.0.0.1", 0, &[("cam1".into(), common::video())]).unwrap();
    let cfg = write_config(dir.path(), &sim.url("cam1"));
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text += &format!(
        "\n[events]\nsite = \"{SITE}\"\nmqtt = \"mqtt://127.0.0.1:{}\"\n\
         retry_initial_ms = 200\nretry_max_ms = 1000\ntimeout_ms = 2000\n",
        broker.port
    );
    std::fs::write(&cfg, text).unwrap();
    let db = dir.path().join("tracks.db");
    let log = dir.path().join("run.log");
    let mut run = spawn_run(&cfg, &log, &["--duration", RUN]);

    // The first event delivered, then a few seconds of delivery before the outage.
    let mut got = Got::default();
    let t0 = Instant::now();
    while got.order.is_empty() {
        assert!(t0.elapsed() < Duration::from_secs(30), "no event in 30 s");
        if let Some((topic, payload, _)) = sub.next(Duration::from_millis(200)) {
            got.take(&topic, &payload);
        }
    }
    let until = Instant::now() + Duration::from_secs(3);
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        if let Some((topic, payload, _)) = sub.next(left) {
            got.take(&topic, &payload);
        }
    }
    broker.stop();
    let down = now_ms();
    std::thread::sleep(OUTAGE);
    broker.restart();
    let up = now_ms();
    let status = run.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{text}");

    let rows = outbox(&db);
    let ids: Vec<String> = rows.iter().map(|r| r.1.clone()).collect();
    got.until(&sub, &ids, Duration::from_secs(10));
    check(&db, &rows, &got, (down, up));
}

/// Every outbox row (every crossing's event) arrived, first arrivals in `seq` order; prints
/// the figures.
fn check(db: &Path, rows: &[(i64, String, String, i64)], got: &Got, (down, up): (i64, i64)) {
    let c = storetrack::store::open_read_only(db).unwrap();
    let crossings = count(&c, "SELECT COUNT(*) FROM line_crossings");
    let mut stmt = c.prepare("SELECT event_id FROM line_crossings").unwrap();
    let crossing_ids: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let missing: Vec<&String> = rows
        .iter()
        .map(|r| &r.1)
        .filter(|id| !got.seen.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} outbox events never arrived, e.g. {:?}",
        missing.len(),
        rows.len(),
        &missing[..missing.len().min(3)]
    );
    assert!(crossing_ids.iter().all(|id| got.seen.contains(id)));
    let seq: HashMap<&str, i64> = rows.iter().map(|r| (r.1.as_str(), r.0)).collect();
    let arrived: Vec<i64> = got.order.iter().map(|id| seq[id.as_str()]).collect();
    let mut sorted = arrived.clone();
    sorted.sort_unstable();
    assert_eq!(arrived, sorted, "first arrivals not in outbox seq order");
    let during: Vec<_> = rows.iter().filter(|r| r.3 >= down && r.3 < up).collect();
    let crossings_during = during.iter().filter(|r| r.2 == "line_crossing").count();
    let mut kinds: HashMap<&str, usize> = HashMap::new();
    for r in rows {
        *kinds.entry(r.2.as_str()).or_default() += 1;
    }
    let mut kinds: Vec<_> = kinds.into_iter().collect();
    kinds.sort_unstable();
    eprintln!(
        "service over MQTT, broker down {} s: {} events in the outbox ({crossings} crossings), \
         {} delivered ({} during the outage, {crossings_during} of them crossings), {} \
         duplicates (same event_id); by kind {kinds:?}",
        OUTAGE.as_secs(),
        rows.len(),
        got.seen.len(),
        during.len(),
        got.dups,
    );
    assert!(crossings >= 1, "no crossing in the run");
    assert!(!during.is_empty(), "no event written during the outage");
}
