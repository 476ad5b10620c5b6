//! Per run and camera: where its frames went and what its clock did (table `run_cameras`),
//! written by the writer with the run's heartbeat and once more when the run closes, so the
//! figures of a run that died are those of its last commit.
//!
//! Input: the service's [`Stats`] (a camera id's slots summed). Output: one row per (run,
//! camera), replaced at each write.

use rusqlite::{Transaction, params};

use crate::stats::Stats;

/// Writes every camera's figures for run `run`.
pub fn write(tx: &Transaction<'_>, run: i64, stats: &Stats) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT OR REPLACE INTO run_cameras (run, camera, streamed_s, slots, decoded, analysed,
             not_picked, skipped, dropped, failed, undecoded, clock_offset_ms, capture_delay_ms,
             clock_jumps, clock_corrections)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15
         WHERE EXISTS (SELECT 1 FROM cameras WHERE id = ?2)",
    )?;
    for (a, clock) in stats.by_camera() {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        stmt.execute(params![
            run,
            a.id,
            (a.streamed_s * 10.0).round() / 10.0,
            n(a.slots),
            n(a.decoded),
            n(a.analysed),
            n(a.not_picked),
            n(a.skipped),
            n(a.dropped),
            n(a.failed),
            n(a.undecoded),
            clock.offset_ms,
            clock.delay_ms,
            n(clock.jumps),
            n(clock.corrections),
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::store::schema;

    #[test]
    fn a_camera_s_slots_are_summed_and_its_latest_clock_kept() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        schema::migrate(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO cameras VALUES ('cam1', 'a', 'rtsp://x', 0);
             INSERT INTO runs (id, started_ms, version, config_path, config_sha256, host, pid,
                               cameras) VALUES (7, 0, 'v', 'c', 's', 'h', 1, 1);",
        )
        .unwrap();
        let stats = Stats::empty();
        for (decoded, offset) in [(10, -300_000), (5, 1_200)] {
            let slot = stats.camera(stats.add_camera("cam1", "a", "rtsp://x"));
            slot.decoded.store(decoded, Ordering::Relaxed);
            slot.inferred.store(decoded, Ordering::Relaxed);
            slot.clock.offset_ms.store(offset, Ordering::Relaxed);
        }
        stats.add_camera("gone", "g", "rtsp://y"); // not in the cameras table: no row
        for _ in 0..2 {
            let tx = conn.transaction().unwrap();
            write(&tx, 7, &stats).unwrap();
            tx.commit().unwrap();
        }
        let row: (i64, i64, Option<i64>, Option<i64>) = conn
            .query_row(
                "SELECT decoded, analysed, clock_offset_ms, capture_delay_ms FROM run_cameras",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(row, (15, 15, Some(1_200), None));
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM run_cameras", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1);
    }
}
