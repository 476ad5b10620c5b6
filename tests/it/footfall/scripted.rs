//! A scripted scene on one camera with floor positions given: four people cross a door line
//! into a queue; two wait together ~16 s and are served at the till, two wait together only
//! ~2 s and walk away; all four leave through the door. The queue rule (more than 1 waiting for 3 s, cleared after 2 s at 1 or
//! fewer) must raise once and clear once: the short pair stays under `for_ms`.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;
use storetrack::analytics::stage::{self, Live};
use storetrack::analytics::{AnalyticsParams, Zone};
use storetrack::config::Config;
use storetrack::geometry::BBox;
use storetrack::messages::{StoreMsg, TrackUpdate};
use storetrack::stats::Stats;
use storetrack::store::{RetentionPolicy, Store, WriterOptions};
use storetrack::track::PointKind;

use super::unpaired;
use crate::common::{count, query_json};

/// Scene start, Unix ms.
const T0: i64 = 1_700_000_000_000;
/// Frame spacing, ms.
const STEP: i64 = 100;

const CONFIG: &str = r#"
[[cameras]]
id = "cam1"
url = "rtsp://127.0.0.1:8554/cam1"

[floor]
width = 10
height = 10

[[zones]]
id = "queue"
polygon = [[0, 0], [4, 0], [4, 4], [0, 4]]
queue = true
service = "till"

[[zones]]
id = "till"
polygon = [[5, 0], [8, 0], [8, 4], [5, 4]]

[[lines]]
id = "door"
points = [[-1, 5], [9, 5]]

[[rules]]
id = "queue-long"
kind = "queue_length"
zone = "queue"
above = 1
for_ms = 3000
clear_ms = 2000
cooldown_ms = 0
"#;

/// A person: (time s, x, y) key positions, walked in straight lines.
type Path = &'static [(f64, f64, f64)];

const PEOPLE: [Path; 4] = [
    // Walks in (1.9 m/s), waits from ~3.2 s, served at the till at ~20.8 s, walks out.
    &[
        (0.0, 2.0, 9.5),
        (4.0, 2.0, 2.0),
        (20.0, 2.0, 2.0),
        (21.0, 6.0, 2.0),
        (25.0, 6.0, 2.0),
        (29.0, 6.0, 9.5),
    ],
    // Waits from ~5.2 s, served at ~22.8 s.
    &[
        (2.0, 1.0, 9.5),
        (6.0, 1.0, 2.0),
        (22.0, 1.0, 2.0),
        (23.5, 6.5, 3.0),
        (28.0, 6.5, 3.0),
        (32.0, 6.5, 9.5),
    ],
    // Two who wait together about 2 s and walk away: abandoned, no alert.
    &[
        (36.0, 2.0, 9.5),
        (40.0, 2.0, 2.0),
        (40.5, 2.0, 2.0),
        (43.5, 2.0, 9.5),
    ],
    &[
        (36.0, 3.0, 9.5),
        (40.0, 3.0, 2.0),
        (40.5, 3.0, 2.0),
        (43.5, 3.0, 9.5),
    ],
];

fn at(path: Path, t: f64) -> Option<(f64, f64)> {
    let w = path.windows(2).find(|w| t >= w[0].0 && t <= w[1].0)?;
    let f = (t - w[0].0) / (w[1].0 - w[0].0);
    Some((
        w[0].1 + f * (w[1].1 - w[0].1),
        w[0].2 + f * (w[1].2 - w[0].2),
    ))
}

/// Feeds the scene to the stage: a frame every [`STEP`], a point per person seen, an end
/// marker after each person's last point.
fn feed(tx: &Sender<StoreMsg>) {
    let cam: Arc<str> = Arc::from("cam1");
    let mut ended = [false; PEOPLE.len()];
    for i in 0..=600i64 {
        let ts = T0 + i * STEP;
        let t = (i * STEP) as f64 / 1000.0;
        for (p, path) in PEOPLE.iter().enumerate() {
            match at(path, t) {
                Some(floor) => tx
                    .send(StoreMsg::Point(TrackUpdate {
                        camera: Arc::clone(&cam),
                        track_id: p as u64 + 1,
                        ts_ms: ts,
                        bbox: BBox::new(10.0, 10.0, 20.0, 50.0),
                        score: 0.9,
                        floor: Some(floor),
                        kind: PointKind::Observed,
                    }))
                    .unwrap(),
                None if t > path[0].0 && !ended[p] => {
                    ended[p] = true;
                    tx.send(StoreMsg::TrackEnded {
                        camera: Arc::clone(&cam),
                        track_id: p as u64 + 1,
                    })
                    .unwrap();
                }
                None => {}
            }
        }
        tx.send(StoreMsg::Frame {
            camera: Arc::clone(&cam),
            seq: i as u64,
            ts_ms: ts,
            persons: 0,
        })
        .unwrap();
    }
}

