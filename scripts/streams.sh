#!/usr/bin/env bash
# The kinds of camera stream storetrack is tested on, measured in one sitting (figures compare
# as ratios within it):
#   1. each kind alone: one camera served by `storetrack simcam` with that kind's flags, the
#      service analysing it for RUN_S seconds. One Markdown row each: analysed fps and what the
#      camera allows at its detect_fps (detection slots with a frame, per second streamed),
#      where the decoded frames went, frames not decoded, p95 frame age, the camera clock, and
#      the service's CPU (% of one core over the run, simulator not included).
#   2. issue 16's table: two cameras serving the sample re-encoded with x264 B-frames (main
#      profile defaults, 1 s GOP) at detect_fps 10 and 5, and the sample without B-frames at
#      10, for this build and each other source tree given (its target/release/storetrack run
#      with its own pipelines/camera.pipeline, e.g. a checkout of an earlier commit), served
#      by this build's simulator sending each frame once it and those before it were captured
#      (as the simulator did when the issue was measured): frames decoded and inferred, per-camera analysed fps, the gaps
#      between a track's consecutive points, and how often the log says the capture clock slows.
# Usage: scripts/streams.sh [seconds per run, default 20] [other source trees, built, ...]
# (SKIP_KINDS=1 runs section 2 only.)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUN_S="${1:-20}"
shift || true
bash scripts/setup.sh
# shellcheck disable=SC1091
source .venv/storetrack.env
step() { printf '\n== [%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

step "building (release)"
cargo build --release --locked -q
BIN="$PWD/target/release/storetrack"
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
PORT=$((20000 + RANDOM % 20000))
echo "load before start: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores" >&2

# start_sim FLAGS... (mounts given in FLAGS) -> SIM pid; waits until it serves
start_sim() {
  PORT=$((PORT + 1))
  "$BIN" simcam --port "$PORT" "$@" > "$WORK/sim.out" 2> "$WORK/sim.err" &
  SIM=$!
  for _ in $(seq 600); do grep -q rtsp:// "$WORK/sim.out" && return; sleep 0.2; done
  echo "simulator did not start: $(cat "$WORK/sim.err")" >&2
  exit 1
}
stop_sim() { kill "$SIM" 2>/dev/null || true; wait "$SIM" 2>/dev/null || true; }

# config NAME DETECT_FPS PIPELINE URL... -> path of a config with one camera per URL
# (PIPELINE: a file name in this tree's pipelines/, or a path)
config() {
  local name=$1 fps=$2 pipeline=$3 cfg="$WORK/$1.toml" i=0
  [[ "$pipeline" == /* ]] || pipeline="$PWD/pipelines/$pipeline"
  shift 3
  : > "$cfg"
  for url in "$@"; do
    i=$((i + 1))
    printf '[[cameras]]\nid = "cam%s"\nurl = "%s"\n\n' "$i" "$url" >> "$cfg"
  done
  printf '[model]\ndescription = "%s"\n[ingest]\npipeline = "%s"\ndetect_fps = %s\n[storage]\ndb = "%s"\n' \
    "$PWD/models/ssdlite.toml" "$pipeline" "$fps" "$WORK/$name.db" >> "$cfg"
  echo "$cfg"
}

# run BINARY CONFIG -> summary in CONFIG.out, log in CONFIG.log, CPU % in CONFIG.cpu
run() {
  local out="${2%.toml}"
  STORETRACK_LOG=info /usr/bin/time -f 'TIME %U %S %e' "$1" run -c "$2" --duration "${RUN_S}s" \
    --progress 0s > "$out.out" 2> "$out.log"
  awk '/^TIME/ { printf "%.0f", ($2 + $3) / $4 * 100 }' "$out.log" > "$out.cpu"
}

# name | simcam flags | detect_fps | pipeline
KINDS=(
  "H.264 10 fps, GOP 1 s, no B-frames (the sample as it is)||10|camera.pipeline"
  "H.264 B-frames (3, pyramid), open GOP, 10 fps, GOP 1 s|--bframes 3 --open-gop --seconds 20|10|camera.pipeline"
  "H.264 B-frames (3), closed GOP, 10 fps, GOP 1 s|--bframes 3 --seconds 20|5|camera.pipeline"
  "H.264 B-frames (3) sent in bursts (software encoder), 10 fps, GOP 1 s|--bframes 3 --open-gop --burst --seconds 20|10|camera.pipeline"
  "H.265 B-frames (3), open GOP, 25 fps, GOP 2 s|--codec h265 --bframes 3 --open-gop --fps 25 --gop 2 --seconds 20|10|camera-h265.pipeline"
  "H.264 15 fps, GOP 2 s (GOP-limited decoding)|--fps 15 --gop 2 --seconds 20|2|camera.pipeline"
  "H.264 25 fps, GOP 2 s, 2 B-frames|--fps 25 --gop 2 --bframes 2 --seconds 20|4|camera.pipeline"
  "H.264 30 fps, GOP 4 s|--fps 30 --gop 4 --seconds 20|10|camera.pipeline"
  "H.264 10 fps, GOP 1.3 s (not whole detection intervals)|--gop 1.3 --seconds 20|3|camera.pipeline"
  "smart codec: 10 fps, 2 fps every other 4 s|--vfr 2 --gop 2 --seconds 16|5|camera.pipeline"
  "camera slower than detect_fps: 5 fps|--fps 5 --seconds 20|10|camera.pipeline"
  "resolution change after 6 s (768x576 to 384x288)|--resize-after 6:384x288 --seconds 20|5|camera.pipeline"
  "audio track (G.711), 2 B-frames|--audio --bframes 2 --open-gop --seconds 20|5|camera.pipeline"
  "RTSP digest authentication|--auth viewer:streams-pw --seconds 20|5|camera.pipeline"
  "RTCP clock 5 min behind|--clock-offset -300 --seconds 20|5|camera.pipeline"
  "RTCP clock jumps +2.5 s after 8 s|--clock-jump 8:2.5 --seconds 20|5|camera.pipeline"
  "RTCP clock 2 % fast|--clock-drift 20000 --seconds 20|5|camera.pipeline"
)

kinds_table() {
  echo "| stream | detect_fps | analysed fps (of possible) | decoded = analysed + not picked + skipped + dropped + failed | not decoded | p95 frame age | camera clock | CPU |"
  echo "|---|---|---|---|---|---|---|---|"
  local k=0
  for kind in "${KINDS[@]}"; do
    IFS='|' read -r name flags fps pipeline <<< "$kind"
    k=$((k + 1))
    step "kind $k/${#KINDS[@]}: $name, detect_fps $fps, ${RUN_S} s"
    # shellcheck disable=SC2086
    start_sim --mount cam1=data/vtest.mp4 $flags
    local url cfg out
    url=$(grep -m1 rtsp:// "$WORK/sim.out" | sed 's/:\*\*\*@/:streams-pw@/')
    cfg=$(config "kind$k" "$fps" "$pipeline" "$url")
    run "$BIN" "$cfg"
    stop_sim
    out="${cfg%.toml}"
    awk -v name="$name" -v fps="$fps" -v cpu="$(cat "$out.cpu")" '
      /frames decoded/ { dec = $0; sub(/.*frames decoded +/, "", dec); gsub(/ analysed| not picked| skipped| dropped| failed/, "", dec) }
      /not decoded/ { nd = $3 }
      /possible while streaming/ { s = $0; sub(/.*\(/, "", s); sub(/ possible.*/, "", s); rate = s }
      /frame age/ { gsub(",", ""); p95 = $7 " " $8 }
      /clock:/ { c = $0; sub(/.*clock: /, "", c); sub(/ of the camera.s clock/, "", c); clock = c }
      END { printf "| %s | %s | %s | %s | %s | %s | %s | %s %% |\n", name, fps, rate, dec, (nd == "" ? 0 : nd), p95, clock, cpu }
    ' "$out.out"
    grep -h "warning:" "$out.out" >&2 || true
  done
}

# gaps DB -> "median p95" of the ms between a track's consecutive points
gaps() {
  .venv/bin/python - "$1" <<'EOF'
import sqlite3, sys
rows = sqlite3.connect(sys.argv[1]).execute(
    "SELECT track, ts_ms FROM points ORDER BY track, ts_ms").fetchall()
g = sorted(b[1] - a[1] for a, b in zip(rows, rows[1:]) if a[0] == b[0])
print(f"{g[len(g) // 2]} / {g[int(len(g) * 0.95)]} ms" if g else "-")
EOF
}

issue_table() {
  step "encoding the sample with x264 B-frames (main profile, 3 B-frames, 1 s GOP)"
  gst-launch-1.0 -q filesrc location=data/vtest.mp4 ! qtdemux ! h264parse ! avdec_h264 ! videoconvert \
    ! x264enc bframes=3 key-int-max=10 bitrate=1500 ! video/x-h264,profile=main ! h264parse \
    ! mp4mux ! filesink location="$WORK/vtest-b.mp4"
  start_sim --burst --mount b1="$WORK/vtest-b.mp4" --mount b2="$WORK/vtest-b.mp4" \
    --mount p1=data/vtest.mp4 --mount p2=data/vtest.mp4
  echo "| build | stream | frames decoded | frames inferred | per-camera analysed fps | gap between a track's points, median / p95 | 'slowing down' lines |"
  echo "|---|---|---|---|---|---|---|"
  local n=0
  for tree in "$PWD" "$@"; do
    local bin="$tree/target/release/storetrack" label
    label="$(git -C "$tree" log -1 --format=%h 2>/dev/null || basename "$tree")"
    [ "$tree" = "$PWD" ] && label="this build ($label)"
    for case in "with B-frames, detect_fps 10|b|10" "with B-frames, detect_fps 5|b|5" "without B-frames, detect_fps 10|p|10"; do
      IFS='|' read -r text mount fps <<< "$case"
      n=$((n + 1))
      step "issue table: $label, $text, ${RUN_S} s"
      local cfg out
      cfg=$(config "issue$n" "$fps" "$tree/pipelines/camera.pipeline" \
        "rtsp://127.0.0.1:$PORT/${mount}1" "rtsp://127.0.0.1:$PORT/${mount}2")
      run "$bin" "$cfg"
      out="${cfg%.toml}"
      awk -v build="$label" -v label="$text" -v gaps="$(gaps "$WORK/issue$n.db")" \
          -v slow="$(grep -c 'slowing down' "$out.log" || true)" '
        /frames decoded/ { dec = $3 }
        /frames inferred/ { inf = $3 }
        /per-camera FPS/ { gsub(",", ""); fps = $4 "-" $8 }
        END { printf "| %s | %s | %s | %s | %s | %s | %s |\n", build, label, dec, inf, fps, gaps, slow }
      ' "$out.out"
    done
  done
  stop_sim
}

if [ "${SKIP_KINDS:-0}" != 1 ]; then
  kinds_table
  echo
fi
issue_table "$@"
