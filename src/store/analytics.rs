//! Writing the analytics stage's events: store trajectories, their fused points, their member
//! camera tracks and zone visits, inside the writer's batch transaction.
//!
//! Input: [`Event`]s and a way to find a camera track's row. Output: rows in `store_tracks`,
//! `store_points`, `store_members`, `zone_visits`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use rusqlite::{Transaction, params};

use crate::analytics::Event;

/// Per-row totals gathered over one batch (one UPDATE per store trajectory per batch).
#[derive(Debug, Clone, Copy, Default)]
struct Touch {
    last_ms: i64,
    points: i64,
    cameras: u32,
    ended: bool,
}

/// Ended store trajectories whose rows are still remembered: footfall events about them (a
/// visit's end, a wait ended later, a crossing confirmed at the end) may come after the end.
const RETIRED_KEPT: usize = 65_536;

/// The writer's analytics state: the stitcher's store ids mapped to `store_tracks` rows.
#[derive(Debug, Default)]
pub(super) struct AnalyticsRows {
    rows: HashMap<u64, i64>,
    touched: HashMap<i64, Touch>,
    /// Rows of ended trajectories (the newest [`RETIRED_KEPT`]), and their order.
    retired: HashMap<u64, i64>,
    retired_order: VecDeque<u64>,
}

impl AnalyticsRows {
    /// Writes one event; `track_row` finds the row of a camera track of this run.
    pub(super) fn write(
        &mut self,
        tx: &Transaction<'_>,
        event: &Event,
        track_row: impl Fn(&(Arc<str>, u64)) -> Option<i64>,
    ) -> rusqlite::Result<()> {
        match event {
            Event::Member {
                store,
                first_ms,
                camera,
                track_id,
            } => {
                let row = self.row(tx, *store, *first_ms)?;
                if let Some(track) = track_row(&(Arc::clone(camera), *track_id)) {
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO store_members(track, store_track) VALUES (?1, ?2)",
                    )?
                    .execute(params![track, row])?;
                }
            }
            Event::Point(p) => {
                let row = self.row(tx, p.store, p.ts_ms)?;
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO store_points(store_track, ts_ms, x, y, cameras)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![row, p.ts_ms, p.x, p.y, p.cameras])?;
                let t = self.touched.entry(row).or_default();
                t.last_ms = t.last_ms.max(p.ts_ms);
                t.points += 1;
                t.cameras = t.cameras.max(p.cameras);
            }
            Event::Visit { store, visit } => {
                let row = self.row(tx, *store, visit.enter_ms)?;
                tx.prepare_cached(
                    "INSERT INTO zone_visits(store_track, zone, from_zone, enter_ms, leave_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    row,
                    visit.zone.as_ref(),
                    visit.from_zone.as_deref(),
                    visit.enter_ms,
                    visit.leave_ms
                ])?;
            }
            Event::Ended { store } => {
                if let Some(row) = self.rows.get(store) {
                    self.touched.entry(*row).or_default().ended = true;
                }
            }
        }
        Ok(())
    }

    /// Applies the batch's totals; call before commit. A zone visit still open takes its
    /// trajectory's last position as its `leave_ms` (what a crash would leave of it).
    pub(super) fn finish_batch(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        let mut upd = tx.prepare_cached(
            "UPDATE store_tracks SET last_ms = MAX(last_ms, ?2), points = points + ?3,
                    cameras = MAX(cameras, ?4), ended = MAX(ended, ?5) WHERE id = ?1",
        )?;
        let mut open = tx.prepare_cached(
            "UPDATE zone_visits SET leave_ms = MAX(leave_ms, ?2)
             WHERE store_track = ?1 AND ended = 0",
        )?;
        for (row, t) in &self.touched {
            upd.execute(params![row, t.last_ms, t.points, t.cameras, t.ended])?;
            if t.points > 0 {
                open.execute(params![row, t.last_ms])?;
            }
        }
        Ok(())
    }

    /// The row of store trajectory `store` (remembered a while after its end), created at
    /// `first_ms` when unknown.
    pub(super) fn store_row(
        &mut self,
        tx: &Transaction<'_>,
        store: u64,
        first_ms: i64,
    ) -> rusqlite::Result<i64> {
        match self.retired.get(&store) {
            Some(r) => Ok(*r),
            None => self.row(tx, store, first_ms),
        }
    }

    /// Forgets the batch's totals and ended trajectories; call after a successful commit.
    pub(super) fn committed(&mut self) {
        let ended: Vec<i64> = self
            .touched
            .iter()
            .filter(|(_, t)| t.ended)
            .map(|(r, _)| *r)
            .collect();
        let rows = &mut self.rows;
        for (store, row) in rows.iter().filter(|(_, r)| ended.contains(r)) {
            self.retired.insert(*store, *row);
            self.retired_order.push_back(*store);
        }
        rows.retain(|_, r| !ended.contains(r));
        while self.retired_order.len() > RETIRED_KEPT {
            if let Some(old) = self.retired_order.pop_front() {
                self.retired.remove(&old);
            }
        }
        self.touched.clear();
    }

    /// Forgets the batch's totals after a failed transaction (the batch is retried whole, and
    /// rows created in it are gone).
    pub(super) fn rolled_back(&mut self, before: &HashMap<u64, i64>) {
        self.rows = before.clone();
        self.touched.clear();
    }

    /// The current mapping (kept to undo a failed batch).
    pub(super) fn snapshot(&self) -> HashMap<u64, i64> {
        self.rows.clone()
    }

    fn row(&mut self, tx: &Transaction<'_>, store: u64, first_ms: i64) -> rusqlite::Result<i64> {
        if let Some(r) = self.rows.get(&store) {
            return Ok(*r);
        }
        tx.prepare_cached("INSERT INTO store_tracks(first_ms, last_ms) VALUES (?1, ?1)")?
            .execute(params![first_ms])?;
        let r = tx.last_insert_rowid();
        self.rows.insert(store, r);
        Ok(r)
    }
}
