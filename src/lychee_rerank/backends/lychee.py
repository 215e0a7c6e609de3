"""The model backend: one family-agnostic driver for every transformers reranker checkpoint.

The driver owns speed and robustness; a family adapter (:mod:`.families`) owns every fact about
a checkpoint (see :mod:`.families.base`). Where a score is computed: :meth:`LycheeBackend._forward`
runs the model once (:meth:`LycheeBackend._run`, from a shared prefix or in full) and
:meth:`LycheeBackend.scores_from_hidden` applies the family's score head to the last position.
The fast path does the same arithmetic as a plain processor + model call, minus repeated work:

* token ids are built here (each image placeholder expanded by the image's grid), so lengths
  are known before any pixel is processed and batches can be packed under a token budget;
* the shared prefix (system + instruction + query) runs once per call, each batch of
  documents continues from its KV cache;
* vision-tower outputs (all of them the language model needs) are cached by image content and
  pixel budget;
* positions are computed by the family on the full sequence and passed explicitly.

``scoring="generate"`` (families that allow it): for chat VLMs not fine-tuned as rerankers, the
model writes a 0-10 number which :func:`~lychee_rerank.parsing.parse_score` reads.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import logging
import os
import threading
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Hashable, Sequence

import torch

from ..config import DEFAULT_MAX_BATCH_TOKENS, DEFAULT_VISION_CACHE_BYTES, RerankerConfig, ScoringMode
from ..inputs import Content, StoredImage, pixel_hash, pixels
from ..parsing import parse_score
from ..prompt_tokens import PromptTokenizer
from ..results import PairScore
from .base import Backend, ProgressCallback
from .families import detect
from .loading import LoadedModel, load
from .packing import Pair, expand_image_pads, pack_batches, pack_ids, shared_prefix_length
from .patch_embed import use_matmul_patch_embed
from .vision_cache import VisionCache

logger = logging.getLogger("lychee_rerank")

MIN_PREFIX_TOKENS = 16
#: Batches whose images are preprocessed ahead of the model: the next one overlaps with the
#: current forward pass, and a call holds at most this many batches of pixels, however many
#: documents it has.
PREPROCESS_AHEAD = 2


def unwrap_adapter(model: Any) -> Any:
    """The transformers model under a peft ``PeftModel`` (its LoRA layers stay injected and active).

    An unmerged adapter arrives wrapped; the fast path needs the model's own helpers (the
    family's positions and vision calls), which the wrapper hides.
    """
    get_base = getattr(model, "get_base_model", None)
    if callable(get_base) and type(model).__module__.startswith("peft"):
        return get_base()
    return model


def cache_kwarg(model: Any) -> str:
    """The forward argument that takes a KV cache: ``cache`` from transformers 5.24 on.

    5.24 deprecates ``past_key_values`` (removal announced for 5.40); older 5.x only know it.
    Asking the signature, not the version number, also covers patched or backported builds.
    """
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def output_cache(output: Any) -> Any:
    """The KV cache an output carries, under its 5.24+ name or the older one (no BC warning)."""
    cache = getattr(output, "cache", None) if "cache" in output.__dataclass_fields__ else None
    return cache if cache is not None else output.past_key_values


@dataclass
class _Prefix:
    """KV cache of the tokens every pair of a call shares (system, instruction, query)."""

    length: int
    cache: Any
    n_images: int


@dataclass
class _Call:
    """State of one ``score_pairs`` call, passed explicitly (the backend object is shared)."""

    features: dict[Hashable, Any] = field(default_factory=dict)
    pending: dict[Hashable, Future] = field(default_factory=dict)
    prefix: _Prefix | None = None


class LycheeBackend(Backend):
    """The model backend (registry name ``lychee``) for a checkpoint of any known family."""

    name = "lychee"

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        scoring: ScoringMode = "yesno",
        max_query_tokens: int | None = None,
        max_doc_tokens: int | None = None,
        max_new_tokens: int = 8,
        max_batch_tokens: int | None = DEFAULT_MAX_BATCH_TOKENS,
        prefix_cache: bool = True,
        vision_cache_bytes: int = DEFAULT_VISION_CACHE_BYTES,
        preprocess_workers: int | None = None,
        escape_special_tokens: bool = True,
    ) -> None:
        if scoring not in ("yesno", "generate"):
            raise ValueError(f"unknown scoring mode {scoring!r}: use 'yesno' or 'generate'")
        self.loaded = loaded
        self.family = loaded.family
        if scoring == "generate" and self.family.prompt.generate_system is None:
            raise ValueError(f"the {self.family.name} family is a yes/no reranker: scoring='generate' is not available")
        self.model = unwrap_adapter(loaded.model)
        self.backbone = self.family.backbone(self.model)
        self.processor = loaded.processor
        self.tokenizer = loaded.tokenizer
        self.scoring: ScoringMode = scoring
        self.max_query_tokens = max_query_tokens or self.family.max_query_tokens
        self.max_doc_tokens = max_doc_tokens or self.family.max_doc_tokens
        self.max_new_tokens = max_new_tokens
        self.max_batch_tokens = max_batch_tokens
        self.prefix_cache = prefix_cache
        # User text (query, documents, instruction) never yields control tokens unless asked.
        self.escape_special_tokens = escape_special_tokens
        self.prompt_tokens = PromptTokenizer(self.tokenizer, escape=escape_special_tokens)
        self.head = self.family.head(self.model, self.tokenizer)
        self.yes_id, self.no_id = self.head.yes_id, self.head.no_id
        self.image_token = self.family.image_token
        self.image_token_id = self.tokenizer.convert_tokens_to_ids(self.image_token) if self.reads_images else -1
        self._special_ids = frozenset(self.tokenizer.all_special_ids)
        self._min_pixels, self._max_pixels = loaded.min_pixels, loaded.max_pixels
        self._fast = scoring == "yesno"
        self._cache_kwarg = cache_kwarg(self.backbone)
        if torch.device(loaded.device).type == "cpu":
            use_matmul_patch_embed(self.model)
        self.vision_cache = VisionCache(vision_cache_bytes, sizeof=self.family.feature_bytes)
        self._pool = ThreadPoolExecutor(
            max_workers=preprocess_workers or min(4, os.cpu_count() or 1), thread_name_prefix="lychee-preprocess"
        )
        if escape_special_tokens:
            # The escaping tokenizer copy takes ~2 s for a 150k vocabulary: built now, off the first call's path.
            self._pool.submit(self.prompt_tokens.plain)
        self._stats = Counter()
        # One forward at a time: the model object is shared between threads (server).
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ preparation
    def grid(self, image: StoredImage) -> tuple[int, int, int]:
        """The (t, h, w) patch grid the family's preprocessing will produce, from the size alone."""
        return self.family.grid(image.width, image.height, self._min_pixels, self._max_pixels)

    def image_refusal(self, size: tuple[int, int]) -> str | None:
        """A shape the family's resize refuses (an extreme aspect ratio, say), said when the image is read."""
        if not self.reads_images:
            return f"the {self.family.name} model family reads text only: an image cannot be scored by it"
        width, height = size
        try:
            self.family.grid(width, height, self._min_pixels, self._max_pixels)
        except ValueError as exc:
            return f"{width}x{height} pixels cannot be read by this model ({exc})"
        return None

    @property
    def reads_images(self) -> bool:
        return "image" in self.family.modalities

    def input_refusal(self, content: Content, side: str) -> str | None:
        """What the family does not read on this side (its per-side modalities), said when the input is read."""
        allowed = self.family.side_modalities(side)
        if allowed == self.family.modalities:  # no per-side rule: image_refusal says what the family cannot read
            return None
        held = [m for m, there in (("image", content.has_image), ("text", bool(content.text))) if there]
        refused = [m for m in held if m not in allowed]
        if not refused:
            return None
        plural = "queries" if side == "query" else f"{side}s"
        return (
            f"the {self.family.name} model family reads {' and '.join(sorted(allowed))} {plural} only: "
            f"a {side} with {' and '.join(refused)} cannot be scored by it"
        )

    def image_tokens(self, grid: tuple[int, int, int]) -> int:
        """Visual tokens an image of this patch grid becomes in the prompt."""
        return self.family.image_tokens(grid)

    def _image_key(self, image: StoredImage, image_hash: str | None) -> Hashable:
        if image_hash is None:  # a PIL image handed in without its hash (every ImageSource has one)
            image_hash = pixel_hash(image)  # type: ignore[arg-type]
        return (image_hash, self._min_pixels, self._max_pixels)

    @property
    def prompt_spec(self) -> Any:
        return self.family.prompt

    def prepare(
        self, index: int, query: Content, document: Content, instruction: str | None, query_truncated: bool = False
    ) -> Pair:
        """Token ids (image pads expanded) of one pair's prompt.

        Query and document text are cut to ``max_query_tokens``/``max_doc_tokens`` by their
        token ids inside the prompt, then the family's whole-prompt rule applies; with
        ``escape_special_tokens`` (default) special-token strings in any user text stay plain
        text. Raises ``ValueError`` for a pair that cannot be built; callers score every other pair.
        """
        for side, content in (("query", query), ("document", document)):
            refusal = self.input_refusal(content, side)
            if refusal is not None:
                raise ValueError(refusal)
        instruction = instruction or self.default_instruction
        texts = {"instruction": (instruction, None)}
        # A long text is cut by characters first (same first tokens, still over the limit), so
        # a 50 MB document costs what its kept tokens cost, not a tokenization of 50 MB.
        if query.text:
            texts["query"] = (self.prompt_tokens.prefix(query.text, self.max_query_tokens), self.max_query_tokens)
        if document.text:
            texts["document"] = (self.prompt_tokens.prefix(document.text, self.max_doc_tokens), self.max_doc_tokens)

        def template(markers: dict[str, str]) -> str:
            # The stored images (not decoded: the template needs only where each one goes).
            q = Content(text=markers.get("query"), image=query.raw_image)
            d = Content(text=markers.get("document"), image=document.raw_image)
            return self.family.render(self.processor, q, d, markers["instruction"], self.scoring)

        rendered = self.prompt_tokens.render(template, texts)
        ids, cut = self.prompt_tokens.encode(rendered)
        # Images stay as stored: decoded only when their batch is preprocessed (see _run_batches).
        # In prompt order: the query's image first unless the family writes the document first.
        sides = (query, document) if self.family.query_first else (document, query)
        images = [c.raw_image for c in sides if c.raw_image is not None]
        hashes = [c.image_hash for c in sides if c.raw_image is not None]
        keys = [self._image_key(im, h) for im, h in zip(images, hashes)]
        grids = [self.grid(im) for im in images]
        try:
            expanded = expand_image_pads(ids, self.image_token_id, [self.image_tokens(g) for g in grids])
        except ValueError as exc:
            typed = sorted({t for name in texts for t in self.prompt_tokens.user_specials(texts[name][0])})
            cause = (
                f": the user text holds {', '.join(typed)}, read as control token(s) because escape_special_tokens=False"
                if typed and not self.escape_special_tokens else ""
            )
            raise ValueError(f"{exc}{cause}") from None
        expanded, family_cut = self.family.truncate(expanded, self._special_ids)
        truncated = query_truncated or family_cut or any(c for c, span in zip(cut, rendered.spans) if span.name != "instruction")
        text = rendered.text if not any(cut) and not family_cut else self._decode_prompt(expanded)
        return Pair(index, text, images, keys, grids, expanded, truncated)

    def _decode_prompt(self, ids: list[int]) -> str:
        """The text of cut prompt ids, each image's run of placeholders shown as one (as rendered)."""
        shown = [t for k, t in enumerate(ids) if t != self.image_token_id or k == 0 or ids[k - 1] != t]
        return self.tokenizer.decode(shown)

    def pair(self, index: int, query: Content, document: Content, instruction: str | None) -> Pair:
        """One pair as scoring prepares it (texts cut as scoring cuts them): fine-tuning's view."""
        return self.prepare(index, query, document, instruction)

    @property
    def device(self) -> Any:
        return self.loaded.device

    @property
    def model_name(self) -> str:
        return self.loaded.name

    @property
    def fast_path(self) -> bool:
        """Token ids built here, prefix KV cache, cached vision features (every yes/no family)."""
        return self._fast

    def training_view(self) -> "LycheeBackend":
        """This backend, as the :class:`~.base.TrainingView` fine-tuning uses."""
        if self.family.training_refusal:
            raise ValueError(self.family.training_refusal)
        if not self._fast:
            raise ValueError("fine-tuning needs yes/no scoring (scoring='yesno')")
        return self

    def render_prompt(self, query: Content, document: Content, instruction: str | None) -> str:
        """The chat-templated text the model reads for one pair (images as their placeholder tokens),
        cut exactly as scoring cuts it, so what ``/v1/analyze`` shows is what was scored."""
        return self.prepare(0, query, document, instruction).text

    def prompt_messages(self, query: Content, document: Content, instruction: str) -> list[dict[str, Any]] | None:
        """The family's own messages (``None`` for a family whose prompt is a plain string)."""
        return self.family.messages(query, document, instruction, self.scoring)

    def batches(self, pairs: list[Pair], batch_size: int, offset: int = 0) -> list[list[Pair]]:
        """Sort by length and pack under ``batch_size`` pairs and ``max_batch_tokens`` padded tokens."""
        return pack_batches(pairs, batch_size, self.max_batch_tokens, offset)

    # ------------------------------------------------------------------ scoring
    def score_pairs(
        self,
        query: Content,
        documents: Sequence[Content],
        *,
        instruction: str | None,
        batch_size: int = 8,
        progress: ProgressCallback | None = None,
    ) -> list[PairScore]:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        slots = self._prepare_all(query, documents, instruction)
        pairs = [p for p in slots if isinstance(p, Pair)]
        # A shared prefix may hold the query's images only where the query comes first in the prompt.
        self._run_call(pairs, int(query.has_image) if self.family.query_first else 0, batch_size, progress)
        return self._results(slots)

    def _prepare_all(self, query: Content, documents: Sequence[Content], instruction: str | None) -> list[Pair | PairScore]:
        """Each pair's prompt, or its error: a document whose prompt cannot be built fails alone."""
        slots: list[Pair | PairScore] = []
        for i, d in enumerate(documents):
            try:
                slots.append(self.prepare(i, query, d, instruction))
            except Exception as exc:  # noqa: BLE001 - reported on that document, the others are scored
                logger.warning("document %d: prompt not built: %s", i, exc)
                slots.append(PairScore(error=f"prompt not built: {exc}"))
        return slots

    @staticmethod
    def _results(slots: list[Pair | PairScore]) -> list[PairScore]:
        return [s if isinstance(s, PairScore) else (s.result or PairScore(error="not scored")) for s in slots]

    def _run_call(
        self, pairs: list[Pair], n_query_images: int, batch_size: int, progress: ProgressCallback | None
    ) -> None:
        """Score ``pairs`` as one call: the tokens they all share run once as a prefix (holding at
        most ``n_query_images`` images, the query's own), then length-packed batches. Each result
        is stored on its pair."""
        call = _Call()
        if self._fast and pairs and self.prefix_cache and len(pairs) > 1:
            self._start_preprocessing(pairs[:1], call)
            call.prefix = self._build_prefix(pairs, call, n_query_images=n_query_images)
        self._run_batches(pairs, call, batch_size, progress)

    def _run_batches(self, pairs: list[Pair], call: _Call, batch_size: int, progress: ProgressCallback | None) -> None:
        """Score ``pairs`` in length-packed batches (continuing from ``call``'s prefix, if any).

        Images are preprocessed on the helper threads :data:`PREPROCESS_AHEAD` batches ahead
        (overlapping with model compute), and a batch's vision features are let go once no later
        batch needs them: memory follows the batch, not the number of documents.
        """
        batches = self.batches(pairs, batch_size, call.prefix.length if call.prefix else 0)
        last_use = {key: b for b, batch in enumerate(batches) for pair in batch for key in pair.keys}
        done = 0
        for b, batch in enumerate(batches):
            if self._fast:
                for ahead in batches[b : b + PREPROCESS_AHEAD]:
                    self._start_preprocessing(ahead, call)
            for pair, result in zip(batch, self._score_robust(batch, call)):
                result.truncated = pair.truncated
                result.tokens = pair.length
                pair.result = result
            for key in {k for pair in batch for k in pair.keys if last_use[k] == b}:
                call.features.pop(key, None)
                call.pending.pop(key, None)
            done += len(batch)
            if progress is not None:
                progress(done, len(pairs))

    def score_groups(
        self,
        groups: Sequence[tuple[Content, Sequence[Content], str]],
        *,
        batch_size: int = 8,
        progress: ProgressCallback | None = None,
    ) -> list[list[PairScore]]:
        """Several requests in shared forward passes.

        Requests with the same query and instruction become one call (and share its prefix);
        different ones are packed together into batches that continue from the tokens every
        pair shares (system prompt and instruction, run once). Scores are the same as scoring
        each request alone (the pair, not its batch-mates, decides its score).
        """
        merged: dict[tuple, list[int]] = {}
        for g, (query, _docs, instruction) in enumerate(groups):
            key = (query.text, query.image_hash if query.has_image else None, instruction)
            merged.setdefault(key, []).append(g)
        if len(merged) == 1 or not self._fast:
            return self._score_merged(groups, list(merged.values()), batch_size, progress)
        slots_by_group: list[list[Pair | PairScore]] = []
        for query, docs, instruction in groups:
            slots_by_group.append(self._prepare_all(query, docs, instruction))
        everything = [p for slots in slots_by_group for p in slots if isinstance(p, Pair)]
        # No image may sit in a prefix shared by different queries (n_query_images=0).
        self._run_call(everything, 0, batch_size, progress)
        self.stats["coalesced_requests"] += len(groups)
        return [self._results(slots) for slots in slots_by_group]

    def _score_merged(self, groups, merged: list[list[int]], batch_size: int, progress) -> list[list[PairScore]]:
        """Groups that share query and instruction: one ``score_pairs`` call each, split back."""
        out: list[list[PairScore]] = [[] for _ in groups]
        for members in merged:
            query, _, instruction = groups[members[0]]
            docs = [d for g in members for d in groups[g][1]]
            scores = self.score_pairs(query, docs, instruction=instruction, batch_size=batch_size, progress=progress) if docs else []
            offset = 0
            for g in members:
                n = len(groups[g][1])
                out[g] = scores[offset : offset + n]
                offset += n
        if len(groups) > 1:
            self.stats["coalesced_requests"] += len(groups)
        return out

    def _score_robust(self, batch: list[Pair], call: _Call) -> list[PairScore]:
        """Score a batch; on CUDA OOM halve it, on any other failure isolate the bad pair."""
        try:
            return self._forward(batch, call)
        except torch.cuda.OutOfMemoryError:
            self.stats["oom_backoffs"] += 1
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if len(batch) == 1:
                return [PairScore(error="out of GPU memory even at batch size 1 (lower max_pixels or max_doc_tokens)")]
            half = len(batch) // 2
            logger.warning("CUDA out of memory at batch size %d; retrying with %d", len(batch), half)
            return self._score_robust(batch[:half], call) + self._score_robust(batch[half:], call)
        except Exception as exc:  # noqa: BLE001 - one bad pair must not sink the batch
            if len(batch) == 1:
                logger.warning("document %d failed: %s", batch[0].index, exc)
                return [PairScore(error=f"scoring failed: {type(exc).__name__}: {exc}")]
            return [r for pair in batch for r in self._score_robust([pair], call)]

    @torch.inference_mode()
    def _forward(self, batch: list[Pair], call: _Call) -> list[PairScore]:
        if not self._fast:
            return self._forward_generate(batch)
        with self._lock:
            if call.prefix is not None:
                hidden = self._hidden_from_prefix(batch, call)
                self.stats["prefix_batches"] += 1
            else:
                hidden = self.batch_hidden(batch, self._features(batch, call))
                self.stats["full_batches"] += 1
        return self.scores_from_hidden(hidden)

    def scores_from_hidden(self, hidden: torch.Tensor) -> list[PairScore]:
        """The one place a score is made: the family's head on each row's last hidden state."""
        probs, yes, no = self.head.scores(hidden)
        return [PairScore(score=float(p), yes_logit=float(y), no_logit=float(n)) for p, y, n in zip(probs, yes, no)]

    # ------------------------------------------------------------------ vision features
    def _preprocess(self, image: StoredImage) -> dict[str, torch.Tensor]:
        # Decoded here, for this step only (under the process's pixel budget), then let go.
        with pixels(image) as decoded:
            return self.family.preprocess(self.processor, [decoded], self._min_pixels, self._max_pixels)

    def _start_preprocessing(self, pairs: list[Pair], call: _Call) -> None:
        """Queue pixel preprocessing of every uncached image; it overlaps with model compute."""
        for pair in pairs:
            for key, image in zip(pair.keys, pair.images):
                if key in call.features or key in call.pending:
                    continue
                cached = self.vision_cache.get(key)
                if cached is not None:
                    call.features[key] = cached
                    self.stats["vision_cache_hits"] += 1
                else:
                    call.pending[key] = self._pool.submit(self._preprocess, image)

    def _features(self, pairs: list[Pair], call: _Call, start: int = 0) -> list[Any]:
        """Vision-tower outputs for the images of ``pairs`` (from image ``start`` of each pair), in order."""
        wanted = [k for p in pairs for k in p.keys[start:]]
        missing = list(dict.fromkeys(k for k in wanted if k not in call.features))
        if missing:
            # Futures stay queued until success, so a per-pair retry after a failure can reuse them.
            inputs = [call.pending[k].result() for k in missing]
            for key, feats in zip(missing, self._vision(inputs)):
                call.pending.pop(key, None)
                call.features[key] = feats
                self.vision_cache.put(key, feats)
            self.stats["vision_cache_misses"] += len(missing)
        return [call.features[k] for k in wanted]

    def _vision(self, inputs: Sequence[dict[str, torch.Tensor]]) -> list[Any]:
        """One vision-tower call over several preprocessed images; one feature entry per image."""
        batched = {key: torch.cat([i[key] for i in inputs]) for key in inputs[0]}
        return self.family.vision(self.model, batched)

    def image_features(self, images: Sequence[StoredImage]) -> list[Any]:
        """Vision-tower outputs for ``images``, uncached, with autograd when it is on.

        Fine-tuning calls it: with the vision tower trained, features must carry gradients
        and must not come from (or go into) the inference cache.
        """
        if not images:
            return []
        return self._vision([self._preprocess(image) for image in images])

    def _positions(self, input_ids: torch.Tensor, mask: torch.Tensor, grids: list[tuple[int, int, int]]) -> Any:
        """Positions on the full sequence (padding anywhere is skipped by the mask), from the family."""
        return self.family.positions(self.model, input_ids, mask, grids, self.image_token_id)

    # ------------------------------------------------------------------ language model
    def _run(self, input_ids: torch.Tensor, mask: torch.Tensor, positions: Any, features: Sequence[Any],
             cache: Any = None, keep_cache: bool = False) -> Any:
        """The one model call: the backbone over ``input_ids`` (continuing ``cache`` when given)."""
        kwargs = self.family.encoder_inputs(features)
        if positions is not None:
            kwargs["position_ids"] = positions
        if cache is not None:
            kwargs[self._cache_kwarg] = cache
        return self.backbone(input_ids=input_ids, attention_mask=mask, use_cache=keep_cache or cache is not None, **kwargs)

    def batch_hidden(self, batch: list[Pair], features: list[Any]) -> torch.Tensor:
        """Last-position hidden states (``[len(batch), dim]``) of a left-padded batch.

        ``features`` are the vision outputs of the batch's images, in order. No lock and no
        ``inference_mode`` here: scoring calls it under both, fine-tuning calls it with
        autograd on, so a model is trained on exactly the token ids, padding and positions it
        is scored with.
        """
        input_ids, mask = self._pack(batch)
        positions = self._positions(input_ids, mask, [g for p in batch for g in p.grids])
        return self._run(input_ids, mask, positions, features).last_hidden_state[:, -1]

    def batch_logits(self, batch: list[Pair], features: list[Any]) -> torch.Tensor:
        """Float32 vocabulary logits at the last position (fine-tuning's losses read them; the
        ``[no, yes]`` columns are the family's score head, so training and scoring agree)."""
        return self.head.vocab_logits(self.batch_hidden(batch, features))

    def _pack(self, batch: list[Pair], prefix: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = pack_ids(batch, self.tokenizer.pad_token_id, prefix)
        return ids.to(self.loaded.device), mask.to(self.loaded.device)

    def _build_prefix(self, pairs: list[Pair], call: _Call, n_query_images: int) -> _Prefix | None:
        """Run the shared prefix once; ``None`` where continuing from it would not be safe."""
        first = pairs[0].ids
        allowed = sum(self.image_tokens(g) for g in pairs[0].grids[:n_query_images])
        length = shared_prefix_length(pairs, allowed, self.image_token_id)
        if length < MIN_PREFIX_TOKENS:
            self.stats["prefix_fallbacks"] += 1
            return None
        input_ids = torch.tensor([first[:length]], device=self.loaded.device)
        mask = torch.ones_like(input_ids)
        try:
            with torch.inference_mode(), self._lock:
                feats = self._features(pairs[:1], call)[:n_query_images] if n_query_images else []
                positions = self._positions(input_ids, mask, pairs[0].grids[:n_query_images])
                out = self._run(input_ids, mask, positions, feats, keep_cache=True)
        except Exception as exc:  # noqa: BLE001 - CUDA OOM included; a bad first image too
            # The prefix is an optimisation shared by every pair: its failure must not fail them.
            # Each pair is then scored in full, where a bad one fails alone.
            self.stats["prefix_fallbacks"] += 1
            logger.warning("shared prefix not built (%s: %s); scoring the pairs without it", type(exc).__name__, exc)
            return None
        return _Prefix(length=length, cache=output_cache(out), n_images=n_query_images)

    def _hidden_from_prefix(self, batch: list[Pair], call: _Call) -> torch.Tensor:
        prefix = call.prefix
        assert prefix is not None
        p = prefix.length
        full, mask = self._pack(batch, p)
        positions = self._positions(full, mask, [g for pair in batch for g in pair.grids])
        cache = copy.deepcopy(prefix.cache)
        cache.batch_repeat_interleave(len(batch))
        features = self._features(batch, call, start=prefix.n_images)
        sliced = positions[..., p:] if positions is not None else None
        return self._run(full[:, p:], mask, sliced, features, cache=cache).last_hidden_state[:, -1]

    # ------------------------------------------------------------------ generate mode
    def _encode(self, batch: list[Pair]) -> dict[str, Any]:
        """Model inputs of a batch as a plain processor call would give them: our ids (escaped, cut
        by tokens) and the family's preprocessing of the batch's images (decoded, then let go)."""
        input_ids, mask = self._pack(batch)
        inputs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": mask}
        with ExitStack() as stack:
            images = [stack.enter_context(pixels(im)) for p in batch for im in p.images]
            vision = self.family.preprocess(self.processor, images, self._min_pixels, self._max_pixels) if images else {}
        for key, value in vision.items():
            dtype = self.loaded.dtype if value.is_floating_point() else value.dtype
            inputs[key] = value.to(device=self.loaded.device, dtype=dtype)
        inputs.update(self.family.generate_inputs(input_ids, vision, self.image_token_id))
        return inputs

    def _forward_generate(self, batch: list[Pair]) -> list[PairScore]:
        """``scoring="generate"``: the model writes a 0-10 answer, which is parsed."""
        inputs = self._encode(batch)
        with self._lock:
            out = self.model.generate(
                **inputs, max_new_tokens=self.max_new_tokens, do_sample=False, pad_token_id=self.tokenizer.pad_token_id,
            )
        new_tokens = out[:, inputs["input_ids"].shape[1] :]
        results = []
        for text in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True):
            value = parse_score(text)
            evidence = {} if value is not None else {"unparsed": True}
            results.append(PairScore(score=(value or 0.0) / 10.0, raw_output=text, evidence=evidence))
        return results

    def info(self) -> dict[str, Any]:
        info = {
            "backend": self.name,
            "model": self.loaded.name,
            "family": self.family.name,
            "device": str(self.loaded.device),
            "dtype": str(self.loaded.dtype).removeprefix("torch."),
            "attn_implementation": self.loaded.attn_implementation,
            "scoring": self.scoring,
        }
        if self.family.notice:  # e.g. a non-commercial licence: shown by /health, the UI and the CLI
            info.update(licence=self.family.spec.licence, note=self.family.notice)
        return info


