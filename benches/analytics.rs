//! Query latencies of the store analytics on a generated database of ≥ 10 M points (not part of
//! the normal test run: `cargo bench --bench analytics`).
//! Prints each statement's EXPLAIN QUERY PLAN and the median latency of 5 runs.
//!
//! The database: 30 days, 16,000 camera tracks of 625 points at 10 Hz (10 M points), one store
//! trajectory per camera track at 5 Hz (5 M store points), 4 zone visits each (64,000 visits).

use std::time::{Duration, Instant};

use rusqlite::{Connection, params};
use storetrack::query::analytics::{self as aq, Range};
use storetrack::store::Store;

const TRACKS: i64 = 16_000;
const POINTS_PER_TRACK: i64 = 625;
const DAYS: i64 = 30;
const T0: i64 = 1_780_000_000_000;
const ZONES: [&str; 6] = ["door", "fruit", "bakery", "dairy", "checkout", "aisle-7"];

fn generate(conn: &mut Connection) {
    conn.execute(
        "INSERT INTO cameras(id, name, url, added_ms) VALUES ('cam1', 'c', 'rtsp://x', 0)",
        [],
    )
    .unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut track = tx
            .prepare("INSERT INTO tracks(id, camera, first_ms, last_ms, points, ended) VALUES (?1, 'cam1', ?2, ?3, ?4, 1)")
            .unwrap();
        let mut point = tx
            .prepare("INSERT INTO points(track, ts_ms, x, y, w, h, score, floor_x, floor_y) VALUES (?1, ?2, ?3, ?4, 40, 100, 0.8, ?5, ?6)")
            .unwrap();
        let mut store = tx
            .prepare("INSERT INTO store_tracks(id, first_ms, last_ms, points, cameras, ended) VALUES (?1, ?2, ?3, ?4, 1, 1)")
            .unwrap();
        let mut member = tx
            .prepare("INSERT INTO store_members(track, store_track) VALUES (?1, ?1)")
            .unwrap();
        let mut spoint = tx
            .prepare("INSERT INTO store_points(store_track, ts_ms, x, y, cameras) VALUES (?1, ?2, ?3, ?4, 1)")
            .unwrap();
        let mut visit = tx
            .prepare("INSERT INTO zone_visits(store_track, zone, from_zone, enter_ms, leave_ms) VALUES (?1, ?2, ?3, ?4, ?5)")
            .unwrap();
        let span = DAYS * 86_400_000 / TRACKS;
        for id in 1..=TRACKS {
            let first = T0 + (id - 1) * span;
            let last = first + (POINTS_PER_TRACK - 1) * 100;
            track
                .execute(params![id, first, last, POINTS_PER_TRACK])
                .unwrap();
            store
                .execute(params![id, first, last, POINTS_PER_TRACK / 2])
                .unwrap();
            member.execute(params![id]).unwrap();
            for k in 0..POINTS_PER_TRACK {
                let ts = first + k * 100;
                let f = k as f64 / POINTS_PER_TRACK as f64;
                let (x, y) = (
                    1.0 + 18.0 * f,
                    1.0 + (id % 9) as f64 + (k % 7) as f64 * 0.05,
                );
                point
                    .execute(params![id, ts, 100.0 + 500.0 * f, 300.0, x, y])
                    .unwrap();
                if k % 2 == 0 {
                    spoint.execute(params![id, ts, x, y]).unwrap();
                }
            }
            let mut prev: Option<&str> = None;
            for v in 0..4 {
                let zone = ZONES[((id + v * 7) % ZONES.len() as i64) as usize];
                let enter = first + v * 15_000;
                visit
                    .execute(params![
                        id,
                        zone,
                        prev,
                        enter,
                        enter + 8_000 + (id % 50) * 100
                    ])
                    .unwrap();
                prev = Some(zone);
            }
        }
    }
    tx.commit().unwrap();
}

fn plan(conn: &Connection, sql: &str, p: &[&dyn rusqlite::ToSql]) -> String {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let rows = stmt
        .query_map(p, |r| r.get::<_, String>(3))
        .unwrap()
        .map(Result::unwrap)
        .collect::<Vec<_>>();
    rows.join(" | ")
}

/// A named query to time; returns its row count.
type Case<'a> = Box<dyn Fn() -> usize + 'a>;

fn time(f: impl Fn() -> usize) -> (Duration, usize) {
    let mut runs: Vec<(Duration, usize)> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let n = f();
            (t.elapsed(), n)
        })
        .collect();
    runs.sort();
    runs[2]
}

