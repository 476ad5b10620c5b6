#!/usr/bin/env bash
# Installs storetrack as a systemd service from a built checkout (after scripts/setup.sh and
# `cargo build --release`):
#   /usr/local/bin/storetrack                     the binary
#   /usr/local/lib/storetrack/openvino/           the OpenVINO runtime (found beside the binary's
#                                                 ../lib/storetrack/openvino without any env file)
#   /usr/local/share/storetrack/                   model description + IR, pipeline template
#   /etc/storetrack/config.toml                    the config (kept if it exists)
#   /etc/storetrack/storetrack.env                 secrets for ${NAME} in the config (mode 0600)
#   /var/lib/storetrack/                           the database (the unit's StateDirectory)
#   /etc/systemd/system/storetrack.service         the unit, enabled but not started
# Run as root. DESTDIR=/some/root installs into a staging tree (no user, no systemctl);
# BIN=path installs another build of the binary.
# Idempotent: a second run updates the binary, runtime and model and keeps config and secrets.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DESTDIR="${DESTDIR:-}"
PREFIX="${PREFIX:-/usr/local}"
BIN="${BIN:-$ROOT/target/release/storetrack}"
RUNTIME="$ROOT/.venv/openvino-libs"
USER_NAME=storetrack

log() { printf '[install] %s\n' "$*" >&2; }
die() { printf '[install] error: %s\n' "$*" >&2; exit 1; }

[ -x "$BIN" ] || die "$BIN missing: run cargo build --release first"
[ -d "$RUNTIME" ] || die "$RUNTIME missing: run scripts/setup.sh first"
[ -f "$ROOT/models/ssdlite/ssdlite.xml" ] || die "model missing: run scripts/setup.sh first"
if [ -z "$DESTDIR" ] && [ "$(id -u)" -ne 0 ]; then die "run as root (or set DESTDIR)"; fi

bin_dir="$DESTDIR$PREFIX/bin"
lib_dir="$DESTDIR$PREFIX/lib/storetrack/openvino"
share_dir="$DESTDIR$PREFIX/share/storetrack"
etc_dir="$DESTDIR/etc/storetrack"
unit_dir="$DESTDIR/etc/systemd/system"

log "binary -> $bin_dir/storetrack"
install -D -m 0755 "$BIN" "$bin_dir/storetrack"

log "OpenVINO runtime -> $lib_dir"
mkdir -p "$lib_dir"
# -L: the venv folder is a symlink and the wheel's libraries link to versioned names.
cp -rL --preserve=mode "$RUNTIME"/. "$lib_dir"/

log "model and pipeline -> $share_dir"
mkdir -p "$share_dir/models/ssdlite" "$share_dir/pipelines"
install -m 0644 "$ROOT/models/ssdlite.toml" "$share_dir/models/ssdlite.toml"
install -m 0644 "$ROOT"/models/ssdlite/ssdlite.xml "$ROOT"/models/ssdlite/ssdlite.bin \
  "$share_dir/models/ssdlite/"
install -m 0644 "$ROOT/pipelines/camera.pipeline" "$share_dir/pipelines/camera.pipeline"
install -D -m 0644 "$ROOT/README.md" "$DESTDIR$PREFIX/share/doc/storetrack/README.md"

mkdir -p "$etc_dir"
if [ ! -f "$etc_dir/config.toml" ]; then
  log "config -> $etc_dir/config.toml (edit the cameras)"
  sed -e "s|^description = .*|description = \"$PREFIX/share/storetrack/models/ssdlite.toml\"|" \
      -e "s|^pipeline = .*|pipeline = \"$PREFIX/share/storetrack/pipelines/camera.pipeline\"|" \
      -e "s|^db = .*|db = \"/var/lib/storetrack/storetrack.db\"|" \
      "$ROOT/config.toml" > "$etc_dir/config.toml"
  # The HTTP API on loopback, unless the config has its own [api].
  if ! grep -q '^\[api\]' "$etc_dir/config.toml"; then
    cat >> "$etc_dir/config.toml" <<'TOML'

[api]
listen = "127.0.0.1:9464"                # /healthz /readyz /metrics /api/v1/*
# token_env = "STORETRACK_API_TOKEN"     # required for a non-loopback address
TOML
  fi
else
  log "config $etc_dir/config.toml kept"
fi
if [ ! -f "$etc_dir/storetrack.env" ]; then
  ( umask 077; printf '# Secrets for ${NAME} in config.toml, e.g.\n# CAM_ENTRANCE_PW=...\n# STORETRACK_API_TOKEN=...\n' > "$etc_dir/storetrack.env" )
fi
chmod 0600 "$etc_dir/storetrack.env"

install -D -m 0644 "$ROOT/deploy/storetrack.service" "$unit_dir/storetrack.service"

if [ -n "$DESTDIR" ]; then
  log "staged under $DESTDIR (no user created, systemd not touched)"
  exit 0
fi
if ! id "$USER_NAME" >/dev/null 2>&1; then
  log "creating system user $USER_NAME"
  useradd --system --home-dir /var/lib/storetrack --no-create-home --shell /usr/sbin/nologin \
    "$USER_NAME"
fi
# systemd reads the secrets as root; the service user reads the config only.
chown root:"$USER_NAME" "$etc_dir" "$etc_dir/config.toml"
chmod 0750 "$etc_dir"; chmod 0640 "$etc_dir/config.toml"
chown root:root "$etc_dir/storetrack.env"
"$PREFIX/bin/storetrack" check-config -c "$etc_dir/config.toml" || \
  log "config has problems (above): fix them before starting"
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable storetrack.service
  log "enabled; start with: systemctl start storetrack; status: systemctl status storetrack"
else
  log "systemd is not running here: unit installed, not enabled"
fi
