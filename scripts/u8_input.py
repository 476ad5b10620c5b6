"""Gives an OpenVINO IR with a float NCHW picture input an 8-bit NHWC one, the conversion inside.

Models exported from PyTorch (Ultralytics YOLO, YOLOX) take [1, 3, H, W] floats; storetrack can
feed those (`input_type = "f32"`, `input_scale`), but an IR that takes the pipeline's bytes as
they are needs no transposition or conversion on the CPU side and, served remotely, a quarter of
the request size. OpenVINO's PrePostProcessor puts the conversion (u8 -> f32, divide by
--scale, NHWC -> NCHW) into the graph; the outputs are unchanged.

    python scripts/u8_input.py IN.xml OUT.xml [--scale 255]

The model description then says `input_type = "u8"`, `layout = "NHWC"` and no `input_scale`
(docs/models.md).
"""

import argparse
import sys

import openvino as ov
from openvino.preprocess import PrePostProcessor


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src", help="IR .xml with one [1, 3, H, W] float input")
    p.add_argument("dst", help="IR .xml to write")
    p.add_argument("--scale", type=float, default=1.0, help="divide pixel values by this")
    args = p.parse_args()
    model = ov.Core().read_model(args.src)
    if len(model.inputs) != 1 or model.input().get_partial_shape().rank.get_length() != 4:
        sys.exit(f"{args.src}: expected one 4-D input, found {model.inputs}")
    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
    steps = ppp.input().preprocess().convert_element_type(ov.Type.f32)
    if args.scale != 1.0:
        steps.scale(args.scale)
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    ov.save_model(ppp.build(), args.dst)
    print(f"{args.dst}: input {ov.Core().read_model(args.dst).input()}")


if __name__ == "__main__":
    main()
