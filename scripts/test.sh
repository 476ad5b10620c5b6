#!/usr/bin/env bash
# The test command (README, .ci/run): setup on a fresh machine, then lint and the whole suite,
# including the end-to-end run on the real model, real RTSP and a real SQLite file.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
source .venv/storetrack.env
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
# Imports follow the data path (docs/architecture.md): no new back-edges.
python3 scripts/check_layers.py --self-test
python3 scripts/check_layers.py
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
status=0
cargo test --locked --no-fail-fast -- --test-threads=2 2>&1 | tee "$LOG" || status=$?
# One closing line over every test binary, also when some fail (--no-fail-fast: each binary
# runs, each failure counts); the exit status is cargo's. A binary's result is found anywhere
# in its line: stderr shares the log (in one CI run GLib's messages ran into that line and the
# count missed a whole binary).
awk 'match($0, /test result: [A-Za-z]+\. [0-9]+ passed; [0-9]+ failed/) {
  split(substr($0, RSTART, RLENGTH), w, " "); p += w[4]; f += w[6]
} END { printf "tests: %d passed, %d failed\n", p, f }' "$LOG"
exit "$status"
