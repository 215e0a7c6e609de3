"""Fine-tuning does not apply to jina-reranker-m0 (its score is an MLP head on the hidden state, not a
yes/no answer of the language model, which is what lychee finetune trains): the library and the
command stop before any step with a message that says so, write nothing, and leave the reranker as it was."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from lychee_rerank.backends.families import FAMILIES
from lychee_rerank.training.finetune import finetune

from ..jina_m0_support import FAMILY, jina_m0_reranker  # noqa: F401 - shared fixtures

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
def test_finetune_refuses_jina_m0_before_training(given, jina_m0_dir, jina_m0_reranker, train_file, tmp_path):
    model = str(jina_m0_dir) if given == "directory" else jina_m0_reranker
    out = tmp_path / "adapter"
    before = [r.score for r in jina_m0_reranker.rerank("a circle", ["one red circle", "a report"])]
    with pytest.raises(ValueError) as caught:
        finetune(model, train_file, None, output_dir=out, max_steps=1, device="cpu", dtype="float32", progress=False)
    message = str(caught.value)
    assert f"fine-tuning does not apply to the {FAMILY} family" in message
    assert FAMILIES[FAMILY].fine_tuning in message and "MLP" in message
    assert not out.exists() or not any(out.iterdir())
    after = [r.score for r in jina_m0_reranker.rerank("a circle", ["one red circle", "a report"])]
    assert before == after  # the reranker is untouched
    assert not any(type(m).__module__.startswith("peft") for m in jina_m0_reranker.backend.model.modules())


def test_the_command_fails_early_with_the_reason(jina_m0_dir, train_file, tmp_path):
    from lychee_rerank.cli import app

    out = tmp_path / "adapter"
    result = CliRunner().invoke(app, ["finetune", "--model", str(jina_m0_dir), "--train", str(train_file), "--output",
                                      str(out), "--max-steps", "1", "--device", "cpu", "--dtype", "float32"])
    assert result.exit_code == 1, result.output
    assert f"fine-tuning does not apply to the {FAMILY} family" in " ".join(result.output.split())
    assert not out.exists() or not any(out.iterdir())
