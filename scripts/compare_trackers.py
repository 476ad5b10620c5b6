#!/usr/bin/env python3
"""storetrack's tracker against peer trackers on exactly the same detections, on two evaluation
sources, each tracker with its defaults and tuned, scored with TrackEval.

    compare_trackers.py --bin target/release/storetrack --work DIR
        [--sources synth,tud] [--trackers NAME,...] [--trials 16] [--json OUT]
        [--variant LABEL=PARAMS.toml ...]

Sources (tuning never sees the evaluation sequences):
  synth  `storetrack synth` store scenes, 10 fps, two cameras per seed: tuned on seeds 1-3,
         evaluated on seeds 101-105.
  tud    real pedestrian ground truth (TUD-Campus, TUD-Stadtmitte, 25 fps, 640x480, shipped in
         PyPI `motmetrics`) replayed through the simulated detector (`storetrack synth
         --from-gt`): tuned on TUD-Campus detector seeds 1-5, evaluated on TUD-Stadtmitte
         detector seeds 101-110.

Peers (PyPI): `trackers` 2.6.1 (SORT, ByteTrack, OC-SORT, BoT-SORT without camera motion
compensation, C-BIoU), `trackforge` 0.4.0 (SORT, ByteTrack, OC-SORT; Rust), and two Kalman
trackers that keep reporting predicted boxes while a person is unmatched: `motpy` 0.0.10 and
`norfair` 2.3.0. Tuning is a seeded random search (maximising the mean of HOTA, MOTA and IDF1)
with the same number of trials for every tracker. --variant adds storetrack rows with a fixed
[tracker] file (no tuning). Prints one Markdown table per source.
"""

import argparse
import importlib.util
import json
import os
import random
import subprocess
import sys
import warnings

import numpy as np

warnings.filterwarnings("ignore")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mot_eval import evaluate  # noqa: E402

STORETRACK_SPACE = {
    "high_score": ("uniform", 0.3, 0.7),
    "low_score": ("uniform", 0.05, 0.3),
    "new_track_score": ("uniform", 0.4, 0.8),
    "match_iou": ("uniform", 0.05, 0.5),
    "low_match_iou": ("uniform", 0.1, 0.6),
    "tentative_match_iou": ("uniform", 0.1, 0.6),
    "confirm_hits": ("randint", 1, 5),
    "max_lost_ms": ("randint", 500, 6000),
}


# --- sources -------------------------------------------------------------------------------

class Source:
    def __init__(self, name, fps, tune_dir, tune_seqs, eval_dir, eval_seqs, note):
        self.name, self.fps, self.note = name, fps, note
        self.tune = (tune_dir, tune_seqs)
        self.eval = (eval_dir, eval_seqs)


def run_synth(binary, out, seeds, extra=()):
    if not os.path.isdir(out):
        subprocess.run([binary, "synth", "--out", out, "--seeds", ",".join(map(str, seeds)), *extra],
                       check=True, stdout=subprocess.DEVNULL)
    return sorted(d for d in os.listdir(out) if os.path.isdir(os.path.join(out, d)))


def tud_gt(seq):
    spec = importlib.util.find_spec("motmetrics")
    if spec is None:
        raise SystemExit("error: motmetrics is not installed (run scripts/setup.sh)")
    path = os.path.join(spec.submodule_search_locations[0], "data", seq, "gt.txt")
    if not os.path.exists(path):
        raise SystemExit(f"error: {path} missing")
    return path


