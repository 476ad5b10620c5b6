//! Retention on real SQLite files with known old rows.
use super::*;
use crate::store::Store;

const DAY: i64 = 86_400_000;
/// Points per constructed track.
const POINTS: i64 = 50;

fn store(dir: &tempfile::TempDir) -> Store {
    let store = Store::open(&dir.path().join("r.db")).unwrap();
    store
        .connection()
        .execute_batch(
            "INSERT INTO cameras VALUES ('cam1', 'a', 'rtsp://a', 0), ('cam2', 'b', 'rtsp://b', 0);",
        )
        .unwrap();
    store
}

/// One ended track per camera starting at `t0` (POINTS points 100 ms apart) and 30
/// per-second rows per camera from `t0`.
fn fill(conn: &Connection, t0: i64, ended: bool) {
    for cam in ["cam1", "cam2"] {
        conn.execute(
            "INSERT INTO tracks(camera, first_ms, last_ms, points, ended) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![cam, t0, t0 + (POINTS - 1) * 100, POINTS, ended],
        )
        .unwrap();
        let id = conn.last_insert_rowid();
        for i in 0..POINTS {
            conn.execute(
                "INSERT INTO points(track, ts_ms, x, y, w, h, score) VALUES (?1, ?2, 1.5, 2.5, 30.25, 90.125, 0.75)",
                params![id, t0 + i * 100],
            )
            .unwrap();
        }
        for s in 0..30 {
            conn.execute(
                "INSERT INTO frames_second VALUES (?1, ?2, 10, 1, 3, 20, ?3, ?4)",
                params![cam, t0 / 1000 + s, t0 + s * 1000, t0 + s * 1000 + 900],
            )
            .unwrap();
        }
    }
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Steps until nothing is due; checks every step kept to its budget.
fn run_out(r: &mut Retention, conn: &mut Connection, now_ms: i64, budget: u64) -> Step {
    for _ in 0..10_000 {
        let step = r.step(conn, now_ms, budget).unwrap();
        assert!(step.deleted.rows() <= budget + 1, "{step:?}");
        if !step.more {
            return step;
        }
        vacuum_step(conn, 1_024).unwrap();
    }
    panic!("retention never finished");
}

fn assert_counts_exact(conn: &Connection) {
    let off = count(
        conn,
        "SELECT COUNT(*) FROM tracks t
         WHERE t.points != (SELECT COUNT(*) FROM points p WHERE p.track = t.id)",
    );
    assert_eq!(off, 0, "tracks.points differs from the stored rows");
}

#[test]
fn age_limit_deletes_exactly_what_is_older_in_small_steps() {
    let dir = tempfile::tempdir().unwrap();
    let mut st = store(&dir);
    let conn = &mut st.conn;
    conn.execute_batch("BEGIN").unwrap();
    for day in 0..10 {
        fill(conn, day * DAY + 1_000, true);
    }
    // An old track still open (the writer may still add to it): its row stays, its points
    // older than keep_days go.
    fill(conn, DAY + 500_000, false);
    conn.execute_batch("COMMIT").unwrap();
    conn.execute_batch(
        "INSERT INTO runs(id, started_ms, ended_ms, clean, version, config_path,
                          config_sha256, host, pid, cameras)
         VALUES (1, 0, 1000, 1, 'v', 'c', 'h', 'host', 1, 2),
                (2, 0, 9000000000000, NULL, 'v', 'c', 'h', 'host', 2, 2);",
    )
    .unwrap();
    let mut r = Retention::new(Policy {
        keep_ms: Some(2 * DAY),
        max_bytes: None,
    });
    let now = 10 * DAY;
    // 30 rows per step: every 50-point track is deleted over two steps.
    run_out(&mut r, conn, now, 30);
    let cutoff = now - 2 * DAY;
    assert_eq!(
        count(conn, "SELECT COUNT(*) FROM tracks WHERE ended = 1"),
        4,
        "days 8 and 9, two cameras"
    );
    assert_eq!(
        count(conn, "SELECT MIN(first_ms) FROM tracks WHERE ended = 1"),
        8 * DAY + 1_000
    );
    assert_eq!(
        count(conn, "SELECT COUNT(*) FROM tracks WHERE ended = 0"),
        2
    );
    assert_eq!(count(conn, "SELECT COUNT(*) FROM points"), 4 * POINTS);
    assert_eq!(
        count(conn, "SELECT SUM(points) FROM tracks WHERE ended = 0"),
        0
    );
    assert_eq!(
        count(
            conn,
            &format!("SELECT COUNT(*) FROM frames_second WHERE second * 1000 < {cutoff}")
        ),
        0
    );
    assert_eq!(
        count(conn, "SELECT COUNT(*) FROM frames_second"),
        2 * 2 * 30
    );
    assert_eq!(
        count(conn, "SELECT COUNT(*) FROM runs"),
        1,
        "run 1 ended long ago"
    );
    assert_counts_exact(conn);
    // Nothing more to do at the same time; a day later, day 8 goes.
    assert_eq!(r.step(conn, now, 30).unwrap().deleted, Deleted::default());
    run_out(&mut r, conn, now + DAY, 1_000);
    assert_eq!(
        count(conn, "SELECT COUNT(*) FROM tracks WHERE ended = 1"),
        2
    );
    assert_eq!(count(conn, "SELECT COUNT(*) FROM frames_second"), 2 * 30);
}

