//! Per-request cost of the remote detector: `cargo bench --bench remote_overhead -- HOST:PORT
//! [MODEL] [REQUESTS]` against a running KServe v2 server serving the detector (see
//! scripts/bench_remote.sh, which starts one).
//!
//! One request at a time on the same picture (frame 0 of the sample video at the model's input
//! size): the local engine's inference time, the remote round trip, their difference (what
//! serialization, transport and the server's own request handling add per request), and the
//! client-side encode time alone.

use std::path::Path;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use prost::Message;
use storetrack::Config;
use storetrack::infer::Engine;
use storetrack::infer::kserve::{RemoteEngine, tensor};

const WARM_UP: usize = 5;

fn picture(video: &Path, w: u32, h: u32) -> Vec<u8> {
    gst::init().unwrap();
    let pipeline = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! qtdemux ! h264parse ! avdec_h264 ! videoconvert ! videoscale \
         ! video/x-raw,format=RGB,width={w},height={h} ! appsink name=sink sync=false",
        video.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let sample = sink
        .try_pull_sample(gst::ClockTime::from_seconds(10))
        .unwrap();
    let data = sample.buffer().unwrap().map_readable().unwrap().to_vec();
    pipeline.set_state(gst::State::Null).unwrap();
    data
}

fn mean_ms(n: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..WARM_UP {
        f();
    }
    let t0 = Instant::now();
    for _ in 0..n {
        f();
    }
    t0.elapsed().as_secs_f64() * 1000.0 / n as f64
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let Some(endpoint) = args.first() else {
        eprintln!("usage: cargo bench --bench remote_overhead -- HOST:PORT [MODEL] [REQUESTS]");
        std::process::exit(2);
    };
    let model = args.get(1).map_or("ssdlite", String::as_str);
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = format!(
        "[[cameras]]\nid = \"c\"\nurl = \"rtsp://127.0.0.1:1/x\"\n[model]\ndescription = \"{}\"\n\
         [inference]\nbackend = \"kserve\"\nendpoints = [\"grpc://{endpoint}\"]\nmodel = \"{model}\"\n",
        root.join("models/ssdlite.toml").display()
    );
    let cfg = Config::from_str_at(&text, &root.join("bench.toml")).unwrap();
    let remote_cfg = cfg.inference.remote.clone().unwrap();
    let mut remote = RemoteEngine::new(&cfg.model, &cfg.inference, &remote_cfg, 0.15).unwrap();
    let mut local = Engine::new(&cfg.model, &cfg.inference, 0.15).unwrap();
    let spec = local.input_spec();
    let pixels = picture(&root.join("data/vtest.mp4"), spec.width, spec.height);
    let mapping = spec.mapping((spec.width, spec.height), (1, 1));
    let desc = storetrack::infer::ModelDescription::load(&cfg.model.description).unwrap();
    let packer = storetrack::infer::input::Packer::new(&desc);
    let decoder = storetrack::infer::Decoder::new(&desc, desc.person_class, 0.15);

    let local_ms = mean_ms(n, || {
        local.detect(&pixels, &mapping).unwrap();
    });
    let remote_ms = mean_ms(n, || {
        remote.detect(&pixels, &mapping).unwrap();
    });
    let encode_ms = mean_ms(n, || {
        let t = packer.to_bytes(&pixels).unwrap();
        let msg = tensor::infer_request(&desc, &decoder, model, None, "1".into(), t);
        std::hint::black_box(msg.encode_to_vec());
    });
    let same = local.detect(&pixels, &mapping).unwrap().len()
        == remote.detect(&pixels, &mapping).unwrap().len();
    println!("requests one at a time: {n}");
    println!("local inference        {local_ms:.2} ms");
    println!("remote round trip      {remote_ms:.2} ms");
    println!("overhead per request   {:.2} ms", remote_ms - local_ms);
    println!("client encode          {encode_ms:.3} ms");
    println!("same detections        {same}");
    std::thread::sleep(Duration::from_millis(10));
}
