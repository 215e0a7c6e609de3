"""Write a tiny random jina-reranker-m0 checkpoint in the published on-disk layout.

``jinaai/jina-reranker-m0`` is a Qwen2-VL-2B checkpoint saved by its remote-code class
``JinaVLForRanking(Qwen2VLForConditionalGeneration)``: the files of Qwen2-VL-2B-Instruct
(transformers-4.x flat ``config.json``, the real Qwen2 vocabulary, ``preprocessor_config.json``,
``chat_template.json``) with ``architectures: ["JinaVLForRanking"]`` and ``auto_map`` naming the
hub's ``modeling.py`` (which is not written here: the engine must not need it), and weights under
the 4.x key names (``model.*``, ``visual.*``) plus the score head ``score.0.{weight,bias}`` (H x H)
and ``score.2.{weight,bias}`` (1 x H). There is no ``lm_head.weight``: the published class replaces
the output layer by ``nn.Identity`` (and the embeddings are tied in the base config).

The base comes from :func:`lychee_rerank.testing.tiny_qwen2_vl.build_base`'s pieces (sizes scaled
down, ~40 MB). Random weights put the last hidden state near one point, so the head's first layer
is drawn at random and its second layer is then set so that ``sigmoid(score - 2.65)`` spreads over
0-1 across probe pairs (text/text in English and Chinese, image documents, image queries): a parity
test on it fails for an engine that returns a constant.

Usage: ``python -m lychee_rerank.testing.tiny_jina_m0 OUT_DIR [--seed N]``
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from .tiny_pieces import seed_main
from .tiny_qwen2_vl import PROBE_QUERIES, config_dict, new_model, probe_images, save_weights, write_files

LOGIT_BIAS = 2.65
SCORE_TOKEN_ID = 100
VISION = "<|vision_start|><|image_pad|><|vision_end|>"
#: The published processor's pixel budget.
MIN_PIXELS, MAX_PIXELS = 3136, 602112
PROBE_DOCS = [
    "a black cat sleeping on a window sill", "北京是中华人民共和国的首都。", "quarterly revenue grew by 12 percent",
    "the quick brown fox jumps over the lazy dog", "一只黑猫趴在窗台上", "coffee cup on a wooden table",
    "red exit sign above a door", "astronaut next to a rocket",
]


def probe_prompt(query: Any, doc: Any) -> tuple[str, list[Any]]:
    """The published prompt of one pair (a PIL image is an image side) and its images, document first."""
    def side(x: Any) -> str:
        return x if isinstance(x, str) else VISION

    images = [x for x in (doc, query) if not isinstance(x, str)]
    return f"**Document**:\n{side(doc)}\n**Query**:\n{side(query)}", images


def probe_inputs(processor: Any, query: Any, doc: Any) -> dict:
    """Model inputs of one pair as the published code builds them (score token appended)."""
    import torch

    text, images = probe_prompt(query, doc)
    with warnings.catch_warnings():  # transformers 5 warns about the published min_pixels/max_pixels keywords
        warnings.filterwarnings("ignore", message=".*min_pixels.*max_pixels.*", category=FutureWarning)
        batch = processor(text=[text], images=images or None, return_tensors="pt")
    ones = torch.ones((1, 1), dtype=batch["attention_mask"].dtype)
    batch["input_ids"] = torch.cat([batch["input_ids"], torch.full((1, 1), SCORE_TOKEN_ID)], dim=1)
    batch["attention_mask"] = torch.cat([batch["attention_mask"], ones], dim=1)
    if "mm_token_type_ids" in batch:
        mm = batch["mm_token_type_ids"]
        batch["mm_token_type_ids"] = torch.cat([mm, torch.zeros((1, 1), dtype=mm.dtype)], dim=1)
    return dict(batch)


def probes(processor: Any) -> list[dict]:
    images = probe_images()
    pairs: list[tuple[Any, Any]] = []
    for k, doc in enumerate(PROBE_DOCS):
        pairs.append((PROBE_QUERIES[k], doc))
        pairs.append((PROBE_QUERIES[(k + 3) % len(PROBE_QUERIES)], doc))
    for k, image in enumerate(images[:5]):
        pairs.append((PROBE_QUERIES[k], image))  # T -> I
        pairs.append((image, PROBE_DOCS[k]))  # I -> T
    return [probe_inputs(processor, q, d) for q, d in pairs]


def score_head(model: Any, processor: Any, seed: int, spread: float = 1.5) -> dict[str, Any]:
    """``score.0``/``score.2`` tensors: a random first layer, a second layer set so the head's output
    has mean ``LOGIT_BIAS`` (scores centred on 0.5) and standard deviation ``spread`` over the probes."""
    import torch

    hidden_size = model.config.get_text_config().hidden_size
    generator = torch.Generator().manual_seed(seed + 7)
    with torch.no_grad():
        h = torch.stack([model.model(**p).last_hidden_state[0, -1].float() for p in probes(processor)])
        # The first layer sees the input-dependent part of h at unit scale: relu(W (h - mean) / std + b).
        mean, std = h.mean(0), h.std(0).clamp_min(1e-6)
        w0 = torch.randn(hidden_size, hidden_size, generator=generator) / hidden_size**0.5 / std
        b0 = torch.randn(hidden_size, generator=generator) * 0.1 - w0 @ mean
        z = torch.relu(h @ w0.T + b0)
        w2 = torch.randn(hidden_size, generator=generator)
        w2 *= spread / float((z @ w2).std().clamp_min(1e-6))
        b2 = LOGIT_BIAS - float((z @ w2).mean())
    return {
        "score.0.weight": w0.contiguous(), "score.0.bias": b0.contiguous(),
        "score.2.weight": w2[None, :].contiguous(), "score.2.bias": torch.tensor([b2]),
    }


def build(out_dir: str | Path, seed: int = 0, **config_overrides: Any) -> Path:
    """Build the checkpoint in ``out_dir`` and return its path (sizes as in ``config_dict``)."""
    from transformers import AutoProcessor

    out = Path(out_dir)
    overrides = {"architectures": ["JinaVLForRanking"], "auto_map": {"AutoModel": "modeling.JinaVLForRanking"},
                 **config_overrides}
    config = config_dict(**overrides)
    write_files(out, config)
    model = new_model(out, seed)
    processor = AutoProcessor.from_pretrained(out, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    state = {k: v for k, v in model.state_dict().items() if k != "lm_head.weight"}
    state.update(score_head(model, processor, seed))
    save_weights(state, out, tied=True)
    return out


def main(argv: list[str] | None = None) -> None:
    seed_main(build, __doc__, argv)


if __name__ == "__main__":
    main()
