#!/usr/bin/env bash
# The soak of issue 21: CAMERAS cameras (default 32) with people at detect_fps FPS (default 5),
# INT8 (FP32 when the INT8 IR is missing), served by `storetrack simcam` on the same box, for
# MINUTES (default 62); the service's RSS and thread count every 30 s, /proc/PID/smaps_rollup
# every 5 minutes. Prints the RSS at minutes 0.5, 5, 12, 20, 30, 45, 60 (those within the
# run), its growth from minute 5 to the end and to the highest sample after minute 5, and each
# camera's analysed rate over the run (from the database).
# Usage: scripts/soak.sh [minutes] ; env CAMERAS, FPS, KEEP=1 (keep the folder with the config,
# the samples, the log and the database).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
MINUTES="${1:-62}"
CAMERAS="${CAMERAS:-32}"
FPS="${FPS:-5}"
# shellcheck disable=SC1091
source .venv/storetrack.env
cargo build --release --locked -q
BIN="$PWD/target/release/storetrack"
# shellcheck disable=SC1091
source scripts/int8_model.sh # sets DESC
WORK="$(mktemp -d)"
SIM=""
trap '[ -n "$SIM" ] && kill "$SIM" 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
[ -n "${KEEP:-}" ] && echo "outputs kept in $WORK" >&2
PORT=$((20000 + RANDOM % 20000))
"$BIN" simcam --video data/vtest.mp4 --cameras "$CAMERAS" --port "$PORT" > "$WORK/sim.log" 2>&1 &
SIM=$!
sleep 4
{
  for i in $(seq 1 "$CAMERAS"); do
    printf '[[cameras]]\nid = "cam%s"\nurl = "rtsp://127.0.0.1:%s/cam%s"\n\n' "$i" "$PORT" "$i"
  done
  printf '[model]\ndescription = "%s"\n[ingest]\npipeline = "%s"\ndetect_fps = %s\n[storage]\ndb = "%s"\n' \
    "$PWD/$DESC" "$PWD/pipelines/camera.pipeline" "$FPS" "$WORK/soak.db"
} > "$WORK/soak.toml"
echo "soak: $CAMERAS cameras x $FPS fps, $MINUTES min, $DESC, from $(date +%H:%M:%S)" >&2
STORETRACK_LOG=warn "$BIN" run -c "$WORK/soak.toml" --duration "$((MINUTES * 60))s" \
  --progress 60s > "$WORK/run.log" 2>&1 &
PID=$!
START=$(date +%s)
while kill -0 "$PID" 2>/dev/null; do
  t=$(($(date +%s) - START))
  rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$PID/status" 2>/dev/null || echo 0)
  threads=$(ls "/proc/$PID/task" 2>/dev/null | wc -l)
  [ "${rss:-0}" -gt 0 ] && echo "$t $rss $threads" >> "$WORK/rss.txt"
  if [ $((t % 300)) -lt 30 ]; then
    { echo "== $t"; cat "/proc/$PID/smaps_rollup" 2>/dev/null || true; } >> "$WORK/smaps.txt"
  fi
  sleep 30
done
wait "$PID" || { echo "the service failed; its log: $WORK/run.log" >&2; KEEP=1; exit 1; }
python3 - "$WORK/rss.txt" "$WORK/soak.db" <<'PY'
import sqlite3, sys
rows = [tuple(map(int, l.split())) for l in open(sys.argv[1])]
at = lambda s: min(rows, key=lambda r: abs(r[0] - s))[1] / 1024
end = rows[-1][0]
marks = [m for m in (0.5, 5, 12, 20, 30, 45, 60) if m * 60 <= end + 30]
print("| minute | " + " | ".join(f"{m:g}" for m in marks) + " |")
print("|---" * (len(marks) + 1) + "|")
print("| RSS (MB) | " + " | ".join(f"{at(m * 60):.1f}" for m in marks) + " |")
base = at(300)
later = [r[1] / 1024 for r in rows if r[0] >= 300]
if later:
    print(f"from minute 5 to the end: {100 * (later[-1] - base) / base:+.2f} %, to the highest "
          f"sample after minute 5 ({max(later):.1f} MB): {100 * (max(later) - base) / base:+.2f} %; "
          f"threads {min(r[2] for r in rows)}-{max(r[2] for r in rows)}")
db = sqlite3.connect(sys.argv[2])
per = db.execute("SELECT camera, min(second), max(second), sum(frames) FROM frames_second "
                 "GROUP BY camera").fetchall()
t0, t1 = min(r[1] for r in per), max(r[2] for r in per)
fps = sorted(r[3] / max(t1 - t0, 1) for r in per)
print(f"analysed: {sum(r[3] for r in per)} frames over {t1 - t0} s, per camera "
      f"{fps[0]:.3f} .. {fps[-1]:.3f} fps (median {fps[len(fps) // 2]:.3f})")
PY
