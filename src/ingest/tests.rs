use std::path::Path;
use std::sync::atomic::AtomicUsize;

use super::*;
use crate::ingest::gate::Gap;
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

/// A decoder parked alone leaves the elements after it running (their pools and caps kept);
/// parked further, the rest of the chain follows without a second park counted; woken, all of
/// it runs again.
#[test]
fn a_decoder_parked_alone_leaves_the_chain_after_it_running() {
    gst::init().unwrap();
    let pipeline = gst::parse::launch(
        "appsrc is-live=true ! h264parse ! avdec_h264 name=dec ! videoscale name=scale \
         ! videoconvert name=conv ! appsink name=sink",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let dec = pipeline.by_name("dec").unwrap();
    let sink = pipeline.by_name("sink").unwrap();
    let mut parking = park::Parking::new(&dec, &sink).unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let states = || -> Vec<gst::State> { parking_states(&pipeline, &["dec", "scale", "conv"]) };
    assert_eq!(states(), [gst::State::Playing; 3]);

    assert!(parking.park(0, park::Reach::Decoder).unwrap(), "parked");
    assert_eq!(parking.parked_elements(), 1);
    let (ready, playing) = (gst::State::Ready, gst::State::Playing);
    assert_eq!(states(), [ready, playing, playing]);
    assert!(
        !parking.park(0, park::Reach::Decoder).unwrap(),
        "parked twice"
    );
    assert!(
        !parking.park(0, park::Reach::Chain).unwrap(),
        "counted twice"
    );
    assert_eq!(states(), [ready, ready, ready]);

    parking.wake().unwrap();
    assert!(!parking.parked());
    assert_eq!(states(), [playing; 3]);
    parking.given();
    assert!(
        !parking.park(0, park::Reach::Decoder).unwrap(),
        "parked with a frame inside"
    );
    assert_eq!(states(), [playing; 3]);
    pipeline.set_state(gst::State::Null).unwrap();
}

/// The current states of the elements of `pipeline` named `names`.
fn parking_states(pipeline: &gst::Pipeline, names: &[&str]) -> Vec<gst::State> {
    names
        .iter()
        .map(|n| pipeline.by_name(n).unwrap().current_state())
        .collect()
}

/// An RTP packet (version 2, payload type 96, SSRC 7) with sequence number `seq`, no marker
/// bit, presentation time `seq` ms.
fn rtp_packet(seq: u16) -> gst::Buffer {
    let mut bytes = vec![0x80, 96, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0xab];
    bytes[2..4].copy_from_slice(&seq.to_be_bytes());
    let mut buffer = gst::Buffer::from_slice(bytes);
    buffer
        .get_mut()
        .unwrap()
        .set_pts(gst::ClockTime::from_mseconds(u64::from(seq)));
    buffer
}

#[test]
fn packets_dropped_from_the_full_packet_queue_are_counted_lost() {
    gst::init().unwrap();
    let stats = Arc::new(CameraStats::new("cam1", "cam1", "rtsp://127.0.0.1:1/x"));
    let task = task(Arc::clone(&stats));
    let parts = task
        .template
        .build(&task.camera, &task.ingest, &task.input)
        .unwrap();
    assert!(
        parts.packets.is_some(),
        "the template names its packet queue"
    );
    // A queue of 3 packets before a consumer taking 20 ms a packet: of 39 packets pushed at
    // once, the oldest are dropped.
    let pipeline = gst::parse::launch(
        "appsrc name=in caps=application/x-rtp ! queue name=packets leaky=downstream \
         max-size-buffers=3 max-size-bytes=0 max-size-time=0 ! identity sleep-time=20000 \
         ! fakesink name=out sync=false",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let gaps = Arc::new(Mutex::new(Vec::new()));
    let told = Arc::clone(&gaps);
    loss::install(&pipeline.by_name("packets").unwrap(), &stats, move |gap| {
        told.lock().unwrap().push(gap);
    });
    let seen = Arc::new(Mutex::new(Vec::new()));
    let arrived = Arc::clone(&seen);
    let out = pipeline.by_name("out").unwrap().static_pad("sink").unwrap();
    out.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(b) = info.buffer() {
            let m = b.map_readable().unwrap();
            arrived
                .lock()
                .unwrap()
                .push(u16::from_be_bytes([m[2], m[3]]));
        }
        gst::PadProbeReturn::Ok
    });
    pipeline.set_state(gst::State::Playing).unwrap();
    let src = pipeline
        .by_name("in")
        .unwrap()
        .downcast::<gstreamer_app::AppSrc>()
        .unwrap();
    // The first packet through before the rest: drops come after it, where a gap shows.
    src.push_buffer(rtp_packet(0)).unwrap();
    let start = Instant::now();
    while seen.lock().unwrap().is_empty() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(1));
    }
    for seq in 1..40 {
        src.push_buffer(rtp_packet(seq)).unwrap();
    }
    src.end_of_stream().unwrap();
    let bus = pipeline.bus().unwrap();
    let eos = bus.timed_pop_filtered(gst::ClockTime::from_seconds(10), &[gst::MessageType::Eos]);
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(eos.is_some(), "the stream ended");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.last(), Some(&39), "the newest packets stay");
    assert_eq!(seen[0], 0);
    let missing = 40 - seen.len() as u64;
    assert!(missing > 0, "the queue dropped packets: {seen:?}");
    assert_eq!(stats.packets_lost.load(Ordering::Relaxed), missing);
    // Each gap told the gate with the times of the packets either side of it (no packet ended a
    // frame: the one before counts too).
    let ms = |seq: u16| Some(u64::from(seq) * 1_000_000);
    let expected: Vec<Gap> = seen
        .windows(2)
        .filter(|w| w[1] != w[0] + 1)
        .map(|w| Gap {
            open_before: ms(w[0]),
            after: ms(w[1]),
        })
        .collect();
    assert_eq!(*gaps.lock().unwrap(), expected);
}
