"""Fine-tuning does not apply to sequence-classification cross-encoders (lychee finetune trains the
yes/no families' LoRA; cross-encoders are trained with sentence-transformers): the library stops
before any step with a message that says so and where to go, and writes nothing. (The command's
exit code and message: tests/cli/test_cross_encoder.py.)"""

from __future__ import annotations

import pytest

from ..cross_encoder_support import FAMILY
from .not_applicable import check_finetune_refused, train_file  # noqa: F401 - train_file: the shared fixture

pytest.importorskip("peft")


@pytest.mark.parametrize("given", ["directory", "reranker"])
def test_finetune_refuses_a_cross_encoder_before_training(given, cross_encoder_dir, cross_encoder_reranker, train_file, tmp_path):
    model = str(cross_encoder_dir) if given == "directory" else cross_encoder_reranker
    # The message names sentence-transformers as the way to train one.
    check_finetune_refused(model, cross_encoder_reranker, FAMILY, train_file, tmp_path / "adapter")
