#!/usr/bin/env bash
# The demo: setup, build, two simulated cameras serving the sample video over RTSP, the service
# for DEMO_SECONDS (default 30) with a progress line, part of its /metrics and /api/v1/cameras
# while it runs, its summary, example queries, a zone summary, the door line's footfall and the
# queue, the live events an MQTT subscriber received, and the floor picture (store.png).
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

# A mosquitto broker of the demo's own on a free port (its own config, not the system's), a
# subscriber writing what it receives to a file, and a copy of config.toml beside it (paths in
# it are relative to its folder) with an [events] section sending to the broker.
TMP=$(mktemp -d)
EVENTS_CONFIG=$(mktemp -p . .demo-config.XXXXXX.toml)
trap 'kill $SIM 2>/dev/null || true; rm -rf "$TMP" "$EVENTS_CONFIG"' EXIT
MQTT_PORT=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$MQTT_PORT" > "$TMP/mosquitto.conf"
mosquitto -c "$TMP/mosquitto.conf" 2> "$TMP/mosquitto.log" &
BROKER=$!
trap 'kill $SIM $BROKER 2>/dev/null || true; rm -rf "$TMP" "$EVENTS_CONFIG"' EXIT
sleep 1
mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -v -t 'storetrack/+/events/#' > "$TMP/events.txt" &
SUB=$!
trap 'kill $SIM $BROKER $SUB 2>/dev/null || true; rm -rf "$TMP" "$EVENTS_CONFIG"' EXIT
{ cat config.toml; printf '\n[events]\nsite = "demo"\nmqtt = "mqtt://127.0.0.1:%s"\n' "$MQTT_PORT"; } > "$EVENTS_CONFIG"

STORETRACK_LOG="${STORETRACK_LOG:-warn}" "$BIN" run --config "$EVENTS_CONFIG" --duration "${SECONDS_TO_RUN}s" --progress 5s &
RUN=$!
trap 'kill $SIM $BROKER $SUB 2>/dev/null || true; kill $RUN 2>/dev/null || true; rm -rf "$TMP" "$EVENTS_CONFIG"' EXIT
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
echo "Live events (the service delivered each crossing, visit, wait, queue length and count to"
echo "the MQTT broker as it stored it; docs/events.md):"
sleep 1
kill $SUB 2>/dev/null || true
echo "\$ mosquitto_sub -v -q 1 -t 'storetrack/+/events/#' | head -3"
head -3 "$TMP/events.txt"
echo "... $(wc -l < "$TMP/events.txt") events received; by kind:"
awk '{ n = split($1, part, "/"); print part[n] }' "$TMP/events.txt" | sort | uniq -c
echo
echo "\$ storetrack render --from 2m --out store.png"
"$BIN" render --from 2m --out store.png
echo "picture: $(pwd)/store.png"
