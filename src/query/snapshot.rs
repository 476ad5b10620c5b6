//! One frame from a camera (or any URI GStreamer can open), for drawing tracks over it.
//!
//! Input: a URI (`rtsp://…`, `file:///…`). Output: the first decoded frame as RGB.

use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use image::RgbImage;

/// How long to wait for the first frame.
pub const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(15);

/// Why no frame was grabbed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// GStreamer could not start.
    #[error("GStreamer: {0}")]
    Init(#[from] gst::glib::Error),
    /// The pipeline could not be built or started.
    #[error("{uri}: cannot open ({detail})")]
    Open {
        /// The URI (password masked).
        uri: String,
        /// What failed.
        detail: String,
    },
    /// No frame arrived in time.
    #[error("{uri}: no frame within {}s", SNAPSHOT_TIMEOUT.as_secs())]
    NoFrame {
        /// The URI (password masked).
        uri: String,
    },
}

/// Grabs the first frame from `uri`.
pub fn grab(uri: &url::Url) -> Result<RgbImage, SnapshotError> {
    gst::init()?;
    let shown = crate::redact::url(uri);
    let open = |detail: String| SnapshotError::Open {
        uri: shown.clone(),
        detail: crate::redact::text(uri, &detail).into_owned(),
    };
    let src = gst::ElementFactory::make("uridecodebin")
        .property("uri", uri.as_str())
        .build()
        .map_err(|e| open(e.to_string()))?;
    let convert = gst::ElementFactory::make("videoconvert")
        .build()
        .map_err(|e| open(e.to_string()))?;
    let sink = gst_app::AppSink::builder()
        .caps(
            &gst::Caps::builder("video/x-raw")
                .field("format", "RGB")
                .build(),
        )
        .max_buffers(1)
        .drop(true)
        .sync(false)
        .build();
    let pipeline = gst::Pipeline::new();
    pipeline
        .add_many([&src, &convert, sink.upcast_ref()])
        .map_err(|e| open(e.to_string()))?;
    convert.link(&sink).map_err(|e| open(e.to_string()))?;
    let weak = convert.downgrade();
    src.connect_pad_added(move |_, pad| {
        if let Some(convert) = weak.upgrade()
            && let Some(sinkpad) = convert.static_pad("sink")
            && !sinkpad.is_linked()
        {
            let _ = pad.link(&sinkpad);
        }
    });
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| open(e.to_string()))?;
    let sample = sink.try_pull_sample(gst::ClockTime::from_seconds(SNAPSHOT_TIMEOUT.as_secs()));
    let _ = pipeline.set_state(gst::State::Null);
    let sample = sample.ok_or_else(|| SnapshotError::NoFrame { uri: shown.clone() })?;
    to_image(&sample).ok_or(SnapshotError::NoFrame { uri: shown })
}

fn to_image(sample: &gst::Sample) -> Option<RgbImage> {
    let s = sample.caps()?.structure(0)?;
    let (w, h) = (
        s.get::<i32>("width").ok()? as u32,
        s.get::<i32>("height").ok()? as u32,
    );
    let map = sample.buffer()?.map_readable().ok()?;
    let data = map.as_slice();
    // Rows of packed RGB are padded to 4 bytes.
    let stride = data.len() / h as usize;
    let row = w as usize * 3;
    if stride < row {
        return None;
    }
    let mut px = Vec::with_capacity(row * h as usize);
    for y in 0..h as usize {
        px.extend_from_slice(&data[y * stride..y * stride + row]);
    }
    RgbImage::from_raw(w, h, px)
}
