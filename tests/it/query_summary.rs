//! `query summary` on per-second frame rows: totals and averages exactly as over the frames they
//! hold, a time range taking whole seconds, a camera without frames shown with zeros.

use std::path::Path;

use storetrack::query::{self, Cell};
use storetrack::store::{Store, open_read_only};

fn fixture(path: &Path) {
    let store = Store::open(path).unwrap();
    store
        .connection()
        .execute_batch(
            "INSERT INTO cameras VALUES ('cam1', 'Door', 'rtsp://a', 0), ('cam2', 'Till', 'rtsp://b', 0);
             -- seconds 100..102 of cam1: 10 + 10 + 5 frames, 0..4 persons
             INSERT INTO frames_second VALUES
               ('cam1', 100, 10, 0, 2, 10, 100000, 100900),
               ('cam1', 101, 10, 1, 4, 25, 101000, 101900),
               ('cam1', 102,  5, 3, 3, 15, 102000, 102400);
             INSERT INTO tracks(camera, first_ms, last_ms, points, ended) VALUES
               ('cam1', 100100, 101500, 15, 1);",
        )
        .unwrap();
}

#[test]
fn summary_reads_per_second_rows_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    fixture(&path);
    let c = open_read_only(&path).unwrap();
    let t = query::summary(&c, None, None).unwrap();
    let col = |name: &str| t.columns.iter().position(|c| *c == name).unwrap();
    let cam1 = &t.rows[0];
    assert_eq!(cam1[col("frames")], Cell::Int(25));
    // (10 + 25 + 15) persons over 25 frames.
    assert_eq!(cam1[col("avg_persons")], Cell::Real(2.0));
    assert_eq!(cam1[col("max_persons")], Cell::Int(4));
    assert_eq!(cam1[col("first_seen")], Cell::Time(100_000));
    assert_eq!(cam1[col("last_seen")], Cell::Time(102_400));
    assert_eq!(cam1[col("points")], Cell::Int(15));
    let cam2 = &t.rows[1];
    assert_eq!(cam2[col("frames")], Cell::Int(0));
    assert_eq!(cam2[col("avg_persons")], Cell::Null);

    // 101.5 s .. 102.1 s touches seconds 101 and 102.
    let t = query::summary(&c, Some(101_500), Some(102_100)).unwrap();
    let cam1 = &t.rows[0];
    assert_eq!(cam1[col("frames")], Cell::Int(15));
    assert_eq!(cam1[col("avg_persons")], Cell::Real(2.67));
    assert_eq!(cam1[col("max_persons")], Cell::Int(4));
    assert_eq!(cam1[col("first_seen")], Cell::Time(101_000));
}
