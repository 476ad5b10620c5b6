#!/usr/bin/env bash
# The demo: setup, build, two simulated cameras serving the sample video over RTSP, the service
# for DEMO_SECONDS (default 30) with a progress line, part of its /metrics and /api/v1/cameras
# while it runs, its summary, example queries, a zone summary, the door line's footfall and the
# queue, and the floor picture (store.png).
# The binary finds the OpenVINO runtime by itself (no environment file).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECONDS_TO_RUN="${DEMO_SECONDS:-30}"
bash scripts/setup.sh
cargo build --release --locked
BIN=target/release/storetrack

# config.toml points at rtsp://127.0.0.1:8554/cam1 and cam2.
STORETRACK_LOG=warn "$BIN" simcam --video data/vtest.mp4 --cameras 2 --port 8554 > /dev/null &
SIM=$!
trap 'kill $SIM 2>/dev/null || true' EXIT
sleep 2
kill -0 "$SIM" 2>/dev/null || { echo "error: camera simulator did not start (is port 8554 free?)" >&2; exit 1; }

STORETRACK_LOG="${STORETRACK_LOG:-warn}" "$BIN" run --config config.toml --duration "${SECONDS_TO_RUN}s" --progress 5s &
RUN=$!
trap 'kill $SIM 2>/dev/null || true; kill $RUN 2>/dev/null || true' EXIT
# config.toml serves the API on 127.0.0.1:9464; show it once the cameras have run a while.
sleep $(( SECONDS_TO_RUN > 20 ? 15 : SECONDS_TO_RUN / 2 ))
.venv/bin/python - <<'PY' || echo "(API not reachable)"
import json, urllib.request
api = "http://127.0.0.1:9464"
text = urllib.request.urlopen(api + "/metrics", timeout=5).read().decode()
print("\n$ curl -s 127.0.0.1:9464/metrics | grep -E 'cam1|db_|latency_seconds_(sum|count)'")
for line in text.splitlines():
    if not line.startswith("#") and ('camera="cam1"' in line and "_bucket" not in line
                                     or "db_" in line or "latency_seconds_sum" in line
                                     or "latency_seconds_count" in line):
        print(line)
cams = json.load(urllib.request.urlopen(api + "/api/v1/cameras", timeout=5))
print("\n$ curl -s 127.0.0.1:9464/api/v1/cameras")
for c in cams:
    print(f"  {c['id']:<6} {c['state']:<8} {c['fps']:5.1f} fps  reconnects {c['reconnects']}")
print()
PY
wait $RUN

echo
echo "\$ storetrack query summary --from 2m"
"$BIN" query summary --from 2m
echo
echo "\$ storetrack query tracks --from 2m --min-points 60 --limit 5"
"$BIN" query tracks --from 2m --min-points 60 --limit 5
echo
echo "Zone summary (store-wide trajectories joined across the cameras, on the [floor] plan):"
echo "\$ storetrack query stores --from 2m --min-points 20 --limit 5"
"$BIN" query stores --from 2m --min-points 20 --limit 5
echo
echo "\$ storetrack query dwell --from 2m"
"$BIN" query dwell --from 2m
echo
echo "\$ storetrack query flows --from 2m"
"$BIN" query flows --from 2m
echo
echo "Footfall (config.toml: a door line on the west path's edge, the centre as a queue served in"
echo "the east plaza; docs/footfall.md):"
echo "\$ storetrack query footfall --from 2m --bucket 1m"
"$BIN" query footfall --from 2m --bucket 1m
echo
echo "\$ storetrack query queue --from 2m --bucket 1h"
"$BIN" query queue --from 2m --bucket 1h
echo
echo "\$ storetrack render --from 2m --out store.png"
"$BIN" render --from 2m --out store.png
echo "picture: $(pwd)/store.png"
