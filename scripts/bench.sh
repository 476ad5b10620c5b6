#!/usr/bin/env bash
# Throughput figures measured in one run, so they can be compared as ratios:
#   1. benchmark_app on the same IR, THROUGHPUT hint (the detector's ceiling on this machine)
#   2. storetrack end to end (RTSP → decode → detect → track → SQLite) with 2 and 8 simulated
#      cameras at the video's native 10 fps; the simulator runs on the same machine.
# Usage: scripts/bench.sh [seconds per storetrack run, default 30] [camera counts, default "2 8"]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUN_S="${1:-30}"
COUNTS="${2:-2 8}"
bash scripts/setup.sh
# shellcheck disable=SC1091
source .venv/storetrack.env
cargo build --release --locked -q
BIN="$PWD/target/release/storetrack"
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

echo "== benchmark_app (CPU, THROUGHPUT, 15 s)"
BA_FPS=$(.venv/bin/benchmark_app -m models/ssdlite/ssdlite.xml -d CPU -hint throughput -t 15 2>&1 \
  | awk '/Throughput:/ {print $(NF-1)}' | tail -n 1)
echo "benchmark_app: ${BA_FPS} FPS"

PORT=18554
declare -A FPS DROP
for N in $COUNTS; do
  PORT=$((PORT + 1))
  "$BIN" simcam --video data/vtest.mp4 --cameras "$N" --port "$PORT" > /dev/null 2>&1 &
  SIM=$!
  sleep 2
  CFG="$WORK/bench-$N.toml"
  : > "$CFG"
  for i in $(seq 1 "$N"); do
    printf '[[cameras]]\nid = "cam%s"\nurl = "rtsp://127.0.0.1:%s/cam%s"\n\n' "$i" "$PORT" "$i" >> "$CFG"
  done
  printf '[model]\ndescription = "%s"\n[ingest]\npipeline = "%s"\ndetect_fps = 0\n[storage]\ndb = "%s"\n' \
    "$PWD/models/ssdlite.toml" "$PWD/pipelines/camera.pipeline" "$WORK/bench-$N.db" >> "$CFG"
  echo "== storetrack, $N cameras, ${RUN_S} s"
  OUT=$(STORETRACK_LOG=warn "$BIN" run -c "$CFG" --duration "${RUN_S}s" --progress 0s)
  echo "$OUT"
  FPS[$N]=$(echo "$OUT" | awk '/processed FPS/ {print $3}')
  DROP[$N]=$(echo "$OUT" | awk '/frames inferred/ {gsub(/\)/, "", $NF); print $NF}')
  kill "$SIM" 2>/dev/null || true
  wait "$SIM" 2>/dev/null || true
done

echo
echo "| setup | FPS | offered | dropped before inference | vs benchmark_app |"
echo "|---|---|---|---|---|"
echo "| benchmark_app, THROUGHPUT hint | ${BA_FPS} | - | - | 1.00 |"
for N in $COUNTS; do
  ratio=$(awk -v a="${FPS[$N]}" -v b="$BA_FPS" 'BEGIN { printf "%.2f", a / b }')
  echo "| storetrack, $N cameras (10 fps each) | ${FPS[$N]} | $((N * 10)) | ${DROP[$N]} | ${ratio} |"
done
