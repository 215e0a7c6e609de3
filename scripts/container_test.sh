#!/usr/bin/env bash
# The container test (`make container-test`): build the image from a Debian base made by
# debootstrap with podman, run it (API on lite, API on a mounted tiny checkpoint, UI in a real
# browser, a broken entrypoint) and remove every container and image it made. Idempotent.
# Needs root (rootful podman) and the venv with the test extras (`make test` or scripts/setup.sh).
# Measured on the 2-core build machine: see docs/guides/container.md.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "lychee-rerank: $*" >&2; }
t0=$SECONDS
missing=()
for tool in podman debootstrap runc; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]} (apt-get)"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman debootstrap runc >/dev/null
fi
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import pytest, httpx, playwright" 2>/dev/null; then
  bash scripts/setup.sh --browser --extras all,test
fi
LYCHEE_CONTAINER_TESTS=1 .venv/bin/python -m pytest -q -p no:cacheprovider tests/container "$@"
say "container test done in $((SECONDS - t0)) s"
