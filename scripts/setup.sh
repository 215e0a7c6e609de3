#!/usr/bin/env bash
# Create .venv and install lychee-rerank with its test tools. Idempotent: re-running is cheap.
# torch/torchvision are pinned to the releases this project is tested with; on the project's
# build machines they install from local disk, elsewhere pip fetches them.
set -euo pipefail
cd "$(dirname "$0")/.."
# --browser: also Debian's Chromium and a CJK font, for the web UI's browser test.
if [ "${1:-}" = "--browser" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "lychee-rerank: installing chromium for the UI browser test..." >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-zenhei >/dev/null
  else
    echo "lychee-rerank: chromium not found; the UI browser test will fail (apt-get install chromium)" >&2
  fi
fi
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
stamp="$VENV/.lychee-setup"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=(pip_quiet "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
# This build machine's pip config lists local indexes that may be absent: drop those warnings only.
pip_quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
echo "lychee-rerank: installing into $VENV (first run takes a few minutes)..." >&2
"${PIP[@]}" "torch==2.14.1" "torchvision==0.29.1"
"${PIP[@]}" -e ".[test]"
echo "$want" > "$stamp"