#[test]
fn size_cap_keeps_the_newest_data_under_the_cap_and_the_file_shrinks() {
    let dir = tempfile::tempdir().unwrap();
    let mut st = store(&dir);
    let conn = &mut st.conn;
    let av: i64 = conn
        .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
        .unwrap();
    assert_eq!(av, 2, "a new file is created with incremental vacuum");
    conn.execute_batch("BEGIN").unwrap();
    for hour in 0..200 {
        fill(conn, hour * 3_600_000, true);
    }
    conn.execute_batch("COMMIT").unwrap();
    let cap = 512 * 1024;
    let full = Pages::read(conn).unwrap();
    assert!(full.used_bytes() > 3 * cap, "{full:?}");
    let mut r = Retention::new(Policy {
        keep_ms: Some(365 * DAY),
        max_bytes: Some(cap),
    });
    let last = run_out(&mut r, conn, 200 * 3_600_000, 500);
    assert!(!last.stuck);
    while vacuum_step(conn, 1_024).unwrap() > 0 {}
    let after = Pages::read(conn).unwrap();
    assert!(
        after.used_bytes() <= cap * LOW_WATER_PERCENT / 100,
        "{after:?}"
    );
    assert!(after.file_bytes() <= cap, "file not given back: {after:?}");
    // What is left is the newest data: every remaining track is newer than every deleted
    // one, and per-second rows likewise.
    let kept = count(conn, "SELECT COUNT(*) FROM tracks");
    assert!(kept > 0 && kept < 400, "{kept}");
    let oldest_kept = count(conn, "SELECT MIN(first_ms) FROM tracks");
    assert_eq!(
        count(
            conn,
            &format!("SELECT COUNT(*) FROM tracks WHERE first_ms >= {oldest_kept}")
        ),
        kept,
    );
    assert_eq!(oldest_kept % 3_600_000, 0);
    let hours_kept = kept / 2;
    assert_eq!(oldest_kept, (200 - hours_kept) * 3_600_000);
    let first_second = count(conn, "SELECT MIN(second) FROM frames_second");
    assert!(
        (first_second * 1000 - oldest_kept).abs() <= SIZE_SLICE_MS,
        "frame rows and tracks deleted at different times: {first_second} vs {oldest_kept}"
    );
    assert_counts_exact(conn);
    // Under the low-water mark nothing more goes.
    let again = r.step(conn, 200 * 3_600_000, 500).unwrap();
    assert_eq!(again.deleted, Deleted::default());
    assert!(!again.more);
}

#[test]
fn over_the_cap_with_only_open_tracks_is_reported_not_looped() {
    let dir = tempfile::tempdir().unwrap();
    let mut st = store(&dir);
    let conn = &mut st.conn;
    for hour in 0..20 {
        fill(conn, hour * 3_600_000, false);
    }
    conn.execute_batch("DELETE FROM frames_second").unwrap();
    let mut r = Retention::new(Policy {
        keep_ms: None,
        max_bytes: Some(64 * 1024),
    });
    let step = r.step(conn, 0, 100).unwrap();
    assert!(step.stuck && !step.more, "{step:?}");
    assert_eq!(count(conn, "SELECT COUNT(*) FROM points"), 40 * POINTS);
}

