#!/usr/bin/env bash
# Create .venv and install lychee-rerank with its test tools. Idempotent: re-running is cheap.
# torch/torchvision are pinned to the releases this project is tested with; on the project's
# build machines they install from local disk, elsewhere pip fetches them.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
stamp="$VENV/.lychee-setup"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
echo "lychee-rerank: installing into $VENV (first run takes a few minutes)..." >&2
"${PIP[@]}" "torch==2.14.1" "torchvision==0.29.1"
"${PIP[@]}" -e ".[test]"
echo "$want" > "$stamp"
