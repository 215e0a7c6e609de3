# Two entry points (see README Quickstart): `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
LYCHEE := $(VENV)/bin/lychee
GALLERY := examples/gallery

.PHONY: setup demo eval test bench clean

setup:
	@bash scripts/setup.sh

$(GALLERY)/.done: | setup
	$(PY) -m lychee_rerank.demo.gallery $(GALLERY)
	@touch $@

# Main job: rank the example gallery (real photos + text-bearing images) for a query. With no
# model configured this runs the offline lite backend (models shipped inside pip packages).
QUERY ?= a cup of coffee
demo: setup $(GALLERY)/.done
	$(LYCHEE) rerank "$(QUERY)" $(GALLERY) --top-k 5

eval: setup $(GALLERY)/.done
	$(LYCHEE) eval examples/eval/gallery_eval.jsonl --images $(GALLERY) --backend lite --pr-curve eval-pr-lite.png

test:
	@bash scripts/setup.sh --browser
	$(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/batching.py
	$(PY) benchmarks/throughput.py --quick
	$(PY) benchmarks/lite_gallery.py

clean:
	rm -rf .cache .pytest_cache
