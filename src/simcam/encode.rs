//! Re-encoding a file into a [`Clip`] as an [`Encoding`] says: codec, frame rate, GOP,
//! B-frames, open GOPs, size, variable frame rate and the scene (the scene's pictures come from
//! [`super::scene`]). The clip's time line and send times are [`super::clip`]'s.

use std::path::Path;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::SimError;
use super::clip::{Clip, check_file, elements, fail_for};
use super::scene::{self, Scene};
use super::variant::{Codec, Encoding};

/// Seconds of a still scene encoded (looped) when the encoding does not say.
const STILL_SECONDS: f64 = 10.0;

impl Clip {
    /// Decodes a file and encodes its pictures as `encoding` says (a waking scene: its still
    /// clip, then the file's, see [`super::scene`]).
    pub fn encode(path: &Path, encoding: &Encoding) -> Result<Clip, SimError> {
        let Scene::Wake {
            at_s,
            still_s,
            busy_s,
        } = encoding.scene
        else {
            return Self::encode_one(path, encoding);
        };
        let still = Encoding {
            scene: Scene::Still { at_s },
            seconds: Some(still_s),
            ..encoding.clone()
        };
        let busy = Encoding {
            seconds: Some(busy_s),
            ..encoding.clone()
        };
        Ok(Self::encode_one(path, &still)?.then(Self::encode_one(path, &busy)?))
    }

    /// One encoding pipeline run.
    fn encode_one(path: &Path, encoding: &Encoding) -> Result<Clip, SimError> {
        let fail = fail_for(path);
        check_file(path)?;
        gst::init()?;
        let size = match encoding.scene {
            Scene::Still { .. } => Some(
                encoding
                    .size
                    .or_else(|| scene::picture_size(path))
                    .ok_or_else(|| fail("cannot read its picture size".into()))?,
            ),
            _ => encoding.size,
        };
        let pipeline = gst::parse::launch(&transcode_description(&Encoding {
            size,
            ..encoding.clone()
        }))
        .map_err(|e| fail(format!("cannot build the encoder: {e}")))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| fail("not a pipeline".into()))?;
        let by_name = |n: &str| pipeline.by_name(n).ok_or_else(|| fail(format!("no {n}")));
        by_name("in")?.set_property("location", path.to_string_lossy().as_ref());
        if let Scene::Still { at_s } = encoding.scene {
            scene::freeze_at(&by_name("freeze")?, (at_s * 1e9) as u64);
        }
        if encoding.scene != Scene::File {
            scene::add_noise(&by_name("enc")?);
        }
        if encoding.vfr_still_fps.is_some() {
            drop_still_frames(&by_name("enc")?, encoding.clone());
        }
        let sink = by_name("out")?
            .downcast::<gst_app::AppSink>()
            .map_err(|_| fail("no appsink".into()))?;
        Self::collect(path, &pipeline, &sink, Some(encoding))
    }
}

/// The decode-and-encode pipeline for `e`: `in` is the file source, `enc` the encoder, `out`
/// the appsink.
fn transcode_description(e: &Encoding) -> String {
    // A GOP more than asked for: the clip is cut at its first key frame past `seconds`.
    let limit = e.seconds.map_or(String::new(), |s| {
        format!(
            "! identity eos-after={} ",
            ((s + e.gop_s) * f64::from(e.fps)).ceil() as u64 + 1
        )
    });
    let still = matches!(e.scene, Scene::Still { .. });
    let scale = e.size.filter(|_| !still).map_or(String::new(), |(w, h)| {
        format!("! videoscale ! video/x-raw,width={w},height={h},pixel-aspect-ratio=1/1 ")
    });
    let gop = e.gop_frames();
    // Scenes: constant quality, so frame sizes follow what moves (as a VBR camera's).
    let quality = e.scene.constant_quality();
    let encoder = match e.codec {
        Codec::H264 => format!(
            "x264enc name=enc speed-preset=veryfast bframes={} b-adapt=false b-pyramid={} \
             key-int-max={gop} {}option-string=\"scenecut=0{}\" ! video/x-h264,profile=main",
            e.bframes,
            e.bframes >= 2,
            if quality {
                "pass=qual quantizer=23 "
            } else {
                ""
            },
            if e.open_gop { ":open-gop=1" } else { "" },
        ),
        Codec::H265 => format!(
            "x265enc name=enc speed-preset=ultrafast key-int-max={gop} \
             option-string=\"bframes={}:open-gop={}:scenecut=0:min-keyint={gop}{}\"",
            e.bframes,
            u8::from(e.open_gop),
            if quality { ":crf=26" } else { "" },
        ),
    };
    let (parse, _) = elements(e.codec);
    let codec_caps = match e.codec {
        Codec::H264 => "video/x-h264",
        Codec::H265 => "video/x-h265",
    };
    let head = match (e.scene, e.size) {
        (Scene::Still { .. }, Some(size)) => {
            let seconds = e.seconds.unwrap_or(STILL_SECONDS);
            let frames = ((seconds + e.gop_s) * f64::from(e.fps)).ceil() as u64 + 1;
            scene::still_head(e.fps, frames, size)
        }
        _ => format!(
            "filesrc name=in ! decodebin expose-all-streams=false caps=\"video/x-raw(ANY)\" \
             ! videoconvert ! videorate ! video/x-raw,framerate={}/1 {limit}",
            e.fps
        ),
    };
    format!(
        "{head}{scale}! videoconvert ! video/x-raw,format=I420 ! {encoder} \
         ! {parse} config-interval=-1 ! {codec_caps},stream-format=byte-stream,alignment=au \
         ! appsink name=out sync=false"
    )
}

/// Drops, before the encoder, the frames a smart codec would not send on a still scene.
fn drop_still_frames(encoder: &gst::Element, encoding: Encoding) {
    let Some(pad) = encoder.static_pad("sink") else {
        return;
    };
    let first = std::sync::Mutex::new(None);
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Some(pts) = info.buffer().and_then(|b| b.pts()) else {
            return gst::PadProbeReturn::Ok;
        };
        let t0 = *first
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(pts);
        if encoding.keeps((pts - t0).nseconds() as f64 / 1e9) {
            return gst::PadProbeReturn::Ok;
        }
        // Handled, not Drop: on a sink pad the buffer was already taken out of the probe
        // info, and a Drop would unref the emptied pointer (a GStreamer-CRITICAL per frame).
        drop(info.take_buffer());
        info.flow_res = Ok(gst::FlowSuccess::Ok);
        gst::PadProbeReturn::Handled
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_encoder_pipeline_has_what_the_encoding_asks_for() {
        let e = Encoding {
            codec: Codec::H264,
            fps: 25,
            gop_s: 2.0,
            bframes: 3,
            open_gop: true,
            size: Some((640, 480)),
            vfr_still_fps: None,
            seconds: Some(4.0),
            scene: Scene::File,
        };
        let d = transcode_description(&e);
        for part in [
            "framerate=25/1",
            "eos-after=151",
            "width=640,height=480",
            "bframes=3",
            "key-int-max=50",
            "open-gop=1",
            "b-pyramid=true",
        ] {
            assert!(d.contains(part), "{part} missing from {d}");
        }
        let h = transcode_description(&Encoding {
            codec: Codec::H265,
            ..Encoding::default()
        });
        assert!(
            h.contains("x265enc") && h.contains("bframes=0:open-gop=0"),
            "{h}"
        );
        assert!(!h.contains("eos-after"));
    }
}
