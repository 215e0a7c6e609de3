"""jina-reranker-m0 (Qwen2-VL-2B with an MLP score head): scored natively, no remote code runs.

What the published modelling code (``modeling.py`` of the ``jinaai/jina-reranker-m0`` hub
repository, class ``JinaVLForRanking(Qwen2VLForConditionalGeneration)``; cross-checked with vLLM's
``vllm/model_executor/models/jina_vl.py``) does, and so what this adapter declares:

* the model is a ``Qwen2VLForConditionalGeneration`` whose ``lm_head`` is ``nn.Identity`` and which
  carries ``score = Sequential(Linear(H, H), ReLU, Linear(H, 1))`` (checkpoint keys ``score.0.*``,
  ``score.2.*``, with biases). Here the model is transformers' own ``Qwen2VLForConditionalGeneration``
  and the ``score.*`` tensors are read from the safetensors files into that MLP, put on the model as
  ``model.score``; ``trust_remote_code`` is never passed on, so the hub's ``modeling.py`` never runs;
* the score is ``sigmoid(score(h) - 2.65)`` with ``h`` the last layer's hidden state at the last
  position (after the final norm; rows left-padded). Records show the head's output as
  ``yes_logit`` and the bias 2.65 as ``no_logit``, so ``score = sigmoid(yes_logit - no_logit)``;
* the prompt is ``**Document**:\\n{document}\\n**Query**:\\n{query}``: document first, no chat template,
  no system turn, no instruction. An image side is ``<|vision_start|><|image_pad|><|vision_end|>``
  (the processor expands the pad), so images reach the model document first, as the published
  ``[doc_image, query_image]``. A side with an image and a text (which the published code has no
  way to express) is the image's placeholder followed by the text;
* token id 100 (the byte 0xA7 of the Qwen2 vocabulary) is appended after tokenisation, with
  attention 1: the last position, where the head reads;
* the processor's pixel budget is ``min_pixels=3136``, ``max_pixels=602112`` (4 to 768 visual
  tokens); ``max_length=10240``, ``max_query_length=512``: a text document is cut to
  ``10240 - 512 = 9728`` tokens (the published code cuts it by tokens, decodes and re-encodes; here
  the ids are cut themselves, which differs only where the cut falls inside a character), then the
  whole prompt to ``10240 - 1`` ids (the processor's right truncation) before the score token. The
  query has no cut of its own. Past the budget this adapter drops text ids from the end and keeps
  every special id (image pads included), which equals the right truncation whenever that leaves the
  image placeholders whole; for an image query after a long document (where the published cut would
  split the image and the published code fails) the document's text is cut instead.

An instruction is not part of this model's input: one given is not used. Fine-tuning does not apply
(the head is an MLP, not a yes/no answer); ``lychee finetune`` refuses it before any training step.
Licence: CC-BY-NC-4.0 (non-commercial); a warning says so when a checkpoint loads, and
``info()`` carries the notice.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from . import FAMILIES
from ...prompt import PromptSpec
from .base import Loaded, ScoreHead
from .qwen2_vl import Qwen2VLAdapter, load_model

logger = logging.getLogger("lychee_rerank")

#: ``LOGIT_BIAS`` of the published code: ``score = sigmoid(head(h) - LOGIT_BIAS)``.
LOGIT_BIAS = 2.65
#: ``score_token_id`` of the published code, appended to every prompt after tokenisation.
SCORE_TOKEN_ID = 100
#: ``compute_score`` defaults: the whole prompt's budget and the share kept for the query.
MAX_LENGTH = 10240
MAX_QUERY_LENGTH = 512
#: The published processor's pixel budget (``AutoProcessor.from_pretrained(..., max_pixels=602112, min_pixels=3136)``).
MIN_PIXELS = 3136
MAX_PIXELS = 602112
VISION = "<|vision_start|><|image_pad|><|vision_end|>"
DOCUMENT_PREFIX = "**Document**:\n"
QUERY_PREFIX = "\n**Query**:\n"
NOTICE = (
    "jina-reranker-m0 is licensed CC-BY-NC-4.0: non-commercial use only (commercial use needs a licence "
    "from Jina AI)"
)
NO_FINETUNING = (
    f"fine-tuning does not apply to the jina_m0 family: {FAMILIES['jina_m0'].fine_tuning}; lychee finetune "
    "trains the yes/no answer of a language model, and this model's score comes from its own MLP head"
)


class MLPScoreHead(ScoreHead):
    """``sigmoid(mlp(h) - bias)``: the published head. Not a yes/no head (``yes_id``/``no_id`` are None)."""

    def __init__(self, mlp: torch.nn.Module, bias: float = LOGIT_BIAS) -> None:  # noqa: D107 - no ScoreHead rows
        self.mlp = mlp
        self.bias = bias
        self.yes_id = None  # type: ignore[assignment]
        self.no_id = None  # type: ignore[assignment]
        self.weight = None  # type: ignore[assignment]

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """``[batch]`` float32 head outputs (before the bias), computed in the head's dtype as published."""
        weight = next(self.mlp.parameters())
        return self.mlp(hidden.to(weight.device, weight.dtype)).squeeze(-1).float()

    def pair_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        raise ValueError(NO_FINETUNING)

    def vocab_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        raise ValueError(NO_FINETUNING)

    @torch.no_grad()
    def scores(self, hidden: torch.Tensor) -> tuple[list[float], list[float], list[float]]:
        logit = self.logits(hidden)
        probs = torch.sigmoid(logit - self.bias)
        return probs.tolist(), logit.tolist(), [self.bias] * len(probs)


