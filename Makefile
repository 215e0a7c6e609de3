# Two entry points (see README Quickstart): `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
LYCHEE := $(VENV)/bin/lychee
TINY := .cache/tiny-model
DEMO := .cache/demo-images

.PHONY: setup demo test bench clean

setup:
	@bash scripts/setup.sh

$(TINY)/config.json: | setup
	$(PY) -m lychee_rerank.testing.tiny_model $(TINY)

$(DEMO)/.done: | setup
	$(PY) scripts/demo_images.py $(DEMO)
	@touch $@

# Main job. Until the offline lite backend lands it runs on the tiny random checkpoint:
# the ranking is meaningless, but every stage of the real pipeline runs.
demo: setup $(TINY)/config.json $(DEMO)/.done
	@echo "NOTE: tiny random test checkpoint; pass --model vec-ai/lychee-rerank-mm for real rankings" >&2
	$(LYCHEE) rerank --model $(TINY) "a red square on a white background" $(DEMO)

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/batching.py

clean:
	rm -rf .cache .pytest_cache