#[test]
fn old_store_trajectories_go_with_their_camera_tracks() {
    let dir = tempfile::tempdir().unwrap();
    let mut st = store(&dir);
    let conn = &mut st.conn;
    fill(conn, 1_000, true);
    fill(conn, 5 * DAY, true);
    // A store trajectory over the old camera tracks, one over the new ones.
    conn.execute_batch(
        "INSERT INTO store_tracks(id, first_ms, last_ms, points, cameras, ended)
           VALUES (1, 1000, 5900, 1, 2, 1), (2, 432000000, 432004900, 1, 2, 1);
         INSERT INTO store_points VALUES (1, 1000, 1.0, 2.0, 2), (2, 432000000, 1.0, 2.0, 2);
         INSERT INTO store_members SELECT id, CASE WHEN first_ms < 86400000 THEN 1 ELSE 2 END
           FROM tracks;
         INSERT INTO zone_visits(store_track, zone, enter_ms, leave_ms)
           VALUES (1, 'door', 1000, 3000), (2, 'door', 432000000, 432003000);",
    )
    .unwrap();
    let mut r = Retention::new(Policy {
        keep_ms: Some(2 * DAY),
        max_bytes: None,
    });
    run_out(&mut r, conn, 6 * DAY, 1_000);
    for table in ["store_tracks", "store_points", "zone_visits"] {
        let left = count(conn, &format!("SELECT COUNT(*) FROM {table}"));
        assert_eq!(left, 1, "{table}");
    }
    assert_eq!(count(conn, "SELECT COUNT(*) FROM store_members"), 2);
    assert_eq!(count(conn, "SELECT MIN(id) FROM store_tracks"), 2);
    assert_eq!(count(conn, "SELECT COUNT(*) FROM tracks"), 2);
}

/// Time column of each table about a person (its rows' latest time), or None for a table that
/// is not about one. A table missing here fails the test: retention must be told about it.
const ROW_TIME: &[(&str, Option<&str>)] = &[
    ("points", Some("ts_ms")),
    ("tracks", Some("last_ms")),
    ("store_points", Some("ts_ms")),
    ("store_tracks", Some("last_ms")),
    ("zone_visits", Some("leave_ms")),
    ("frames_second", Some("last_ms")),
    ("frames_legacy", Some("ts_ms")),
    (
        "store_members",
        Some("(SELECT last_ms FROM tracks t WHERE t.id = store_members.track)"),
    ),
    ("line_crossings", Some("ts_ms")),
    ("queue_waits", Some("end_ms")),
    ("queue_lengths", Some("ts_ms")),
    ("alerts", Some("COALESCE(cleared_ms, raised_ms)")),
    ("events_outbox", Some("ts_ms")),
    // Per sink: the last outbox row delivered (no person in it).
    ("outbox_cursors", None),
    // SQLite's AUTOINCREMENT counters (the outbox's `seq`).
    ("sqlite_sequence", None),
    // The camera list (id, name, masked URL) and the service's runs (host, pid, config).
    ("cameras", None),
    ("runs", None),
    // Per run and camera: frame counters and the camera clock's figures; deleted with its run.
    ("run_cameras", None),
];

/// Rows about people at `t` (Unix ms): a camera track with 3 points from `t`, a store
/// trajectory made of it with 3 points, a zone visit, per-second and per-frame rows.
fn person_at(conn: &Connection, t: i64, ended: bool) {
    conn.execute(
        "INSERT INTO tracks(camera, first_ms, last_ms, points, ended) VALUES ('cam1', ?1, ?2, 3, ?3)",
        params![t, t + 2_000, ended],
    )
    .unwrap();
    let track = conn.last_insert_rowid();
    conn.execute(
        "INSERT INTO store_tracks(first_ms, last_ms, points, cameras, ended) VALUES (?1, ?2, 3, 1, ?3)",
        params![t, t + 2_000, ended],
    )
    .unwrap();
    let store = conn.last_insert_rowid();
    for i in 0..3 {
        let ts = t + i * 1_000;
        conn.execute(
            "INSERT INTO points(track, ts_ms, x, y, w, h, score) VALUES (?1, ?2, 1, 2, 3, 4, 0.9)",
            params![track, ts],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO store_points VALUES (?1, ?2, 1.0, 2.0, 1)",
            params![store, ts],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO frames_legacy(camera, seq, ts_ms, persons) VALUES ('cam1', 0, ?1, 1)",
            params![ts],
        )
        .unwrap();
    }
    conn.execute(
        "INSERT INTO store_members VALUES (?1, ?2)",
        params![track, store],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO zone_visits(store_track, zone, enter_ms, leave_ms) VALUES (?1, 'door', ?2, ?3)",
        params![store, t, t + 1_000],
    )
    .unwrap();
    conn.execute(
        "INSERT OR IGNORE INTO frames_second VALUES ('cam1', ?1, 5, 1, 1, 5, ?2, ?3)",
        params![t / 1000, t, t + 900],
    )
    .unwrap();
    footfall_at(conn, t, store);
}

