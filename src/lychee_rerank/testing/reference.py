"""Reference scorers: the yardsticks for every fast path.

:class:`NaiveReference` is deliberately naive: one pair at a time, the prompt written out by
hand from the published format (not with the package's prompt builder), the processor on that
single pair, a full forward pass over every position with eager attention, softmax over
[no, yes]. Nothing shared, nothing cached, nothing batched.

``score(..., escape_special_tokens=True)`` keeps special-token strings in user text as plain
text, as the engine does by default, by its own means: the template's control tokens are
found by rendering the prompt with every user text replaced by as many ``x``; the text between
them is tokenized with the tokenizer's ``split_special_tokens=True``. For ordinary text this
gives the processor's ids (the tests check it), so it only matters for texts that hold such strings.

:class:`PlainBatchedScorer` is what a user would write instead of this engine (the way
FlagEmbedding's decoder-only reranker and most serving glue do it): the same prompts, a batch
of pairs through the processor with left padding, one forward, yes/no at the last position.
No caches, no shared prefix. Throughput benchmarks compare the engine with both.

:class:`Qwen3VLPlainBatchedScorer` is the same scorer for Qwen3-VL-Reranker: what a user adapting
its official scorer (one pair per forward) to batches would write. Its own yardstick is the
official scorer itself (``tests/official/``).
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import torch
from PIL import Image

SYSTEM = (
    'Judge whether the Document meets the requirements based on the Query and the Instruct provided. '
    'Note that the answer can only be "yes" or "no".'
)
INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"


def _side(text: str | None, image: Image.Image | None) -> list[dict]:
    parts = []
    if image is not None:
        parts.append({"type": "image"})
    if text:
        parts.append({"type": "text", "text": text})
    return parts


def engine_input(text: str | None = None, image: Image.Image | None = None) -> Any:
    """The engine's input for one side of a reference pair: text, an image, or both."""
    if text is not None and image is not None:
        return {"text": text, "image": image}
    return text if text is not None else image


def messages(
    query_text=None, query_image=None, doc_text=None, doc_image=None, instruction=INSTRUCTION, empty: str | None = None,
) -> list[dict]:
    """The published prompt for one pair, written out by hand.

    ``empty``: what a side with neither text nor image becomes (Qwen3-VL-Reranker: ``"NULL"``);
    lychee-rerank-mm leaves it empty.
    """

    def side(text, image) -> list[dict]:
        if empty is not None and text is None and image is None:
            return [{"type": "text", "text": empty}]
        return _side(text, image)

    user = (
        [{"type": "text", "text": f"<Instruct>: {instruction}"}, {"type": "text", "text": "<Query>:"}]
        + side(query_text, query_image)
        + [{"type": "text", "text": "\n<Document>:"}]
        + side(doc_text, doc_image)
    )
    return [
        {"role": "system", "content": [{"type": "text", "text": SYSTEM}]},
        {"role": "user", "content": user},
    ]


