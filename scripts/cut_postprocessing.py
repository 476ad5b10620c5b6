#!/usr/bin/env python3
"""Cuts a converted TF Object Detection API SSD IR before its post-processing (format "ssd-raw").

The graph ends in `Postprocessor/BatchMultiClassNonMaxSuppression`, a `Loop` over
`NonMaxSuppression` that the CPU plugin runs as a sub-graph per frame: about a ninth of an INT8
inference (benchmark_app, six alternating pairs: median 1.12x the FPS without it). Its two inputs keep their TF names,
`Postprocessor/raw_box_locations` (every anchor's box, decoded by the graph: normalized ymin,
xmin, ymax, xmax) and `Postprocessor/raw_box_scores` (sigmoid scores, background first). This
script writes an IR that ends there; storetrack suppresses (src/infer/decode/ssd_raw.rs). It
removes what it wrote (and exits 1) unless, on random images, the cut IR's outputs equal the
same tensors of the whole graph.

  usage: cut_postprocessing.py INPUT.xml OUTPUT.xml

Exit status 0 when OUTPUT was written, 1 on error.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

BOXES = "Postprocessor/raw_box_locations:0"
SCORES = "Postprocessor/raw_box_scores:0"
CHECK_IMAGES = 3
TOLERANCE = 1e-5


def tensor(model, name: str):
    for op in model.get_ordered_ops():
        for out in op.outputs():
            if name in out.get_names():
                return out
    raise ValueError(f"no tensor {name!r}: not a TF Object Detection API SSD IR")


def max_difference(core, whole, cut: Path) -> float:
    whole.add_outputs([BOXES, SCORES])
    ca, cb = core.compile_model(whole, "CPU"), core.compile_model(str(cut), "CPU")
    shape = list(cb.input(0).get_shape())
    rng = np.random.default_rng(7)
    worst = 0.0
    for _ in range(CHECK_IMAGES):
        x = rng.integers(0, 256, shape, dtype=np.uint8)
        ra, rb = ca(x), cb(x)
        for name in (BOXES, SCORES):
            worst = max(worst, float(np.abs(ra[ca.output(name)] - rb[cb.output(name)]).max()))
    return worst


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[-3].strip(), file=sys.stderr)
        return 1
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    import openvino as ov

    core = ov.Core()
    # Both compared in f32: bf16 on a processor with AMX would round the two graphs differently.
    core.set_property("CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    try:
        model = core.read_model(str(src))
        cut = ov.Model([tensor(model, BOXES), tensor(model, SCORES)], model.get_parameters(), "ssd-raw")
        ov.save_model(cut, str(dst), compress_to_fp16=False)
        worst = max_difference(core, core.read_model(str(src)), dst)
    except Exception as e:  # noqa: BLE001 - one line naming the file, then exit 1
        print(f"{src}: cannot cut the post-processing: {e}", file=sys.stderr)
        return 1
    if worst > TOLERANCE:
        dst.unlink(missing_ok=True)
        dst.with_suffix(".bin").unlink(missing_ok=True)
        print(f"{src}: the cut IR's outputs differ from the whole graph's by {worst}", file=sys.stderr)
        return 1
    print(f"{dst}: post-processing cut (outputs equal the whole graph's within {worst:.1e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