/// Runs the scene through the real stage and writer into `dir/t.db`.
fn run_scene(dir: &std::path::Path) -> std::path::PathBuf {
    let cfg = Config::from_str_at(CONFIG, &dir.join("config.toml")).unwrap();
    let path = dir.join("t.db");
    let store = Store::open(&path).unwrap();
    store.register_cameras(&cfg.cameras).unwrap();
    let (to_writer, writer_rx) = crossbeam_channel::bounded(1024);
    let (to_stage, stage_rx) = crossbeam_channel::bounded(1024);
    let options = WriterOptions {
        flush_interval: Duration::from_millis(20),
        retention: RetentionPolicy::default(),
    };
    let writer = store
        .spawn_writer(writer_rx, options, Arc::new(Stats::new(1)))
        .unwrap();
    let p = AnalyticsParams::default();
    let zones: Vec<Zone> = cfg.zones.clone();
    let live = Live::new(&cfg.footfall, zones, p.visit_rules(), 6_000, 10_000).unwrap();
    let stage = stage::spawn(p, live, stage_rx, crossbeam_channel::never(), to_writer).unwrap();
    feed(&to_stage);
    drop(to_stage);
    stage.join().unwrap();
    writer.join().unwrap().unwrap();
    path
}

#[test]
fn a_queue_rule_raises_and_clears_once_with_hysteresis_and_everything_has_its_event() {
    let dir = tempfile::tempdir().unwrap();
    let db = run_scene(dir.path());
    let c = storetrack::store::open_read_only(&db).unwrap();

    // One raise (the long pair) and its clear; the short pair stayed under for_ms.
    let alerts = query_json(&db, &["alerts"]);
    let alerts = alerts.as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let a = &alerts[0];
    assert_eq!(a["rule"], "queue-long");
    assert_eq!(a["kind"], "queue_length");
    assert_eq!(a["subject"], "queue");
    let raised = a["raised_ms"].as_i64().unwrap() - T0;
    let cleared = a["cleared_ms"].as_i64().unwrap() - T0;
    println!("alert raised at {raised} ms, cleared at {cleared} ms");
    // Two waiting from ~5.2 s (+ min_dwell) and for 3 s; one left at ~20.8 s, + 2 s.
    assert!((7_500..=10_500).contains(&raised), "raised at {raised}");
    assert!((22_000..=24_500).contains(&cleared), "cleared at {cleared}");
    let events: Vec<String> = c
        .prepare("SELECT json FROM events_outbox WHERE kind = 'alert' ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(events.len(), 2, "{events:#?}");
    assert!(events[0].contains("\"state\":\"raised\""), "{}", events[0]);
    assert!(events[1].contains("\"state\":\"cleared\""), "{}", events[1]);
    assert_eq!(unpaired(&c, "alerts", "alert").0, 0);

    // Waits: two served, two abandoned; each with its one event, ids of store_tracks rows.
    let waits: Vec<(String, i64)> = c
        .prepare("SELECT outcome, store_track FROM queue_waits ORDER BY enter_ms")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let outcomes: Vec<&str> = waits.iter().map(|w| w.0.as_str()).collect();
    assert_eq!(outcomes, ["served", "served", "abandoned", "abandoned"]);
    assert_eq!(unpaired(&c, "queue_waits", "queue_wait"), (0, 0));
    let stored_ids = count(
        &c,
        "SELECT COUNT(*) FROM queue_waits w JOIN store_tracks t ON t.id = w.store_track",
    );
    assert_eq!(stored_ids, 4);
    let queue = query_json(&db, &["queue", "--bucket", "1h"]);
    let q = &queue.as_array().unwrap()[0];
    assert_eq!(
        (q["served"].as_i64(), q["abandoned"].as_i64()),
        (Some(2), Some(2))
    );
    assert_eq!(q["max_length"], 2);

    // The door: each of the four went out (into the shop side) and came back in.
    assert_eq!(unpaired(&c, "line_crossings", "line_crossing"), (0, 0));
    let footfall = query_json(&db, &["footfall", "--line", "door"]);
    let f = &footfall.as_array().unwrap()[0];
    assert_eq!(
        (f["in"].as_i64(), f["out"].as_i64()),
        (Some(4), Some(4)),
        "{f}"
    );
    // The outbox event names the store trajectory's row.
    let named = count(
        &c,
        "SELECT COUNT(*) FROM events_outbox o JOIN line_crossings l ON l.event_id = o.event_id
         WHERE json_extract(o.json, '$.store_track') = l.store_track",
    );
    assert_eq!(named, 8);

    // Zone visits: every one ended, written from the same enter/leave events.
    assert_eq!(
        count(&c, "SELECT COUNT(*) FROM zone_visits WHERE ended = 0"),
        0
    );
    let leaves = count(
        &c,
        "SELECT COUNT(*) FROM events_outbox WHERE kind = 'zone_leave'",
    );
    assert_eq!(count(&c, "SELECT COUNT(*) FROM zone_visits"), leaves);
    assert_eq!(
        count(&c, "SELECT COUNT(*) FROM zone_visits WHERE zone = 'till'"),
        2
    );
}
