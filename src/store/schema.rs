//! Database schema and migrations. `PRAGMA user_version` holds the number of migrations applied;
//! each migration runs in its own transaction, so a file is always at a known version.

use rusqlite::Connection;

/// Migrations in order; `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // v1: cameras, per-frame person counts, tracks and their points.
    r#"
    CREATE TABLE cameras (
        id        TEXT PRIMARY KEY,
        name      TEXT NOT NULL,
        url       TEXT NOT NULL,          -- password masked
        added_ms  INTEGER NOT NULL
    );
    CREATE TABLE frames (
        camera    TEXT NOT NULL REFERENCES cameras(id),
        seq       INTEGER NOT NULL,
        ts_ms     INTEGER NOT NULL,
        persons   INTEGER NOT NULL
    );
    CREATE INDEX frames_camera_ts ON frames(camera, ts_ms);
    CREATE TABLE tracks (
        id        INTEGER PRIMARY KEY,
        camera    TEXT NOT NULL REFERENCES cameras(id),
        first_ms  INTEGER NOT NULL,
        last_ms   INTEGER NOT NULL,
        points    INTEGER NOT NULL DEFAULT 0,
        ended     INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX tracks_camera_first ON tracks(camera, first_ms);
    CREATE INDEX tracks_last ON tracks(last_ms);
    CREATE TABLE points (
        track     INTEGER NOT NULL REFERENCES tracks(id),
        ts_ms     INTEGER NOT NULL,
        x REAL NOT NULL, y REAL NOT NULL, w REAL NOT NULL, h REAL NOT NULL,
        score     REAL NOT NULL,
        floor_x   REAL,
        floor_y   REAL,
        PRIMARY KEY (track, ts_ms)
    ) WITHOUT ROWID;
    "#,
    // v2: service runs (crash consistency), tracks belong to a run and may be interrupted,
    // points say whether they were observed or filled in (`track::PointKind::code`).
    r#"
    CREATE TABLE runs (
        id           INTEGER PRIMARY KEY,
        started_ms   INTEGER NOT NULL,
        ended_ms     INTEGER,             -- NULL while running
        clean        INTEGER,             -- NULL while running; 1 orderly stop; 0 crash/kill
        last_ms      INTEGER,             -- wall time of the run's last commit (liveness)
        version      TEXT NOT NULL,       -- storetrack version
        config_path  TEXT NOT NULL,
        config_sha256 TEXT NOT NULL,      -- of the config file's bytes (compare: sha256sum)
        host         TEXT NOT NULL,
        pid          INTEGER NOT NULL,
        cameras      INTEGER NOT NULL,
        closed_by    INTEGER REFERENCES runs(id)  -- the run whose start closed a dead run
    );
    ALTER TABLE tracks ADD COLUMN run INTEGER REFERENCES runs(id);
    ALTER TABLE tracks ADD COLUMN interrupted INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX tracks_run ON tracks(run);
    CREATE INDEX tracks_open ON tracks(ended) WHERE ended = 0;
    ALTER TABLE points ADD COLUMN kind INTEGER NOT NULL DEFAULT 0;
    "#,
    // v3 (analytics): store-wide trajectories joined across cameras, their fused floor
    // positions, which camera tracks they are made of, and zone visits.
    r#"
    CREATE TABLE store_tracks (
        id        INTEGER PRIMARY KEY,
        first_ms  INTEGER NOT NULL,
        last_ms   INTEGER NOT NULL,
        points    INTEGER NOT NULL DEFAULT 0,
        cameras   INTEGER NOT NULL DEFAULT 0,   -- most cameras seeing it at once
        ended     INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX store_tracks_first ON store_tracks(first_ms);
    CREATE TABLE store_points (
        store_track INTEGER NOT NULL REFERENCES store_tracks(id),
        ts_ms     INTEGER NOT NULL,
        x REAL NOT NULL, y REAL NOT NULL,      -- floor metres
        cameras   INTEGER NOT NULL,
        PRIMARY KEY (store_track, ts_ms)
    ) WITHOUT ROWID;
    CREATE TABLE store_members (
        track       INTEGER PRIMARY KEY REFERENCES tracks(id),
        store_track INTEGER NOT NULL REFERENCES store_tracks(id)
    );
    CREATE INDEX store_members_store ON store_members(store_track);
    CREATE TABLE zone_visits (
        id          INTEGER PRIMARY KEY,
        store_track INTEGER NOT NULL REFERENCES store_tracks(id),
        zone        TEXT NOT NULL,
        from_zone   TEXT,                      -- previous zone of the same trajectory
        enter_ms    INTEGER NOT NULL,
        leave_ms    INTEGER NOT NULL
    );
    CREATE INDEX zone_visits_enter ON zone_visits(enter_ms);
    CREATE INDEX zone_visits_store ON zone_visits(store_track, enter_ms);
    "#,
    // v4: per-second person counts instead of one row per processed frame (12x fewer bytes:
    // measured 46 bytes per frame row with its index against 39 per camera-second). Averages
    // stay exact (persons_sum / frames). Existing frame rows are kept aside and folded into
    // seconds by the writer in the background (`store::legacy`), not here: on a file of weeks
    // that would hold the start-up for minutes.
    r#"
    CREATE TABLE frames_second (
        camera      TEXT NOT NULL REFERENCES cameras(id),
        second      INTEGER NOT NULL,     -- capture time, Unix seconds
        frames      INTEGER NOT NULL,     -- frames processed in that second
        persons_min INTEGER NOT NULL,
        persons_max INTEGER NOT NULL,
        persons_sum INTEGER NOT NULL,     -- over the frames: average = persons_sum / frames
        first_ms    INTEGER NOT NULL,     -- capture times of the second's first and last frame
        last_ms     INTEGER NOT NULL,
        PRIMARY KEY (camera, second)
    ) WITHOUT ROWID;
    ALTER TABLE frames RENAME TO frames_legacy;
    "#,
    // v5: store trajectories left open by a dead run are ended and marked like camera tracks;
    // indexes for the API's newest-first pages (and their cursors) over all cameras, and for
    // retention's oldest-first walk over store trajectories.
    r#"
    ALTER TABLE store_tracks ADD COLUMN interrupted INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX tracks_first ON tracks(first_ms);
    CREATE INDEX store_tracks_last ON store_tracks(last_ms);
    CREATE INDEX store_tracks_open ON store_tracks(ended) WHERE ended = 0;
    "#,
    // v6: per run and camera, where its frames went and what its clock did (written with the
    // run's heartbeat and at its end; `query cameras`).
    r#"
    CREATE TABLE run_cameras (
        run          INTEGER NOT NULL REFERENCES runs(id),
        camera       TEXT NOT NULL REFERENCES cameras(id),
        streamed_s   REAL NOT NULL,      -- seconds the camera streamed
        slots        INTEGER NOT NULL,   -- detection slots with a frame: most it could analyse
        decoded      INTEGER NOT NULL,   -- = analysed + not_picked + skipped + dropped + failed
        analysed     INTEGER NOT NULL,
        not_picked   INTEGER NOT NULL,
        skipped      INTEGER NOT NULL,
        dropped      INTEGER NOT NULL,
        failed       INTEGER NOT NULL,
        undecoded    INTEGER NOT NULL,   -- compressed frames no analysed frame needed
        clock_offset_ms  INTEGER,        -- camera RTCP clock - capture reference; NULL: no reports
        capture_delay_ms INTEGER,        -- subtracted (camera clock in step); NULL otherwise
        clock_jumps      INTEGER NOT NULL,
        clock_corrections INTEGER NOT NULL,
        PRIMARY KEY (run, camera)
    ) WITHOUT ROWID;
    "#,
    // v7 (footfall and live events): line crossings, queue waits and lengths, alerts, and the
    // events outbox with one delivery cursor per sink. Every row about a person is written in
    // the same transaction as its outbox event; senders deliver outbox rows in `seq` order and
    // move their cursor. Zone visits are written when they begin (`ended = 0`) so a crash
    // cannot lose one in progress: crash recovery ends them (`interrupted = 1`).
    r#"
    CREATE TABLE line_crossings (
        id           INTEGER PRIMARY KEY,
        line         TEXT NOT NULL,
        direction    TEXT NOT NULL CHECK (direction IN ('in', 'out')),
        ts_ms        INTEGER NOT NULL,    -- far side reached (the event's time)
        crossed_ms   INTEGER NOT NULL,    -- the path crossed the line itself
        store_track  INTEGER REFERENCES store_tracks(id),  -- lines on the floor plan
        camera       TEXT,                -- lines drawn on a camera's picture
        camera_track INTEGER,
        event_id     TEXT NOT NULL
    );
    CREATE INDEX line_crossings_line_ts ON line_crossings(line, ts_ms);
    CREATE INDEX line_crossings_ts ON line_crossings(ts_ms);
    CREATE INDEX line_crossings_store ON line_crossings(store_track);
    CREATE TABLE queue_waits (
        id           INTEGER PRIMARY KEY,
        queue        TEXT NOT NULL,       -- the queue zone's id
        store_track  INTEGER REFERENCES store_tracks(id),
        enter_ms     INTEGER NOT NULL,
        end_ms       INTEGER NOT NULL,
        wait_ms      INTEGER NOT NULL,
        outcome      TEXT NOT NULL CHECK (outcome IN ('served', 'abandoned', 'left')),
        event_id     TEXT NOT NULL
    );
    CREATE INDEX queue_waits_queue_end ON queue_waits(queue, end_ms);
    CREATE INDEX queue_waits_end ON queue_waits(end_ms);
    CREATE INDEX queue_waits_store ON queue_waits(store_track);
    CREATE TABLE queue_lengths (          -- one row per change of a queue's length
        queue        TEXT NOT NULL,
        ts_ms        INTEGER NOT NULL,
        length       INTEGER NOT NULL,
        PRIMARY KEY (queue, ts_ms)
    ) WITHOUT ROWID;
    CREATE INDEX queue_lengths_ts ON queue_lengths(ts_ms);
    CREATE TABLE alerts (
        id           INTEGER PRIMARY KEY,
        rule         TEXT NOT NULL,
        rule_kind    TEXT NOT NULL,       -- occupancy, queue_length, dwell, crossings, camera
        subject      TEXT NOT NULL,       -- zone, line or camera id; '' for the whole store
        raised_ms    INTEGER NOT NULL,
        cleared_ms   INTEGER,             -- NULL while active
        value        REAL NOT NULL,       -- when raised
        threshold    REAL NOT NULL,
        cleared_value REAL,
        event_id     TEXT NOT NULL        -- of the raise
    );
    CREATE INDEX alerts_raised ON alerts(raised_ms);
    CREATE INDEX alerts_active ON alerts(rule, subject) WHERE cleared_ms IS NULL;
    CREATE TABLE events_outbox (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,  -- delivery order
        event_id     TEXT NOT NULL,
        kind         TEXT NOT NULL,
        ts_ms        INTEGER NOT NULL,
        written_ms   INTEGER NOT NULL,    -- wall time of the transaction that wrote it
        json         TEXT NOT NULL        -- docs/events.md, one line
    );
    CREATE INDEX events_outbox_ts ON events_outbox(ts_ms);
    CREATE TABLE outbox_cursors (         -- per sink (e.g. 'mqtt', 'webhook:<id>'): last seq delivered
        sink         TEXT PRIMARY KEY,
        seq          INTEGER NOT NULL,
        updated_ms   INTEGER NOT NULL
    ) WITHOUT ROWID;
    ALTER TABLE zone_visits ADD COLUMN ended INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE zone_visits ADD COLUMN interrupted INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX zone_visits_open ON zone_visits(ended) WHERE ended = 0;
    "#,
];

/// The version this build writes.
pub const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The file was written by a newer storetrack.
    #[error(
        "database schema version {found} is newer than this storetrack understands ({CURRENT_VERSION})"
    )]
    TooNew {
        /// Version found in the file.
        found: i64,
    },
    /// SQLite failed.
    #[error("migration to version {to} failed: {source}")]
    Sql {
        /// Target version.
        to: i64,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
}

/// Current `user_version` of a connection.
pub fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Applies every migration the file does not have yet.
pub fn migrate(conn: &mut Connection) -> Result<i64, MigrateError> {
    let found = version(conn).map_err(|source| MigrateError::Sql { to: 0, source })?;
    if found > CURRENT_VERSION {
        return Err(MigrateError::TooNew { found });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let to = i as i64 + 1;
        let sql_err = |source| MigrateError::Sql { to, source };
        let tx = conn.transaction().map_err(sql_err)?;
        tx.execute_batch(sql).map_err(sql_err)?;
        tx.pragma_update(None, "user_version", to)
            .map_err(sql_err)?;
        tx.commit().map_err(sql_err)?;
    }
    Ok(CURRENT_VERSION)
}
