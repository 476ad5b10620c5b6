//! The events outbox as a sender sees it: rows in `seq` order after a cursor, and the cursor
//! of each sink (`outbox_cursors`), on the sender's own connection (never the writer's).
//!
//! Input: the database path and a sink name. Output: [`OutboxRow`]s; the cursor saved when
//! the sink's receiver has acknowledged. A sink without a cursor starts at the end of the
//! outbox (events written from then on); a cursor older than the oldest row (retention deleted
//! rows the sink never got) continues with the oldest, counting the rows it missed.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

/// Longest wait for SQLite's write lock (the store's writer holds it briefly per commit).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// Delivery order.
    pub seq: i64,
    /// The event's id (receivers drop duplicates by it).
    pub event_id: String,
    /// The event's kind.
    pub kind: String,
    /// When it happened, Unix ms.
    pub ts_ms: i64,
    /// The event, one JSON line (docs/events.md).
    pub json: String,
}

/// Why the outbox could not be read or a cursor saved.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The database could not be opened.
    #[error("{path}: cannot open the database for event delivery: {source}")]
    Open {
        /// The database.
        path: String,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A statement failed.
    #[error("events outbox: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// A batch of rows after a cursor.
#[derive(Debug, Default)]
pub struct Batch {
    /// Rows in `seq` order.
    pub rows: Vec<OutboxRow>,
    /// Rows between the cursor and the first row that are gone (deleted by retention).
    pub missed: u64,
}

/// A sender's connection to the outbox.
pub struct Outbox {
    conn: Connection,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").finish_non_exhaustive()
    }
}

impl Outbox {
    /// Opens `db` (its schema made by the store: this never migrates).
    pub fn open(db: &Path) -> Result<Self, OutboxError> {
        let open = |source| OutboxError::Open {
            path: db.display().to_string(),
            source,
        };
        let conn = Connection::open(db).map_err(open)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open)?;
        Ok(Self { conn })
    }

    /// The sink's cursor; a new sink's is set at the end of the outbox now.
    pub fn cursor(&self, sink: &str) -> Result<i64, OutboxError> {
        let saved: Option<i64> = self
            .conn
            .query_row(
                "SELECT seq FROM outbox_cursors WHERE sink = ?1",
                [sink],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(seq) = saved {
            return Ok(seq);
        }
        // The highest seq ever given (rows may all be deleted): nothing before now is "missed".
        let end: i64 = self
            .conn
            .query_row(
                "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events_outbox'), 0)",
                [],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        self.save(sink, end)?;
        Ok(end)
    }

    /// Saves the sink's cursor (`seq` delivered up to).
    pub fn save(&self, sink: &str, seq: i64) -> Result<(), OutboxError> {
        self.conn.execute(
            "INSERT INTO outbox_cursors (sink, seq, updated_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT(sink) DO UPDATE SET seq = excluded.seq, updated_ms = excluded.updated_ms",
            params![sink, seq, crate::time::wall_ms()],
        )?;
        Ok(())
    }

    /// Up to `limit` rows after `after`, and how many rows before the first are gone.
    pub fn after(&self, after: i64, limit: usize) -> Result<Batch, OutboxError> {
        let rows = read_after(&self.conn, after, limit)?;
        let missed = rows
            .first()
            .map_or(0, |r| (r.seq - after - 1).max(0) as u64);
        Ok(Batch { rows, missed })
    }

    /// Rows after `after` (the sink's backlog).
    pub fn backlog(&self, after: i64) -> Result<i64, OutboxError> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM events_outbox WHERE seq > ?1",
            [after],
            |r| r.get(0),
        )?)
    }
}

/// Up to `limit` rows after `after` in `seq` order (any connection: the SSE streams read
/// with a read-only one).
pub fn read_after(
    conn: &Connection,
    after: i64,
    limit: usize,
) -> Result<Vec<OutboxRow>, rusqlite::Error> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut st = conn.prepare_cached(
        "SELECT seq, event_id, kind, ts_ms, json FROM events_outbox
         WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    st.query_map(params![after, limit], |r| {
        Ok(OutboxRow {
            seq: r.get(0)?,
            event_id: r.get(1)?,
            kind: r.get(2)?,
            ts_ms: r.get(3)?,
            json: r.get(4)?,
        })
    })?
    .collect()
}

/// The highest `seq` in the outbox (0 when empty).
pub fn last_seq(conn: &Connection) -> Result<i64, rusqlite::Error> {
    conn.query_row("SELECT coalesce(max(seq), 0) FROM events_outbox", [], |r| {
        r.get(0)
    })
}