def create_backend(config: RerankerConfig, **options: Any) -> LycheeBackend:
    """Registry factory (:func:`lychee_rerank.backends.create`): find the family, load the model, wrap it.

    ``options`` go to :class:`LycheeBackend` (e.g. ``max_new_tokens``, ``preprocess_workers``).
    """
    if not config.model:
        raise ValueError("the lychee backend needs a model: a hub id or a local directory")
    spec = detect(config.model, config.family)
    if spec.scorer:  # a family this driver cannot run (bidirectional cross-encoders): its own backend
        module, _, attr = spec.scorer.partition(":")
        return getattr(importlib.import_module(module), attr)(config, spec, **options)
    loaded = load(
        config.model,
        device=config.device,
        dtype=config.dtype,
        attn_implementation=config.attn_implementation,
        min_pixels=config.min_pixels,
        max_pixels=config.max_pixels,
        adapter=config.adapter,
        merge_adapter=config.merge_adapter,
        trust_remote_code=config.trust_remote_code,
        family=spec.name,
    )
    return LycheeBackend(
        loaded,
        scoring=config.scoring,
        max_query_tokens=config.max_query_tokens,
        max_doc_tokens=config.max_doc_tokens,
        max_batch_tokens=config.max_batch_tokens,
        prefix_cache=config.prefix_cache,
        vision_cache_bytes=config.vision_cache_bytes,
        escape_special_tokens=config.escape_special_tokens,
        **options,
    )
