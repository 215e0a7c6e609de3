"""The matmul patch embedding gives the Conv3d's features, and the engine's scores stay the naive ones."""

from __future__ import annotations

import pytest
import torch

from lychee_rerank import LycheeReranker
from lychee_rerank.backends.patch_embed import use_matmul_patch_embed


def test_matmul_patch_embed_equals_conv3d(tiny_model_dir, photos):
    from transformers import Qwen2_5_VLForConditionalGeneration

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    embed = model.model.visual.patch_embed
    rr = LycheeReranker.from_pretrained(tiny_model_dir)
    pixels = rr.backend._preprocess(photos[3])["pixel_values"]
    with torch.inference_mode():
        conv = embed(pixels)
        assert use_matmul_patch_embed(model)
        matmul = embed(pixels)
    assert matmul.shape == conv.shape
    assert torch.allclose(matmul, conv, atol=1e-5, rtol=1e-5)
    assert not torch.equal(matmul, torch.zeros_like(matmul))


def test_engine_on_cpu_uses_it_and_matches_naive(tiny_model_dir, photos, naive):
    rr = LycheeReranker.from_pretrained(tiny_model_dir, device="cpu", vision_cache_bytes=0)
    embed = rr.backend.model.model.visual.patch_embed
    assert "forward" in vars(embed)  # the instance's forward is the matmul one
    assert "forward" not in vars(naive.model.model.visual.patch_embed)
    docs = photos[:6]
    for batch_size in (1, 4):
        got = {r.index: r.score for r in rr.rerank("a black cat", docs, batch_size=batch_size)}
        for i, photo in enumerate(docs):
            assert got[i] == pytest.approx(naive.score(query_text="a black cat", doc_image=photo)[0], abs=1e-5)


def test_a_projection_wrapped_later_keeps_its_own_forward(tiny_model_dir, photos):
    """An adapter injected after the swap (LoRA on the patch projection) must not be bypassed."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    assert use_matmul_patch_embed(model)
    embed = model.model.visual.patch_embed

    class Doubled(torch.nn.Module):  # stands in for a wrapper that changes the output
        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.weight = inner.weight

        def forward(self, x):
            return 2 * self.inner(x)

    rr = LycheeReranker.from_pretrained(tiny_model_dir)
    pixels = rr.backend._preprocess(photos[0])["pixel_values"]
    with torch.inference_mode():
        plain = embed(pixels)
        embed.proj = Doubled(embed.proj)
        wrapped = embed(pixels)
    assert torch.allclose(wrapped, 2 * plain, atol=1e-5)