class NaiveReference:
    def __init__(self, model_dir, min_pixels: int = 4 * 28 * 28, max_pixels: int = 1280 * 28 * 28) -> None:
        from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

        # As the published inference scripts do it.
        self.processor = AutoProcessor.from_pretrained(model_dir, min_pixels=min_pixels, max_pixels=max_pixels)
        self.model = Qwen2_5_VLForConditionalGeneration.from_pretrained(
            model_dir, dtype=torch.float32, attn_implementation="eager"
        ).eval()
        tok = self.processor.tokenizer
        self.model_seconds = 0.0  # time inside model(...), to show the model dominates a benchmark
        self.yes = tok.convert_tokens_to_ids("yes")
        self.no = tok.convert_tokens_to_ids("no")

    def _text(self, query_text, query_image, doc_text, doc_image, instruction) -> str:
        prompt = messages(query_text, query_image, doc_text, doc_image, instruction)
        return self.processor.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)

    def escaped_ids(self, query_text=None, query_image=None, doc_text=None, doc_image=None, instruction=INSTRUCTION):
        """Prompt ids (image pads not expanded) with user text's special-token strings kept plain."""
        tok = self.processor.tokenizer
        text = self._text(query_text, query_image, doc_text, doc_image, instruction)
        blank = self._text(
            "x" * len(query_text) if query_text else None, query_image,
            "x" * len(doc_text) if doc_text else None, doc_image, "x" * len(instruction),
        )
        assert len(blank) == len(text)
        specials = sorted({str(t) for t in tok.added_tokens_decoder.values()}, key=len, reverse=True)
        ids: list[int] = []
        pos = 0
        i = 0
        while i < len(blank):
            hit = next((t for t in specials if blank.startswith(t, i)), None)
            if hit is None:
                i += 1
                continue
            if i > pos:
                ids += tok(text[pos:i], add_special_tokens=False, split_special_tokens=True)["input_ids"]
            ids.append(tok.convert_tokens_to_ids(hit))
            i += len(hit)
            pos = i
        if pos < len(text):
            ids += tok(text[pos:], add_special_tokens=False, split_special_tokens=True)["input_ids"]
        return ids

    @torch.no_grad()
    def score(
        self, query_text=None, query_image=None, doc_text=None, doc_image=None, instruction=INSTRUCTION,
        escape_special_tokens: bool = False,
    ):
        text = self._text(query_text, query_image, doc_text, doc_image, instruction)
        images = [im for im in (query_image, doc_image) if im is not None] or None
        if not escape_special_tokens:
            inputs = self.processor(text=[text], images=images, return_tensors="pt")
        else:
            inputs = dict(self.processor.image_processor(images=images, return_tensors="pt")) if images else {}
            pad = self.processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
            per_image = (inputs["image_grid_thw"].prod(-1) // 4).tolist() if images else []
            ids: list[int] = []
            for t in self.escaped_ids(query_text, query_image, doc_text, doc_image, instruction):
                ids += [t] * int(per_image.pop(0)) if t == pad else [t]
            inputs["input_ids"] = torch.tensor([ids])
            inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
            inputs["mm_token_type_ids"] = (inputs["input_ids"] == pad).int()
        self.last_image_tokens = int(inputs["image_grid_thw"].prod(-1).sum()) // 4 if images else 0
        self.last_prompt_tokens = int(inputs["input_ids"].shape[1])  # what HTTP usage.prompt_tokens counts
        start = time.perf_counter()
        logits = self.model(**inputs).logits[0, -1]
        self.model_seconds += time.perf_counter() - start
        pair = torch.stack([logits[self.no], logits[self.yes]])
        return float(torch.softmax(pair, dim=0)[1]), float(logits[self.yes]), float(logits[self.no])


class PlainBatchedScorer:
    """The batched scorer users would otherwise write: the engine's honest peer in benchmarks.

    Pairs in their given order, ``batch_size`` at a time: build each prompt, the processor on the
    batch with left padding, one forward (the model's default attention, last position only), yes/no
    at the last position. Every image goes through the vision tower every time; nothing is shared
    between pairs or calls. ``model`` lets it share weights already in memory (a benchmark's GPU).
    """

    def __init__(
        self,
        model_dir,
        *,
        batch_size: int = 8,
        dtype: torch.dtype = torch.float32,
        device: str = "cpu",
        attn_implementation: str | None = None,
        model: Any = None,
        min_pixels: int = 4 * 28 * 28,
        max_pixels: int = 1280 * 28 * 28,
    ) -> None:
        from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

        self.processor = AutoProcessor.from_pretrained(model_dir, min_pixels=min_pixels, max_pixels=max_pixels)
        if model is None:
            kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
            model = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir, dtype=dtype, **kwargs)
            model = model.to(device).eval()
        self.model = model
        self.batch_size = batch_size
        tok = self.processor.tokenizer
        self.yes = tok.convert_tokens_to_ids("yes")
        self.no = tok.convert_tokens_to_ids("no")

    @torch.inference_mode()
    def score(self, pairs: Sequence[dict]) -> list[float]:
        """p(yes) for each pair; a pair is a dict of :func:`messages`' keyword arguments."""
        out: list[float] = []
        for start in range(0, len(pairs), self.batch_size):
            batch = pairs[start : start + self.batch_size]
            texts = [
                self.processor.apply_chat_template(messages(**p), tokenize=False, add_generation_prompt=True)
                for p in batch
            ]
            images = [im for p in batch for im in (p.get("query_image"), p.get("doc_image")) if im is not None]
            inputs = self.processor(
                text=texts, images=images or None, padding=True, padding_side="left", return_tensors="pt"
            ).to(self.model.device)
            if "pixel_values" in inputs:
                inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
            logits = self.model(**inputs, use_cache=False, logits_to_keep=1).logits[:, -1, :].float()
            out.extend(torch.sigmoid(logits[:, self.yes] - logits[:, self.no]).tolist())
        return out


