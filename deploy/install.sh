#!/usr/bin/env bash
# Installs storetrack as a systemd service from a built checkout (after scripts/setup.sh and
# `cargo build --release`):
#   /usr/local/bin/storetrack                     the binary
#   /usr/local/lib/storetrack/openvino/           the OpenVINO runtime (found beside the binary's
#                                                 ../lib/storetrack/openvino without any env file)
#   /usr/local/share/storetrack/                   model description + IR, pipeline template
#   /etc/storetrack/config.toml                    the config (kept if it exists)
#   /etc/storetrack/storetrack.env                 secrets for ${NAME} in the config (mode 0600),
#                                                 with a generated API token
#                                                 (STORETRACK_API_TOKEN) unless one is set
#   /var/lib/storetrack/                           the database (the unit's StateDirectory)
#   /etc/systemd/system/storetrack.service         the unit, enabled but not started
# Run as root. DESTDIR=/some/root installs into a staging tree (no user, no systemctl);
# BIN=path installs another build of the binary.
# Idempotent: a second run updates the binary, runtime and model and keeps config and secrets.
# Safe while the service runs: every file is written beside its target and renamed over it, and
# the runtime goes to a new folder the `openvino` link is switched to, so a running process
# keeps the files it has mapped (overwriting a mapped library in place kills it with SIGBUS).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DESTDIR="${DESTDIR:-}"
PREFIX="${PREFIX:-/usr/local}"
BIN="${BIN:-$ROOT/target/release/storetrack}"
RUNTIME="$ROOT/.venv/openvino-libs"
USER_NAME=storetrack

log() { printf '[install] %s\n' "$*" >&2; }
die() { printf '[install] error: %s\n' "$*" >&2; exit 1; }

# put MODE SRC DEST: DEST replaced by a copy of SRC in one rename (a new inode).
put() {
  local tmp
  tmp="$(dirname "$3")/.$(basename "$3").new.$$"
  install -m "$1" "$2" "$tmp"
  mv -f "$tmp" "$3"
}

# A random API token: 32 bytes from the kernel, hex.
new_token() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

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
mkdir -p "$bin_dir"
put 0755 "$BIN" "$bin_dir/storetrack"

log "OpenVINO runtime -> $lib_dir"
# A new folder each time, then the link switched to it in one rename; older folders are
# removed (a running process keeps the libraries it has mapped).
lib_parent="$(dirname "$lib_dir")"
release="openvino-$(date +%Y%m%d%H%M%S)-$$"
mkdir -p "$lib_parent/$release"
# -L: the venv folder is a symlink and the wheel's libraries link to versioned names.
cp -rL --preserve=mode "$RUNTIME"/. "$lib_parent/$release"/
if [ -d "$lib_dir" ] && [ ! -L "$lib_dir" ]; then
  # The layout of earlier installers: a plain folder, moved aside (its files stay mapped).
  mv "$lib_dir" "$lib_parent/openvino-old-$$"
fi
ln -sfn "$release" "$lib_parent/.openvino.new.$$"
mv -fT "$lib_parent/.openvino.new.$$" "$lib_dir"
for old in "$lib_parent"/openvino-*; do
  [ "$(basename "$old")" = "$release" ] || rm -rf "$old"
done

log "model and pipeline -> $share_dir"
mkdir -p "$share_dir/models/ssdlite" "$share_dir/pipelines" "$DESTDIR$PREFIX/share/doc/storetrack"
put 0644 "$ROOT/models/ssdlite.toml" "$share_dir/models/ssdlite.toml"
put 0644 "$ROOT/models/ssdlite/ssdlite.xml" "$share_dir/models/ssdlite/ssdlite.xml"
put 0644 "$ROOT/models/ssdlite/ssdlite.bin" "$share_dir/models/ssdlite/ssdlite.bin"
put 0644 "$ROOT/pipelines/camera.pipeline" "$share_dir/pipelines/camera.pipeline"
put 0644 "$ROOT/README.md" "$DESTDIR$PREFIX/share/doc/storetrack/README.md"
# The pages the README links to, beside it.
(cd "$ROOT" && find docs -type f) | while read -r doc; do
  mkdir -p "$(dirname "$DESTDIR$PREFIX/share/doc/storetrack/$doc")"
  put 0644 "$ROOT/$doc" "$DESTDIR$PREFIX/share/doc/storetrack/$doc"
done

mkdir -p "$etc_dir"
if [ ! -f "$etc_dir/config.toml" ]; then
  log "config -> $etc_dir/config.toml (edit the cameras)"
  sed -e "s|^description = .*|description = \"$PREFIX/share/storetrack/models/ssdlite.toml\"|" \
      -e "s|^pipeline = .*|pipeline = \"$PREFIX/share/storetrack/pipelines/camera.pipeline\"|" \
      -e "s|^db = .*|db = \"/var/lib/storetrack/storetrack.db\"|" \
      -e "s|^# *token_env = \"STORETRACK_API_TOKEN\".*|token_env = \"STORETRACK_API_TOKEN\"       # generated into storetrack.env by install.sh|" \
      "$ROOT/config.toml" > "$etc_dir/config.toml"
  # The HTTP API on loopback with the generated token, unless the config has its own [api].
  if ! grep -q '^\[api\]' "$etc_dir/config.toml"; then
    cat >> "$etc_dir/config.toml" <<'TOML'

[api]
listen = "127.0.0.1:9464"                # /healthz (no token) /readyz /metrics /api/v1/*
token_env = "STORETRACK_API_TOKEN"       # generated into storetrack.env by the installer
# tls_cert = "/etc/storetrack/api.crt"   # HTTPS (needed to listen beyond this box)
# tls_key = "/etc/storetrack/api.key"
TOML
  fi
else
  log "config $etc_dir/config.toml kept"
  if ! grep -q '^token_env' "$etc_dir/config.toml"; then
    log "warning: $etc_dir/config.toml has no [api] token_env: every local account can read the API"
  fi
fi
if [ ! -f "$etc_dir/storetrack.env" ]; then
  ( umask 077; printf '# Secrets for ${NAME} in config.toml, e.g.\n# CAM_ENTRANCE_PW=...\n' > "$etc_dir/storetrack.env" )
fi
chmod 0600 "$etc_dir/storetrack.env"
if ! grep -q '^STORETRACK_API_TOKEN=.' "$etc_dir/storetrack.env"; then
  log "API token generated -> $etc_dir/storetrack.env (STORETRACK_API_TOKEN)"
  ( umask 077; printf '# Bearer token of the HTTP API (Authorization: Bearer ...), generated by install.sh\nSTORETRACK_API_TOKEN=%s\n' "$(new_token)" >> "$etc_dir/storetrack.env" )
fi

mkdir -p "$unit_dir"
put 0644 "$ROOT/deploy/storetrack.service" "$unit_dir/storetrack.service"

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
# The check reads ${NAME} values, the token among them, from the secrets file.
( set -a; . "$etc_dir/storetrack.env"; set +a
  "$PREFIX/bin/storetrack" check-config -c "$etc_dir/config.toml" ) || \
  log "config has problems (above): fix them before starting"
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable storetrack.service
  log "enabled; start with: systemctl start storetrack; status: systemctl status storetrack"
else
  log "systemd is not running here: unit installed, not enabled"
fi
