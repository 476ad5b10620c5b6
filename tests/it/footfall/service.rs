//! The service on the sample video (one simulated camera, calibrated like the demo's) with a
//! door line and a queue: killed with SIGKILL once crossings are stored and zone visits are
//! open, then started again.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use storetrack::api::{ApiState, Server};
use storetrack::config::ApiConfig;
use storetrack::simcam::SimCam;
use storetrack::stats::Stats;

use super::unpaired;
use crate::common::{self, count, ids, query_json, spawn_run};

/// How long the first run may take to store crossings and open visits (model load included).
const FIRST_CROSSINGS_TIMEOUT: Duration = Duration::from_secs(120);

/// The demo plaza (config.toml): camera calibration, a door line between the west path and
/// the centre, a queue in the centre served in the east plaza.
const FOOTFALL: &str = r#"
[floor]
width = 20.0
height = 17.0

[[zones]]
id = "west-path"
polygon = [[0.5, 3.0], [8.0, 3.0], [8.0, 8.5], [0.5, 8.5]]

[[zones]]
id = "queue"
polygon = [[8.0, 3.0], [12.0, 3.0], [12.0, 10.0], [8.0, 10.0]]
queue = true
service = "till"

[[zones]]
id = "till"
polygon = [[12.0, 3.0], [19.5, 3.0], [19.5, 12.0], [12.0, 12.0]]

[[lines]]
id = "door"
points = [[8.0, 12.0], [8.0, 1.0]]
door = true
"#;

const CALIBRATION: &str = "calibration = [[42, 183, 1.74, 2.40], [298, 200, 8.00, 3.51], \
    [446, 192, 11.47, 3.00], [432, 390, 10.80, 12.06], [505, 470, 11.80, 14.37], \
    [178, 265, 5.78, 7.11]]\n";

/// The service's config in `dir`: one camera at `url`, the database `dir/tracks.db`.
pub fn write_config(dir: &Path, url: &str) -> std::path::PathBuf {
    let camera = format!("[[cameras]]\nid = \"cam1\"\nurl = \"{url}\"\n{CALIBRATION}\n");
    common::write_config_from(dir, &camera, "", FOOTFALL)
}

/// (crossings, open zone visits) committed now.
fn progress(db: &Path) -> (i64, i64) {
    let Ok(c) = storetrack::store::open_read_only(db) else {
        return (0, 0);
    };
    c.query_row(
        "SELECT (SELECT COUNT(*) FROM line_crossings),
                (SELECT COUNT(*) FROM zone_visits WHERE ended = 0)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap_or((0, 0))
}

#[test]
fn crossings_keep_their_outbox_rows_through_sigkill_and_the_restart_closes_open_visits() {
    let sim = SimCam::start("127.0.0.1", 0, &[("cam1".into(), common::video())]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sim.url("cam1"));
    let db = dir.path().join("tracks.db");
    let mut first = spawn_run(&cfg, &dir.path().join("first.log"), &[]);
    let t0 = Instant::now();
    loop {
        let (crossings, open) = progress(&db);
        if crossings >= 2 && open >= 1 {
            break;
        }
        if t0.elapsed() > FIRST_CROSSINGS_TIMEOUT {
            let _ = first.kill();
            let log = std::fs::read_to_string(dir.path().join("first.log")).unwrap();
            panic!(
                "{crossings} crossings, {open} open visits after {FIRST_CROSSINGS_TIMEOUT:?}: {log}"
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    first.kill().unwrap(); // SIGKILL: whatever was committed is all there is
    first.wait().unwrap();

    let c = storetrack::store::open_read_only(&db).unwrap();
    let crossings = count(&c, "SELECT COUNT(*) FROM line_crossings");
    println!("at the kill: {crossings} crossings");
    // Every crossing has exactly its one outbox event, and no event lacks its crossing.
    assert_eq!(unpaired(&c, "line_crossings", "line_crossing"), (0, 0));
    assert_eq!(unpaired(&c, "queue_waits", "queue_wait"), (0, 0));
    let open_at_kill = ids(&c, "SELECT id FROM zone_visits WHERE ended = 0 ORDER BY id");
    assert!(!open_at_kill.is_empty());
    drop(c);

    let second = spawn_run(&cfg, &dir.path().join("second.log"), &["--duration", "2s"])
        .wait()
        .unwrap();
    assert!(second.success());
    let c = storetrack::store::open_read_only(&db).unwrap();
    let interrupted = ids(
        &c,
        "SELECT id FROM zone_visits WHERE interrupted = 1 ORDER BY id",
    );
    assert_eq!(
        interrupted, open_at_kill,
        "the dead run's open visits, and only they"
    );
    assert_eq!(
        count(&c, "SELECT COUNT(*) FROM zone_visits WHERE ended = 0"),
        0
    );
    let bad_leave = count(
        &c,
        "SELECT COUNT(*) FROM zone_visits WHERE interrupted = 1 AND leave_ms < enter_ms",
    );
    assert_eq!(bad_leave, 0);
    // An open visit's leave_ms followed its trajectory (the last position written).
    let followed = count(
        &c,
        "SELECT COUNT(*) FROM zone_visits WHERE interrupted = 1 AND leave_ms > enter_ms",
    );
    assert!(
        followed >= 1,
        "no interrupted visit got past its enter time"
    );

    // The CLI and the API count what line_crossings holds (both runs).
    let stored = count(&c, "SELECT COUNT(*) FROM line_crossings");
    let rows = query_json(&db, &["footfall", "--bucket", "1h"]);
    let sum = |rows: &serde_json::Value| -> i64 {
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| r["in"].as_i64().unwrap() + r["out"].as_i64().unwrap())
            .sum()
    };
    assert_eq!(sum(&rows), stored, "{rows}");
    let api = ApiConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        token: None,
        token_env: None,
        hosts: Vec::new(),
        tls: None,
    };
    let server = Server::start(
        &api,
        ApiState::new(Arc::new(Stats::new(0)), db.clone(), None),
    )
    .unwrap();
    let url = format!("http://{}/api/v1/footfall?bucket=1h", server.local_addr());
    let body = ureq::get(&url)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(sum(&answer), stored, "{body}");
    let bad = format!("http://{}/api/v1/footfall?bucket=0s", server.local_addr());
    let refused = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent()
        .get(&bad)
        .call()
        .unwrap();
    assert_eq!(refused.status().as_u16(), 400);
    server.stop();
}
