#!/usr/bin/env bash
# Build the environment the OFFICIAL Qwen3-VL-Reranker scorer runs in (tests/official/), once.
#   scripts/official_env.sh            -> prints the directory to put first on PYTHONPATH
# The official scorer (QwenLM/Qwen3-VL-Embedding @8ce3aab) pins transformers 4.57.x (uv.lock:
# 4.57.3) and crashes on transformers 5.x for image pairs, so it cannot run in the project venv.
# This is a `pip install --no-deps --target` LAYER, not a venv: it holds only the packages whose
# versions must differ from .venv (transformers 4.57.3 and the versions its import-time checks
# demand: tokenizers 0.22.x, huggingface_hub < 1.0) plus qwen-vl-utils and its av dependency.
# torch, torchvision, PIL, numpy, scipy, safetensors, regex, ... come from .venv underneath:
#   PYTHONPATH=.cache/official-qwen3vl .venv/bin/python tests/official/run_qwen3_vl.py REQ OUT
# Idempotent: a stamp file records the pinned set; a second call with the same set is a no-op.
# Needs the package registry the first time only (about 60 MB of wheels).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-$VENV/bin/python}"
TARGET="${OFFICIAL_ENV_DIR:-.cache/official-qwen3vl}"
# Versions from the official repo's uv.lock (8ce3aab) where it pins them.
PINS=(
  "transformers==4.57.3"
  "tokenizers==0.22.1"
  "huggingface-hub==0.36.0"
  "qwen-vl-utils==0.0.14"
  "av==16.0.1"
)
want="$(printf '%s\n' "${PINS[@]}")"
stamp="$TARGET/.official-env-stamp"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "$TARGET"
  exit 0
fi
say() { echo "official-env: $*" >&2; }
# One builder at a time (two test sessions starting together); the second finds the stamp.
mkdir -p "$(dirname "$TARGET")"
exec 9>"$TARGET.lock"
flock 9
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "$TARGET"
  exit 0
fi
t0=$SECONDS
say "building $TARGET (${PINS[*]})"
tmp="$TARGET.tmp.$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
"$PYTHON" -m pip install --disable-pip-version-check --quiet --no-deps \
  --only-binary=:all: --target "$tmp" "${PINS[@]}" 2>&1 \
  | sed -u -e '/is ignored: it is neither a file nor a directory/d' >&2
# pip --target also writes console scripts; the runner never uses them.
rm -rf "$tmp/bin"
# Check the layer imports on top of the venv before publishing it.
PYTHONPATH="$tmp" "$PYTHON" - >&2 <<'EOF'
import huggingface_hub, tokenizers, transformers
from qwen_vl_utils import process_vision_info  # noqa: F401
from transformers import AutoProcessor, Qwen3VLForConditionalGeneration  # noqa: F401
assert transformers.__version__ == "4.57.3", transformers.__version__
print("official-env: transformers", transformers.__version__, "tokenizers", tokenizers.__version__,
      "huggingface_hub", huggingface_hub.__version__)
EOF
printf '%s\n' "$want" > "$tmp/.official-env-stamp"
rm -rf "$TARGET"
mv "$tmp" "$TARGET"
trap - EXIT
say "done in $((SECONDS - t0)) s"
echo "$TARGET"
