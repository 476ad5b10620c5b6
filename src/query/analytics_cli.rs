//! The analytics queries as `storetrack query` subcommands: their arguments, checked and turned
//! into a [`Request`], then run on a read-only connection.
//!
//! Input: parsed command-line arguments and the current time (for ages such as `15m`). Output: a
//! [`Table`] like every other query.

use std::time::{Duration, SystemTime};

use rusqlite::Connection;

use super::analytics::{self as aq, QueryError, Range};
use crate::query::footfall as ff;
use crate::query::{Table, TimeError, parse_time};

/// Shortest time bucket.
const MIN_BUCKET: Duration = Duration::from_secs(1);
/// Longest time bucket.
const MAX_BUCKET: Duration = Duration::from_secs(31 * 86_400);

/// A time range on the command line.
#[derive(Debug, Clone, clap::Args)]
pub struct RangeArgs {
    /// From: RFC 3339, an age (15m, 2h) or Unix ms.
    #[arg(long)]
    pub from: Option<String>,
    /// To: RFC 3339, an age (15m, 2h) or Unix ms.
    #[arg(long)]
    pub to: Option<String>,
}

/// The analytics queries.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum AnalyticsQuery {
    /// Store trajectories (joined across cameras), newest first.
    Stores {
        /// The time range.
        #[command(flatten)]
        range: RangeArgs,
        /// Only trajectories with at least this many points.
        #[arg(long, default_value_t = 0)]
        min_points: i64,
        /// At most this many rows.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..))]
        limit: i64,
    },
    /// Zone visits (enter, leave, dwell, previous zone) that began in the range.
    Visits {
        /// The time range.
        #[command(flatten)]
        range: RangeArgs,
        /// Only this zone id.
        #[arg(long)]
        zone: Option<String>,
        /// At most this many rows.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i64).range(1..))]
        limit: i64,
    },
    /// Per zone: visits, median, p90, mean and total dwell.
    Dwell {
        /// The time range.
        #[command(flatten)]
        range: RangeArgs,
    },
    /// Zone-to-zone moves: how many went from one zone to the next.
    Flows {
        /// The time range.
        #[command(flatten)]
        range: RangeArgs,
    },
    /// Unique visitors (store trajectories) per time bucket; per zone with --zone.
    Visitors {
        /// The time range.
        #[command(flatten)]
        range: RangeArgs,
        /// Bucket length.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        bucket: Duration,
        /// Only visitors of this zone.
        #[arg(long)]
        zone: Option<String>,
    },
    /// Per zone and bucket: entries, exits, visitors, mean and peak people inside.
    Occupancy {
        /// The time range.
        #[command(flatten)]
        range: RangeArgs,
        /// Bucket length.
        #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
        bucket: Duration,
        /// Only this zone id.
        #[arg(long)]
        zone: Option<String>,
        /// Occupancy now instead: the store, each zone's open visits, each queue's length.
        #[arg(long, conflicts_with_all = ["from", "to", "zone"])]
        now: bool,
    },
    /// Crossings of counting lines per bucket: in, out and net.
    Footfall {
        /// The time range.
        #[command(flatten)]
        range: RangeArgs,
        /// Bucket length.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        bucket: Duration,
        /// Only this line id.
        #[arg(long)]
        line: Option<String>,
    },
    /// Queues per bucket: arrivals, waits by outcome, median / p90 / mean wait, mean and
    /// longest length, and Little's law (arrival rate x mean wait) beside the mean length.
    Queue {
        /// The time range.
        #[command(flatten)]
        range: RangeArgs,
        /// Bucket length.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        bucket: Duration,
        /// Only this queue (its zone id).
        #[arg(long)]
        queue: Option<String>,
    },
    /// Alerts raised by `[[rules]]`, newest first.
    Alerts {
        /// The time range.
        #[command(flatten)]
        range: RangeArgs,
        /// Only alerts not cleared yet.
        #[arg(long)]
        active: bool,
        /// At most this many rows.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..))]
        limit: i64,
    },
    /// The floor positions of one store trajectory.
    Path {
        /// Store trajectory id (from `query stores` or `query visits`).
        store_track: i64,
    },
}