def checkpoint_files(name: str) -> list[Path]:
    """The safetensors files of checkpoint ``name`` (local directory or hub id, from the hub cache)."""
    path = Path(name).expanduser()

    def fetch(filename: str) -> Path | None:
        if path.is_dir():
            return path / filename if (path / filename).is_file() else None
        from huggingface_hub import hf_hub_download

        try:
            return Path(hf_hub_download(name, filename))
        except Exception:  # noqa: BLE001 - absent file (or offline): the next candidate says more
            return None

    index = fetch("model.safetensors.index.json")
    if index is not None:
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        files = [fetch(shard) for shard in shards]
        missing = [s for s, f in zip(shards, files) if f is None]
        if missing:
            raise OSError(f"{name}: safetensors shard(s) {', '.join(missing)} not found")
        return [f for f in files if f is not None]
    single = fetch("model.safetensors")
    if single is None:
        raise OSError(f"{name} has no model.safetensors(.index.json): the jina_m0 score head cannot be read")
    return [single]


SCORE_KEYS = ("0.weight", "0.bias", "2.weight", "2.bias")


def score_tensors(name: str) -> dict[str, torch.Tensor]:
    """The ``score.*`` tensors of the checkpoint, keyed ``0.weight``, ``0.bias``, ``2.weight``, ``2.bias``."""
    from safetensors import safe_open

    found: dict[str, torch.Tensor] = {}
    for file in checkpoint_files(name):
        with safe_open(str(file), framework="pt") as f:
            for key in f.keys():
                if key.startswith("score."):
                    found[key.removeprefix("score.")] = f.get_tensor(key)
    if set(found) != set(SCORE_KEYS):
        raise ValueError(
            f"{name} has no jina-reranker-m0 score head (expected the tensors "
            f"{', '.join('score.' + k for k in SCORE_KEYS)}; found {sorted('score.' + k for k in found) or 'none'})"
        )
    return found


def build_mlp(tensors: dict[str, torch.Tensor], *, dtype: torch.dtype, device: Any) -> torch.nn.Sequential:
    """``Sequential(Linear(H, H), ReLU, Linear(H, 1))`` holding the checkpoint's head (frozen, eval)."""
    first, last = tensors["0.weight"], tensors["2.weight"]
    mlp = torch.nn.Sequential(
        torch.nn.Linear(first.shape[1], first.shape[0]), torch.nn.ReLU(), torch.nn.Linear(last.shape[1], last.shape[0]),
    )
    mlp.load_state_dict(tensors)
    return mlp.to(device=device, dtype=dtype).eval().requires_grad_(False)


