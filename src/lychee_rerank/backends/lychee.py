"""The model backend: lychee-rerank-mm (or any Qwen2.5-VL style chat VLM) through transformers.

``scoring="yesno"``: one forward pass per pair, logits of ``yes``/``no`` at the last position,
relevance = softmax([no, yes])[yes] = sigmoid(yes - no).
``scoring="generate"``: for chat VLMs not fine-tuned as rerankers, the model writes a 0-10
number which :func:`~lychee_rerank.parsing.parse_score` reads.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from PIL import Image

from ..inputs import Content
from ..loading import LoadedModel, quiet_processor_warnings
from ..parsing import parse_score
from ..prompt import ScoringMode, build_messages
from ..results import PairScore
from .base import Backend, ProgressCallback

logger = logging.getLogger("lychee_rerank")

DEFAULT_MAX_QUERY_TOKENS = 2048
DEFAULT_MAX_DOC_TOKENS = 4096


def single_token_id(tokenizer: Any, word: str) -> int:
    ids = tokenizer.encode(word, add_special_tokens=False)
    if len(ids) != 1:
        raise ValueError(f"the tokenizer splits {word!r} into {len(ids)} tokens; yes/no scoring needs one token each")
    return int(ids[0])


@dataclass
class _Pair:
    """A pair ready for the processor: rendered chat text, its images, a length estimate."""

    index: int
    text: str
    images: list[Image.Image]
    length: int
    truncated: bool
    result: PairScore | None = field(default=None)


class LycheeBackend(Backend):
    name = "lychee"

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        scoring: ScoringMode = "yesno",
        max_query_tokens: int = DEFAULT_MAX_QUERY_TOKENS,
        max_doc_tokens: int = DEFAULT_MAX_DOC_TOKENS,
        max_new_tokens: int = 8,
    ) -> None:
        if scoring not in ("yesno", "generate"):
            raise ValueError(f"unknown scoring mode {scoring!r}: use 'yesno' or 'generate'")
        self.loaded = loaded
        self.model = loaded.model
        self.processor = loaded.processor
        self.tokenizer = loaded.processor.tokenizer
        self.scoring: ScoringMode = scoring
        self.max_query_tokens = max_query_tokens
        self.max_doc_tokens = max_doc_tokens
        self.max_new_tokens = max_new_tokens
        self.yes_id = single_token_id(self.tokenizer, "yes")
        self.no_id = single_token_id(self.tokenizer, "no")
        size = getattr(self.processor.image_processor, "size", None) or {}
        self._min_pixels = int(size.get("shortest_edge") or 4 * 28 * 28)
        self._max_pixels = int(size.get("longest_edge") or 1280 * 28 * 28)
        # The model object keeps rope state between calls; one forward at a time.
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ preparation
    def truncate(self, text: str | None, limit: int) -> tuple[str | None, bool]:
        """Cut ``text`` to ``limit`` tokens; says whether it did."""
        if not text:
            return text, False
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        if len(ids) <= limit:
            return text, False
        return self.tokenizer.decode(ids[:limit]), True

    def _image_tokens(self, image: Image.Image) -> int:
        pixels = min(max(image.width * image.height, self._min_pixels), self._max_pixels)
        return math.ceil(pixels / (28 * 28))

    def prepare(self, index: int, query: Content, document: Content, instruction: str, query_truncated: bool) -> _Pair:
        doc_text, doc_truncated = self.truncate(document.text, self.max_doc_tokens)
        document = Content(text=doc_text, image=document.image, source=document.source, image_hash=document.image_hash)
        prompt = build_messages(query, document, instruction, mode=self.scoring)
        text = self.processor.apply_chat_template(prompt.messages, tokenize=False, add_generation_prompt=True)
        length = len(self.tokenizer.encode(text, add_special_tokens=False)) + sum(
            self._image_tokens(im) for im in prompt.images
        )
        return _Pair(index, text, prompt.images, length, query_truncated or doc_truncated)

    def render_prompt(self, query: Content, document: Content, instruction: str) -> str:
        """The chat-templated text the model reads for one pair (images as their placeholder tokens).

        Texts are cut to the token limits exactly as :meth:`score_pairs` cuts them, so what
        ``/v1/analyze`` shows is what was scored.
        """
        q_text, q_truncated = self.truncate(query.text, self.max_query_tokens)
        query = Content(text=q_text, image=query.image, source=query.source, image_hash=query.image_hash)
        return self.prepare(0, query, document, instruction, q_truncated).text

    # ------------------------------------------------------------------ scoring
    def score_pairs(
        self,
        query: Content,
        documents: Sequence[Content],
        *,
        instruction: str,
        batch_size: int = 8,
        progress: ProgressCallback | None = None,
    ) -> list[PairScore]:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        q_text, q_truncated = self.truncate(query.text, self.max_query_tokens)
        if q_truncated:
            logger.warning("query text truncated to %d tokens (max_query_tokens)", self.max_query_tokens)
        query = Content(text=q_text, image=query.image, source=query.source, image_hash=query.image_hash)

        pairs = [self.prepare(i, query, d, instruction, q_truncated) for i, d in enumerate(documents)]
        # Group by length so a batch pads to similar lengths; order is restored below.
        order = sorted(pairs, key=lambda p: p.length)
        done = 0
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            for pair, result in zip(batch, self._score_robust(batch)):
                result.truncated = pair.truncated
                pair.result = result
            done += len(batch)
            if progress is not None:
                progress(done, len(pairs))
        return [p.result or PairScore(error="not scored") for p in pairs]

    def _score_robust(self, batch: list[_Pair]) -> list[PairScore]:
        """Score a batch; on CUDA OOM halve it, on any other failure isolate the bad pair."""
        try:
            return self._forward(batch)
        except torch.cuda.OutOfMemoryError:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if len(batch) == 1:
                return [PairScore(error="out of GPU memory even at batch size 1 (lower max_pixels or max_doc_tokens)")]
            half = len(batch) // 2
            logger.warning("CUDA out of memory at batch size %d; retrying with %d", len(batch), half)
            return self._score_robust(batch[:half]) + self._score_robust(batch[half:])
        except Exception as exc:  # noqa: BLE001 - one bad pair must not sink the batch
            if len(batch) == 1:
                logger.warning("document %d failed: %s", batch[0].index, exc)
                return [PairScore(error=f"scoring failed: {type(exc).__name__}: {exc}")]
            return [r for pair in batch for r in self._score_robust([pair])]

    def _encode(self, batch: list[_Pair]) -> Any:
        images = [im for p in batch for im in p.images]
        with quiet_processor_warnings():
            inputs = self.processor(
                text=[p.text for p in batch],
                images=images or None,
                padding=True,
                padding_side="left",
                return_tensors="pt",
            )
        inputs = inputs.to(self.loaded.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.loaded.dtype)
        return inputs

    @torch.inference_mode()
    def _forward(self, batch: list[_Pair]) -> list[PairScore]:
        inputs = self._encode(batch)
        with self._lock:
            if self.scoring == "generate":
                return self._generate(inputs)
            logits = self.model(**inputs, use_cache=False, logits_to_keep=1).logits[:, -1, :].float()
        yes = logits[:, self.yes_id]
        no = logits[:, self.no_id]
        probs = torch.sigmoid(yes - no)  # == softmax([no, yes])[yes]
        return [
            PairScore(score=float(p), yes_logit=float(y), no_logit=float(n))
            for p, y, n in zip(probs.tolist(), yes.tolist(), no.tolist())
        ]

    def _generate(self, inputs: Any) -> list[PairScore]:
        out = self.model.generate(
            **inputs,
            max_new_tokens=self.max_new_tokens,
            do_sample=False,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        new_tokens = out[:, inputs["input_ids"].shape[1] :]
        texts = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        results = []
        for text in texts:
            value = parse_score(text)
            evidence = {} if value is not None else {"unparsed": True}
            results.append(PairScore(score=(value or 0.0) / 10.0, raw_output=text, evidence=evidence))
        return results

    def info(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.loaded.name,
            "device": str(self.loaded.device),
            "dtype": str(self.loaded.dtype).removeprefix("torch."),
            "attn_implementation": self.loaded.attn_implementation,
            "scoring": self.scoring,
        }
