"""Writes a tiny OpenVINO IR whose output is known for a uniform input picture.

The model-format tests (tests/it/model_formats.rs) run it to get a detector of any output layout
without weights: the output is a constant tensor, plus, at one position ("probe"), `factor` x
the mean of the input's first channel. A uniform picture thus gives fully known outputs, and the
probe shows that the engine filled the input as the description says (layout, element type,
scale). `null` among the values becomes NaN (JSON has no NaN).

    python head_ir.py OUT.xml SPEC.json

SPEC: {"input": {"name", "shape", "type": "u8"|"f32", "layout": "NCHW"|"NHWC"},
       "outputs": [{"name", "shape", "values"}], "probe": {"output", "index", "factor"}}
"""

import json
import sys

import numpy as np
import openvino as ov
import openvino.opset13 as ops


def build(spec):
    inp = spec["input"]
    param = ops.parameter(inp["shape"], ov.Type.u8 if inp["type"] == "u8" else ov.Type.f32,
                          name=inp["name"])
    param.output(0).get_tensor().set_names({inp["name"]})
    pixels = ops.convert(param, ov.Type.f32)
    spatial = [2, 3] if inp["layout"] == "NCHW" else [1, 2]
    means = ops.reduce_mean(pixels, np.array(spatial, dtype=np.int64), keep_dims=False)  # [1, 3]
    first = ops.gather(means, np.array([0], dtype=np.int64), np.array(1, dtype=np.int64))
    probe = spec["probe"]
    results = []
    for out in spec["outputs"]:
        values = np.array(out["values"], dtype=np.float32).reshape(out["shape"])
        node = ops.constant(values)
        if out["name"] == probe["output"]:
            mask = np.zeros(values.size, dtype=np.float32)
            mask[probe["index"]] = probe["factor"]
            scaled = ops.multiply(ops.constant(mask.reshape(out["shape"])),
                                  ops.reshape(first, np.array([1], dtype=np.int64), False))
            node = ops.add(node, scaled)
        else:
            # Still a function of the input, so nothing is folded away at compile time.
            zero = ops.multiply(ops.reduce_sum(first, np.array([0, 1], dtype=np.int64)),
                                np.float32(0.0))
            node = ops.add(node, zero)
        result = ops.result(node)
        result.output(0).get_tensor().set_names({out["name"]})
        node.output(0).get_tensor().set_names({out["name"]})
        results.append(result)
    return ov.Model(results, [param], "head")


def main():
    out, spec_path = sys.argv[1], sys.argv[2]
    with open(spec_path) as f:
        spec = json.load(f)
    ov.save_model(build(spec), out, compress_to_fp16=False)


if __name__ == "__main__":
    main()