class JinaM0Family(Qwen2VLAdapter):
    spec = FAMILIES["jina_m0"]
    # No system turn, no instruction: render() writes the whole prompt; generate is not available.
    prompt = PromptSpec(system="", default_instruction="")
    min_pixels = MIN_PIXELS
    max_pixels = MAX_PIXELS
    max_query_tokens = MAX_LENGTH  # no cut of its own: the whole-prompt rule (truncate) bounds it
    max_doc_tokens = MAX_LENGTH - MAX_QUERY_LENGTH
    query_first = False
    notice = NOTICE
    training_refusal = NO_FINETUNING
    #: Ids of ``QUERY_PREFIX`` (its first may merge with the document's last character); recounted at load.
    query_prefix_ids = 5
    #: ``<|vision_start|>``, ``<|image_pad|>``, ``<|vision_end|>`` (Qwen2's ids; read from the tokenizer at load).
    vision_ids = frozenset({151652, 151655, 151653})

    def load(self, name, *, device, dtype, attn_implementation, min_pixels, max_pixels, trust_remote_code) -> Loaded:
        logger.warning("%s (%s)", NOTICE, name)
        if trust_remote_code:
            logger.info("jina_m0: trust_remote_code not used: the model is scored natively, its modeling.py is not run")
        tensors = score_tensors(name)  # checked first: a checkpoint without the head fails before the big load
        # transformers' own Qwen2-VL class (its load report lists the score.* tensors as unexpected:
        # they are read here, beside it, into the published MLP, which is put on the model as ``score``).
        loaded = load_model(
            name, device=device, dtype=dtype, attn_implementation=attn_implementation, trust_remote_code=False,
            min_pixels=min_pixels, max_pixels=max_pixels,
        )
        model = loaded.model
        hidden = model.config.get_text_config().hidden_size
        if tensors["0.weight"].shape[1] != hidden:
            raise ValueError(f"{name}: score.0.weight is {tuple(tensors['0.weight'].shape)}, the model's hidden size is {hidden}")
        model.score = build_mlp(tensors, dtype=model.dtype, device=model.device)
        tokenizer = self.tokenizer(loaded.processor)
        self.query_prefix_ids = len(tokenizer.encode(QUERY_PREFIX, add_special_tokens=False))
        self.vision_ids = frozenset(tokenizer.convert_tokens_to_ids(["<|vision_start|>", self.image_token, "<|vision_end|>"]))
        return loaded

    def head(self, model: Any, tokenizer: Any) -> ScoreHead:
        mlp = getattr(model, "score", None)
        if not isinstance(mlp, torch.nn.Module):
            raise ValueError("this model has no jina-reranker-m0 score head (model.score)")
        return MLPScoreHead(mlp)

    def messages(self, query: Any, document: Any, instruction: str, mode: str) -> None:
        """None: jina-reranker-m0 reads a plain document-first string, not chat messages."""
        return None

    def render(self, processor: Any, query: Any, document: Any, instruction: str, mode: str) -> str:
        def side(content: Any) -> str:
            return (VISION if content.has_image else "") + (content.text or "")

        return f"{DOCUMENT_PREFIX}{side(document)}{QUERY_PREFIX}{side(query)}"

    def truncate(self, ids: list[int], special_ids: frozenset[int]) -> tuple[list[int], bool]:
        """The processor's cut to ``MAX_LENGTH - 1`` ids, then the score token appended.

        Past the budget, text ids are dropped from the end and special ids (image pads included) kept:
        the processor's right truncation whenever that leaves the images whole. An image query (the
        prompt ends with its placeholders) keeps them and its ``**Query**:`` label, and the document's
        text is cut instead (the published code fails on such a pair: its cut splits the image).
        """
        budget = MAX_LENGTH - 1
        if len(ids) <= budget:
            return [*ids, SCORE_TOKEN_ID], False
        keep = special_ids | self.vision_ids  # a tokenizer may not list the vision tokens as special
        end = len(ids)
        if ids[-1] in keep:
            while end > 0 and ids[end - 1] in keep:
                end -= 1
            end = max(0, end - self.query_prefix_ids)
        drop = len(ids) - budget
        kept_reversed: list[int] = []
        for t in reversed(ids[:end]):
            if drop > 0 and t not in keep:
                drop -= 1
                continue
            kept_reversed.append(t)
        return [*reversed(kept_reversed), *ids[end:], SCORE_TOKEN_ID], True
