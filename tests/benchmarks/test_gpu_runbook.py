"""The GPU run-book runs end to end on CPU with a tiny config, so it cannot rot between GPU runs."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import gpu  # noqa: E402

from ..conftest import make_photo


def test_runbook_on_cpu_reports_every_section(tmp_path):
    out = tmp_path / "gpu.json"
    report = gpu.main(["--config", "tiny", "--device", "cpu", "--quick", "--repeats", "1",
                       "--headline-photos", "4", "--json", str(out)])
    assert out.exists()
    section = report["configs"]["tiny"]
    rows = section["throughput"]
    assert len({r["scenario"] for r in rows}) == len(rows) == 6
    for row in rows:
        for key in ("naive p/s", "batched p/s", "engine p/s", "engine TFLOP/s", "eng/naive", "eng/batched"):
            assert row[key] > 0 and math.isfinite(row[key]), (row["scenario"], key)
        assert row["max|d| engine"] < 0.1  # BF16 on a random model: agreement, not identity
        assert row["max|d| batched"] < 0.1
    (head,) = section["headline"]
    assert head["photos"] == 4 and head["errors"] == 0
    (agree,) = section["bf16_vs_fp32"]
    assert agree["max|bf16-fp32|"] < 0.1 and agree["kendall tau (mean)"] > 0.5


@pytest.mark.parametrize("with_image", [False, True])
def test_flop_estimate_matches_torch_flop_counter(with_image, tiny_model_dir):
    """The analytic FLOPs (used for TFLOP/s and %-of-peak) agree with torch's own count.

    Eager attention, so every attention matmul is counted (torch's counter misses CPU sdpa);
    eager also multiplies the causally masked half, which the estimate leaves out: added back.
    """
    from torch.utils.flop_counter import FlopCounterMode

    model_dir = tiny_model_dir  # its tokenizer and processor; build_model makes the weights
    model = gpu.build_model(model_dir, "tiny", torch.float32, "eager", "cpu")
    rr = gpu.engine_for(model, model_dir, "eager")
    backend = rr.backend
    doc = rr.to_query(make_photo(200, 150, seed=1) if with_image else "a black cat on a sofa " * 20)
    pair = backend.prepare(0, rr.to_query("a cat " * 30), doc, gpu.DEFAULT_INSTRUCTION)
    with FlopCounterMode(display=False) as counter:
        with torch.inference_mode():
            backend.batch_logits([pair], backend.image_features(pair.images))
    measured = counter.get_total_flops()
    text = model.config.text_config
    masked_half = 2 * text.num_hidden_layers * pair.length**2 * text.hidden_size
    estimate = gpu.pair_flops(model, pair.length, pair.grids) + masked_half
    assert estimate == pytest.approx(measured, rel=0.05)
