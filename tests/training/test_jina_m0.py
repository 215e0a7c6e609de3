"""Fine-tuning does not apply to jina-reranker-m0 (its score is an MLP head on the hidden state, not a
yes/no answer of the language model, which is what lychee finetune trains): the library and the
command stop before any step with a message that says so, write nothing, and leave the reranker as it was."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from ..jina_m0_support import FAMILY, jina_m0_reranker  # noqa: F401 - shared fixtures
from .not_applicable import check_finetune_refused, train_file  # noqa: F401 - train_file: the shared fixture

pytest.importorskip("peft")


@pytest.mark.parametrize("given", ["directory", "reranker"])
def test_finetune_refuses_jina_m0_before_training(given, jina_m0_dir, jina_m0_reranker, train_file, tmp_path):
    model = str(jina_m0_dir) if given == "directory" else jina_m0_reranker
    message = check_finetune_refused(model, jina_m0_reranker, FAMILY, train_file, tmp_path / "adapter", dtype="float32")
    assert "MLP" in message
    assert not any(type(m).__module__.startswith("peft") for m in jina_m0_reranker.backend.model.modules())


def test_the_command_fails_early_with_the_reason(jina_m0_dir, train_file, tmp_path):
    from lychee_rerank.cli import app

    out = tmp_path / "adapter"
    result = CliRunner().invoke(app, ["finetune", "--model", str(jina_m0_dir), "--train", str(train_file), "--output",
                                      str(out), "--max-steps", "1", "--device", "cpu", "--dtype", "float32"])
    assert result.exit_code == 1, result.output
    assert f"fine-tuning does not apply to the {FAMILY} family" in " ".join(result.output.split())
    assert not out.exists() or not any(out.iterdir())
