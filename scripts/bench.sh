#!/usr/bin/env bash
# Cameras per core, measured in one run so the figures can be compared as ratios:
#   1. benchmark_app on the FP32 and INT8 IRs (THROUGHPUT hint): a = the detector's ceiling (the
#      INT8 IR the service runs: cut before its post-processing, models/ssdlite-int8.toml)
#   2. decode-only FPS of the sample stream on one thread: d
#   3. storetrack end to end (RTSP -> decode -> detect -> track -> SQLite) at 1, 8, 16, 32
#      simulated cameras (10 fps each), FP32 and INT8, plus 1 camera with the LATENCY hint
#   4. the plain Python reference pipeline (scripts/ref_pipeline.py) on the same cameras
#   5. decoding each GOP only up to its last analysed frame: 64 cameras at detect_fps = 1 (key
#      frames only) and 2 (frames 0-5 of 10), decode = "all" vs "auto" (KEY_CAMERAS=0 skips it)
#   6. the remote detector rows (scripts/bench_remote.sh; BENCH_REMOTE=0 skips them)
#   7. a store's day: overload, 100 cameras at 1 fps, the store-day mix (scripts/bench_storeday.sh;
#      BENCH_STOREDAY=0 skips it)
# Decoding every frame of N cameras leaves limit_N = a * (1 - 10N / (cores * d)) FPS for
# inference, at most 10N. FPS is measured between the first and last progress line (set-up
# excluded); CPU is % of one core over the run, RSS the peak. The INT8 IR is made by
# scripts/quantize.py when missing (its accuracy gate is printed).
# Usage: scripts/bench.sh [seconds per run, default 30] [camera counts, default "1 8 16 32"]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUN_S="${1:-30}"
COUNTS="${2:-1 8 16 32}"
bash scripts/setup.sh
# shellcheck disable=SC1091
source .venv/storetrack.env
PY=.venv/bin/python
step() { printf '\n== [%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

step "building (release)"
cargo build --release --locked -q
BIN="$PWD/target/release/storetrack"
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
CORES=$(nproc)
echo "load before start: $(cut -d' ' -f1-3 /proc/loadavg) on $CORES cores" >&2

if [ ! -f models/ssdlite/ssdlite-int8.xml ]; then
  step "quantizing to INT8 (NNCF; prints the accuracy gate)"
  $PY scripts/quantize.py quantize
else
  step "INT8 accuracy gate"
  $PY scripts/quantize.py gate --candidate models/ssdlite/ssdlite-int8.xml
fi
# an INT8 IR quantized before models/ssdlite-int8.toml ran the cut one
[ -f models/ssdlite/ssdlite-int8-raw.xml ] \
  || $PY scripts/cut_postprocessing.py models/ssdlite/ssdlite-int8.xml models/ssdlite/ssdlite-int8-raw.xml >&2
GATE=$($PY scripts/quantize.py gate --candidate models/ssdlite/ssdlite-int8.xml | sed -n 's/.*F1 \([0-9.]*\), mean IoU \([0-9.]*\).*/F1 \1, mean IoU \2/p')

declare -A A
for m in fp32 int8; do
  ir=models/ssdlite/ssdlite.xml; [ "$m" = int8 ] && ir=models/ssdlite/ssdlite-int8-raw.xml
  step "benchmark_app $m (CPU, THROUGHPUT, 15 s)"
  A[$m]=$(.venv/bin/benchmark_app -m "$ir" -d CPU -hint throughput -t 15 2>&1 \
    | awk '/Throughput:/ {print $(NF-1)}' | tail -n 1)
  echo "benchmark_app $m: ${A[$m]} FPS" >&2
done

step "decode-only FPS of the sample (avdec_h264, one thread): every frame, then key frames only"
count_frames() { # extra elements before the sink
  gst-launch-1.0 -v filesrc location=data/vtest.mp4 ! qtdemux ! h264parse ! $1 fakesink silent=false 2>/dev/null \
    | grep -c "last-message = chain"
}
decode_s() { # extra elements before the decoder -> wall seconds
  local t0 t1
  t0=$(date +%s.%N)
  gst-launch-1.0 -q filesrc location=data/vtest.mp4 ! qtdemux ! h264parse ! $1 avdec_h264 max-threads=1 ! fakesink
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}
FRAMES=$(count_frames "")
KEYS=$(count_frames "identity drop-buffer-flags=delta-unit !")
ALL_S=$(decode_s "")
KEY_S=$(decode_s "identity drop-buffer-flags=delta-unit !")
D=$(awk -v n="$FRAMES" -v s="$ALL_S" 'BEGIN { printf "%.0f", n / s }')
# Keyframe-only decoding: cost of one camera-second relative to decoding every frame.
KEY_COST=$(awk -v k="$KEY_S" -v a="$ALL_S" 'BEGIN { printf "%.2f", k / a }')
echo "decode: $FRAMES frames in $ALL_S s ($D FPS); key frames only: $KEYS frames in $KEY_S s ($KEY_COST of the cost)" >&2

PORT=$((20000 + RANDOM % 20000))
start_sim() { # N
  PORT=$((PORT + 1))
  "$BIN" simcam --video data/vtest.mp4 --cameras "$1" --port "$PORT" > /dev/null 2>&1 &
  SIM=$!
  sleep 2
}
stop_sim() { kill "$SIM" 2>/dev/null || true; wait "$SIM" 2>/dev/null || true; }

# storetrack N MODEL HINT [DETECT_FPS DECODE] -> "fps cam_min cam_median age_p95 cpu rss_mb spread"
run_storetrack() {
  local n=$1 model=$2 hint=$3 fps=${4:-0} decode=${5:-auto} desc=models/ssdlite.toml
  local cfg="$WORK/st-$1-$2-$3-$fps-$decode.toml"
  [ "$model" = int8 ] && desc=models/ssdlite-int8.toml
  : > "$cfg"
  for i in $(seq 1 "$n"); do
    printf '[[cameras]]\nid = "cam%s"\nurl = "rtsp://127.0.0.1:%s/cam%s"\n\n' "$i" "$PORT" "$i" >> "$cfg"
  done
  printf '[model]\ndescription = "%s"\n[inference]\nhint = "%s"\n[ingest]\npipeline = "%s"\ndetect_fps = %s\ndecode = "%s"\n[storage]\ndb = "%s"\n' \
    "$PWD/$desc" "$hint" "$PWD/pipelines/camera.pipeline" "$fps" "$decode" "${cfg%.toml}.db" >> "$cfg"
  local out="${cfg%.toml}.out"
  STORETRACK_LOG=warn /usr/bin/time -f 'TIME %U %S %e %M' "$BIN" run -c "$cfg" --duration "${RUN_S}s" --progress 5s \
    > "$out" 2> "$out.err"
  cat "$out" >&2
  awk '
    /^\[/ { for (i = 1; i <= NF; i++) if ($i == "inferred") { n = $(i + 1) }
            t = substr($0, 2, index($0, "s]") - 2) + 0
            if (!seen) { t0 = t; n0 = n; seen = 1 } t1 = t; n1 = n }
    /^TIME/ { cpu = ($2 + $3) / $4 * 100; rss = $5 / 1024 }
    /processed FPS/ { whole = $3 }
    END { fps = (t1 > t0) ? (n1 - n0) / (t1 - t0) : whole
          printf "%.1f %s %s %s %.0f %.0f %s\n", fps, mn, md, p95, cpu, rss, spread }
  ' mn="$(awk '/per-camera FPS/ {gsub(",", ""); print $4}' "$out")" \
    md="$(awk '/per-camera FPS/ {gsub(",", ""); print $6}' "$out")" \
    p95="$(awk '/frame age/ {gsub(",", ""); print $7}' "$out")" \
    spread="$(sed -n 's/.*fair share [0-9.]*: \(.*\))$/\1/p' "$out" | tr -d ' ')" \
    "$out.err" "$out"
}

# python N MODEL -> "fps cam_min cam_median age_p95 cpu rss_mb"
run_python() {
  local n=$1 desc=models/ssdlite.toml urls=()
  [ "$2" = int8 ] && desc=models/ssdlite-int8.toml
  for i in $(seq 1 "$n"); do urls+=("rtsp://127.0.0.1:$PORT/cam$i"); done
  local line
  line=$($PY scripts/ref_pipeline.py --seconds "$RUN_S" --description "$desc" --urls "${urls[@]}" 2>/dev/null | tail -n 1)
  echo "python: $line" >&2
  echo "$line" | tr ' ' '\n' | cut -d= -f2 | tr '\n' ' '
}

declare -A ST PYR
for n in $COUNTS; do
  start_sim "$n"
  for m in fp32 int8; do
    step "storetrack, $n cameras, $m, THROUGHPUT, ${RUN_S} s (load $(cut -d' ' -f1 /proc/loadavg))"
    ST[$n,$m]=$(run_storetrack "$n" "$m" THROUGHPUT)
    if [ "$n" -ge 8 ]; then
      step "python reference, $n cameras, $m, ${RUN_S} s"
      PYR[$n,$m]=$(run_python "$n" "$m")
    fi
  done
  if [ "$n" -eq 1 ]; then
    step "storetrack, 1 camera, fp32, LATENCY, ${RUN_S} s"
    ST[1,lat]=$(run_storetrack 1 fp32 LATENCY)
  fi
  stop_sim
done

limit() { # a n
  awk -v a="$1" -v n="$2" -v c="$CORES" -v d="$D" 'BEGIN { l = a * (1 - 10 * n / (c * d)); if (l > 10 * n) l = 10 * n; printf "%.1f", l }'
}
ratio() { awk -v x="$1" -v y="$2" 'BEGIN { if (y > 0) printf "%.2f", x / y; else print "-" }'; }

echo
echo "benchmark_app (THROUGHPUT): FP32 ${A[fp32]} FPS, INT8 ${A[int8]} FPS ($(ratio "${A[int8]}" "${A[fp32]}")x); INT8 vs FP32 on held-back frames: $GATE"
echo "decode-only (one thread): d = $D FPS; key frames only ($KEYS of $FRAMES frames): $KEY_COST of the decode time; cores = $CORES; load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| cameras | model | hint | limit_N | storetrack FPS | ratio | per-camera FPS min / median | fair-share spread | p95 frame age | CPU | RSS | Python FPS | storetrack / Python |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
row() { # n model hint key
  local n=$1 m=$2 hint=$3 key=$4 a lim fps mn md p95 cpu rss spread pyfps="-" pyr="-"
  a=${A[$m]}
  lim=$(limit "$a" "$n")
  read -r fps mn md p95 cpu rss spread <<< "${ST[$key]}"
  if [ -n "${PYR[$n,$m]:-}" ] && [ "$hint" = THROUGHPUT ]; then
    pyfps=$(echo "${PYR[$n,$m]}" | cut -d' ' -f1)
    pyr=$(ratio "$fps" "$pyfps")
  fi
  echo "| $n | ${m^^} | $hint | $lim | $fps | $(ratio "$fps" "$lim") | $mn / $md | $spread | $p95 ms | $cpu % | $rss MB | $pyfps | $pyr |"
}
for n in $COUNTS; do
  for m in fp32 int8; do row "$n" "$m" THROUGHPUT "$n,$m"; done
  [ "$n" -eq 1 ] && row 1 fp32 LATENCY "1,lat"
done
echo
echo "Python reference rows (fps cam_min cam_median age_p50_ms age_p95_ms cpu rss_mb):"
for n in $COUNTS; do for m in fp32 int8; do
  [ -n "${PYR[$n,$m]:-}" ] && echo "  $n cameras ${m^^}: ${PYR[$n,$m]}"
done; done

# 5. GOP-limited decoding: KEY_CAMERAS cameras (default 64) at detect_fps = 1 and 2 (the sample
#    has a key frame a second), decoding every frame and then with decode = "auto" (key frames
#    only at 1 fps, frames 0-5 of each GOP at 2 fps).
KEY_N="${KEY_CAMERAS:-64}"
if [ "$KEY_N" -gt 0 ]; then
  start_sim "$KEY_N"
  declare -A KF
  for rate in 1 2; do for decode in all auto; do
    step "storetrack, $KEY_N cameras at detect_fps = $rate, decode = $decode, ${RUN_S} s"
    KF[$rate,$decode]=$(run_storetrack "$KEY_N" fp32 THROUGHPUT "$rate" "$decode")
  done; done
  stop_sim
  echo
  echo "GOP-limited decoding, $KEY_N cameras (FP32):"
  echo
  echo "| detect_fps | decode | storetrack FPS | per-camera FPS min / median | p95 frame age | CPU | RSS |"
  echo "|---|---|---|---|---|---|---|"
  for rate in 1 2; do for decode in all auto; do
    read -r fps mn md p95 cpu rss _ <<< "${KF[$rate,$decode]}"
    echo "| $rate | $decode | $fps | $mn / $md | $p95 ms | $cpu % | $rss MB |"
  done; done
fi

# 6. the remote detector (issue 10): 16 cameras against one and two local KServe v2 server
#    processes, per-request overhead, ratio to the local engine in the same run.
#    BENCH_REMOTE=0 skips it.
if [ "${BENCH_REMOTE:-1}" != 0 ]; then
  echo
  bash scripts/bench_remote.sh "$RUN_S" 16
fi

# 7. a store's day (issue 21): overload (32 and 96 cameras at 5 fps), 100 cameras at 1 fps, and
#    64 cameras at 4 fps of which 32 see an empty floor and 16 wake 40 s a minute
#    (scripts/bench_storeday.sh; BENCH_STOREDAY=0 skips it).
if [ "${BENCH_STOREDAY:-1}" != 0 ]; then
  echo
  bash scripts/bench_storeday.sh "$RUN_S"
fi
