#!/usr/bin/env bash
# Create .venv and install lychee-rerank with the extras a command needs. Idempotent: re-running is cheap.
#   scripts/setup.sh [--browser] [--extras lite|all,test|...]
# torch/torchvision are pinned to the releases this project is tested with; on the project's
# build machines they install from local disk, elsewhere pip fetches them (several GB).
# Every step prints its start, a heartbeat with the venv's size every 20 s, and its duration,
# so a first run (minutes) never looks hung.
set -euo pipefail
cd "$(dirname "$0")/.."
browser=0
extras="lite"
while [ $# -gt 0 ]; do
  case "$1" in
    --browser) browser=1 ;;
    --extras) extras="$2"; shift ;;
    *) echo "usage: scripts/setup.sh [--browser] [--extras EXTRA[,EXTRA...]]" >&2; exit 2 ;;
  esac
  shift
done
say() { echo "lychee-rerank: $*" >&2; }

# step LABEL COMMAND...: run with start/heartbeat/done lines.
step() {
  local label="$1"; shift
  local t0=$SECONDS rc=0 beat
  say "[$label] started"
  ( while sleep 20; do say "  ... [$label] $((SECONDS - t0)) s, $VENV now $(du -sm "$VENV" 2>/dev/null | cut -f1) MB"; done ) &
  beat=$!
  # A SIGTERM/SIGINT to this script must not leave the heartbeat loop running on its own.
  trap 'kill "$beat" 2>/dev/null; exit 143' TERM INT
  if "$@"; then rc=0; else rc=$?; fi
  trap - TERM INT
  kill "$beat" 2>/dev/null || true
  wait "$beat" 2>/dev/null || true
  if [ "$rc" = 0 ]; then say "[$label] done in $((SECONDS - t0)) s"; else say "[$label] FAILED after $((SECONDS - t0)) s"; fi
  return "$rc"
}

# pip with its own progress (downloads, "Installing collected packages"), minus the noise:
# already-satisfied lines, and this build machine's warnings about absent local indexes.
pip_install() {
  "$VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar on "$@" 2>&1 \
    | sed -u -e '/^Requirement already satisfied/d' -e '/is ignored: it is neither a file nor a directory/d' >&2
}

# --browser: also Debian's Chromium and a CJK font, for the browser tests (web UI, /docs).
if [ "$browser" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    install_chromium() {
      apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-zenhei >/dev/null
    }
    VENV=/dev/null step "chromium (apt-get)" install_chromium
  else
    say "chromium not found; the browser tests will fail (apt-get install chromium)"
  fi
fi
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
stamp="$VENV/.lychee-setup-${extras//,/-}"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
started=$SECONDS
say "installing lychee-rerank[$extras] into $VENV (first run: several minutes, mostly torch)"
[ -x "$VENV/bin/python" ] || step "venv" "$PYTHON" -m venv "$VENV"
step "1/2 torch 2.14.1 + torchvision 0.29.1" pip_install "torch==2.14.1" "torchvision==0.29.1"
step "2/2 lychee-rerank[$extras]" pip_install -e ".${extras:+[$extras]}"
echo "$want" > "$stamp"
say "ready in $((SECONDS - started)) s ($VENV: $(du -sm "$VENV" | cut -f1) MB)"
