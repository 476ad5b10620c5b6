//! The `storetrack query` subcommand: one question on a read-only connection to the database,
//! printed as a table, CSV or JSON. It needs only the config's `[storage]` (or `--db`): no
//! camera secret.
//!
//! Input: the parsed arguments. Output: the answer on stdout.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};
use storetrack::config::{ApiConfig, ReadConfig};
use storetrack::query::analytics_cli::Request;
use storetrack::query::{self, Format, TrackFilter};
use storetrack::store;

use crate::QueryWhat;

/// Answers `what` from `db` (or the database of `config`).
pub fn query(db: Option<PathBuf>, config: &Path, format: Format, what: QueryWhat) -> Result<()> {
    let db = match db {
        Some(p) => p,
        None => ReadConfig::load(config)?.storage.db,
    };
    let conn = store::open_read_only(&db)?;
    let alive = store::runs::writer_alive(&db);
    let now = SystemTime::now();
    let time = |s: &Option<String>| s.as_deref().map(|s| query::parse_time(s, now)).transpose();
    let failed = || format!("{}: query failed", db.display());
    let out = match what {
        QueryWhat::Tracks {
            camera,
            from,
            to,
            min_points,
            limit,
        } => {
            let f = TrackFilter {
                camera,
                from_ms: time(&from)?,
                to_ms: time(&to)?,
                min_points,
                limit,
                after: None,
            };
            query::tracks(&conn, &f).map(|t| query::render(&t, format))
        }
        QueryWhat::Points { track } => {
            query::points(&conn, track).map(|t| query::render(&t, format))
        }
        QueryWhat::Runs { from, to, limit } => {
            query::runs(&conn, time(&from)?, time(&to)?, limit, alive)
                .map(|t| query::render(&t, format))
        }
        QueryWhat::Cameras { run } => query::cameras(&conn, run).map(|t| query::render(&t, format)),
        QueryWhat::Summary { from, to } => {
            let (from, to) = (time(&from)?, time(&to)?);
            query::summary(&conn, from, to).and_then(|cams| {
                let runs = query::runs(&conn, from, to, query::SUMMARY_RUNS, alive)?;
                let sections = [("cameras", &cams), ("runs", &runs)];
                Ok(query::render_sections(&sections, format))
            })
        }
        QueryWhat::Analytics(q) => {
            let t = Request::new(q, now)?.run(&conn).with_context(failed)?;
            Ok(query::render(&t, format))
        }
    }
    .with_context(failed)?;
    print!("{out}");
    Ok(())
}

/// How the API will be reached, for `check-config`: scheme, address, token, hosts.
pub fn describe_api(api: &ApiConfig) -> String {
    let scheme = if api.tls.is_some() { "https" } else { "http" };
    let token = match &api.token_env {
        Some(name) => format!("token from {name} required but on /healthz"),
        None => "no token: every local account can read trajectories".to_string(),
    };
    let mut line = format!("{scheme}://{} ({token})", api.listen);
    if !api.hosts.is_empty() {
        line += &format!(", host names {}", api.hosts.join(", "));
    }
    if api.tls.is_none() && !api.listen.ip().is_loopback() {
        line += "; reachable from other machines in clear text: set api.tls_cert and api.tls_key";
    }
    line
}
