"""Sequence-classification cross-encoders (bge-reranker, mxbai-rerank, ms-marco MiniLM, ...).

These checkpoints are ``*ForSequenceClassification`` encoders: the (query, document) pair goes
through the tokenizer's pair encoding (``[CLS] q [SEP] d [SEP]`` for BERT), one bidirectional
forward pass, and the classifier's logit is the relevance. The yes/no driver
(:mod:`.lychee`) cannot run them (no causal LM head, no shared prefix: every token attends to
the document), so this backend is theirs. It scores exactly as sentence-transformers'
``CrossEncoder.predict`` (6.x) does, which the tests check:

* **Tokenization**: ``tokenizer(query, document, truncation="longest_first", max_length=L)``
  (CrossEncoder's text kwargs); for a short query that cuts only the document (the
  ``only_second`` case), and a query longer than ``L`` is cut too instead of failing. A pair
  that was cut is scored with ``truncated=True``. ``L`` is CrossEncoder's: ``max_seq_length``
  of ``sentence_bert_config.json`` in a sentence-transformers directory, else the tokenizer's
  ``model_max_length`` capped at ``max_position_embeddings``. A very long text is first cut by
  characters to a prefix that still has more than ``L`` tokens (same kept ids, bounded cost).
  Special-token strings in user text are read as the tokenizer reads them (as CrossEncoder does).
  ``max_query_tokens`` / ``max_doc_tokens`` do not apply (one budget for the pair); the
  ``max_length`` option of the factory replaces CrossEncoder's budget.
* **Activation**: CrossEncoder's rule: ``activation_fn`` of ``config_sentence_transformers.json``,
  else ``sentence_transformers.activation_fn`` of ``config.json`` (or the older
  ``sbert_ce_default_activation_function``), resolved only for ``torch.*`` paths unless
  ``trust_remote_code``; else sigmoid for one label. ms-marco-MiniLM-L6-v2 names Identity: its
  scores are raw logits, not 0-1. A checkpoint with several labels (NLI classifiers) is refused:
  there is no one relevance score (``CrossEncoder.rank`` refuses it too).
* **Instructions**: a cross-encoder reads only the query and the document; an instruction is
  accepted and ignored (``info()["instruction"]`` says so), and the default instruction is ``""``.
* **Images**: text only. An image query is refused when it is read (HTTP 422), an image
  document fails alone (:meth:`CrossEncoderBackend.image_refusal`, as the text-only Qwen3-Reranker).

Speed: each pair is tokenized once, several requests share batches (server micro-batching), and
forward passes run under ``torch.inference_mode``. On CPU, BERT-layout checkpoints (BERT,
RoBERTa, XLM-R, ELECTRA heads) run the packed forward of :mod:`.packed_encoder`: only real tokens
are computed (no padding), and the last layer only for the first token, which the head reads.
Elsewhere (CUDA, other architectures, ``packed=False``) pairs are sorted by token length and cut
into padded batches where padding costs least (:meth:`CrossEncoderBackend.batches`). Batches hold
at most ``batch_size`` pairs and ``max_batch_tokens`` padded tokens. A pair's score does not
depend on its batch or on the forward used (tested). CUDA out-of-memory halves the batch; any
other failure is isolated to the pair that caused it.

``PairScore``: ``score`` is the activated logit, ``yes_logit`` the raw logit and ``no_logit`` 0
(so ``raw_scores`` answers and ``sigmoid(yes - no)`` work as for the yes/no families), and
``evidence["logit"]`` the raw logit.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import logging
import threading
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from ..config import RerankerConfig
from ..inputs import Content
from ..prompt_tokens import PromptTokenizer
from ..results import PairScore
from .base import Backend, ProgressCallback
from .families import FamilySpec, read_json
from .loading import from_pretrained, resolve_attn, resolve_device, resolve_dtype
from .packed_encoder import PackedEncoder

logger = logging.getLogger("lychee_rerank")

#: Options of the yes/no driver that mean nothing here (accepted so a shared caller does not break).
_DRIVER_OPTIONS = frozenset({"max_new_tokens", "preprocess_workers"})
TEXT_ONLY = "the cross_encoder model family reads text only: an image cannot be scored by it"
#: Above this many (pairs x batch size) steps the batch cuts are fixed chunks (the search would cost more than it saves).
DP_MAX_STEPS = 400_000
#: One forward pass's fixed cost, in padded tokens of work (see :meth:`CrossEncoderBackend.batches`):
#: on CPU measured for hidden size 384 (ms-marco-MiniLM-L6: ~12-20 ms a call, ~0.45 ms a token, one
#: thread), scaled by (384 / hidden)^2 for other sizes (a token's work grows with hidden^2, the
#: per-layer call overhead does not); on CUDA padding is cheap and launches are not (untested here).
BATCH_OVERHEAD_TOKENS = {"cpu": 64, "cuda": 4096}
REFERENCE_HIDDEN = 384
NO_INSTRUCTION = "ignored (a cross-encoder reads only the query and the document)"


@dataclass(frozen=True)
class Activation:
    """What CrossEncoder applies to the logits, and where that choice came from (for ``info()``)."""

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    source: str


def _import_activation(path: str) -> Callable[[torch.Tensor], torch.Tensor]:
    module, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module), attr)()


def resolve_activation(model_dir: str, config: Any, num_labels: int, trust_remote_code: bool) -> Activation:
    """CrossEncoder's (6.x) rule: the saved ``activation_fn`` (config_sentence_transformers.json,
    then config.json's ``sentence_transformers`` or legacy key), resolved for ``torch.*`` paths
    (any path with ``trust_remote_code``); else sigmoid for one label, identity otherwise."""
    candidates: list[tuple[str, str]] = []
    st_config = read_json(model_dir, "config_sentence_transformers.json", required=False) or {}
    if st_config.get("activation_fn"):
        candidates.append((str(st_config["activation_fn"]), "config_sentence_transformers.json"))
    saved = getattr(config, "sentence_transformers", None)
    if isinstance(saved, dict) and "activation_fn" in saved:
        if saved["activation_fn"]:
            candidates.append((str(saved["activation_fn"]), "config.json sentence_transformers.activation_fn"))
    elif getattr(config, "sbert_ce_default_activation_function", None):
        candidates.append((str(config.sbert_ce_default_activation_function), "config.json sbert_ce_default_activation_function"))
    for path, source in candidates:
        if trust_remote_code or path.startswith("torch."):
            return Activation(path.rpartition(".")[2], _import_activation(path), source)
        logger.warning("activation %r of %s is not trusted (pass trust_remote_code): using the default", path, source)
        # CrossEncoder falls through to the next source too: only the first resolvable one counts.
    if num_labels == 1:
        return Activation("Sigmoid", torch.nn.Sigmoid(), "default for one label")
    return Activation("Identity", torch.nn.Identity(), "default for several labels")


#: Classification models whose head reads only the first position ([CLS] / <s>) of the last layer.
CLS_HEADS = frozenset({"BertForSequenceClassification", "RobertaForSequenceClassification",
                       "XLMRobertaForSequenceClassification", "ElectraForSequenceClassification"})


def first_position_only(model: Any) -> bool:
    """Run the last layer's feed-forward block on the first position only, where the model's head
    reads it; ``True`` if done.

    The score is made from the last layer's [CLS] row alone, but the stock forward runs that
    layer's feed-forward block (two thirds of the layer's matmuls) on every token. Attention
    still reads every token (keys and values); only rows nobody reads are skipped, so the
    arithmetic of the kept row is unchanged. Applied only to the heads in :data:`CLS_HEADS`
    whose last layer has the BERT layout (``feed_forward_chunk``); others run as shipped.
    """
    if type(model).__name__ not in CLS_HEADS:
        return False
    base = getattr(model, model.base_model_prefix, None)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if not layers or not hasattr(layers[-1], "feed_forward_chunk"):
        return False
    last = layers[-1]
    stock = last.feed_forward_chunk

    def feed_forward_first(attention_output: torch.Tensor) -> torch.Tensor:
        return stock(attention_output[:, :1])

    last.feed_forward_chunk = feed_forward_first
    return True


def resolve_max_length(model_dir: str, tokenizer: Any, config: Any) -> int:
    """CrossEncoder's token budget of a pair (see the module docstring)."""
    if read_json(model_dir, "modules.json", required=False) is not None:
        st = read_json(model_dir, "sentence_bert_config.json", required=False) or {}
        if st.get("max_seq_length"):
            return int(st["max_seq_length"])
    length = int(tokenizer.model_max_length)
    positions = getattr(config, "max_position_embeddings", None)
    if positions is not None and positions != -1:
        length = min(length, int(positions))
    return length


