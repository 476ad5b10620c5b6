//! What the dispatcher's fake detectors (`tests.rs`: last in, first out; `overload.rs`: one
//! frame at a time, a fixed time each) take and give: an 8×8 frame with no pixels (a fake
//! never looks at them) and the detections it reports for one.

use gstreamer as gst;

use crate::infer::backend::Finished;
use crate::messages::{CameraIndex, Detections, Frame};
use crate::resize::{ColorOrder, InputSpec, Layout, ResizeMode};
use crate::time::wall_ms;

/// Frame `seq` of `camera`, captured now: 8×8 pixels stretched to a 1×1 model input (GStreamer
/// initialised by the caller).
pub(super) fn frame(camera: CameraIndex, seq: u64) -> Frame {
    let spec = InputSpec {
        width: 8,
        height: 8,
        resize: ResizeMode::Stretch,
        color: ColorOrder::Rgb,
        layout: Layout::Nhwc,
    };
    Frame {
        camera,
        seq,
        captured_ms: wall_ms(),
        mapping: spec.mapping((8, 8), (1, 1)),
        pixels: gst::Buffer::new(),
    }
}

/// `frame` detected: `persons` counted, no boxes.
pub(super) fn detected(frame: &Frame, persons: u32) -> Finished {
    Finished::Detected(Detections {
        camera: frame.camera,
        seq: frame.seq,
        captured_ms: frame.captured_ms,
        source_size: (8, 8),
        persons,
        boxes: Vec::new(),
    })
}
