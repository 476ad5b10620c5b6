//! Per camera and service run: where its frames went and what its clock did (`query cameras`).
//!
//! Input: a read-only connection and an optional run id. Output: a [`Table`] from `run_cameras`.

use rusqlite::{Connection, params};

use super::{Table, run};

/// Per camera, run `run` (the latest when None): the analysed and possible rates, where its
/// frames went (decoded = analysed + not picked + skipped + dropped + failed) and what its
/// clock did: the camera's RTCP clock offset from the capture-time reference, the capture
/// delay subtracted (clock in step), jumps of its clock, corrections of the capture times.
pub fn cameras(conn: &Connection, run_id: Option<i64>) -> rusqlite::Result<Table> {
    run(
        conn,
        "SELECT c.run, c.camera, c.streamed_s,
                ROUND(c.analysed / MAX(c.streamed_s, 0.001), 2),
                ROUND(c.slots / MAX(c.streamed_s, 0.001), 2),
                c.decoded, c.analysed, c.not_picked, c.skipped, c.dropped, c.failed, c.undecoded,
                ROUND(c.clock_offset_ms / 1000.0, 3), c.capture_delay_ms, c.clock_jumps,
                c.clock_corrections
         FROM run_cameras c
         WHERE c.run = COALESCE(?1, (SELECT MAX(run) FROM run_cameras))
         ORDER BY c.camera",
        params![run_id],
        vec![
            "run",
            "camera",
            "streamed_s",
            "analysed_fps",
            "possible_fps",
            "decoded",
            "analysed",
            "not_picked",
            "skipped",
            "dropped",
            "failed",
            "not_decoded",
            "clock_offset_s",
            "capture_delay_ms",
            "clock_jumps",
            "corrections",
        ],
        &[],
    )
}
