#!/usr/bin/env bash
# The demo: setup, build, two simulated cameras serving the sample video over RTSP, the service
# for DEMO_SECONDS (default 30) with a progress line, its summary, example queries, a zone summary
# and the floor picture (store.png).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECONDS_TO_RUN="${DEMO_SECONDS:-30}"
bash scripts/setup.sh
# shellcheck disable=SC1091
source .venv/storetrack.env
cargo build --release --locked
BIN=target/release/storetrack

# config.toml points at rtsp://127.0.0.1:8554/cam1 and cam2.
STORETRACK_LOG=warn "$BIN" simcam --video data/vtest.mp4 --cameras 2 --port 8554 > /dev/null &
SIM=$!
trap 'kill $SIM 2>/dev/null || true' EXIT
sleep 2
kill -0 "$SIM" 2>/dev/null || { echo "error: camera simulator did not start (is port 8554 free?)" >&2; exit 1; }

STORETRACK_LOG="${STORETRACK_LOG:-warn}" "$BIN" run --config config.toml --duration "${SECONDS_TO_RUN}s" --progress 5s

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
echo "\$ storetrack render --from 2m --out store.png"
"$BIN" render --from 2m --out store.png
echo "picture: $(pwd)/store.png"
