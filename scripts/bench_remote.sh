#!/usr/bin/env bash
# Remote-detector rows (issue 10), measured in one run so they compare as ratios:
#   1. storetrack with the local engine, 16 simulated cameras (10 fps each, every frame offered)
#   2. the same with backend = "kserve" against one local KServe v2 server process
#      (deploy/kserve/serve.py: KServe's Python ModelServer, the same IR, OpenVINO THROUGHPUT)
#   3. the same against two server processes (least-outstanding spreading over both)
#   4. per-request overhead, one request at a time: remote round trip minus local inference
#      (benches/remote_overhead.rs), and the client-side encode time
# All servers listen on 127.0.0.1 on free ports. Standalone, or called by scripts/bench.sh.
# Usage: scripts/bench_remote.sh [seconds per run, default 30] [cameras, default 16]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUN_S="${1:-30}"
N="${2:-16}"
bash scripts/setup.sh
# shellcheck disable=SC1091
source .venv/storetrack.env
cargo build --release --locked -q
cargo bench --locked --no-run -q --bench remote_overhead 2>/dev/null
BIN="$PWD/target/release/storetrack"
WORK="$(mktemp -d)"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"' EXIT

free_port() { .venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_server() { # sets PORT to the gRPC port once the server answers (no subshell: the server
                 # exits with its parent)
  local grpc http
  grpc=$(free_port); http=$(free_port)
  .venv/bin/python deploy/kserve/serve.py --ir models/ssdlite/ssdlite.xml --name ssdlite \
    --grpc-port "$grpc" --http-port "$http" --exit-with-parent \
    --outputs detection_boxes:0,detection_classes:0,detection_scores:0,num_detections:0 \
    > "$WORK/server-$grpc.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 300); do
    if .venv/bin/python - "$grpc" <<'PY' 2>/dev/null
import sys, grpc
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb, grpc_predict_v2_pb2_grpc as g
stub = g.GRPCInferenceServiceStub(grpc.insecure_channel(f"127.0.0.1:{sys.argv[1]}"))
sys.exit(0 if stub.ServerReady(pb.ServerReadyRequest(), timeout=1).ready else 1)
PY
    then PORT="$grpc"; return; fi
    sleep 0.3
  done
  echo "error: KServe server did not start (log: $WORK/server-$grpc.log)" >&2; exit 1
}

SIM_PORT=$(free_port)
"$BIN" simcam --video data/vtest.mp4 --cameras "$N" --port "$SIM_PORT" > /dev/null 2>&1 &
PIDS+=($!)
sleep 2

declare -A FPS RTT CODEC
run() { # name, extra [inference] toml
  local name="$1" extra="$2" cfg="$WORK/$1.toml" out
  : > "$cfg"
  for i in $(seq 1 "$N"); do
    printf '[[cameras]]\nid = "cam%s"\nurl = "rtsp://127.0.0.1:%s/cam%s"\n\n' "$i" "$SIM_PORT" "$i" >> "$cfg"
  done
  printf '[model]\ndescription = "%s"\n%s\n[ingest]\npipeline = "%s"\ndetect_fps = 0\n[storage]\ndb = "%s"\n' \
    "$PWD/models/ssdlite.toml" "$extra" "$PWD/pipelines/camera.pipeline" "$WORK/$name.db" >> "$cfg"
  echo "== $name, $N cameras, ${RUN_S} s" >&2
  out=$(STORETRACK_LOG=warn "$BIN" run -c "$cfg" --duration "${RUN_S}s" --progress 0s)
  echo "$out" >&2
  FPS[$name]=$(echo "$out" | awk '/processed FPS/ {print $3}')
  RTT[$name]=$(echo "$out" | awk '/^  remote / {for (i=1;i<=NF;i++) if ($i=="trip") print $(i+1)}')
  CODEC[$name]=$(echo "$out" | awk '/^  remote / {for (i=1;i<=NF;i++) if ($i=="encode+decode") print $(i+1)}')
}

remote_toml() { # endpoints...
  local list="" p
  for p in "$@"; do list+="${list:+, }\"grpc://127.0.0.1:$p\""; done
  printf '[inference]\nbackend = "kserve"\nendpoints = [%s]\nmodel = "ssdlite"\n' "$list"
}

run local ""
start_server; A=$PORT
run remote1 "$(remote_toml "$A")"
start_server; B=$PORT
run remote2 "$(remote_toml "$A" "$B")"

echo "== per-request overhead (one request at a time)" >&2
OVER=$(cargo bench --locked -q --bench remote_overhead -- "127.0.0.1:$A" ssdlite 100 2>/dev/null)
echo "$OVER" >&2
val() { echo "$OVER" | awk -v k="$1" 'index($0, k) == 1 {print $(NF-1)}'; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
echo "| remote detector ($N cameras, 10 fps each, loopback) | FPS | vs local | mean round trip (ms) | client encode+decode (ms) |"
echo "|---|---|---|---|---|"
echo "| local engine | ${FPS[local]} | 1.00 | - | - |"
echo "| kserve, 1 server process | ${FPS[remote1]} | $(ratio "${FPS[remote1]}" "${FPS[local]}") | ${RTT[remote1]} | ${CODEC[remote1]} |"
echo "| kserve, 2 server processes | ${FPS[remote2]} | $(ratio "${FPS[remote2]}" "${FPS[local]}") | ${RTT[remote2]} | ${CODEC[remote2]} |"
echo
echo "| one request at a time | ms |"
echo "|---|---|"
echo "| local inference | $(val 'local inference') |"
echo "| remote round trip | $(val 'remote round trip') |"
echo "| overhead per request (serialization + transport + server handling) | $(val 'overhead per request') |"
echo "| client encode only | $(val 'client encode') |"
