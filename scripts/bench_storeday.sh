#!/usr/bin/env bash
# A store's day on one box (issue 21), INT8 (FP32 when the INT8 IR is missing), cameras served by `storetrack simcam` processes on
# the same box, every row in one sitting so the figures compare as ratios:
#   overload  32 and 96 cameras with people at detect_fps 5 (96/32 FPS ratio, fair-share spread;
#             OVERLOAD_FPS sets another detect_fps, e.g. 0: every frame)
#   100x1     100 cameras at detect_fps 1 (the slowest camera's rate)
#   store day 64 cameras at detect_fps 4: 16 with people (the sample), 32 empty (a still floor
#             with sensor noise: simcam --scene still), 16 waking (still 20 s, then 40 s of
#             people: --scene wake:20:40); busy seconds' analysed rate (mean, p5), idle cameras'
#             rate, p95 frame age, RSS, threads, seconds until every camera is up
# Every row: frames shed while decoding was behind, RTP packets lost before the decoders and the
# frames not decoded because of them, damaged (the run summary's; 0 from builds that predate
# them).
# RSS per camera is (RSS of the 64-camera row - RSS of one camera) / 63, both 3 s before the
# row's end (idle cameras' decoders parked) and at the peak (the start). Analysed FPS is the
# service's rate from 10 s on; per-camera rates and the fair-share spread from WARM_S (15) s on,
# from the database. PROTOCOLS: ingest.protocols to write (e.g. udp; unset: the default, tcp).
# SIZE: serve the sample re-encoded at WIDTHxHEIGHT (e.g. 384x288, as a camera's substream; same
# 1 s GOP, bitrate scaled by area) instead of its 768x576; unset: the sample as it is.
# SIM_FLAGS: simcam flags for every camera (e.g. "--bframes 2 --gop 2": cameras with B-frames).
# Usage: scripts/bench_storeday.sh [seconds per row, default 40] [rows, default "overload 100x1 day"]
# Env: BIN (the storetrack service binary, e.g. an earlier build to compare; default this tree's
# target/release/storetrack, built; the simulator is always this tree's), PIPELINE (the camera
# pipeline template; default pipelines/camera.pipeline), IDLE_MS (idle_interval_ms
# to write; unset: the binary's default, for binaries that predate the key), DAY_S (the store-day
# row's seconds, default 60), KEEP=1 (keep the
# configs, outputs and databases).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUN_S="${1:-40}"
ROWS="${2:-overload 100x1 day}"
DAY_S="${DAY_S:-60}" # the store-day row: one still-then-busy cycle of the waking cameras
OVERLOAD_FPS="${OVERLOAD_FPS:-5}" # the overload rows' detect_fps
WARM_S="${WARM_S:-15}" # per-camera rates are taken from this second of a row on
# shellcheck disable=SC1091
source .venv/storetrack.env
cargo build --release --locked -q
SIMBIN="$PWD/target/release/storetrack" # the simulator's scenes are this tree's
# shellcheck disable=SC1091
source scripts/int8_model.sh # sets DESC
BIN="${BIN:-$SIMBIN}"
PIPELINE="$(realpath "${PIPELINE:-pipelines/camera.pipeline}")"
WORK="$(mktemp -d)"
SIMS=()
trap 'kill "${SIMS[@]}" 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
[ -n "${KEEP:-}" ] && echo "outputs kept in $WORK" >&2
PORT=$((20000 + RANDOM % 20000))
step() { printf '\n== [%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

VIDEO=data/vtest.mp4
if [ -n "${SIZE:-}" ]; then # once, as setup.sh made the sample (simcam --size would re-encode per camera)
  w=${SIZE%x*} h=${SIZE#*x}
  VIDEO="$WORK/vtest-$SIZE.mp4"
  gst-launch-1.0 -q filesrc location=data/vtest.mp4 ! decodebin ! videoconvert ! videoscale \
    ! "video/x-raw,width=$w,height=$h,pixel-aspect-ratio=1/1" \
    ! x264enc tune=zerolatency speed-preset=veryfast key-int-max=10 bitrate=$((1500 * w * h / (768 * 576))) \
    ! video/x-h264,profile=constrained-baseline ! h264parse ! mp4mux ! filesink location="$VIDEO" > /dev/null
fi

# sim N [simcam flags...] -> serves cam1..camN on a new port (PORT)
sim() {
  local n=$1; shift
  PORT=$((PORT + 1))
  # shellcheck disable=SC2086 # SIM_FLAGS: several flags
  "$SIMBIN" simcam --video "$VIDEO" --cameras "$n" --port "$PORT" ${SIM_FLAGS:-} "$@" > /dev/null 2>&1 &
  SIMS+=($!)
}
stop_sims() { kill "${SIMS[@]}" 2>/dev/null || true; wait "${SIMS[@]}" 2>/dev/null || true; SIMS=(); }
wait_sims() { sleep "${1:-4}"; } # scenes are encoded at start

# cameras PORT N PREFIX -> camera tables (ids PREFIX1..PREFIXN)
cameras() {
  for i in $(seq 1 "$2"); do
    printf '[[cameras]]\nid = "%s%s"\nurl = "rtsp://127.0.0.1:%s/cam%s"\n\n' "$3" "$i" "$1" "$i"
  done
}

# run NAME DETECT_FPS (camera tables on stdin) -> prints "fps min median p95_ms cpu rss_mb spread up_s threads rss_end_mb packets_lost shed damaged"
run() {
  local name=$1 fps=$2 cfg="$WORK/$1.toml"
  cat > "$cfg"
  printf '[model]\ndescription = "%s"\n[ingest]\npipeline = "%s"\ndetect_fps = %s\n' \
    "$PWD/$DESC" "$PIPELINE" "$fps" >> "$cfg"
  [ -n "${IDLE_MS:-}" ] && printf 'idle_interval_ms = %s\n' "$IDLE_MS" >> "$cfg"
  [ -n "${PROTOCOLS:-}" ] && printf 'protocols = "%s"\n' "$PROTOCOLS" >> "$cfg"
  printf '[storage]\ndb = "%s"\n' "$WORK/$name.db" >> "$cfg"
  local out="$WORK/$name.out"
  STORETRACK_LOG=warn /usr/bin/time -f 'TIME %U %S %e %M' "$BIN" run -c "$cfg" \
    --duration "${RUN_S}s" --progress 1s > "$out" 2> "$out.err" &
  local pid=$! threads=0 rss_end=0 svc
  sleep $((RUN_S / 2))
  svc=$(pgrep -P $pid || echo $pid)
  threads=$(ls "/proc/$svc/task" 2>/dev/null | wc -l || echo 0)
  sleep $((RUN_S - RUN_S / 2 - 3)) # the RSS 3 s before the end: past the start's peak
  rss_end=$(awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$svc/status" 2>/dev/null || echo 0)
  wait $pid
  cp "$out" "$WORK/last.out"
  awk '
    /^\[/ { t = substr($0, 2, index($0, "s]") - 2) + 0
            for (i = 1; i <= NF; i++) { if ($i == "inferred") n = $(i + 1); if ($i == "cameras") { split($(i + 1), u, "/") } }
            if (!up && u[1] == u[2] && u[2] > 0) up = t
            if (t >= 10 && !seen) { t0 = t; n0 = n; seen = 1 } t1 = t; n1 = n }
    /^TIME/ { cpu = ($2 + $3) / $4 * 100; rss = $5 / 1024 }
    /^  packets lost/ { lost = $3 }
    /^  shed / { shed = $2 }
    /^  damaged / { damaged = $2 }
    END { fps = (t1 > t0) ? (n1 - n0) / (t1 - t0) : 0
          printf "%.1f %s %s %s %.0f %.0f %s %s %s %s %d %d %d\n", fps, mn, md, p95, cpu, rss, spread, (up ? up : "-"), th, re, lost, shed, damaged }
  ' mn="$(steady "$WORK/$name.db" min)" md="$(steady "$WORK/$name.db" median)" \
    p95="$(awk '/frame age/ {gsub(",", ""); print $7}' "$out")" \
    spread="$(steady "$WORK/$name.db" spread)" \
    th="$threads" re="$rss_end" "$out.err" "$out"
}

# steady DB min|median|spread -> each camera's analysed fps over the run from WARM_S seconds on
# (frames_second; the cameras' connecting and the admission finding the detector's capacity
# left out): the slowest, the median, or the spread around the mean (the fair share when every
# camera asks the same)
steady() {
  python3 - "$1" "$2" "$WARM_S" <<'PY'
import sqlite3, sys
db, what, warm = sqlite3.connect(sys.argv[1]), sys.argv[2], int(sys.argv[3])
rows = db.execute("SELECT camera, second, frames FROM frames_second").fetchall()
t0 = min(r[1] for r in rows) + warm
t1 = max(r[1] for r in rows)  # the last second is partial
per = {c: 0 for c, _, _ in rows}
for cam, sec, frames in rows:
    if t0 <= sec < t1:
        per[cam] += frames
v = sorted(n / max(t1 - t0, 1) for n in per.values())
mean = sum(v) / len(v)
pct = lambda x: 100 * (x - mean) / max(mean, 1e-9)
print({"min": f"{v[0]:.2f}", "median": f"{v[len(v) // 2]:.2f}",
       "spread": f"{pct(v[0]):+.0f}%..{pct(v[-1]):+.0f}%"}[what])
PY
}

# day_figures DB -> "busy_mean busy_p5 idle_mean idle_min idle_max wake_busy_mean"
day_figures() {
  python3 - "$1" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = db.execute("SELECT camera, second, frames, persons_max FROM frames_second").fetchall()
t0 = min(r[1] for r in rows) + 10  # warm-up left out
t1 = max(r[1] for r in rows)
per = {}
for cam, sec, frames, persons in rows:
    if t0 <= sec < t1:  # the last second is partial
        per.setdefault(cam, {})[sec] = (frames, persons)
def busy(prefix):
    return sorted(n for cam, s in per.items() if cam.startswith(prefix) for n, p in s.values() if p > 0)
b = busy("people") + busy("wake")
span = t1 - t0
idle = [sum(n for n, _ in per.get(f"empty{i}", {}).values()) / span for i in range(1, 33)]
pct = lambda v, q: v[min(len(v) - 1, int(q * len(v)))] if v else 0
w = busy("wake")
print(f"{sum(b)/max(len(b),1):.2f} {pct(b,0.05)} {sum(idle)/len(idle):.2f} {min(idle):.2f} {max(idle):.2f} {sum(w)/max(len(w),1):.2f}")
EOF
}

declare -A R
for row in $ROWS; do
  case $row in
  overload)
    sim 96; p=$PORT; wait_sims 3
    step "overload: 32 cameras with people at detect_fps $OVERLOAD_FPS, ${RUN_S} s"
    R[o32]=$(cameras "$p" 32 cam | run o32 "$OVERLOAD_FPS")
    step "overload: 96 cameras with people at detect_fps $OVERLOAD_FPS, ${RUN_S} s"
    R[o96]=$(cameras "$p" 96 cam | run o96 "$OVERLOAD_FPS")
    stop_sims ;;
  100x1)
    sim 100; p=$PORT; wait_sims 3
    step "100 cameras at 1 fps, ${RUN_S} s"
    R[h1]=$(cameras "$p" 100 cam | run h1 1)
    stop_sims ;;
  day)
    sim 16; a=$PORT; sim 32 --scene still; b=$PORT; sim 16 --scene wake:20:40; c=$PORT
    wait_sims 12
    step "one camera (RSS base), ${RUN_S} s"
    R[one]=$(cameras "$a" 1 people | run one 4)
    step "store day: 16 people + 32 empty + 16 waking at 4 fps, ${DAY_S} s"
    R[day]=$( { cameras "$a" 16 people; cameras "$b" 32 empty; cameras "$c" 16 wake; } \
      | RUN_S=$DAY_S run day 4)
    R[dayf]=$(day_figures "$WORK/day.db")
    stop_sims ;;
  esac
done

echo
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores; binary $BIN; model $DESC; cameras ${SIZE:-768x576} ${SIM_FLAGS:-}"
echo
echo "| row | cameras | detect_fps | analysed FPS | per-camera FPS min / median | fair-share spread | p95 frame age | CPU | RSS at the end / peak | threads | all up after | frames shed | packets lost | frames damaged |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
line() { # label n fps key
  local fps mn md p95 cpu rss spread up th re lost shed damaged
  read -r fps mn md p95 cpu rss spread up th re lost shed damaged <<< "${R[$4]}"
  echo "| $1 | $2 | $3 | $fps | $mn / $md | $spread | $p95 ms | $cpu % | $re / $rss MB | $th | $up s | $shed | $lost | $damaged |"
}
[ -n "${R[o32]:-}" ] && line "overload base" 32 "$OVERLOAD_FPS" o32 && line overload 96 "$OVERLOAD_FPS" o96
[ -n "${R[o32]:-}" ] && echo && echo "96/32 analysed FPS: $(awk -v a="${R[o96]%% *}" -v b="${R[o32]%% *}" 'BEGIN { printf "%.2f", a / b }') (target >= 0.65)"
[ -n "${R[h1]:-}" ] && line "100x1" 100 1 h1
if [ -n "${R[day]:-}" ]; then
  line "one camera" 1 4 one
  line "store day" 64 4 day
  read -r bm bp im imin imax wm <<< "${R[dayf]}"
  rss1=$(echo "${R[one]}" | cut -d' ' -f6); rss64=$(echo "${R[day]}" | cut -d' ' -f6)
  end1=$(echo "${R[one]}" | cut -d' ' -f10); end64=$(echo "${R[day]}" | cut -d' ' -f10)
  per() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (a - b) / 63 }'; }
  echo
  echo "store day: busy seconds analysed $bm fps mean, p5 $bp (waking cameras' busy seconds $wm); empty cameras $im fps (min $imin, max $imax); RSS per camera above one camera: $(per "$end64" "$end1") MB at the end, $(per "$rss64" "$rss1") MB at the peak (the start: every camera decodes until it is found idle)"
fi
