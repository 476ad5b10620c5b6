use std::path::Path;
use std::sync::atomic::AtomicUsize;

use super::*;
use crate::ingest::queue::frame_queues;
use crate::resize::{ColorOrder, Layout, ResizeMode};

/// A task for camera `cam1` whose reconnect backoff is a few milliseconds.
fn task(stats: Arc<CameraStats>) -> CameraTask {
    let pipeline = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/camera.pipeline");
    let (mut senders, _source) = frame_queues(1, 2);
    CameraTask {
        index: 0,
        camera: CameraConfig::new("cam1", "rtsp://127.0.0.1:1/x".parse().unwrap()),
        ingest: IngestConfig {
            pipeline: pipeline.clone(),
            latency_ms: 200,
            protocols: "tcp".into(),
            queue_frames: 2,
            retry_interval_ms: 1,
            retry_max_ms: 5,
            stall_timeout_ms: 1_000,
            idle_interval_ms: 0,
        },
        template: Template::load(&pipeline).unwrap(),
        input: InputSpec {
            width: 8,
            height: 8,
            resize: ResizeMode::Stretch,
            color: ColorOrder::Rgb,
            layout: Layout::Nhwc,
        },
        decoder_threads: 1,
        frames: senders.remove(0),
        stats,
        stop: Arc::default(),
        resume_after_ms: None,
    }
}

#[test]
fn a_camera_run_that_panics_is_counted_and_started_again() {
    let stats = Arc::new(CameraStats::new("cam1", "cam1", "rtsp://127.0.0.1:1/x"));
    let task = task(Arc::clone(&stats));
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&attempts);
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        supervise_with(&task, |task| {
            if counted.fetch_add(1, Ordering::Relaxed) == 0 {
                panic!("decoder state out of range");
            }
            task.stop.store(true, Ordering::Relaxed);
            (Ended::Stopped, false)
        });
        done_tx.send(()).unwrap();
    });
    done_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the supervisor returned after the stopped run");

    let cam = &stats;
    assert_eq!(attempts.load(Ordering::Relaxed), 2);
    assert_eq!(cam.panics.load(Ordering::Relaxed), 1);
    assert_eq!(cam.starts.load(Ordering::Relaxed), 2);
    assert_eq!(cam.failures.load(Ordering::Relaxed), 1);
    assert_eq!(
        cam.last_error().as_deref(),
        Some("camera thread panicked: decoder state out of range")
    );
    assert!(!cam.up.load(Ordering::Relaxed));
}

/// The element names of the chain parked with the decoder of pipeline `desc`.
fn parked_chain(desc: &str) -> Vec<String> {
    gst::init().unwrap();
    let pipeline = gst::parse::launch(desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let dec = pipeline.by_name("dec").unwrap();
    let sink = pipeline.by_name("sink").unwrap();
    let parking = park::Parking::new(&dec, &sink).expect("the decoder is linked");
    let feeder = parking.upstream().parent_element().unwrap();
    assert_eq!(feeder.factory().unwrap().name(), "h264parse");
    parking
        .chain()
        .iter()
        .map(|e| e.name().to_string())
        .collect()
}

#[test]
fn the_decoder_is_parked_with_the_elements_after_it_up_to_the_appsink() {
    let task = task(Arc::new(CameraStats::new(
        "cam1",
        "cam1",
        "rtsp://127.0.0.1:1/x",
    )));
    let desc = task
        .template
        .render(&task.camera, &task.ingest, &task.input);
    let names = parked_chain(&desc);
    let kinds: Vec<_> = names
        .iter()
        .map(|n| n.trim_end_matches(char::is_numeric))
        .collect();
    assert_eq!(
        kinds,
        [
            "dec",
            "videoscale",
            "capsfilter",
            "videoconvert",
            "capsfilter"
        ]
    );
    // A queue has a thread of its own: the chain stops before it.
    let queued = parked_chain(
        "fakesrc ! h264parse ! avdec_h264 name=dec ! videoconvert name=conv ! queue \
         ! appsink name=sink",
    );
    assert_eq!(queued, ["dec", "conv"]);
}