QWEN3_VL_INSTRUCTION = "Given a search query, retrieve relevant candidates that answer the query."


class Qwen3VLPlainBatchedScorer:
    """The plain batched scorer for Qwen3-VL-Reranker: the official scorer, 8 pairs per forward.

    The official prompt (lychee system turn, its default instruction, ``"NULL"`` for an empty side),
    images resized the official way (``qwen_vl_utils``: RGB, a 32-pixel grid within 4·32² to
    1800·32² pixels, bicubic) and then processed with ``do_resize=False``, the processor on the
    batch with left padding, one forward through ``model.model`` (no caches), and
    ``sigmoid(h_last · (lm_head[yes] − lm_head[no]))``. Pairs in their given order; every image
    goes through the vision tower every time. Unlike the official scorer it does not cut prompts
    over 10,240 tokens.
    """

    def __init__(
        self, model_dir, *, batch_size: int = 8, dtype: torch.dtype = torch.float32, device: str = "cpu",
        model: Any = None, min_pixels: int = 4 * 32 * 32, max_pixels: int = 1800 * 32 * 32,
    ) -> None:
        from transformers import AutoProcessor, Qwen3VLForConditionalGeneration

        self.processor = AutoProcessor.from_pretrained(model_dir)
        if model is None:
            model = Qwen3VLForConditionalGeneration.from_pretrained(model_dir, dtype=dtype).to(device).eval()
        self.model = model
        self.batch_size, self.min_pixels, self.max_pixels = batch_size, min_pixels, max_pixels
        vocab = self.processor.tokenizer.get_vocab()
        head = model.get_output_embeddings().weight.detach()
        self.head = head[vocab["yes"]] - head[vocab["no"]]  # the official one-row linear layer
        self.seconds = self.model_seconds = 0.0  # inside score() / inside the model: the model's share

    def _resized(self, image: Image.Image) -> Image.Image:
        from ..backends.families.qwen3_vl import smart_resize, to_rgb

        rgb = to_rgb(image)
        h, w = smart_resize(rgb.height, rgb.width, self.min_pixels, self.max_pixels)
        return rgb.resize((w, h), Image.Resampling.BICUBIC)

    @torch.inference_mode()
    def score(self, pairs: Sequence[dict]) -> list[float]:
        """The relevance score of each pair; a pair is a dict of :func:`messages`' keyword arguments."""
        out: list[float] = []
        began = time.perf_counter()
        for start in range(0, len(pairs), self.batch_size):
            batch = pairs[start : start + self.batch_size]
            texts = [
                self.processor.apply_chat_template(
                    messages(**{"instruction": QWEN3_VL_INSTRUCTION, **p}, empty="NULL"),
                    tokenize=False, add_generation_prompt=True,
                )
                for p in batch
            ]
            images = [self._resized(im) for p in batch for im in (p.get("query_image"), p.get("doc_image")) if im is not None]
            inputs = self.processor(
                text=texts, images=images or None, do_resize=False, padding=True, padding_side="left", return_tensors="pt"
            ).to(self.model.device)
            if "pixel_values" in inputs:
                inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
            model_start = time.perf_counter()
            hidden = self.model.model(**inputs, use_cache=False).last_hidden_state[:, -1]
            self.model_seconds += time.perf_counter() - model_start
            out.extend(torch.sigmoid((hidden @ self.head).float()).tolist())
        self.seconds += time.perf_counter() - began
        return out
