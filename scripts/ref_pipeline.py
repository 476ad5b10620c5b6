#!/usr/bin/env python3
"""A plain Python reference pipeline for the benchmark's comparison column.

What a competent engineer would write in an afternoon: one OpenCV (FFmpeg) reader thread per
RTSP camera decoding every frame and keeping only the newest, and an OpenVINO AsyncInferQueue
(THROUGHPUT hint, optimal number of requests) fed round-robin with each camera's newest frame,
resized and converted with OpenCV. No tracking or storage (storetrack does both on top).

Prints one line of `key=value` figures: processed fps, per-camera fps min/median, frame age
(read -> detections) p50/p95, CPU (% of one core) and peak RSS.

  ref_pipeline.py --urls rtsp://127.0.0.1:8554/cam1 ... --seconds 30 [--description models/x.toml]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import threading
import time
import tomllib
from pathlib import Path

os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import openvino as ov  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


class Reader(threading.Thread):
    """Decodes one camera and keeps its newest frame."""

    def __init__(self, url: str, stop: threading.Event):
        super().__init__(daemon=True)
        self.url, self.stop = url, stop
        self.lock = threading.Lock()
        self.frame: np.ndarray | None = None
        self.stamp = 0.0
        self.decoded = 0

    def run(self) -> None:
        cap = cv2.VideoCapture(self.url, cv2.CAP_FFMPEG)
        while not self.stop.is_set():
            ok, frame = cap.read()
            if not ok:
                time.sleep(0.05)
                continue
            with self.lock:
                self.frame, self.stamp = frame, time.time()
                self.decoded += 1
        cap.release()

    def take(self):
        with self.lock:
            f, t = self.frame, self.stamp
            self.frame = None
        return f, t


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--urls", nargs="+", required=True)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--description", type=Path, default=ROOT / "models" / "ssdlite.toml")
    p.add_argument("--hint", default="THROUGHPUT")
    args = p.parse_args()

    d = tomllib.loads(args.description.read_text())
    ir = Path(d["ir"])
    if not ir.is_absolute():
        ir = args.description.parent / ir
    w, h, name = int(d["input_width"]), int(d["input_height"]), d["input"]
    rgb = d.get("color", "RGB") == "RGB"

    core = ov.Core()
    compiled = core.compile_model(str(ir), "CPU", {"PERFORMANCE_HINT": args.hint})
    queue = ov.AsyncInferQueue(compiled)
    per_camera = [0] * len(args.urls)
    ages: list[float] = []

    def done(_request, userdata):
        cam, stamp = userdata
        per_camera[cam] += 1
        ages.append(time.time() - stamp)

    queue.set_callback(done)
    stop = threading.Event()
    readers = [Reader(u, stop) for u in args.urls]
    for r in readers:
        r.start()
    # Count from the first decoded frame of every camera (connection set-up excluded).
    t_wait = time.time()
    while not all(r.decoded for r in readers) and time.time() - t_wait < 30:
        time.sleep(0.05)
    cpu0 = os.times()
    t0 = time.time()
    nxt = 0
    while time.time() - t0 < args.seconds:
        submitted = False
        for k in range(len(readers)):
            cam = (nxt + k) % len(readers)
            frame, stamp = readers[cam].take()
            if frame is None:
                continue
            small = cv2.resize(frame, (w, h))
            if rgb:
                small = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
            queue.start_async({name: small[None]}, (cam, stamp))  # blocks while all are busy
            nxt = cam + 1
            submitted = True
            break
        if not submitted:
            time.sleep(0.002)
    queue.wait_all()
    elapsed = time.time() - t0
    cpu1 = os.times()
    stop.set()
    cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / elapsed * 100
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    fps = [c / elapsed for c in per_camera]
    ages_ms = sorted(a * 1000 for a in ages)
    p = lambda q: ages_ms[min(len(ages_ms) - 1, int(q * len(ages_ms)))] if ages_ms else float("nan")  # noqa: E731
    print(
        f"fps={sum(per_camera) / elapsed:.1f} cam_min={min(fps):.2f} cam_median={statistics.median(fps):.2f} "
        f"age_p50_ms={p(0.5):.0f} age_p95_ms={p(0.95):.0f} cpu={cpu:.0f} rss_mb={rss_mb:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
