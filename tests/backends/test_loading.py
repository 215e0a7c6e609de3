"""Device, dtype and attention choices, and loading errors."""

from __future__ import annotations

import pytest
import torch

from lychee_rerank import LycheeReranker
from lychee_rerank.backends.loading import resolve_attn, resolve_device, resolve_dtype


def test_device_strings_and_objects():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda:1")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu9")


def test_dtype_strings_and_objects():
    cpu = torch.device("cpu")
    assert resolve_dtype("auto", cpu) == torch.float32
    assert resolve_dtype("bfloat16", cpu) == torch.bfloat16
    assert resolve_dtype("float16", cpu) == torch.float16
    assert resolve_dtype("torch.float32", cpu) == torch.float32
    assert resolve_dtype(torch.bfloat16, cpu) == torch.bfloat16
    with pytest.raises(ValueError, match="unknown dtype"):
        resolve_dtype("int3", cpu)


def test_auto_dtype_on_cuda_prefers_bf16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_dtype("auto", torch.device("cuda")) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_dtype("auto", torch.device("cuda")) == torch.float16


def test_attention_choice(monkeypatch):
    import lychee_rerank.backends.loading as loading

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_attn("auto", cpu, torch.float32) == "sdpa"
    monkeypatch.setattr(loading, "flash_attn_available", lambda: True)
    assert resolve_attn("auto", cuda, torch.bfloat16) == "flash_attention_2"
    assert resolve_attn("auto", cuda, torch.float32) == "sdpa"  # FA2 has no fp32 kernels
    assert resolve_attn("auto", cpu, torch.bfloat16) == "sdpa"
    monkeypatch.setattr(loading, "flash_attn_available", lambda: False)
    assert resolve_attn("auto", cuda, torch.bfloat16) == "sdpa"
    with pytest.raises(ValueError, match="flash_attn package is not installed"):
        resolve_attn("flash_attention_2", cuda, torch.bfloat16)
    assert resolve_attn("eager", cpu, torch.float32) == "eager"
    with pytest.raises(ValueError, match="unknown attn_implementation"):
        resolve_attn("fast", cpu, torch.float32)


def test_explicit_choices_are_visible_and_scores_agree(tiny_model_dir, reranker):
    eager = LycheeReranker.from_pretrained(tiny_model_dir, device="cpu", dtype=torch.float32, attn_implementation="eager")
    assert eager.attn_implementation == "eager" and eager.dtype == "float32" and eager.device == "cpu"
    docs = ["a cat", "a dog", "coffee"]
    a = {r.index: r.score for r in eager.rerank("cat", docs)}
    b = {r.index: r.score for r in reranker.rerank("cat", docs)}
    assert all(abs(a[i] - b[i]) < 1e-5 for i in a)


def test_bf16_on_cpu_loads_and_scores_close(tiny_model_dir, reranker):
    bf16 = LycheeReranker.from_pretrained(tiny_model_dir, device="cpu", dtype="bfloat16")
    assert bf16.dtype == "bfloat16"
    got = bf16.score("a cat", "a black cat")
    assert 0.0 <= got <= 1.0 and abs(got - reranker.score("a cat", "a black cat")) < 0.1


def test_pixel_budget_is_applied(tiny_model_dir):
    rr = LycheeReranker.from_pretrained(tiny_model_dir, min_pixels=4 * 28 * 28, max_pixels=16 * 28 * 28)
    size = rr.backend.processor.image_processor.size
    assert size["shortest_edge"] == 4 * 28 * 28 and size["longest_edge"] == 16 * 28 * 28
    from PIL import Image

    pair = rr.backend.prepare(0, rr.to_query("q"), rr.to_query(Image.new("RGB", (800, 600))), "i", False)
    inputs = rr.backend._encode([pair])
    assert int(inputs["image_grid_thw"].prod()) // 4 <= 16
    assert pair.grids == [tuple(inputs["image_grid_thw"][0].tolist())]  # our grid == the processor's
    with pytest.raises(ValueError, match="min_pixels"):
        LycheeReranker.from_pretrained(tiny_model_dir, min_pixels=1000, max_pixels=10)


def test_missing_model_says_what_was_tried(tmp_path):
    with pytest.raises(OSError, match="could not load model"):
        LycheeReranker.from_pretrained(tmp_path / "does-not-exist")
    with pytest.raises(OSError, match="hub"):
        LycheeReranker.from_pretrained("no-such-org/no-such-model-xyz")


def test_adapter_seam_reports_missing_adapter(tiny_model_dir, tmp_path, monkeypatch):
    pytest.importorskip("peft")
    with pytest.raises((OSError, ValueError)):
        LycheeReranker.from_pretrained(tiny_model_dir, adapter=tmp_path / "no-adapter")
