#!/usr/bin/env bash
# CI step: the lean core install works on its own, in a FRESH venv (no system site-packages).
#   scripts/check_core_install.sh [--sizes]
# 1. new venv; torch/torchvision pins; `pip install .` (core only, no extras);
# 2. the extras' packages are absent; `lychee rerank` ranks texts with a tiny Qwen2.5-VL checkpoint
#    built offline, and its scores equal the naive reference's;
# 3. commands whose extra is missing fail with one line naming `pip install "lychee-rerank[x]"`.
# --sizes: then installs each extra alone on top of the core and prints the MB it adds.
# Takes minutes (torch is 5.5 GB on x86_64): run after `make test`, not inside the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d "${TMPDIR:-/tmp}/lychee-core.XXXXXX")"
trap 'rm -rf "$work"' EXIT
venv="$work/venv"
t0=$SECONDS
say() { echo "check_core_install: $*" >&2; }
mb() { du -sm "$venv" | cut -f1; }
pipi() { "$venv/bin/python" -m pip install --disable-pip-version-check -q "$@" 2> >(sed -e '/is ignored: it is neither/d' >&2); }

python3 -m venv "$venv"
say "venv: $(mb) MB"
pipi "torch==2.14.1" "torchvision==0.29.1"
say "torch + torchvision: $(mb) MB ($((SECONDS - t0)) s)"
pipi .
core_mb=$(mb)
say "core (lychee-rerank, no extras): ${core_mb} MB ($((SECONDS - t0)) s)"

"$venv/bin/python" - <<'PY'
import importlib.util, sys
from lychee_rerank.extras import EXTRAS
present = sorted(m for mods in EXTRAS.values() for m in mods if importlib.util.find_spec(m) is not None)
assert not present, f"the core install pulled optional packages: {present}"
assert importlib.util.find_spec("lychee_rerank").origin.startswith(sys.prefix), "lychee_rerank must come from the venv"
print("check_core_install: no optional package installed", file=sys.stderr)
PY

cd "$work"  # nothing from the checkout on the path from here on
"$venv/bin/python" -m lychee_rerank.testing.tiny_model "$work/tiny" >/dev/null
query="a black cat sleeping on a window sill"
HF_HUB_OFFLINE=1 "$venv/bin/lychee" rerank "$query" "a black cat" "red car 1 2 3" "coffee cup on a table" \
  --text --model "$work/tiny" --backend lychee --device cpu --dtype float32 --format json > "$work/out.json"
"$venv/bin/python" - "$work/tiny" "$work/out.json" "$query" <<'PY'
import json, sys
from lychee_rerank.testing.reference import NaiveReference
tiny, out, query = sys.argv[1], sys.argv[2], sys.argv[3]
docs = ["a black cat", "red car 1 2 3", "coffee cup on a table"]
rows = json.load(open(out))
assert len(rows) == 3 and all(r["error"] is None for r in rows), rows
ref = NaiveReference(tiny)
for r in rows:
    expected = ref.score(query_text=query, doc_text=docs[r["index"]])[0]
    assert abs(r["score"] - expected) < 1e-5, (r, expected)
print(f"check_core_install: lychee rerank ranked {len(rows)} texts, scores equal the naive reference", file=sys.stderr)
PY

expect_extra() {  # expect_extra EXTRA COMMAND...: fails with one line naming the extra
  local extra="$1"; shift
  local out rc=0
  out="$("$@" 2>&1 >/dev/null)" || rc=$?
  [ "$rc" != 0 ] || { say "'$*' should fail without [$extra]"; exit 1; }
  [ "$(printf '%s\n' "$out" | grep -c .)" = 1 ] || { say "'$*' printed more than one line:"; printf '%s\n' "$out" >&2; exit 1; }
  printf '%s' "$out" | grep -qF "pip install \"lychee-rerank[$extra]\"" || { say "'$*' did not name [$extra]: $out"; exit 1; }
  say "ok: $* -> $out"
}
HF_HUB_OFFLINE=1 expect_extra lite "$venv/bin/lychee" rerank "cats" "a cat" --text --backend lite
expect_extra server "$venv/bin/lychee" serve --backend lite
expect_extra ui "$venv/bin/lychee" ui
printf '{"query": "q", "document": "d", "label": 1}\n' > "$work/train.jsonl"
expect_extra train "$venv/bin/lychee" finetune --model "$work/tiny" --train "$work/train.jsonl" --output "$work/ft"
cd - >/dev/null

if [ "${1:-}" = "--sizes" ]; then
  for extra in lite server ui train eval scale all; do
    "$venv/bin/python" -m pip freeze --exclude-editable | sort > "$work/before.txt"
    pipi ".[$extra]"
    say "[$extra] adds $(( $(mb) - core_mb )) MB on top of the core ($(mb) MB in all)"
    "$venv/bin/python" -m pip freeze --exclude-editable | sort > "$work/after.txt"
    comm -13 "$work/before.txt" "$work/after.txt" | grep -v "^lychee-rerank" | sed 's/[=@ ].*//' > "$work/added.txt" || true
    [ -s "$work/added.txt" ] && "$venv/bin/python" -m pip uninstall -y -q -r "$work/added.txt" >/dev/null
  done
fi
say "passed in $((SECONDS - t0)) s"
