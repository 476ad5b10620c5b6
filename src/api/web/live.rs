//! `GET /ui/live`: server-sent events, one every [`TICK`]: each camera's state, analysed fps and
//! frame age, and every confirmed track's latest floor position (tracks last seen within
//! [`FRESH_MS`]). A stream ends after [`STREAM_LIFE`] (the browser's `EventSource` reconnects by
//! itself), and at most [`super::MAX_LIVE_STREAMS`] are open at once.
//!
//! Input: the counters and [`crate::live::Live`]. Output: `data: {json}` events. Building one
//! costs a few short locks and a JSON string: five pages cost the pipeline nothing measurable
//! (see docs/web.md).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body::Frame;
use serde_json::json;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Interval};

use super::super::ApiState;

/// Time between two events.
pub const TICK: Duration = Duration::from_millis(500);
/// How long one stream lasts before the browser reconnects.
pub const STREAM_LIFE: Duration = Duration::from_secs(600);
/// Positions older than this are not sent (the person left, or the camera stopped).
pub const FRESH_MS: i64 = 2_000;

/// One event's JSON.
pub(super) fn snapshot(state: &ApiState) -> serde_json::Value {
    let now = crate::time::wall_ms();
    let latest = state.stats.live.latest();
    let cameras: Vec<_> = state
        .stats
        .cameras()
        .iter()
        .map(|c| {
            let seen = latest
                .iter()
                .find(|(id, _)| **id == *c.id)
                .map(|(_, f)| f.ts_ms);
            let up = c.up.load(Ordering::Relaxed);
            json!({
                "id": c.id,
                "name": c.name,
                "state": match (up, c.failures.load(Ordering::Relaxed)) {
                    (true, _) => "up",
                    (false, 0) => "starting",
                    (false, _) => "down",
                },
                "fps": c.fps(),
                "frame_age_ms": seen.map(|t| now - t),
                "inferred": c.inferred.load(Ordering::Relaxed),
                "persons": c.persons.load(Ordering::Relaxed),
            })
        })
        .collect();
    let mut people = Vec::new();
    for (camera, f) in &latest {
        if now - f.ts_ms > FRESH_MS {
            continue;
        }
        for b in &f.boxes {
            if let Some((x, y)) = b.floor {
                people.push(json!({"camera": &**camera, "track": b.track, "x": x, "y": y}));
            }
        }
    }
    json!({"t": now, "cameras": cameras, "people": people})
}

/// The event stream body.
struct Events {
    state: Arc<ApiState>,
    tick: Interval,
    end: Instant,
    _permit: OwnedSemaphorePermit,
}

impl http_body::Body for Events {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match this.tick.poll_tick(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(at) if at >= this.end || this.state.web.closing.load(Ordering::Relaxed) => {
                Poll::Ready(None)
            }
            Poll::Ready(_) => {
                let text = format!("data: {}\n\n", snapshot(&this.state));
                Poll::Ready(Some(Ok(Frame::data(Bytes::from(text)))))
            }
        }
    }
}

/// `GET /ui/live`.
pub(super) async fn stream(State(state): State<Arc<ApiState>>) -> Response {
    let Ok(permit) = Arc::clone(&state.web.live_streams).try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"error": "too many live pages open"})),
        )
            .into_response();
    };
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let body = Events {
        state: Arc::clone(&state),
        tick,
        end: Instant::now() + STREAM_LIFE,
        _permit: permit,
    };
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::new(body),
    )
        .into_response()
}
