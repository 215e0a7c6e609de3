"""The "fine-tuning does not apply" check of the families lychee finetune does not train
(tests/training/test_cross_encoder.py, test_jina_m0.py): the library stops before any step with a
message that names the family and where to train it, writes nothing, and leaves the reranker as it was."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lychee_rerank.backends.families import FAMILIES
from lychee_rerank.training.finetune import finetune


def write_train_file(folder: Path) -> Path:
    """A small training file: one grouped record and two labelled pairs (English and Chinese)."""
    records = [{"query": "a red circle", "positives": ["a big red circle"], "negatives": ["a stock market report"]},
               {"query": "一只猫", "document": "一只黑猫趴在窗台上", "label": 1},
               {"query": "一只猫", "document": "股票市场报告", "label": 0}]
    path = folder / "train.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture()
def train_file(tmp_path: Path) -> Path:
    return write_train_file(tmp_path)


def check_finetune_refused(model: Any, reranker: Any, family: str, train_file: Path, out: Path, **kwargs: Any) -> str:
    """``finetune(model, ...)`` (a directory or ``reranker``) raises before training, naming the
    family and the family's own way to train it, writes nothing into ``out``, and leaves
    ``reranker``'s scores as they were; returns the message."""
    before = [r.score for r in reranker.rerank("a circle", ["one red circle", "a report"])]
    with pytest.raises(ValueError) as caught:
        finetune(model, train_file, None, output_dir=out, max_steps=1, device="cpu", progress=False, **kwargs)
    message = str(caught.value)
    assert f"fine-tuning does not apply to the {family} family" in message
    assert FAMILIES[family].fine_tuning in message  # where to go instead
    assert not out.exists() or not any(out.iterdir())
    after = [r.score for r in reranker.rerank("a circle", ["one red circle", "a report"])]
    assert before == after  # the reranker is untouched
    return message