/// Footfall rows at `t` about store trajectory `store`: a crossing, a wait, a queue length,
/// an alert raised and cleared, and their outbox events.
fn footfall_at(conn: &Connection, t: i64, store: i64) {
    conn.execute_batch(&format!(
        "INSERT INTO line_crossings(line, direction, ts_ms, crossed_ms, store_track, event_id)
           VALUES ('door', 'in', {t} + 500, {t} + 400, {store}, 'e1');
         INSERT INTO queue_waits(queue, store_track, enter_ms, end_ms, wait_ms, outcome, event_id)
           VALUES ('q', {store}, {t}, {t} + 1000, 1000, 'served', 'e2');
         INSERT OR IGNORE INTO queue_lengths VALUES ('q', {t}, 1);
         INSERT INTO alerts(rule, rule_kind, subject, raised_ms, cleared_ms, value, threshold,
                            event_id)
           VALUES ('long', 'queue_length', 'q', {t}, {t} + 1500, 3, 2, 'e3');
         INSERT INTO events_outbox(event_id, kind, ts_ms, written_ms, json)
           VALUES ('e1', 'line_crossing', {t} + 500, {t} + 600, '{{}}');
         INSERT OR REPLACE INTO outbox_cursors VALUES ('mqtt', 1, {t});"
    ))
    .unwrap();
}

/// Retention left behind what a person left in the database when it belonged to something
/// newer or still open: store trajectories and camera tracks left open by a crash, the old
/// points of a track or trajectory that went on past the cutoff, zone visits of such a
/// trajectory, per-frame rows of an older schema not folded yet.
#[test]
fn no_row_about_a_person_survives_past_keep_days() {
    let dir = tempfile::tempdir().unwrap();
    let mut st = store(&dir);
    let conn = &mut st.conn;
    let (now, keep) = (10 * DAY, 2 * DAY);
    let cutoff = now - keep;
    conn.execute_batch("BEGIN").unwrap();
    for day in 0..10 {
        person_at(conn, day * DAY + 5_000, true);
    }
    // Left open by a run that crashed: the next start ends it, so retention can delete it.
    person_at(conn, DAY, false);
    // Going on past the cutoff: old points and visits, a newer last point.
    person_at(conn, cutoff - 1_500, true);
    conn.execute_batch("COMMIT").unwrap();
    let info = crate::store::RunInfo::current(std::path::Path::new("c.toml"), "ab", 1);
    crate::store::runs::begin(conn, &info, now).unwrap();
    // The new run's own open track and trajectory, begun before the cutoff.
    person_at(conn, cutoff - 1_500, false);
    let mut r = Retention::new(Policy {
        keep_ms: Some(keep),
        max_bytes: None,
    });
    run_out(&mut r, conn, now, 7);
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    for table in &tables {
        let Some((_, time)) = ROW_TIME.iter().find(|(t, _)| t == table) else {
            panic!(
                "table {table} is not in ROW_TIME: is it about a person, and does retention delete it?"
            );
        };
        let Some(time) = time else { continue };
        let old = count(
            conn,
            &format!("SELECT COUNT(*) FROM {table} WHERE COALESCE({time}, 0) < {cutoff}"),
        );
        let kept = count(conn, &format!("SELECT COUNT(*) FROM {table}"));
        assert_eq!(old, 0, "{table}: {old} rows older than keep_days survive");
        assert!(kept > 0, "{table}: nothing newer was kept either");
    }
    // What goes on past the cutoff keeps its newer part, starting at its oldest point kept.
    let straddling = count(
        conn,
        &format!(
            "SELECT COUNT(*) FROM tracks WHERE first_ms >= {cutoff} AND first_ms < {cutoff} + 1000"
        ),
    );
    assert_eq!(straddling, 2);
    assert_counts_exact(conn);
    let off = count(
        conn,
        "SELECT COUNT(*) FROM store_tracks t
         WHERE t.points != (SELECT COUNT(*) FROM store_points p WHERE p.store_track = t.id)",
    );
    assert_eq!(off, 0, "store_tracks.points differs from the stored rows");
}

/// A finished run with per-camera figures (`run_cameras`, a foreign key to `runs`) is deleted
/// with them: deleting the run alone failed the whole retention step.
#[test]
fn an_old_run_goes_with_its_per_camera_figures() {
    let dir = tempfile::tempdir().unwrap();
    let mut st = store(&dir);
    let conn = &mut st.conn;
    conn.execute_batch(
        "INSERT INTO runs(id, started_ms, ended_ms, clean, version, config_path,
                          config_sha256, host, pid, cameras)
         VALUES (1, 0, 1000, 1, 'v', 'c', 'h', 'host', 1, 1);
         INSERT INTO run_cameras VALUES (1, 'cam1', 1.0, 10, 10, 10, 0, 0, 0, 0, 0,
                                         NULL, NULL, 0, 0);",
    )
    .unwrap();
    let mut r = Retention::new(Policy {
        keep_ms: Some(DAY),
        max_bytes: None,
    });
    run_out(&mut r, conn, 10 * DAY, 100);
    assert_eq!(count(conn, "SELECT COUNT(*) FROM runs"), 0);
    assert_eq!(count(conn, "SELECT COUNT(*) FROM run_cameras"), 0);
}
