#!/usr/bin/env python3
"""storetrack's tracker against the `trackers` package's ByteTrack and OC-SORT on exactly the
same synthetic detections, each with its defaults and tuned, scored with TrackEval.

    compare_trackers.py --bin target/release/storetrack --work DIR
        [--tune-seeds 1,2,3] [--eval-seeds 101,102,103,104,105] [--trials 40] [--json OUT]

Scenes come from `storetrack synth` (two cameras per seed, 10 fps). Tuning is a seeded random
search of each tracker's parameters on the tuning seeds (maximising the mean of HOTA, MOTA and
IDF1); the tuned settings are then scored on the evaluation seeds, which tuning never sees.
Prints a Markdown table.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import warnings

import numpy as np

warnings.filterwarnings("ignore")
import supervision as sv  # noqa: E402
from trackers import ByteTrackTracker, OCSORTTracker  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mot_eval import evaluate  # noqa: E402

FPS = 10.0

STORETRACK_SPACE = {
    "high_score": {"type": "uniform", "range": [0.3, 0.7]},
    "low_score": {"type": "uniform", "range": [0.05, 0.3]},
    "new_track_score": {"type": "uniform", "range": [0.4, 0.8]},
    "match_iou": {"type": "uniform", "range": [0.05, 0.5]},
    "low_match_iou": {"type": "uniform", "range": [0.1, 0.6]},
    "tentative_match_iou": {"type": "uniform", "range": [0.1, 0.6]},
    "confirm_hits": {"type": "randint", "range": [1, 5]},
    "max_lost_ms": {"type": "randint", "range": [500, 6000]},
}


def synth(binary, out, seeds):
    if not os.path.isdir(out):
        subprocess.run([binary, "synth", "--out", out, "--seeds", ",".join(map(str, seeds))],
                       check=True, stdout=subprocess.DEVNULL)
    return sorted(d for d in os.listdir(out) if os.path.isdir(os.path.join(out, d)))


def sample(space, rng):
    p = {}
    for k, spec in space.items():
        lo, hi = spec["range"]
        p[k] = rng.randint(lo, hi - 1) if spec["type"] == "randint" else rng.uniform(lo, hi)
    return p


def run_storetrack(binary, scenes, seqs, out, params):
    os.makedirs(out, exist_ok=True)
    cmd_params = []
    if params:
        path = os.path.join(out, "params.toml")
        with open(path, "w") as fh:
            fh.write("[tracker]\n")
            for k, v in params.items():
                fh.write(f"{k} = {int(v) if isinstance(v, int) else float(v)}\n")
        cmd_params = ["--params", path]
    for s in seqs:
        subprocess.run([binary, "track", "--detections", os.path.join(scenes, s, "det", "det.txt"),
                        "--output", os.path.join(out, s + ".txt"), "--fps", str(FPS)] + cmd_params,
                       check=True)


def run_python(cls, scenes, seqs, out, params):
    os.makedirs(out, exist_ok=True)
    for s in seqs:
        det = np.loadtxt(os.path.join(scenes, s, "det", "det.txt"), delimiter=",", ndmin=2)
        last = int(det[:, 0].max()) if len(det) else 0
        tracker = cls(frame_rate=FPS, **params)
        rows = []
        for f in range(1, last + 1):
            d = det[det[:, 0] == f]
            xyxy = np.column_stack([d[:, 2], d[:, 3], d[:, 2] + d[:, 4], d[:, 3] + d[:, 5]]) if len(d) else np.zeros((0, 4))
            dets = sv.Detections(xyxy=xyxy.astype(np.float32), confidence=d[:, 6].astype(np.float32) if len(d) else np.zeros(0, np.float32),
                                 class_id=np.zeros(len(d), dtype=int))
            res = tracker.update(dets)
            for box, tid in zip(res.xyxy, res.tracker_id):
                if tid is not None and tid >= 0:
                    rows.append(f"{f},{int(tid) + 1},{box[0]:.2f},{box[1]:.2f},{box[2] - box[0]:.2f},{box[3] - box[1]:.2f},1,-1,-1,-1")
        with open(os.path.join(out, s + ".txt"), "w") as fh:
            fh.write("\n".join(rows) + ("\n" if rows else ""))


def objective(f):
    return (f["HOTA"] + f["MOTA"] + f["IDF1"]) / 3


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--tune-seeds", default="1,2,3")
    ap.add_argument("--eval-seeds", default="101,102,103,104,105")
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--json")
    a = ap.parse_args()
    binary = os.path.abspath(a.bin)
    tune_dir = os.path.join(a.work, "scenes-tune")
    eval_dir = os.path.join(a.work, "scenes-eval")
    tune_seqs = synth(binary, tune_dir, [int(s) for s in a.tune_seeds.split(",")])
    eval_seqs = synth(binary, eval_dir, [int(s) for s in a.eval_seeds.split(",")])

    trackers = {
        "storetrack": (STORETRACK_SPACE, lambda sc, sq, out, p: run_storetrack(binary, sc, sq, out, p)),
        "ByteTrack (trackers 2.6.1)": (ByteTrackTracker.search_space, lambda sc, sq, out, p: run_python(ByteTrackTracker, sc, sq, out, p)),
        "OC-SORT (trackers 2.6.1)": (OCSORTTracker.search_space, lambda sc, sq, out, p: run_python(OCSORTTracker, sc, sq, out, p)),
    }
    table = []
    report = {}
    for name, (space, run) in trackers.items():
        slug = name.split()[0].lower().replace("-", "")
        # Defaults.
        out = os.path.join(a.work, "results", slug + "-default")
        run(eval_dir, eval_seqs, out, {})
        _, default = evaluate(eval_dir, out, eval_seqs)
        # Tuned on the tuning seeds, scored on the evaluation seeds.
        rng = random.Random(7)
        best, best_params = None, {}
        for i in range(a.trials):
            p = sample(space, rng)
            out = os.path.join(a.work, "results", f"{slug}-trial")
            run(tune_dir, tune_seqs, out, p)
            _, f = evaluate(tune_dir, out, tune_seqs)
            if best is None or objective(f) > best:
                best, best_params = objective(f), p
        out = os.path.join(a.work, "results", slug + "-tuned")
        run(eval_dir, eval_seqs, out, best_params)
        _, tuned = evaluate(eval_dir, out, eval_seqs)
        report[name] = {"default": default, "tuned": tuned, "tuned_params": best_params}
        table.append((name, "defaults", default))
        table.append((name, f"tuned ({a.trials} trials)", tuned))
        print(f"{name}: default {default}\n{name}: tuned {tuned} with {best_params}", file=sys.stderr)

    print(f"Evaluation seeds {a.eval_seeds} ({len(eval_seqs)} sequences, {FPS:.0f} fps); tuning seeds {a.tune_seeds}.\n")
    print("| tracker | settings | HOTA | MOTA | IDF1 | ID switches | FP | FN |")
    print("|---|---|---|---|---|---|---|---|")
    for name, setting, f in table:
        print(f"| {name} | {setting} | {f['HOTA'] * 100:.1f} | {f['MOTA'] * 100:.1f} | {f['IDF1'] * 100:.1f} | {f['IDSW']} | {f['FP']} | {f['FN']} |")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(report, fh, indent=2)


if __name__ == "__main__":
    sys.exit(main())
