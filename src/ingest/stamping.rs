//! A camera's [`CaptureClock`] fed from GStreamer buffers: reads their times and the camera's
//! NTP capture time, publishes what the clock found in the camera's [`ClockStats`], and logs
//! (rarely) what it does.
//!
//! Each stamped frame is also a TRACE event `Frame stamped.` with its presentation time (from
//! the RTP timestamp, see [`super::rtp_time`]) and the capture time given to it, so a test (or
//! an engineer) can follow a frame from the camera to the database.

use std::sync::atomic::Ordering;
use std::time::Instant;

use gstreamer as gst;
use tracing::{debug, info, trace, warn};

use super::clock::{self, Adjust, CaptureClock, Reading};
use crate::stats::{self, ClockStats};
use crate::time::wall_ms;

/// A trim of the stamps towards their reference is counted as a correction when it starts
/// this far away (closer ones only follow the arrival envelope's millisecond noise).
const COUNTED_TRIM_MS: i64 = 20;

/// One camera's capture clock with its logging state.
pub(super) struct CameraClock {
    clock: CaptureClock,
    origin: Instant,
    /// Logged once per connection: what the camera's sender reports are good for.
    measured_logged: bool,
    /// What the previous frame's stamp did (a correction is counted when one begins).
    adjusting: Option<std::mem::Discriminant<Adjust>>,
}

impl CameraClock {
    pub fn new(resume_after_ms: Option<i64>) -> Self {
        Self {
            clock: CaptureClock::resuming_after(resume_after_ms),
            origin: Instant::now(),
            measured_logged: false,
            adjusting: None,
        }
    }

    /// A new connection.
    pub fn restart(&mut self) {
        self.clock.restart();
        self.measured_logged = false;
    }

    /// A compressed frame reached the decoder.
    pub fn arrived(&mut self, buffer: &gst::BufferRef) {
        if let Some(pts) = buffer.pts() {
            let mono = self.origin.elapsed().as_millis() as i64;
            self.clock.arrived(pts.mseconds() as i64, mono);
        }
    }

    /// The capture time of decoded `buffer`, Unix ms; `stats` gets what the clock found.
    pub fn stamp(&mut self, camera: &str, buffer: &gst::BufferRef, stats: &ClockStats) -> i64 {
        let ntp_ms = ntp_capture_ms(buffer);
        let s = self.clock.stamp(Reading {
            pts_ms: buffer.pts().map(|p| p.mseconds() as i64),
            ntp_ms,
            wall_ms: wall_ms(),
            mono_ms: self.origin.elapsed().as_millis() as i64,
        });
        trace!(camera = %camera, pts_ns = buffer.pts().map(|p| p.nseconds()), ntp_ms,
               captured_ms = s.ms, "Frame stamped.");
        if let Some(offset) = s.camera.offset_ms {
            stats.offset_ms.store(offset, Ordering::Relaxed);
        }
        if let Some(measured) = s.camera.measured {
            self.measured(camera, measured, s.camera.offset_ms, stats);
        }
        if let Some(moved) = s.camera.jumped_ms {
            stats::inc(&stats.jumps);
            info!(camera = %camera, by_ms = moved,
                  offset_ms = s.camera.offset_ms.unwrap_or_default(),
                  "The camera's clock moved; capture times are not affected.");
        }
        if s.resume_ignored {
            warn!(
                camera = %camera,
                max_ahead_ms = clock::MAX_RESUME_AHEAD_MS,
                "The camera's last stored time is far ahead of this host's clock; \
                   new times start from the clock and are earlier than stored ones."
            );
        }
        self.adjusted(camera, s.adjust, stats);
        s.ms
    }

    fn measured(
        &mut self,
        camera: &str,
        measured: Option<i64>,
        offset: Option<i64>,
        stats: &ClockStats,
    ) {
        match measured {
            Some(delay) => {
                stats.delay_ms.store(delay, Ordering::Relaxed);
                if !self.measured_logged {
                    info!(camera = %camera, delay_ms = delay,
                          "Capture time from the camera's RTCP sender reports (NTP): its \
                           clock is in step with this host's.");
                }
            }
            None => {
                stats.delay_ms.store(ClockStats::UNKNOWN, Ordering::Relaxed);
                if !self.measured_logged {
                    warn!(camera = %camera, offset_ms = offset.unwrap_or_default(),
                          "The camera's clock (RTCP sender reports) is not in step with this \
                           host's; capture time from arrival.");
                }
            }
        }
        self.measured_logged = true;
    }

    /// Counts and logs a correction of the stamps when one begins.
    fn adjusted(&mut self, camera: &str, adjust: Adjust, stats: &ClockStats) {
        let kind = std::mem::discriminant(&adjust);
        let begins = self.adjusting != Some(kind);
        match adjust {
            Adjust::StepForward(ms) => {
                stats::inc(&stats.corrections);
                info!(camera = %camera, by_ms = ms, "Capture clock stepped forward.");
            }
            Adjust::Slew(ms) if begins => {
                stats::inc(&stats.corrections);
                info!(camera = %camera, ahead_ms = ms,
                      "Capture clock ahead of its reference; slowing down.");
            }
            Adjust::Trim(ms) if begins && ms.abs() > COUNTED_TRIM_MS => {
                stats::inc(&stats.corrections);
                debug!(camera = %camera, off_ms = ms, "Capture clock trimmed towards its reference.");
            }
            Adjust::PtsJump => {
                debug!(camera = %camera, "Stream timestamps jumped; using arrival spacing.")
            }
            _ => {}
        }
        self.adjusting = matches!(adjust, Adjust::Slew(_) | Adjust::Trim(_)).then_some(kind);
    }
}

/// The camera's capture time attached by rtspsrc (`add-reference-timestamp-meta=true`) once
/// an RTCP sender report has mapped RTP time to the camera's NTP clock.
fn ntp_capture_ms(buffer: &gst::BufferRef) -> Option<i64> {
    buffer
        .iter_meta::<gst::ReferenceTimestampMeta>()
        .find(|m| {
            m.reference()
                .structure(0)
                .is_some_and(|s| s.name() == "timestamp/x-ntp")
        })
        .map(|m| clock::ntp_ns_to_unix_ms(m.timestamp().nseconds()))
}
