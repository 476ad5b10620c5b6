//! `/api/v1/events`: the events outbox as Server-Sent Events, for dashboards and scripts that
//! want live events without a broker.
//!
//! Input: `?kinds=a,b` (optional filter; unknown parameters and kinds refused with 400), the
//! `Last-Event-ID` header (resume after that outbox `seq`; without it the stream starts with
//! the events written from now on). Output: one SSE message per outbox row, `id:` = its `seq`,
//! `data:` = the event's JSON line (docs/events.md), in `seq` order; a comment every
//! [`HEARTBEAT`] while nothing happens. Each stream tails the outbox on its own read-only
//! connection (a primary-key range read every [`TAIL_POLL`]). At most [`MAX_SSE_CLIENTS`]
//! streams at once (more get 503), counted apart from the data requests' limit, with no
//! response deadline; a stream ends when its client leaves (when hyper sees the connection close,
//! at the next heartbeat at the latest) or when the server stops.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rusqlite::Connection;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{debug, warn};

use super::ApiState;
use crate::events::outbox::{OutboxRow, last_seq, read_after};
use crate::events::{EventsMetrics, KINDS};

/// Event streams open at once; more are refused (503).
pub const MAX_SSE_CLIENTS: usize = 16;
/// A comment is sent after this long without an event (keeps proxies from closing the
/// stream, and finds clients that left).
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// How often a stream looks for new outbox rows.
pub const TAIL_POLL: Duration = Duration::from_millis(250);
/// Rows read at a time.
const READ_BATCH: usize = 200;

/// The streams' shared limit and stop flag.
#[derive(Debug)]
pub struct SseHub {
    permits: Arc<Semaphore>,
    /// Set when the server stops: every stream ends.
    pub closing: Arc<AtomicBool>,
}

impl Default for SseHub {
    fn default() -> Self {
        Self {
            permits: Arc::new(Semaphore::new(MAX_SSE_CLIENTS)),
            closing: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// The route (the caller adds the host and token checks; no data limits).
pub(super) fn routes() -> Router<Arc<ApiState>> {
    Router::new().route("/api/v1/events", get(events))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    kinds: Option<String>,
}

fn bad(code: StatusCode, msg: String) -> Response {
    (code, axum::Json(json!({ "error": msg }))).into_response()
}

async fn events(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    params: Result<Query<Params>, QueryRejection>,
) -> Response {
    let params = match params {
        Ok(Query(p)) => p,
        Err(r) => return bad(StatusCode::BAD_REQUEST, r.body_text()),
    };
    let kinds = match parse_kinds(params.kinds.as_deref()) {
        Ok(k) => k,
        Err(msg) => return bad(StatusCode::BAD_REQUEST, msg),
    };
    let resume = match resume_after(&headers) {
        Ok(r) => r,
        Err(msg) => return bad(StatusCode::BAD_REQUEST, msg),
    };
    let Ok(permit) = Arc::clone(&state.sse.permits).try_acquire_owned() else {
        state.events.sse_refused.fetch_add(1, Ordering::Relaxed);
        return bad(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{MAX_SSE_CLIENTS} event streams are open already; try again later"),
        );
    };
    let conn = match crate::store::open_read_only(&state.db) {
        Ok(c) => c,
        Err(e) => return bad(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let cursor = match resume {
        Some(seq) => seq,
        None => match last_seq(&conn) {
            Ok(s) => s,
            Err(e) => {
                return bad(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("events outbox: {e}"),
                );
            }
        },
    };
    let tail = Tail {
        conn,
        cursor,
        kinds,
        buf: VecDeque::new(),
        closing: Arc::clone(&state.sse.closing),
        _client: Client::new(&state.events, permit),
    };
    let stream = futures_util::stream::unfold(tail, |mut t| async move {
        let ev = t.next().await?;
        Some((Ok::<_, Infallible>(ev), t))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat"))
        .into_response()
}

/// The `Last-Event-ID` header: the outbox `seq` to resume after (None: absent).
fn resume_after(headers: &HeaderMap) -> Result<Option<i64>, String> {
    match headers.get("last-event-id").map(|v| v.to_str()) {
        None => Ok(None),
        Some(Ok(v)) if v.trim().parse::<i64>().is_ok_and(|n| n >= 0) => Ok(v.trim().parse().ok()),
        Some(_) => {
            Err("Last-Event-ID: expected an event id (a whole number) from this stream".into())
        }
    }
}

/// `kinds=a,b` → the kinds (empty: all).
fn parse_kinds(list: Option<&str>) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for k in list.unwrap_or_default().split(',').map(str::trim) {
        if k.is_empty() {
            continue;
        }
        if !KINDS.contains(&k) {
            let shown: String = k.chars().take(40).collect();
            return Err(format!(
                "kinds: {shown:?} is not an event kind (one of {})",
                KINDS.join(", ")
            ));
        }
        out.push(k.to_string());
    }
    Ok(out)
}

/// One open stream: holds its slot and counts itself in `/metrics` while it lives.
struct Client {
    metrics: Arc<EventsMetrics>,
    _permit: OwnedSemaphorePermit,
}

impl Client {
    fn new(metrics: &Arc<EventsMetrics>, permit: OwnedSemaphorePermit) -> Self {
        metrics.sse_clients.fetch_add(1, Ordering::Relaxed);
        Self {
            metrics: Arc::clone(metrics),
            _permit: permit,
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.metrics.sse_clients.fetch_sub(1, Ordering::Relaxed);
        debug!("Event stream closed.");
    }
}

/// A stream's position in the outbox.
struct Tail {
    conn: Connection,
    cursor: i64,
    kinds: Vec<String>,
    buf: VecDeque<OutboxRow>,
    closing: Arc<AtomicBool>,
    _client: Client,
}

impl Tail {
    /// The next event, waiting for one; None when the server stops or the outbox cannot be
    /// read.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(row) = self.buf.pop_front() {
                return Some(Event::default().id(row.seq.to_string()).data(row.json));
            }
            if self.closing.load(Ordering::Relaxed) {
                return None;
            }
            // A range read on the primary key: well under a millisecond, so it runs here
            // rather than waiting for a query thread behind long queries.
            // Rows of other kinds are passed over here, so the cursor moves past them too.
            match read_after(&self.conn, self.cursor, READ_BATCH) {
                Ok(rows) if rows.is_empty() => tokio::time::sleep(TAIL_POLL).await,
                Ok(rows) => {
                    self.cursor = rows.last().map_or(self.cursor, |r| r.seq);
                    let kinds = &self.kinds;
                    self.buf.extend(
                        rows.into_iter()
                            .filter(|r| kinds.is_empty() || kinds.contains(&r.kind)),
                    );
                }
                Err(e) => {
                    warn!(error = %e, "Event stream cannot read the outbox; closed.");
                    return None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_checked() {
        assert_eq!(parse_kinds(None).unwrap(), Vec::<String>::new());
        assert_eq!(
            parse_kinds(Some("alert, counts")).unwrap(),
            ["alert", "counts"]
        );
        assert!(
            parse_kinds(Some("alert,bogus"))
                .unwrap_err()
                .contains("\"bogus\"")
        );
    }
}
