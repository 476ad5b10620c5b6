//! The wall clock as the service's stages read it: Unix milliseconds, the time unit of every
//! message, row and answer. Pure stages (track, analytics) never call it: time reaches them
//! inside their inputs. (Questions with relative times, in the API and the CLI, read
//! `SystemTime::now()` to parse them; `rng::box_seed` mixes in its nanoseconds.)

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time in milliseconds (0 if the clock is before 1970).
pub fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
