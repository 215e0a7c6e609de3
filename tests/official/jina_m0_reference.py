"""A plain jina-reranker-m0 scorer, written from the published modelling code: the parity yardstick.

Not the engine's code, on purpose: one pair per call, the published string formatting, the
transformers processor doing the tokenisation, image-pad expansion, resizing and truncation, the
stock ``Qwen2VLForConditionalGeneration`` forward, and its own MLP. What it follows, read in:

* ``modeling.py`` of the Hugging Face repository ``jinaai/jina-reranker-m0`` (remote code; read
  from two public copies of it, an older one without and a newer one with ``mm_token_type_ids``
  handling): ``formatting_prompts_func`` (``"**Document**:\\n" + doc + "\\n" + "**Query**:\\n" +
  query``, an image side being ``<|vision_start|><|image_pad|><|vision_end|>``), ``JinaVLForRanking``
  (``lm_head = nn.Identity()``; ``score = Sequential(Linear(H, H), ReLU(), Linear(H, 1))``;
  ``score(outputs.hidden_states[-1][:, -1])``; ``sigmoid(score - LOGIT_BIAS)``, ``LOGIT_BIAS = 2.65``;
  ``score_token_id = 100``) and ``compute_score`` (processor loaded with ``max_pixels=602112,
  min_pixels=3136``; ``max_length=10240``, ``max_query_length=512``, ``max_doc_length = max(max_length
  - max_query_length, max_query_length)``; a text document tokenised with ``truncation=True,
  max_length=max_doc_length`` and, when it reached that length, replaced by the decoded ids; the
  processor called with ``truncation=True, max_length=max_length - 1``; the score token appended to
  ``input_ids``, a 1 to ``attention_mask`` and a 0 to ``mm_token_type_ids``; images passed document
  first);
* vLLM's ``vllm/model_executor/models/jina_vl.py`` (``score.0.*`` / ``score.2.*`` checkpoint keys,
  the same bias) as a cross-check.

The remote code itself is never imported (the tiny checkpoint ships no ``modeling.py``): its class is
a ``Qwen2VLForConditionalGeneration`` plus the MLP, which is what is built here.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Union

import torch
from PIL import Image

LOGIT_BIAS = 2.65
SCORE_TOKEN_ID = 100
MAX_LENGTH = 10240
MAX_QUERY_LENGTH = 512
VISION = "<|vision_start|><|image_pad|><|vision_end|>"

Side = Union[str, Image.Image, Path]


def formatting_prompts_func(query: str, doc: str, query_type: str = "text", doc_type: str = "text") -> str:
    """The published formatter (its ``prefix_str`` is never passed by ``compute_score``)."""
    query_part = f"**Query**:\n{VISION}" if query_type == "image" else f"**Query**:\n{query}"
    doc_part = f"**Document**:\n{VISION}" if doc_type == "image" else f"**Document**:\n{doc}"
    return doc_part + "\n" + query_part


class JinaM0Reference:
    """``score(query, doc)`` of one pair; a ``str`` side is text, a PIL image or ``Path`` is an image."""

    def __init__(self, checkpoint: str | Path, dtype: torch.dtype = torch.float32) -> None:
        from safetensors import safe_open
        from transformers import AutoProcessor, Qwen2VLForConditionalGeneration

        self.processor = AutoProcessor.from_pretrained(checkpoint, max_pixels=602112, min_pixels=3136)
        self.model = Qwen2VLForConditionalGeneration.from_pretrained(checkpoint, dtype=dtype).eval()
        self.model.lm_head = torch.nn.Identity()  # as the published class: only the hidden states are wanted
        hidden = self.model.config.get_text_config().hidden_size
        self.score = torch.nn.Sequential(torch.nn.Linear(hidden, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))
        tensors = {}
        for file in sorted(Path(checkpoint).glob("*.safetensors")):
            with safe_open(str(file), framework="pt") as f:
                tensors.update({k.removeprefix("score."): f.get_tensor(k) for k in f.keys() if k.startswith("score.")})
        self.score.load_state_dict(tensors)
        self.score.to(dtype).eval()

    @staticmethod
    def _image(x: Side) -> Image.Image:
        if isinstance(x, Image.Image):
            return x
        with Image.open(x) as im:
            return im.convert("RGB")

    def inputs(self, query: Side, doc: Side) -> dict[str, Any]:
        """The processor's batch of one pair, the score token appended (as ``compute_score`` does)."""
        query_type = "text" if isinstance(query, str) else "image"
        doc_type = "text" if isinstance(doc, str) else "image"
        max_doc_length = max(MAX_LENGTH - MAX_QUERY_LENGTH, MAX_QUERY_LENGTH)
        if doc_type == "text":
            tokens = self.processor.tokenizer(doc, truncation=True, max_length=max_doc_length)
            if len(tokens["input_ids"]) >= max_doc_length:
                doc = self.processor.tokenizer.decode(tokens["input_ids"])
        text = formatting_prompts_func(query, doc, query_type=query_type, doc_type=doc_type)
        doc_images = [self._image(doc)] if doc_type == "image" else []
        query_images = [self._image(query)] if query_type == "image" else []
        if doc_images and query_images:
            images = [[doc_images[0], query_images[0]]]
        else:
            images = doc_images or query_images or None
        with warnings.catch_warnings():  # transformers 5 warns about the published min_pixels/max_pixels keywords
            warnings.filterwarnings("ignore", message=".*min_pixels.*max_pixels.*", category=FutureWarning)
            batch = self.processor(text=[text], images=images, return_tensors="pt", padding=True, truncation=True,
                                   max_length=MAX_LENGTH - 1)
        batch["input_ids"] = torch.cat([batch["input_ids"], torch.full((1, 1), SCORE_TOKEN_ID)], dim=1)
        batch["attention_mask"] = torch.cat([batch["attention_mask"], torch.ones((1, 1), dtype=batch["attention_mask"].dtype)], dim=1)
        if "mm_token_type_ids" in batch:
            mm = batch["mm_token_type_ids"]
            batch["mm_token_type_ids"] = torch.cat([mm, torch.zeros((1, 1), dtype=mm.dtype)], dim=1)
        return dict(batch)

    @torch.no_grad()
    def logit(self, query: Side, doc: Side) -> float:
        """The head's output before the bias."""
        outputs = self.model(**self.inputs(query, doc), use_cache=False, output_hidden_states=True)
        hidden_states = outputs.hidden_states[-1]
        return float(self.score(hidden_states[:, -1]).squeeze(-1)[0])

    def __call__(self, query: Side, doc: Side) -> float:
        """``sigmoid(score - 2.65)`` of one pair."""
        return float(torch.sigmoid(torch.tensor(self.logit(query, doc) - LOGIT_BIAS)))

    def scores(self, query: Side, docs: list[Side]) -> list[float]:
        return [self(query, d) for d in docs]
