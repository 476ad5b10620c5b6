"""A KServe v2 model server for an OpenVINO IR, on KServe's Python ModelServer (PyPI `kserve`).

storetrack's tests and benchmark run it as the remote detector: the same IR the local engine
loads, served over gRPC (`GRPCInferenceService`, raw tensor contents). OpenVINO runs it with the
THROUGHPUT hint through an AsyncInferQueue, so concurrent requests share the CPU streams the way
the local engine's request pool does.

    python deploy/kserve/serve.py --ir models/ssdlite/ssdlite.xml --name ssdlite \
        --grpc-port 9001 --http-port 9002 \
        --outputs detection_boxes:0,detection_classes:0,detection_scores:0,num_detections:0

`--outputs` picks the tensor names reported in the model metadata (an OpenVINO output can carry
several names; OVMS does the same with mapping_config.json). `--ir`, `--name` and `--outputs` may
be repeated to serve several models from one server (the i-th of each go together; the
model-format tests serve one IR per output format this way). Once the models are compiled, one
line `LOADED grpc=PORT http=PORT` goes to stdout; clients then poll ServerReady until the ports
listen.
"""

import argparse
import asyncio
import logging
import os
import sys
import threading
import time

import numpy as np
import openvino as ov
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer

OV_TO_KSERVE = {
    ov.Type.u8: "UINT8",
    ov.Type.i8: "INT8",
    ov.Type.i32: "INT32",
    ov.Type.i64: "INT64",
    ov.Type.f16: "FP16",
    ov.Type.f32: "FP32",
}


class OpenVinoModel(Model):
    """One compiled IR behind an asyncio-friendly request queue."""

    def __init__(self, name: str, ir: str, outputs: list[str], device: str, requests: int):
        super().__init__(name)
        core = ov.Core()
        compiled = core.compile_model(ir, device, {"PERFORMANCE_HINT": "THROUGHPUT"})
        jobs = requests or compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
        self.input = compiled.inputs[0]
        self.input_name = self.input.get_any_name()
        if outputs:
            self.outputs = [(n, compiled.output(n)) for n in outputs]
        else:
            self.outputs = [(o.get_any_name(), o) for o in compiled.outputs]
        self.queue = ov.AsyncInferQueue(compiled, jobs)
        self.queue.set_callback(self._done)
        # start_async blocks when every request is busy; the semaphore keeps the event loop free.
        self.slots = asyncio.Semaphore(jobs)
        self.loop = None
        logging.info("model %s: %d infer requests on %s", name, jobs, device)
        self.ready = True

    def _done(self, request, future):
        results = [np.copy(request.get_tensor(port).data) for _, port in self.outputs]
        self.loop.call_soon_threadsafe(_resolve, future, results)

    @staticmethod
    def _tensor(name, port):
        return {
            "name": name,
            "datatype": OV_TO_KSERVE[port.get_element_type()],
            "shape": [d.get_length() if d.is_static else -1 for d in port.get_partial_shape()],
        }

    def get_input_types(self):
        return [self._tensor(self.input_name, self.input)]

    def get_output_types(self):
        return [self._tensor(n, p) for n, p in self.outputs]

    async def predict(self, payload: InferRequest, headers=None, response_headers=None):
        if len(payload.inputs) != 1 or payload.inputs[0].name != self.input_name:
            raise ValueError(f"expected one input named {self.input_name}")
        data = payload.inputs[0].as_numpy()
        self.loop = asyncio.get_running_loop()
        future = self.loop.create_future()
        async with self.slots:
            self.queue.start_async({0: data}, userdata=future)
            results = await future
        outputs = []
        for (name, _), array in zip(self.outputs, results):
            out = InferOutput(name=name, shape=list(array.shape), datatype="FP32")
            out.set_data_from_numpy(array.astype(np.float32, copy=False), binary_data=True)
            outputs.append(out)
        return InferResponse(
            response_id=payload.id,
            model_name=self.name,
            infer_outputs=outputs,
            use_binary_outputs=True,
        )


def _resolve(future, results):
    if not future.done():
        future.set_result(results)


def exit_with_parent():
    """Ends this process when the one that started it is gone (tests never leave servers behind)."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ir", action="append", required=True)
    p.add_argument("--name", action="append", required=True)
    p.add_argument("--grpc-port", type=int, required=True)
    p.add_argument("--http-port", type=int, required=True)
    p.add_argument("--outputs", action="append", default=[])
    p.add_argument("--device", default="CPU")
    p.add_argument("--requests", type=int, default=0, help="0: OPTIMAL_NUMBER_OF_INFER_REQUESTS")
    p.add_argument("--exit-with-parent", action="store_true")
    args, _ = p.parse_known_args()
    if args.exit_with_parent:
        exit_with_parent()
    if len(args.name) != len(args.ir) or len(args.outputs) > len(args.ir):
        p.error("give one --name (and at most one --outputs) per --ir")
    outputs = args.outputs + [""] * (len(args.ir) - len(args.outputs))
    models = [
        OpenVinoModel(name, ir, [n for n in outs.split(",") if n], args.device, args.requests)
        for name, ir, outs in zip(args.name, args.ir, outputs)
    ]
    server = ModelServer(http_port=args.http_port, grpc_port=args.grpc_port, enable_docs_url=False)
    print(f"LOADED grpc={args.grpc_port} http={args.http_port}", flush=True)
    server.start(models)


if __name__ == "__main__":
    sys.exit(main())
