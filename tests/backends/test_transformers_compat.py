"""The prefix path speaks the KV-cache argument of the installed transformers, without warnings.

CI runs this file (and the parity tests) on the lowest supported transformers too (.ci/run).
"""

from __future__ import annotations

import logging

import pytest
import transformers
from packaging.version import Version
from transformers.utils import logging as hf_logging

from lychee_rerank import LycheeReranker


def test_cache_argument_follows_the_installed_version(reranker):
    from lychee_rerank.backends.lychee import cache_kwarg

    rr = reranker
    expected = "cache" if Version(transformers.__version__) >= Version("5.24") else "past_key_values"
    assert cache_kwarg(rr.backend.model) == expected


def test_prefix_path_gives_no_deprecation_warning_and_naive_scores(tiny_model_dir, naive, caplog):
    rr = LycheeReranker.from_pretrained(tiny_model_dir)  # its own: the test reads absolute stats
    query = "a black cat sitting on a window sill in the sun " * 4
    docs = ["a black cat", "a red car", "coffee on a table", "a rocket"]
    hf_logging.warning_once.cache_clear()  # a warning already shown once would hide a new one
    hf_logging.enable_propagation()
    try:
        with caplog.at_level(logging.WARNING):
            got = {r.index: r.score for r in rr.rerank(query, docs, batch_size=3)}
    finally:
        hf_logging.disable_propagation()
    assert rr.backend.stats["prefix_batches"] == 2
    assert not [r for r in caplog.records if "deprecated" in r.getMessage()], caplog.text
    for i, d in enumerate(docs):
        assert got[i] == pytest.approx(naive.score(query_text=query, doc_text=d)[0], abs=1e-5)
