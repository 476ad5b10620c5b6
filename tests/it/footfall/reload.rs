//! Hot reload of footfall definitions through the running service on the sample video: a
//! counting line and a zone added to the config and `storetrack reload` count at once, without
//! a restart, while the door line (unchanged) keeps counting, and a changed zone restarts.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use storetrack::simcam::SimCam;

use super::service::write_config;
use super::unpaired;
use crate::common::{self, count, spawn_run};

/// How long crossings may take to be stored (model load included, and after the reload).
const CROSSINGS_TIMEOUT: Duration = Duration::from_secs(120);

/// Added by the reload: a second line where the door line is (so it must see the same
/// crossings from the reload on) and a zone over the queue.
const ADDED: &str = r#"
[[lines]]
id = "door-2"
points = [[8.0, 12.0], [8.0, 1.0]]

[[zones]]
id = "centre-new"
polygon = [[8.0, 3.0], [12.0, 3.0], [12.0, 10.0], [8.0, 10.0]]
"#;

/// Kills the service when the test ends, whatever happens.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn counted(db: &Path, sql: &str) -> i64 {
    common::try_read_only(db).map_or(0, |c| c.query_row(sql, [], |r| r.get(0)).unwrap_or(0))
}

/// Waits until `done` holds, or panics with the log.
fn wait_for(what: &str, log: &Path, mut done: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !done() {
        if t0.elapsed() > CROSSINGS_TIMEOUT {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("no {what} after {CROSSINGS_TIMEOUT:?}: {log}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_line_and_a_zone_added_by_reload_count_at_once_and_the_door_keeps_counting() {
    let sim = SimCam::start("127.0.0.1", 0, &[("cam1".into(), common::video())]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sim.url("cam1"));
    let db = dir.path().join("tracks.db");
    let log = dir.path().join("run.log");
    let _run = Running(spawn_run(&cfg, &log, &[]));
    let door = "SELECT COUNT(*) FROM line_crossings WHERE line = 'door'";
    wait_for("door crossings", &log, || counted(&db, door) >= 2);

    // The reload: door-2 and centre-new added, the till (the queue's service zone) moved.
    let text = std::fs::read_to_string(&cfg).unwrap();
    let moved = text.replace("[19.5, 12.0], [12.0, 12.0]", "[19.5, 12.5], [12.0, 12.5]");
    assert_ne!(moved, text);
    std::fs::write(&cfg, moved + ADDED).unwrap();
    let door_at_reload = counted(&db, door);
    let reload_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let out = common::storetrack(&["reload", "-c", cfg.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let swapped = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_for("swap", &log, || swapped().contains("rules swapped in"));
    let line = swapped()
        .lines()
        .find(|l| l.contains("rules swapped in"))
        .unwrap()
        .to_string();
    println!("{line}");
    // Fields: kept=N restarted=[...] added=[...] removed=[...] (colours in between).
    let listed = |what: &str| line.contains(&format!("\"{what}\""));
    assert!(
        listed("line:door-2")
            && listed("zone:centre-new")
            && listed("zone:till")
            && listed("queue:queue")
            && !listed("line:door")
            && line.trim_end().ends_with("[]"),
        "{line}"
    );
    assert!(
        !swapped().contains("take effect at the next start"),
        "{}",
        swapped()
    );

    let door2 = "SELECT COUNT(*) FROM line_crossings WHERE line = 'door-2'";
    let visits = "SELECT COUNT(*) FROM zone_visits WHERE zone = 'centre-new'";
    wait_for("door-2 crossings and centre-new visits", &log, || {
        counted(&db, door2) >= 2 && counted(&db, visits) >= 1
    });
    let c = storetrack::store::open_read_only(&db).unwrap();
    let (door_now, door2_now) = (count(&c, door), count(&c, door2));
    println!(
        "door: {door_at_reload} at the reload, {door_now} now; door-2: {door2_now}; \
         centre-new visits: {}",
        count(&c, visits)
    );
    assert!(
        door_now > door_at_reload,
        "the unchanged door line keeps counting"
    );
    // Same geometry, counted from the reload on: every door-2 crossing is one of the door's,
    // and none happened long before the reload (capture times run with the wall clock, the
    // stitcher releases positions a few seconds late).
    let unmatched = count(
        &c,
        "SELECT COUNT(*) FROM line_crossings a WHERE a.line = 'door-2' AND NOT EXISTS
           (SELECT 1 FROM line_crossings b WHERE b.line = 'door' AND b.store_track = a.store_track
            AND b.direction = a.direction AND b.crossed_ms = a.crossed_ms)",
    );
    assert_eq!(unmatched, 0, "door-2 crossings the door line did not count");
    let early = count(
        &c,
        &format!(
            "SELECT COUNT(*) FROM line_crossings WHERE line = 'door-2' AND crossed_ms < {}",
            reload_ms - 20_000
        ),
    );
    assert_eq!(early, 0, "door-2 counted crossings from before the reload");
    assert!(
        door2_now <= door_now - door_at_reload + 1,
        "door-2 counts only from the reload"
    );
    assert_eq!(unpaired(&c, "line_crossings", "line_crossing"), (0, 0));
}
