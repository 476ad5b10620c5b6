#!/usr/bin/env python3
"""Score MOTChallenge tracker results against ground truth with TrackEval (PyPI `trackeval`,
the reference implementation of HOTA, CLEAR/MOTA and Identity/IDF1).

    mot_eval.py --gt-root DIR --results DIR [--seqs a,b] [--json OUT]

DIR/<seq>/gt/gt.txt is the ground truth (frame,id,x,y,w,h,conf,...) and RESULTS/<seq>.txt the
tracker output (frame,id,x,y,w,h,...), as in the MOTChallenge layout. Every gt row counts (the
synthetic scenes have no distractor classes). Prints one row per sequence and the combined row;
--json writes the combined figures.
"""

import argparse
import json
import os
import sys
import warnings

import numpy as np

warnings.filterwarnings("ignore")
from trackeval.datasets._base_dataset import _BaseDataset  # noqa: E402
from trackeval.metrics import CLEAR, HOTA, Identity  # noqa: E402


def load(path):
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return np.zeros((0, 6))
    a = np.loadtxt(path, delimiter=",", ndmin=2)
    return a[:, :6]


def seq_length(seq_dir, gt):
    ini = os.path.join(seq_dir, "seqinfo.ini")
    if os.path.exists(ini):
        for line in open(ini):
            if line.startswith("seqLength="):
                return int(line.split("=")[1])
    return int(gt[:, 0].max()) if len(gt) else 0


def to_data(gt, tr, frames):
    """TrackEval's per-sequence input: ids remapped to 0..n-1 and IoU per frame."""
    gt_map = {v: i for i, v in enumerate(np.unique(gt[:, 1]).astype(int))}
    tr_map = {v: i for i, v in enumerate(np.unique(tr[:, 1]).astype(int))}
    data = {
        "num_timesteps": frames,
        "num_gt_ids": len(gt_map),
        "num_tracker_ids": len(tr_map),
        "num_gt_dets": len(gt),
        "num_tracker_dets": len(tr),
        "gt_ids": [],
        "tracker_ids": [],
        "similarity_scores": [],
    }
    for f in range(1, frames + 1):
        g = gt[gt[:, 0] == f]
        t = tr[tr[:, 0] == f]
        data["gt_ids"].append(np.array([gt_map[int(i)] for i in g[:, 1]], dtype=int))
        data["tracker_ids"].append(np.array([tr_map[int(i)] for i in t[:, 1]], dtype=int))
        data["similarity_scores"].append(
            _BaseDataset._calculate_box_ious(g[:, 2:6], t[:, 2:6], box_format="xywh")
        )
    return data


def figures(res):
    return {
        "HOTA": float(np.mean(res["HOTA"]["HOTA"])),
        "MOTA": float(res["CLEAR"]["MOTA"]),
        "IDF1": float(res["Identity"]["IDF1"]),
        "IDSW": int(res["CLEAR"]["IDSW"]),
        "FP": int(res["CLEAR"]["CLR_FP"]),
        "FN": int(res["CLEAR"]["CLR_FN"]),
        "Frag": int(res["CLEAR"]["Frag"]),
    }


def evaluate(gt_root, results, seqs=None):
    metrics = [HOTA(), CLEAR({"PRINT_CONFIG": False}), Identity({"PRINT_CONFIG": False})]
    seqs = seqs or sorted(
        d for d in os.listdir(gt_root) if os.path.exists(os.path.join(gt_root, d, "gt", "gt.txt"))
    )
    if not seqs:
        raise SystemExit(f"error: no sequences with gt/gt.txt under {gt_root}")
    per_seq = {}
    for s in seqs:
        gt = load(os.path.join(gt_root, s, "gt", "gt.txt"))
        tr = load(os.path.join(results, s + ".txt"))
        data = to_data(gt, tr, seq_length(os.path.join(gt_root, s), gt))
        per_seq[s] = {type(m).__name__: m.eval_sequence(data) for m in metrics}
    combined = {type(m).__name__: m.combine_sequences({s: r[type(m).__name__] for s, r in per_seq.items()}) for m in metrics}
    return {s: figures(r) for s, r in per_seq.items()}, figures(combined)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gt-root", required=True)
    ap.add_argument("--results", required=True)
    ap.add_argument("--seqs", default="")
    ap.add_argument("--json")
    a = ap.parse_args()
    seqs = [s for s in a.seqs.split(",") if s] or None
    per_seq, combined = evaluate(a.gt_root, a.results, seqs)
    cols = ["HOTA", "MOTA", "IDF1", "IDSW", "FP", "FN"]
    print(f"{'sequence':<24}" + "".join(f"{c:>8}" for c in cols))
    for name, f in list(per_seq.items()) + [("COMBINED", combined)]:
        cells = "".join(f"{f[c] * 100:8.2f}" if isinstance(f[c], float) else f"{f[c]:8d}" for c in cols)
        print(f"{name:<24}{cells}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"combined": combined, "sequences": per_seq}, fh, indent=2)


if __name__ == "__main__":
    sys.exit(main())