def make_source(name, binary, work):
    root = os.path.join(work, name)
    if name == "synth":
        tune, ev = [1, 2, 3], [101, 102, 103, 104, 105]
        return Source(name, 10.0, os.path.join(root, "tune"), run_synth(binary, os.path.join(root, "tune"), tune),
                      os.path.join(root, "eval"), run_synth(binary, os.path.join(root, "eval"), ev),
                      "synthetic store scenes, 10 fps: tuned on seeds 1-3, evaluated on seeds 101-105 "
                      "(two cameras each)")
    if name == "tud":
        replay = ["--from-gt", None, "--size", "640x480", "--fps", "25"]
        def make(seq, seeds, out):
            replay[1] = tud_gt(seq)
            return run_synth(binary, out, seeds, replay)
        tune = make("TUD-Campus", [1, 2, 3, 4, 5], os.path.join(root, "tune"))
        ev = make("TUD-Stadtmitte", list(range(101, 111)), os.path.join(root, "eval"))
        return Source(name, 25.0, os.path.join(root, "tune"), tune, os.path.join(root, "eval"), ev,
                      "TUD pedestrians (motmetrics ground truth) through the simulated detector, 25 fps: "
                      "tuned on TUD-Campus seeds 1-5, evaluated on TUD-Stadtmitte seeds 101-110")
    raise SystemExit(f"error: unknown source {name!r} (synth, tud)")


# --- trackers ------------------------------------------------------------------------------

def load_det(path):
    det = np.loadtxt(path, delimiter=",", ndmin=2)
    return det if len(det) else np.zeros((0, 7))


def write_rows(path, rows):
    with open(path, "w") as fh:
        fh.write("".join(f"{f},{i},{x0:.2f},{y0:.2f},{x1 - x0:.2f},{y1 - y0:.2f},1,-1,-1,-1\n"
                         for f, i, (x0, y0, x1, y1) in rows))


def run_frames(step, scenes, seqs, out, fps):
    """Feeds each sequence frame by frame to `step(tracker_state, xyxy, scores)`, which returns
    [(id, (x0, y0, x1, y1))]."""
    os.makedirs(out, exist_ok=True)
    for s in seqs:
        det = load_det(os.path.join(scenes, s, "det", "det.txt"))
        last = int(det[:, 0].max()) if len(det) else 0
        state = step(None, None, None)
        rows = []
        for f in range(1, last + 1):
            d = det[det[:, 0] == f]
            xyxy = np.column_stack([d[:, 2], d[:, 3], d[:, 2] + d[:, 4], d[:, 3] + d[:, 5]]).astype(np.float32)
            for tid, box in step(state, xyxy, d[:, 6].astype(np.float32)):
                rows.append((f, tid, box))
        write_rows(os.path.join(out, s + ".txt"), rows)


def trackers_lib(cls_name, fps, params):
    import supervision as sv
    import trackers
    cls = getattr(trackers, cls_name)
    extra = {"enable_cmc": False} if cls_name == "BoTSORTTracker" else {}

    def step(t, xyxy, scores):
        if t is None:
            return cls(frame_rate=fps, **extra, **params)
        res = t.update(sv.Detections(xyxy=xyxy.reshape(-1, 4), confidence=scores, class_id=np.zeros(len(scores), dtype=int)))
        return [(int(i) + 1, b) for b, i in zip(res.xyxy, res.tracker_id) if i is not None and i >= 0]
    return step


def trackforge_lib(cls_name, fps, params):
    import trackforge
    cls = getattr(trackforge, cls_name)

    def step(t, xyxy, scores):
        if t is None:
            return cls(**params)
        dets = [([float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])], float(s), 0) for b, s in zip(xyxy, scores)]
        return [(int(tid), (b[0], b[1], b[0] + b[2], b[1] + b[3])) for tid, b, *_ in t.update(dets)]
    return step


def motpy_lib(fps, params):
    from motpy import Detection, MultiObjectTracker
    p = {"max_staleness": 12, "min_iou": 0.1, "min_steps_alive": 3, "min_score": 0.3, **params}

    def step(t, xyxy, scores):
        if t is None:
            return [MultiObjectTracker(dt=1.0 / fps, tracker_kwargs={"max_staleness": p["max_staleness"]},
                                       matching_fn_kwargs={"min_iou": p["min_iou"]},
                                       active_tracks_kwargs={"min_steps_alive": p["min_steps_alive"],
                                                             "max_staleness": p["max_staleness"]}), {}]
        mot, ids = t
        mot.step([Detection(box=b, score=float(s)) for b, s in zip(xyxy, scores) if s >= p["min_score"]])
        return [(ids.setdefault(tr.id, len(ids) + 1), tr.box) for tr in mot.active_tracks(
            min_steps_alive=p["min_steps_alive"], max_staleness=p["max_staleness"])]
    return step