/// Why the arguments are not usable.
#[derive(Debug, thiserror::Error)]
pub enum ArgError {
    /// A time is not understood.
    #[error(transparent)]
    Time(#[from] TimeError),
    /// A bucket is too short or too long.
    #[error("--bucket {}: must be from 1s to 31days", humantime::format_duration(*.0))]
    Bucket(Duration),
}

/// A checked query, ready to run.
#[derive(Debug, Clone)]
pub struct Request {
    what: AnalyticsQuery,
    range: Range,
    bucket_ms: i64,
}

impl Request {
    /// Checks the arguments; ages are taken back from `now`.
    pub fn new(what: AnalyticsQuery, now: SystemTime) -> Result<Request, ArgError> {
        let time = |s: &Option<String>| s.as_deref().map(|s| parse_time(s, now)).transpose();
        let (range, bucket) = match &what {
            AnalyticsQuery::Stores { range, .. }
            | AnalyticsQuery::Visits { range, .. }
            | AnalyticsQuery::Dwell { range }
            | AnalyticsQuery::Flows { range }
            | AnalyticsQuery::Alerts { range, .. } => (Some(range), None),
            AnalyticsQuery::Visitors { range, bucket, .. }
            | AnalyticsQuery::Occupancy { range, bucket, .. }
            | AnalyticsQuery::Footfall { range, bucket, .. }
            | AnalyticsQuery::Queue { range, bucket, .. } => (Some(range), Some(*bucket)),
            AnalyticsQuery::Path { .. } => (None, None),
        };
        let range = match range {
            Some(r) => Range {
                from_ms: time(&r.from)?,
                to_ms: time(&r.to)?,
            },
            None => Range::default(),
        };
        let bucket = bucket.unwrap_or(MIN_BUCKET);
        if !(MIN_BUCKET..=MAX_BUCKET).contains(&bucket) {
            return Err(ArgError::Bucket(bucket));
        }
        Ok(Request {
            what,
            range,
            bucket_ms: bucket.as_millis() as i64,
        })
    }

    /// Runs the query.
    pub fn run(&self, conn: &Connection) -> Result<Table, QueryError> {
        let (r, b) = (&self.range, self.bucket_ms);
        match &self.what {
            AnalyticsQuery::Stores {
                min_points, limit, ..
            } => Ok(aq::stores(conn, r, *min_points, *limit)?),
            AnalyticsQuery::Visits { zone, limit, .. } => {
                Ok(aq::visits(conn, r, zone.as_deref(), *limit)?)
            }
            AnalyticsQuery::Dwell { .. } => Ok(aq::dwell(conn, r)?),
            AnalyticsQuery::Flows { .. } => Ok(aq::flows(conn, r)?),
            AnalyticsQuery::Visitors { zone, .. } => aq::visitors(conn, r, b, zone.as_deref()),
            AnalyticsQuery::Occupancy { now: true, .. } => Ok(ff::occupancy_now(conn)?),
            AnalyticsQuery::Occupancy { zone, .. } => aq::occupancy(conn, r, b, zone.as_deref()),
            AnalyticsQuery::Footfall { line, .. } => Ok(ff::footfall(
                conn,
                (r.from_ms, r.to_ms),
                b,
                line.as_deref(),
            )?),
            AnalyticsQuery::Queue { queue, .. } => {
                Ok(ff::queue(conn, (r.from_ms, r.to_ms), b, queue.as_deref())?)
            }
            AnalyticsQuery::Alerts { active, limit, .. } => {
                Ok(ff::alerts_query((r.from_ms, r.to_ms), *active, None, *limit).table(conn)?)
            }
            AnalyticsQuery::Path { store_track } => Ok(aq::path(conn, *store_track)?),
        }
    }
}
