//! A database that cannot grow does not stop analysis, and writing resumes when it can again.
//! The service runs through the real binary under a small file-size limit (RLIMIT_FSIZE, with
//! SIGXFSZ ignored, so SQLite's writes fail as on a full disk); the limit is lifted while it
//! runs (`prlimit --pid`). Detection must go on meanwhile, retries must back off (one error
//! line, few failed transactions), and every point kept in memory must reach the database.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use storetrack::simcam::SimCam;

/// Bytes any file of the service may grow to while "full": room for the run's first commits.
const FSIZE_LIMIT: u64 = 192 * 1024;
const RUN_SECONDS: u64 = 22;

fn wait_for_log(log: &Path, what: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(what) {
            return text;
        }
        assert!(Instant::now() < deadline, "no {what:?} in:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `inferred` count of the last progress line.
fn inferred(log: &str) -> u64 {
    let line = log.lines().rfind(|l| l.contains("| inferred ")).unwrap();
    let after = line.split("| inferred ").nth(1).unwrap();
    after.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn a_database_that_cannot_grow_does_not_stop_analysis_and_writing_resumes() {
    common::openvino_env();
    let sim = SimCam::start("127.0.0.1", 0, &[("cam1".into(), common::video())]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::write_config(dir.path(), &[sim.url("cam1")], "");
    let db = dir.path().join("tracks.db");
    // Created beforehand, so the service starts within the limit.
    drop(storetrack::store::Store::open(&db).unwrap());
    let log_path = dir.path().join("service.log");
    let out_path = dir.path().join("summary.txt");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; exec prlimit --fsize={FSIZE_LIMIT}:unlimited -- \"$0\" \"$@\""
        ))
        .arg(env!("CARGO_BIN_EXE_storetrack"))
        .args(["run", "-c", cfg.to_str().unwrap()])
        .args(["--duration", &format!("{RUN_SECONDS}s"), "--progress", "1s"])
        .env("STORETRACK_LOG", "info")
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();

    let failing = wait_for_log(&log_path, "Database write failed", Duration::from_secs(20));
    let at_failure = inferred(&failing);
    std::thread::sleep(Duration::from_secs(4));
    let later = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        inferred(&later) >= at_failure + 20,
        "detection stalled while the database failed: {} then {}",
        at_failure,
        inferred(&later)
    );
    let stored_while_full = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM points", [], |r| r.get::<_, i64>(0))
        .unwrap();

    let lifted = Command::new("prlimit")
        .args(["--pid", &child.id().to_string(), "--fsize=unlimited"])
        .status()
        .unwrap();
    assert!(lifted.success());
    wait_for_log(
        &log_path,
        "Database writes resumed",
        Duration::from_secs(40),
    );
    let status = child.wait().unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    let summary = std::fs::read_to_string(&out_path).unwrap();
    assert!(status.success(), "{log}\n{summary}");
    eprintln!("{summary}");

    assert_eq!(log.matches("Database write failed").count(), 1, "{log}");
    assert_eq!(log.matches("Database writes resumed").count(), 1, "{log}");
    // Nothing was dropped: the backlog stayed far below its bound, and was written at resume.
    let line = summary
        .lines()
        .find(|l| l.contains("not written"))
        .unwrap_or_else(|| panic!("no write-failure line in:\n{summary}"));
    assert!(line.contains("0 points, 0 frames dropped"), "{line}");
    let failed: u64 = line
        .split('(')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=6).contains(&failed),
        "{failed} failed transactions in a few seconds: retries must back off"
    );
    let stored: i64 = summary
        .lines()
        .find_map(|l| l.trim().strip_prefix("points stored"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let c = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let (points, integrity): (i64, String) = c
        .query_row(
            "SELECT (SELECT COUNT(*) FROM points), (SELECT integrity_check FROM pragma_integrity_check)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        points, stored,
        "points counted as stored are not all in the file"
    );
    assert!(
        points > stored_while_full,
        "nothing written after the limit was lifted"
    );
    assert_eq!(integrity, "ok");
    let clean: i64 = c
        .query_row("SELECT clean FROM runs ORDER BY id DESC LIMIT 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(clean, 1, "the run did not close cleanly");
    drop(sim);
}