@dataclass
class _Pair:
    """One tokenized (query, document) pair and where its result goes."""

    group: int
    slot: int
    features: dict[str, list[int]]
    truncated: bool

    @property
    def length(self) -> int:
        return len(self.features["input_ids"])


class CrossEncoderBackend(Backend):
    """The model backend (registry name ``lychee``) for a sequence-classification cross-encoder."""

    name = "lychee"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        spec: FamilySpec,
        model_name: str,
        device: torch.device,
        dtype: torch.dtype,
        attn_implementation: str,
        activation: Activation,
        max_length: int,
        max_batch_tokens: int | None = None,
        first_only: bool = False,
        packed: PackedEncoder | None = None,
    ) -> None:
        num_labels = int(getattr(model.config, "num_labels", 1))
        if num_labels != 1:
            raise ValueError(
                f"{model_name} has {num_labels} labels (a classifier, e.g. NLI), not one relevance logit: "
                "a reranker cannot rank by it (sentence-transformers' CrossEncoder.rank refuses it too)"
            )
        self.model = model
        self.tokenizer = tokenizer
        self.spec = spec
        self.model_name_ = model_name
        self.device_ = device
        self.dtype = dtype
        self.attn_implementation = attn_implementation
        self.activation = activation
        self.max_length = int(max_length)
        self.max_batch_tokens = max_batch_tokens
        self.first_only = first_only
        self.packed = packed
        self.hidden_size = int(getattr(model.config, "hidden_size", 768) or 768)
        kind = torch.device(device).type
        overhead = BATCH_OVERHEAD_TOKENS.get(kind, 256)
        if kind == "cpu":
            overhead = overhead * (REFERENCE_HIDDEN / self.hidden_size) ** 2
        self.batch_overhead_tokens = float(overhead)
        self._cutter = self._make_cutter(tokenizer)
        self._pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self._right = getattr(tokenizer, "padding_side", "right") != "left"
        self._accepted = set(inspect.signature(model.forward).parameters)
        self._stats = Counter()
        self._lock = threading.Lock()
        self._tokenizer_lock = threading.Lock()

    # ------------------------------------------------------------------ what surfaces read
    @property
    def device(self) -> Any:
        return self.device_

    @property
    def model_name(self) -> str:
        return self.model_name_

    @property
    def default_instruction(self) -> str:
        """Empty: a cross-encoder reads no instruction (one given is ignored)."""
        return ""

    @property
    def prompt_spec(self) -> Any:
        from ..prompt import PromptSpec

        return PromptSpec(default_instruction="")

    def image_refusal(self, size: tuple[int, int]) -> str | None:
        return TEXT_ONLY

    def info(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.model_name_,
            "family": self.spec.name,
            "device": str(self.device_),
            "dtype": str(self.dtype).removeprefix("torch."),
            "attn_implementation": self.attn_implementation,
            "scoring": "classifier",
            "activation": self.activation.name,
            "max_length": self.max_length,
            "forward": "packed (real tokens only)" if self.packed is not None else "padded",
            "last_layer": ("[CLS] only" if self.packed is not None
                           else "feed-forward on [CLS] only" if self.first_only else "as shipped"),
            "instruction": NO_INSTRUCTION,
        }

    def training_view(self) -> Any:
        raise ValueError(f"fine-tuning does not apply to the {self.spec.name} family: {self.spec.fine_tuning}")

    def render_prompt(self, query: Content, document: Content, instruction: str | None) -> str | None:
        """The pair as the model reads it (``[CLS] query [SEP] document [SEP]``), cut as scoring cuts it."""
        if query.has_image or document.has_image or not query.text or not document.text:
            return None
        pair = self._tokenize(0, [document.text], query.text)[0]
        return self.tokenizer.decode(pair.features["input_ids"])

    def prompt_messages(self, query: Content, document: Content, instruction: str) -> None:
        """None: a cross-encoder reads a tokenizer pair, not chat messages."""
        return None

    # ------------------------------------------------------------------ tokenization
    @staticmethod
    def _make_cutter(tokenizer: Any) -> PromptTokenizer | None:
        """The character pre-cut, on its own copy of the Rust tokenizer: a call with
        ``truncation=`` leaves truncation switched on in the tokenizer it was made with, and a
        pre-cut that cannot see past the budget would tokenize the whole text."""
        if not getattr(tokenizer, "is_fast", False):
            return None
        cutter = PromptTokenizer(tokenizer, escape=False)
        backend = copy.deepcopy(tokenizer.backend_tokenizer)
        backend.no_truncation()
        backend.no_padding()
        cutter.backend = backend
        return cutter

    def _head(self, text: str, limit: int) -> str:
        """``text``, or a prefix of it whose first ``limit`` tokens are the whole text's and which
        still has more (a 50 MB document costs what its kept tokens cost)."""
        if self._cutter is None or len(text) <= 4 * limit:
            return text
        return self._cutter.prefix(text, limit)

    def _tokenize(self, group: int, documents: Sequence[str], query: str) -> list[_Pair]:
        """All pairs of one query in one tokenizer call (CrossEncoder's pair encoding and truncation).

        ``longest_first`` keeps of each side an amount that depends on both full lengths (which
        side is longer), so texts are pre-cut only where that cannot change: a document to more
        tokens than both the budget and the query; a query over the budget (rare: it is then
        counted whole once per call) to more tokens than every shorter document. The kept ids
        are CrossEncoder's in every case (tested with a query and documents over the budget).
        """
        count = (lambda text: len(self._cutter.backend.encode(text, add_special_tokens=False).ids)) if self._cutter else None
        n_query = count(query) if count else 0
        docs = [self._head(d, max(self.max_length, n_query)) for d in documents]
        q = query
        if count and n_query > self.max_length:
            shorter = [n for n in map(count, docs) if n < n_query]
            q = self._head(query, max([self.max_length, *shorter]))
        with self._tokenizer_lock:  # a call with truncation= sets state on the shared Rust tokenizer
            enc = self.tokenizer([q] * len(docs), docs, truncation="longest_first", max_length=self.max_length)
        keys = [k for k in enc.keys() if k in self._accepted]
        encodings = enc.encodings if getattr(enc, "encodings", None) else None
        pairs = []
        for i in range(len(docs)):
            features = {k: enc[k][i] for k in keys}
            if encodings is not None:
                cut = bool(encodings[i].overflowing)
            else:  # a slow tokenizer: a pair at the budget is taken as cut
                cut = len(features["input_ids"]) >= self.max_length
            cut = cut or q is not query or docs[i] is not documents[i]
            pairs.append(_Pair(group, i, features, cut))
        return pairs

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
        return self.score_groups([(query, documents, instruction or "")], batch_size=batch_size, progress=progress)[0]

    def score_groups(
        self,
        groups: Sequence[tuple[Content, Sequence[Content], str]],
        *,
        batch_size: int = 8,
        progress: ProgressCallback | None = None,
    ) -> list[list[PairScore]]:
        """Every group's pairs in shared, length-packed batches (instructions are ignored)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        out: list[list[PairScore | None]] = [[None] * len(docs) for _, docs, _ in groups]
        pairs: list[_Pair] = []
        for g, (query, docs, _instruction) in enumerate(groups):
            if not docs:
                continue
            if query.has_image or not query.text:
                reason = TEXT_ONLY if query.has_image else "the query has no text"
                out[g] = [PairScore(error=reason) for _ in docs]
                continue
            texts: list[str] = []
            slots: list[int] = []
            for i, d in enumerate(docs):
                if d.has_image:
                    out[g][i] = PairScore(error=TEXT_ONLY)
                elif not d.text:
                    out[g][i] = PairScore(error="the document has no text")
                else:
                    texts.append(d.text)
                    slots.append(i)
            try:
                tokenized = self._tokenize(g, texts, query.text)
            except Exception as exc:  # noqa: BLE001 - one bad group (say, a text the tokenizer rejects) fails alone
                logger.warning("query %d: pairs not tokenized: %s", g, exc)
                for i in slots:
                    out[g][i] = PairScore(error=f"not tokenized: {type(exc).__name__}: {exc}")
                continue
            for pair, slot in zip(tokenized, slots):
                pair.slot = slot
                pairs.append(pair)
        done = 0
        for batch in self.batches(pairs, batch_size):
            for pair, result in zip(batch, self._score_robust(batch)):
                result.truncated = pair.truncated
                result.tokens = pair.length
                out[pair.group][pair.slot] = result
            done += len(batch)
            if progress is not None:
                progress(done, len(pairs))
        if len(groups) > 1:
            self.stats["coalesced_requests"] += len(groups)
        return [[s if s is not None else PairScore(error="not scored") for s in group] for group in out]

    def batches(self, pairs: list[_Pair], batch_size: int) -> list[list[_Pair]]:
        """Longest first, cut where it costs least: each batch holds at most ``batch_size`` pairs
        and ``max_batch_tokens`` padded tokens, and the cut points minimise the padded work.

        Fixed chunks of sorted pairs (what CrossEncoder does) pad a whole chunk to its longest
        pair: one 350-token passage makes 31 others of 150 tokens cost 350 each. Here a batch costs
        ``rows * width * (1 + width / (6 * hidden))`` (linear layers plus attention, per padded
        row) plus :attr:`batch_overhead_tokens` (one forward pass's fixed cost, in tokens: small
        on CPU, large on a GPU, where padding is cheap and launches are not), and the cheapest
        cuts are found exactly by dynamic programming over the sorted lengths. With the packed
        forward no padding is computed, the padding term is zero and the fewest batches cost
        least: fixed chunks of the sorted pairs under the same limits.
        """
        ordered = sorted(pairs, key=lambda p: -p.length)
        n = len(ordered)
        if n == 0:
            return []
        if self.packed is not None or n * min(batch_size, n) > DP_MAX_STEPS:  # fixed chunks under the same limits
            return self._chunks(ordered, batch_size)
        lengths = [p.length for p in ordered]
        limit = self.max_batch_tokens
        hidden = 6.0 * self.hidden_size
        best = [0.0] + [float("inf")] * n  # best[j]: cheapest cost of the first j pairs
        cut = [0] * (n + 1)
        for j in range(1, n + 1):
            for i in range(j - 1, max(j - batch_size, 0) - 1, -1):  # the last batch is ordered[i:j]
                width, rows = lengths[i], j - i
                if limit is not None and rows > 1 and rows * width > limit:
                    break
                cost = best[i] + rows * width * (1.0 + width / hidden) + self.batch_overhead_tokens
                if cost < best[j]:
                    best[j], cut[j] = cost, i
        batches: list[list[_Pair]] = []
        j = n
        while j > 0:
            batches.append(ordered[cut[j] : j])
            j = cut[j]
        return batches[::-1]

    def _chunks(self, ordered: list[_Pair], batch_size: int) -> list[list[_Pair]]:
        batches: list[list[_Pair]] = []
        current: list[_Pair] = []
        for pair in ordered:
            width = current[0].length if current else pair.length
            if current and (
                len(current) >= batch_size
                or (self.max_batch_tokens is not None and (len(current) + 1) * width > self.max_batch_tokens)
            ):
                batches.append(current)
                current = []
            current.append(pair)
        if current:
            batches.append(current)
        return batches

    def _score_robust(self, batch: list[_Pair]) -> list[PairScore]:
        """Score a batch; on CUDA OOM halve it, on any other failure isolate the bad pair."""
        try:
            return self._forward(batch)
        except torch.cuda.OutOfMemoryError:
            self.stats["oom_backoffs"] += 1
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if len(batch) == 1:
                return [PairScore(error="out of GPU memory even at batch size 1")]
            half = len(batch) // 2
            logger.warning("CUDA out of memory at batch size %d; retrying with %d", len(batch), half)
            return self._score_robust(batch[:half]) + self._score_robust(batch[half:])
        except Exception as exc:  # noqa: BLE001 - one bad pair must not sink the batch
            if len(batch) == 1:
                return [PairScore(error=f"scoring failed: {type(exc).__name__}: {exc}")]
            return [r for pair in batch for r in self._score_robust([pair])]

    def _pad(self, batch: list[_Pair]) -> dict[str, torch.Tensor]:
        """Padded tensors of a batch (the tokenizer's padding side; masks mark the real tokens)."""
        width = max(p.length for p in batch)
        out: dict[str, torch.Tensor] = {}
        for key in batch[0].features:
            fill = self._pad_id if key == "input_ids" else 0
            tensor = torch.full((len(batch), width), fill, dtype=torch.long)
            for row, pair in enumerate(batch):
                values = torch.tensor(pair.features[key], dtype=torch.long)
                if self._right:
                    tensor[row, : len(values)] = values
                else:
                    tensor[row, width - len(values):] = values
            out[key] = tensor
        if "attention_mask" not in out and "attention_mask" in self._accepted:
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, pair in enumerate(batch):
                if self._right:
                    mask[row, : pair.length] = 1
                else:
                    mask[row, width - pair.length:] = 1
            out["attention_mask"] = mask
        return out

    @torch.inference_mode()
    def _forward(self, batch: list[_Pair]) -> list[PairScore]:
        inputs = {k: v.to(self.device_, non_blocking=True) for k, v in self._pad(batch).items()}
        with self._lock:
            logits = self.packed(inputs) if self.packed is not None else self.model(**inputs).logits
        logits = logits.float()
        scores = self.activation.fn(logits).reshape(len(batch)).tolist()
        raw = logits.reshape(len(batch)).tolist()
        self.stats["batches"] += 1
        self.stats["pairs"] += len(batch)
        self.stats["padded_tokens"] += inputs["input_ids"].numel()
        self.stats["computed_tokens"] += sum(p.length for p in batch) if self.packed is not None else inputs["input_ids"].numel()
        return [
            PairScore(score=float(s), yes_logit=float(r), no_logit=0.0, evidence={"logit": float(r)})
            for s, r in zip(scores, raw)
        ]


def create_backend(config: RerankerConfig, spec: FamilySpec, **options: Any) -> CrossEncoderBackend:
    """Registry factory for the ``cross_encoder`` family (called by :func:`.lychee.create_backend`).

    ``options``: ``max_length`` (the pair's token budget; default CrossEncoder's); ``packed``
    (default ``True``: the packed forward on CPU where the architecture has the BERT layout;
    ``False``: always the stock padded forward). The yes/no driver's ``max_new_tokens`` /
    ``preprocess_workers`` are accepted and mean nothing here.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    max_length = options.pop("max_length", None)
    use_packed = bool(options.pop("packed", True))
    unknown = set(options) - _DRIVER_OPTIONS
    if unknown:
        raise TypeError(f"unknown option(s) for the {spec.name} backend: {', '.join(sorted(unknown))}")
    if config.scoring != "yesno":
        raise ValueError(f"the {spec.name} family scores with its classifier: scoring={config.scoring!r} is not available")
    if config.adapter:
        raise ValueError(f"LoRA adapters do not apply to the {spec.name} family ({spec.fine_tuning})")
    assert config.model
    name = str(config.model)
    device = resolve_device(config.device)
    dtype = resolve_dtype(config.dtype, device)
    attn = resolve_attn(config.attn_implementation, device, dtype)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*TRANSFORMERS_CACHE.*")
        model, tokenizer, attn = from_pretrained(
            name, AutoModelForSequenceClassification, dtype=dtype, attn_implementation=attn,
            trust_remote_code=config.trust_remote_code, processor_class=AutoTokenizer, device=device,
        )
    first_only = first_position_only(model)
    packed = PackedEncoder.attach(model) if use_packed and device.type == "cpu" else None
    num_labels = int(getattr(model.config, "num_labels", 1))
    activation = resolve_activation(name, model.config, num_labels, config.trust_remote_code)
    length = int(max_length) if max_length else resolve_max_length(name, tokenizer, model.config)
    logger.info("loaded %s (%s) on %s, dtype=%s, activation=%s, max_length=%d", name, spec.name, device,
                str(dtype).removeprefix("torch."), activation.name, length)
    return CrossEncoderBackend(
        model, tokenizer, spec=spec, model_name=name, device=device, dtype=dtype, attn_implementation=attn,
        activation=activation, max_length=length, max_batch_tokens=config.max_batch_tokens, first_only=first_only,
        packed=packed,
    )
