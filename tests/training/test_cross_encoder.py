"""Fine-tuning does not apply to sequence-classification cross-encoders (lychee finetune trains the
yes/no families' LoRA; cross-encoders are trained with sentence-transformers): the library stops
before any step with a message that says so and where to go, and writes nothing. (The command's
exit code and message: tests/cli/test_cross_encoder.py.)"""

from __future__ import annotations

import json

import pytest

from lychee_rerank.backends.families import FAMILIES
from lychee_rerank.training.finetune import finetune

pytest.importorskip("peft")


@pytest.fixture()
def train_file(tmp_path):
    records = [{"query": "a red circle", "positives": ["a big red circle"], "negatives": ["a stock market report"]},
               {"query": "一只猫", "document": "一只黑猫趴在窗台上", "label": 1},
               {"query": "一只猫", "document": "股票市场报告", "label": 0}]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.mark.parametrize("given", ["directory", "reranker"])
def test_finetune_refuses_a_cross_encoder_before_training(given, cross_encoder_dir, cross_encoder_reranker, train_file, tmp_path):
    model = str(cross_encoder_dir) if given == "directory" else cross_encoder_reranker
    out = tmp_path / "adapter"
    with pytest.raises(ValueError) as caught:
        finetune(model, train_file, None, output_dir=out, max_steps=1, device="cpu", progress=False)
    message = str(caught.value)
    assert "fine-tuning does not apply to the cross_encoder family" in message
    assert FAMILIES["cross_encoder"].fine_tuning in message  # names sentence-transformers as the way to train one
    assert not out.exists() or not any(out.iterdir())
    before = [r.score for r in cross_encoder_reranker.rerank("a circle", ["one red circle", "a report"])]
    after = [r.score for r in cross_encoder_reranker.rerank("a circle", ["one red circle", "a report"])]
    assert before == after  # the reranker is untouched
