//! Per-frame rows of files written before schema 3, folded into per-second rows in the
//! background, so that opening an old file never spends minutes rewriting it at start-up.
//!
//! Input: the writer's connection and `frames_legacy` (schema 2's `frames`, renamed by the
//! migration). Output: the same counts in `frames_second` (merged with what the service writes
//! meanwhile), the folded rows deleted, and the table dropped once empty.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};

/// Name of the table schema 3 leaves the old per-frame rows in.
pub const TABLE: &str = "frames_legacy";

/// Whether the file still holds per-frame rows to fold.
pub fn pending(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        [TABLE],
        |_| Ok(()),
    )
    .optional()
    .map(|r| r.is_some())
}

/// The latest per-frame capture time of `camera` still waiting to be folded.
pub fn last_frame_ms(conn: &Connection, camera: &str) -> rusqlite::Result<Option<i64>> {
    if !pending(conn)? {
        return Ok(None);
    }
    conn.query_row(
        &format!("SELECT MAX(ts_ms) FROM {TABLE} WHERE camera = ?1"),
        [camera],
        |r| r.get(0),
    )
}

/// Deletes at most `budget` per-frame rows captured before `cutoff_ms` (retention: they are
/// older than what is kept, folded or not); returns the rows deleted.
pub fn delete_before(conn: &Connection, cutoff_ms: i64, budget: i64) -> rusqlite::Result<i64> {
    let cameras: Vec<String> = conn
        .prepare_cached("SELECT id FROM cameras")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut left = budget;
    for cam in cameras {
        if left <= 0 {
            break;
        }
        // The (camera, ts_ms) index of the old table serves both statements.
        left -= conn
            .prepare_cached(&format!(
                "DELETE FROM {TABLE} WHERE rowid IN (SELECT rowid FROM {TABLE}
                   WHERE camera = ?1 AND ts_ms < ?2 LIMIT ?3)"
            ))?
            .execute(params![cam, cutoff_ms, left])? as i64;
    }
    Ok(budget - left)
}

/// Counts of one camera-second being folded.
#[derive(Debug, Clone, Copy)]
struct Second {
    frames: i64,
    min: i64,
    max: i64,
    sum: i64,
    first_ms: i64,
    last_ms: i64,
}

/// Folds up to `budget` of the oldest-inserted rows into `frames_second` in one transaction;
/// drops the table when nothing is left. Returns the rows folded (0: done).
pub fn fold_step(conn: &mut Connection, budget: u64) -> rusqlite::Result<u64> {
    let tx = conn.transaction()?;
    let mut seconds: HashMap<(String, i64), Second> = HashMap::new();
    let mut last_rowid = None;
    let mut rows = 0u64;
    {
        let mut stmt = tx.prepare(&format!(
            "SELECT rowid, camera, ts_ms, persons FROM {TABLE} ORDER BY rowid LIMIT ?1"
        ))?;
        let mut q = stmt.query([budget as i64])?;
        while let Some(r) = q.next()? {
            let (rowid, camera, ts, persons): (i64, String, i64, i64) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            last_rowid = Some(rowid);
            rows += 1;
            let s = seconds
                .entry((camera, ts.div_euclid(1000)))
                .or_insert(Second {
                    frames: 0,
                    min: persons,
                    max: persons,
                    sum: 0,
                    first_ms: ts,
                    last_ms: ts,
                });
            s.frames += 1;
            s.min = s.min.min(persons);
            s.max = s.max.max(persons);
            s.sum += persons;
            s.first_ms = s.first_ms.min(ts);
            s.last_ms = s.last_ms.max(ts);
        }
    }
    let Some(last_rowid) = last_rowid else {
        tx.execute_batch(&format!("DROP TABLE {TABLE}"))?;
        return tx.commit().map(|()| 0);
    };
    {
        let mut up = tx.prepare(super::batch::UPSERT_SECOND)?;
        for ((camera, second), s) in &seconds {
            up.execute(params![
                camera, second, s.frames, s.min, s.max, s.sum, s.first_ms, s.last_ms
            ])?;
        }
    }
    tx.execute(
        &format!("DELETE FROM {TABLE} WHERE rowid <= ?1"),
        [last_rowid],
    )?;
    tx.commit()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use crate::store::{Store, schema};

    #[test]
    fn frame_rows_of_a_v2_file_become_seconds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2.db");
        let c = Connection::open(&path).unwrap();
        c.execute_batch(schema::MIGRATIONS[0]).unwrap();
        c.execute_batch(schema::MIGRATIONS[1]).unwrap();
        c.execute_batch(
            "PRAGMA user_version = 2;
             INSERT INTO cameras VALUES ('cam1', 'c', 'rtsp://x', 0), ('cam2', 'd', 'rtsp://y', 0);
             INSERT INTO frames(camera, seq, ts_ms, persons) VALUES
               ('cam1', 0, 5000, 3), ('cam1', 1, 5400, 1), ('cam1', 2, 5999, 2),
               ('cam1', 3, 6000, 0), ('cam2', 0, 5100, 7);",
        )
        .unwrap();
        drop(c);
        let mut store = Store::open(&path).unwrap();
        // Start-up only set the rows aside; the capture clock still sees them.
        assert!(super::pending(store.connection()).unwrap());
        assert_eq!(store.last_frame_ms("cam1").unwrap(), Some(6000));
        // The service wrote into second 6 meanwhile; folding merges with it.
        store
            .connection()
            .execute_batch("INSERT INTO frames_second VALUES ('cam1', 6, 2, 4, 5, 9, 6100, 6900);")
            .unwrap();
        // Two rows per step: second 5 of cam1 is folded over two steps.
        let mut steps = 0;
        while super::fold_step(&mut store.conn, 2).unwrap() > 0 {
            steps += 1;
        }
        assert_eq!(steps, 3);
        assert!(!super::pending(store.connection()).unwrap());
        type Row = (String, i64, i64, i64, i64, i64, i64, i64);
        let rows: Vec<Row> = store
            .connection()
            .prepare("SELECT * FROM frames_second ORDER BY camera, second")
            .unwrap()
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            })
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            rows,
            vec![
                ("cam1".into(), 5, 3, 1, 3, 6, 5000, 5999),
                ("cam1".into(), 6, 3, 0, 5, 9, 6000, 6900),
                ("cam2".into(), 5, 1, 7, 7, 7, 5100, 5100),
            ]
        );
        assert_eq!(store.last_frame_ms("cam1").unwrap(), Some(6900));
        let frames_left: i64 = store
            .connection()
            .query_row(
                "SELECT COUNT(*) FROM sqlite_schema WHERE name LIKE 'frames%' AND name != 'frames_second'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(frames_left, 0);
    }
}