def norfair_lib(fps, params):
    from norfair import Detection, Tracker
    p = {"distance_threshold": 0.7, "hit_counter_max": 15, "initialization_delay": None, "min_score": 0.3, **params}

    def step(t, xyxy, scores):
        if t is None:
            return Tracker(distance_function="iou", distance_threshold=p["distance_threshold"],
                           hit_counter_max=p["hit_counter_max"], initialization_delay=p["initialization_delay"])
        dets = [Detection(points=b.reshape(2, 2).astype(float), scores=np.array([s, s]))
                for b, s in zip(xyxy, scores) if s >= p["min_score"]]
        return [(o.id, o.estimate.reshape(-1)) for o in t.update(detections=dets) if o.id is not None]
    return step


def storetrack_run(binary, params_file=None):
    def run(scenes, seqs, out, params, fps):
        os.makedirs(out, exist_ok=True)
        extra = ["--params", params_file] if params_file else []
        if params:
            path = os.path.join(out, "params.toml")
            with open(path, "w") as fh:
                fh.write("[tracker]\n" + "".join(f"{k} = {v!r}\n" for k, v in params.items()))
            extra = ["--params", path]
        for s in seqs:
            subprocess.run([binary, "track", "--detections", os.path.join(scenes, s, "det", "det.txt"),
                            "--output", os.path.join(out, s + ".txt"), "--fps", str(fps)] + extra, check=True)
    return run


def python_run(factory):
    def run(scenes, seqs, out, params, fps):
        run_frames(factory(fps, params), scenes, seqs, out, fps)
    return run


def space_of(cls_name):
    import trackers
    sp = getattr(trackers, cls_name).search_space
    return {k: (v["type"], *v["range"]) for k, v in sp.items() if k != "cmc_downscale"}


def peers():
    frames = lambda lo, hi: ("randint", lo, hi)  # noqa: E731
    out = {}
    for label, cls in [("SORT", "SORTTracker"), ("ByteTrack", "ByteTrackTracker"), ("OC-SORT", "OCSORTTracker"),
                       ("BoT-SORT", "BoTSORTTracker"), ("C-BIoU", "CBIoUTracker")]:
        out[f"{label} (trackers 2.6.1)"] = (space_of(cls), python_run(lambda fps, p, c=cls: trackers_lib(c, fps, p)))
    tf = {
        "SORT": {"max_age": frames(1, 60), "min_hits": frames(1, 5), "iou_threshold": ("uniform", 0.05, 0.6)},
        "BYTETRACK": {"track_thresh": ("uniform", 0.3, 0.8), "track_buffer": frames(10, 90),
                      "match_thresh": ("uniform", 0.5, 0.95), "det_thresh": ("uniform", 0.3, 0.9)},
        "OCSORT": {"max_age": frames(10, 90), "min_hits": frames(1, 5), "iou_threshold": ("uniform", 0.05, 0.6),
                   "delta_t": frames(1, 4), "inertia": ("uniform", 0.0, 0.5)},
    }
    for label, cls in [("SORT", "SORT"), ("ByteTrack", "BYTETRACK"), ("OC-SORT", "OCSORT")]:
        out[f"{label} (trackforge 0.4.0)"] = (tf[cls], python_run(lambda fps, p, c=cls: trackforge_lib(c, fps, p)))
    out["motpy 0.0.10"] = ({"max_staleness": frames(2, 40), "min_iou": ("uniform", 0.05, 0.6),
                            "min_steps_alive": frames(1, 6), "min_score": ("uniform", 0.1, 0.7)}, python_run(motpy_lib))
    out["norfair 2.3.0"] = ({"distance_threshold": ("uniform", 0.4, 0.95), "hit_counter_max": frames(2, 40),
                             "initialization_delay": frames(0, 5), "min_score": ("uniform", 0.1, 0.7)}, python_run(norfair_lib))
    return out