/// Builds a 10 M point database (≈ 1 GB, a few minutes) and times the analytics queries.
fn main() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.db");
    let t = Instant::now();
    drop(Store::open(&path).unwrap());
    let mut conn = Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;")
        .unwrap();
    generate(&mut conn);
    conn.execute_batch("ANALYZE;").unwrap();
    let points: i64 = conn
        .query_row("SELECT COUNT(*) FROM points", [], |r| r.get(0))
        .unwrap();
    let spoints: i64 = conn
        .query_row("SELECT COUNT(*) FROM store_points", [], |r| r.get(0))
        .unwrap();
    println!(
        "generated {points} points, {spoints} store points in {:.0} s ({} MB)",
        t.elapsed().as_secs_f64(),
        std::fs::metadata(&path).unwrap().len() / 1_000_000
    );
    assert!(points >= 10_000_000);
    drop(conn);

    let conn = storetrack::store::open_read_only(&path).unwrap();
    let day = Range {
        from_ms: Some(T0 + 10 * 86_400_000),
        to_ms: Some(T0 + 11 * 86_400_000),
    };
    let (from, to) = (day.from_ms.unwrap(), day.to_ms.unwrap());
    for (sql, p) in [
        (
            "SELECT store_track, zone, from_zone, enter_ms, leave_ms FROM zone_visits WHERE enter_ms BETWEEN ?1 AND ?2 AND (?3 IS NULL OR zone = ?3) ORDER BY enter_ms, id LIMIT 1000",
            params![from, to, Option::<String>::None].to_vec(),
        ),
        (
            "SELECT from_zone, zone, COUNT(*) FROM zone_visits WHERE enter_ms BETWEEN ?1 AND ?2 AND from_zone IS NOT NULL GROUP BY from_zone, zone",
            params![from, to].to_vec(),
        ),
        (
            "SELECT ts_ms, x, y, cameras FROM store_points WHERE store_track = ?1 ORDER BY ts_ms",
            params![8000].to_vec(),
        ),
        (
            "SELECT id, first_ms, last_ms FROM store_tracks WHERE first_ms BETWEEN ?1 - ?3 AND ?2 AND last_ms >= ?1",
            params![from, to, 86_400_000i64].to_vec(),
        ),
        (
            "SELECT t.id, p.x, p.y FROM store_tracks t JOIN store_points p ON p.store_track = t.id WHERE t.first_ms BETWEEN ?1 - ?3 AND ?2 AND t.last_ms >= ?1 AND p.ts_ms BETWEEN ?1 AND ?2 ORDER BY t.id, p.ts_ms",
            params![from, from + 3_600_000, 86_400_000i64].to_vec(),
        ),
    ] {
        println!(
            "plan: {}\n  -> {}",
            sql.split_whitespace().take(8).collect::<Vec<_>>().join(" "),
            plan(&conn, sql, &p)
        );
    }
    let all = Range::default();
    let cases: Vec<(&str, Case)> = vec![
        (
            "visits (1 day, first 1000)",
            Box::new(|| aq::visits(&conn, &day, None, 1000).unwrap().rows.len()),
        ),
        (
            "visits (1 day, one zone)",
            Box::new(|| {
                aq::visits(&conn, &day, Some("bakery"), 100_000)
                    .unwrap()
                    .rows
                    .len()
            }),
        ),
        (
            "dwell (1 day)",
            Box::new(|| aq::dwell(&conn, &day).unwrap().rows.len()),
        ),
        (
            "dwell (30 days)",
            Box::new(|| aq::dwell(&conn, &all).unwrap().rows.len()),
        ),
        (
            "flows (1 day)",
            Box::new(|| aq::flows(&conn, &day).unwrap().rows.len()),
        ),
        (
            "flows (30 days)",
            Box::new(|| aq::flows(&conn, &all).unwrap().rows.len()),
        ),
        (
            "path (one trajectory)",
            Box::new(|| aq::path(&conn, 8000).unwrap().rows.len()),
        ),
        (
            "visitors per hour (1 day)",
            Box::new(|| {
                aq::visitors(&conn, &day, 3_600_000, None)
                    .unwrap()
                    .rows
                    .len()
            }),
        ),
        (
            "occupancy per 15 min (1 day)",
            Box::new(|| {
                aq::occupancy(&conn, &day, 900_000, None)
                    .unwrap()
                    .rows
                    .len()
            }),
        ),
        (
            "stores (1 day, 50)",
            Box::new(|| aq::stores(&conn, &day, 0, 50).unwrap().rows.len()),
        ),
    ];
    for (name, f) in cases {
        let (d, n) = time(f);
        println!(
            "{name:<30} {:>8.2} ms  ({n} rows)",
            d.as_secs_f64() * 1000.0
        );
    }
}