# --- search and report ---------------------------------------------------------------------

def sample(space, rng):
    return {k: rng.randint(lo, hi - 1) if kind == "randint" else rng.uniform(lo, hi)
            for k, (kind, lo, hi) in space.items()}


def objective(f):
    return (f["HOTA"] + f["MOTA"] + f["IDF1"]) / 3


def score(run, source, which, out, params):
    scenes, seqs = source.tune if which == "tune" else source.eval
    run(scenes, seqs, out, params, source.fps)
    return evaluate(scenes, out, seqs)[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--sources", default="synth,tud")
    ap.add_argument("--trackers", default="", help="comma-separated name prefixes (default: all)")
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--variant", action="append", default=[], help="LABEL=PARAMS.toml: storetrack with these settings")
    ap.add_argument("--json")
    a = ap.parse_args()
    binary = os.path.abspath(a.bin)
    everyone = {"storetrack": (STORETRACK_SPACE, storetrack_run(binary)), **peers()}
    wanted = [w.strip().lower() for w in a.trackers.split(",") if w.strip()]
    chosen = {n: v for n, v in everyone.items() if not wanted or any(n.lower().startswith(w) for w in wanted)}
    variants = [v.split("=", 1) for v in a.variant]
    report = {}
    for src_name in a.sources.split(","):
        source = make_source(src_name, binary, a.work)
        rows = []
        for label, path in variants:
            f = score(storetrack_run(binary, os.path.abspath(path)), source, "eval",
                      os.path.join(a.work, "results", src_name, "variant-" + label), {})
            rows.append((f"storetrack [{label}]", "fixed", f, {}))
            print(f"{src_name} storetrack [{label}]: {f}", file=sys.stderr)
        for name, (space, run) in chosen.items():
            slug = "".join(c for c in name.lower() if c.isalnum())
            res = os.path.join(a.work, "results", src_name, slug)
            default = score(run, source, "eval", res + "-default", {})
            rows.append((name, "defaults", default, {}))
            print(f"{src_name} {name}: defaults {default}", file=sys.stderr)
            if a.trials <= 0:
                continue
            rng = random.Random(7)
            best, best_params = None, {}
            for _ in range(a.trials):
                p = sample(space, rng)
                try:
                    f = score(run, source, "tune", res + "-trial", p)
                except Exception as e:  # a peer may reject a sampled combination
                    print(f"{name}: {p}: {e}", file=sys.stderr)
                    continue
                if best is None or objective(f) > best:
                    best, best_params = objective(f), p
            tuned = score(run, source, "eval", res + "-tuned", best_params)
            rows.append((name, f"tuned ({a.trials} trials)", tuned, best_params))
            print(f"{src_name} {name}: tuned {tuned} with {best_params}", file=sys.stderr)
        report[src_name] = [{"tracker": n, "settings": s, "scores": f, "params": p} for n, s, f, p in rows]
        print(f"\n{source.note}.\n")
        print("| tracker | settings | HOTA | MOTA | IDF1 | ID switches | FP | FN |")
        print("|---|---|---|---|---|---|---|---|")
        for name, setting, f, _ in rows:
            print(f"| {name} | {setting} | {f['HOTA'] * 100:.1f} | {f['MOTA'] * 100:.1f} | {f['IDF1'] * 100:.1f} "
                  f"| {f['IDSW']} | {f['FP']} | {f['FN']} |", flush=True)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(report, fh, indent=2)


if __name__ == "__main__":
    sys.exit(main())
