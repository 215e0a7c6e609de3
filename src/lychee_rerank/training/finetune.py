"""LoRA fine-tuning of the yes/no reranker, on exactly the prompt inference uses.

    from lychee_rerank.training.finetune import finetune
    report = finetune("vec-ai/lychee-rerank-mm", "train.jsonl", output_dir="adapters/products")
    reranker = LycheeReranker.from_pretrained("vec-ai/lychee-rerank-mm", adapter="adapters/products")

Why it is built this way:

* **Same prompt, same tensors.** Every training pair goes through
  :meth:`LycheeBackend.pair` (which calls :func:`~lychee_rerank.prompt.build_messages`) and
  :meth:`LycheeBackend.batch_logits` (left padding, explicit 3D rope positions), the functions
  that score pairs at inference. Scores cannot drift because training saw another prompt.
* **Loss = two-way cross-entropy over the ``[no, yes]`` logits at the last position.** The
  score users see is ``softmax([no, yes])[yes]``, so this loss is exactly the log-loss of that
  score (positives → yes, negatives → no). Full-vocabulary cross-entropy (``loss="vocab"``, the
  plain SFT objective) also spends gradient pushing down the ~150 k other tokens, which never
  enter the score. The held-out ``loss`` reported is always the two-way one, whatever the
  training loss.
* **LoRA on the language model only by default**: q/k/v/o and gate/up/down projections of
  the decoder layers. The vision tower's blocks use the same ``*_proj`` names, so targets are
  listed module by module with the tower excluded by identity, not by a name pattern.
  ``train_vision=True`` adds the tower's linear layers; image features then carry gradients
  and bypass the inference feature cache.
* **Resumable**: checkpoints (adapter + optimizer + scheduler + step + data position + RNG)
  are written atomically; the order of the data is a function of ``(seed, epoch)``, so a run
  resumed from a checkpoint sees the batches an uninterrupted run would have seen.

Data: JSONL, one record a line, either a pair ``{"query", "document", "label"}`` or a group
``{"query", "positives": [...], "negatives": [...]}``; an optional ``"instruction"`` per record.
Queries and documents take the library's forms: a string is text, ``{"text": ..., "image":
"relative/path.png"}`` mixes both, image paths are relative to the JSONL file. Labels: ``true``/
``false`` or a number (graded labels count as relevant when > 0). Bad records (invalid JSON,
missing fields, unreadable images) are logged with their line number, counted in the report and
skipped; a bad document inside a group skips that document only.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import re
import shutil
import sys
import time
import warnings
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Literal, Mapping, Sequence

import torch
import torch.nn.functional as F

from ..config import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS
from ..inputs import InputError, to_content
from ..prompt import resolve_instruction

if TYPE_CHECKING:  # pragma: no cover
    from ..backends.base import TrainingView
    from ..engine import LycheeReranker

logger = logging.getLogger("lychee_rerank")

#: Projections LoRA targets (Qwen2 decoder layers; the vision tower reuses the MLP names).
LM_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
CHECKPOINT_PREFIX = "checkpoint-"
STATE_FILE = "trainer_state.pt"
CONFIG_FILE = "finetune_config.json"
REPORT_FILE = "finetune_report.json"
#: Settings a resumed run must share with its checkpoint, or the saved state means something else.
RESUME_KEYS = ("lora_r", "lora_alpha", "lora_dropout", "train_vision", "batch_size", "grad_accum",
               "hard_negatives", "seed", "loss")
MAX_LOGGED_BAD_RECORDS = 20


# ----------------------------------------------------------------------------- configuration


@dataclass
class FinetuneConfig:
    """Every knob of a run; saved next to each checkpoint so a resume can check it."""

    output_dir: Path
    max_steps: int | None = None
    """Optimizer steps; when set it wins over ``epochs`` (the data is cycled as needed)."""
    epochs: int = 1
    lr: float = 1e-4
    batch_size: int = 4
    """Pairs per micro-batch (a hard-negative group is never split across micro-batches)."""
    grad_accum: int = 1
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    train_vision: bool = False
    hard_negatives: int = 0
    """0: every pair on its own, shuffled. N > 0: each positive of a group trains in the same
    micro-batch as N negatives of its own query, and a listwise term (softmax over the group's
    yes-no margins, the positive as target) is added with weight ``listwise_weight``."""
    listwise_weight: float = 1.0
    loss: Literal["yesno", "vocab"] = "yesno"
    """Training loss per pair (see the module docstring); the progress bar shows it plus the
    listwise term, the held-out ``loss`` is always the log-loss of the score."""
    seed: int = 0
    resume: bool = True
    """Continue from the latest checkpoint in ``output_dir``; ``False`` starts over and deletes them."""
    eval_split: float = 0.1
    """Share of the training queries held out when no eval file is given (split by query)."""
    eval_every: int | None = None
    """Also evaluate every N steps (the start, each epoch's end and the end always are)."""
    eval_batch_size: int = 16
    save_every: int = 200
    keep_checkpoints: int = 2
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    gradient_checkpointing: bool = True
    instruction: str | None = None
    progress: bool = True
    device: str = "auto"
    dtype: str = "auto"
    attn_implementation: str = "auto"
    max_query_tokens: int | None = None
    max_doc_tokens: int | None = None
    min_pixels: int | None = DEFAULT_MIN_PIXELS
    max_pixels: int | None = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        self.output_dir = Path(self.output_dir)
        checks = [
            (self.max_steps is None or self.max_steps >= 1, "max_steps must be >= 1"),
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.lr > 0, "lr must be > 0"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.grad_accum >= 1, "grad_accum must be >= 1"),
            (self.lora_r >= 1, "lora_r must be >= 1"),
            (0 <= self.lora_dropout < 1, "lora_dropout must be in [0, 1)"),
            (self.hard_negatives >= 0, "hard_negatives must be >= 0"),
            (self.loss in ("yesno", "vocab"), "loss must be 'yesno' or 'vocab'"),
            (0 <= self.eval_split < 1, "eval_split must be in [0, 1)"),
            (self.save_every >= 1, "save_every must be >= 1"),
            (self.keep_checkpoints >= 1, "keep_checkpoints must be >= 1"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio must be in [0, 1)"),
            (self.eval_every is None or self.eval_every >= 1, "eval_every must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["output_dir"] = str(self.output_dir)
        return out


# ----------------------------------------------------------------------------- report


@dataclass
class BadRecord:
    file: str
    line: int
    reason: str


@dataclass
class EvalResult:
    """Held-out metrics at one step. ``loss`` is the log-loss of the score p(yes)."""

    step: int
    epoch: int
    """Epochs completed when it ran."""
    loss: float
    accuracy: float
    """Pairs on the right side of 0.5."""
    mrr: float
    """Mean over held-out queries with a relevant document of 1 / rank of the best one; ties
    count against it (a model that scores everything alike gets no credit)."""
    n_pairs: int
    n_queries: int


@dataclass
class FinetuneReport:
    output_dir: str
    adapter_dir: str
    base_model: str
    steps: int
    resumed_from_step: int | None
    epochs_completed: int
    train_pairs: int
    train_queries: int
    eval_pairs: int
    eval_queries: int
    trainable_parameters: int
    total_parameters: int
    train_seconds: float
    steps_per_second: float
    last_train_loss: float | None
    history: list[EvalResult] = field(default_factory=list)
    bad_records: list[BadRecord] = field(default_factory=list)
    checkpoints: list[str] = field(default_factory=list)

    @property
    def first_eval(self) -> EvalResult | None:
        return self.history[0] if self.history else None

    @property
    def last_eval(self) -> EvalResult | None:
        return self.history[-1] if self.history else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------- data


@dataclass
class Group:
    """All labelled documents of one query (pairs records with the same query are merged)."""

    query: Any
    base_dir: Path
    instruction: str | None
    positives: list[Any] = field(default_factory=list)
    negatives: list[Any] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)

    @property
    def n_pairs(self) -> int:
        return len(self.positives) + len(self.negatives)


@dataclass(frozen=True)
class Example:
    """One (query, document, label) the model sees; ``group`` indexes the dataset's groups."""

    group: int
    document: Any
    label: bool


@dataclass
class Dataset:
    groups: list[Group]
    bad_records: list[BadRecord]

    @property
    def n_pairs(self) -> int:
        return sum(g.n_pairs for g in self.groups)


class _BadRecord(ValueError):
    pass


def _check_content(obj: Any, base_dir: Path, what: str) -> None:
    """Decode once to prove the record usable (images are decoded again when batched)."""
    if obj is None:
        raise _BadRecord(f"{what} is missing")
    if not isinstance(obj, (str, Mapping)):
        raise _BadRecord(f"{what} must be a string or {{'text': ..., 'image': ...}}, got {type(obj).__name__}")
    try:
        content = to_content(obj, base_dir=base_dir)
    except InputError as exc:
        raise _BadRecord(f"{what}: {exc}") from exc
    if content.is_empty or (not content.has_image and not (content.text or "").strip()):
        raise _BadRecord(f"{what} is empty: give text, an image, or both")


def _label(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return value > 0
    raise _BadRecord(f"label must be true/false or a number >= 0, got {value!r}")


def _key(query: Any, instruction: str | None) -> str:
    return json.dumps([query, instruction], sort_keys=True, ensure_ascii=False)


def load_dataset(source: str | Path | Iterable[Mapping[str, Any]], *, base_dir: Path | None = None) -> Dataset:
    """Read pairs/groups JSONL (or records already in memory) into query groups.

    Every problem is a :class:`BadRecord` with its line number (1-based; the position for
    in-memory records), logged at WARNING and returned, never silently dropped.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read training data {path}: {exc}") from exc
        name, folder = str(path), base_dir or path.parent
        lines: Iterable[tuple[int, Any]] = ((n, raw) for n, raw in enumerate(text.splitlines(), start=1))
    else:
        name, folder = "<records>", base_dir or Path.cwd()
        lines = enumerate(source, start=1)

    groups: OrderedDict[str, Group] = OrderedDict()
    bad: list[BadRecord] = []

    def report(line: int, reason: str) -> None:
        bad.append(BadRecord(name, line, reason))
        if len(bad) <= MAX_LOGGED_BAD_RECORDS:
            logger.warning("%s:%d: skipped: %s", name, line, reason)

    for line, raw in lines:
        if isinstance(raw, str):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as exc:
                report(line, f"invalid JSON ({exc.msg} at column {exc.colno})")
                continue
        else:
            record = raw
        try:
            _add_record(record, line, folder, groups, lambda reason, line=line: report(line, reason))
        except _BadRecord as exc:
            report(line, str(exc))
    if len(bad) > MAX_LOGGED_BAD_RECORDS:
        logger.warning("%s: %d bad records in all (first %d logged)", name, len(bad), MAX_LOGGED_BAD_RECORDS)
    return Dataset(groups=[g for g in groups.values() if g.n_pairs], bad_records=bad)


def _add_record(record: Any, line: int, folder: Path, groups: OrderedDict[str, Group], report_doc: Any) -> None:
    if not isinstance(record, Mapping):
        raise _BadRecord(f"expected a JSON object, got {type(record).__name__}")
    if "query" not in record:
        raise _BadRecord("missing field 'query'")
    instruction = record.get("instruction")
    if instruction is not None and (not isinstance(instruction, str) or not instruction.strip()):
        raise _BadRecord("'instruction' must be a non-empty string")
    is_pair = "document" in record or "label" in record
    is_group = "positives" in record or "negatives" in record
    if is_pair == is_group:
        raise _BadRecord(
            "expected either 'document' and 'label' (a pair) or 'positives'/'negatives' (a group)"
        )
    _check_content(record["query"], folder, "query")
    if is_pair:
        if "document" not in record:
            raise _BadRecord("missing field 'document'")
        if "label" not in record:
            raise _BadRecord("missing field 'label'")
        label = _label(record["label"])
        _check_content(record["document"], folder, "document")
        docs = {True: [record["document"]], False: []} if label else {True: [], False: [record["document"]]}
    else:
        docs = {True: [], False: []}
        for name, label in (("positives", True), ("negatives", False)):
            items = record.get(name, [])
            if not isinstance(items, list):
                raise _BadRecord(f"'{name}' must be a list")
            for i, doc in enumerate(items):
                try:
                    _check_content(doc, folder, f"{name}[{i}]")
                except _BadRecord as exc:
                    report_doc(str(exc))  # one bad document does not sink its group
                    continue
                docs[label].append(doc)
        if not docs[True] and not docs[False]:
            raise _BadRecord("group has no usable document")
    key = _key(record["query"], instruction)
    group = groups.get(key)
    if group is None:
        group = groups[key] = Group(query=record["query"], base_dir=folder, instruction=instruction)
    group.positives.extend(docs[True])
    group.negatives.extend(docs[False])
    group.lines.append(line)


def split_groups(groups: list[Group], share: float, seed: int) -> tuple[list[Group], list[Group]]:
    """Hold out ``share`` of the queries (never a query's documents on both sides)."""
    if share <= 0:
        return groups, []
    if len(groups) < 2:
        logger.warning("only %d query in the training data: nothing held out for evaluation", len(groups))
        return groups, []
    order = list(range(len(groups)))
    random.Random(seed).shuffle(order)
    n_eval = min(len(groups) - 1, max(1, round(len(groups) * share)))
    held = set(order[:n_eval])
    return [g for i, g in enumerate(groups) if i not in held], [g for i, g in enumerate(groups) if i in held]


def _pointwise(groups: Sequence[Group]) -> list[Example]:
    return [
        Example(gi, doc, label)
        for gi, g in enumerate(groups)
        for label, docs in ((True, g.positives), (False, g.negatives))
        for doc in docs
    ]


def epoch_units(groups: Sequence[Group], epoch: int, seed: int, hard_negatives: int) -> list[list[Example]]:
    """The epoch's training units in order: a unit trains in one micro-batch.

    Without hard negatives a unit is one pair. With N hard negatives a unit is one positive
    followed by N negatives of the same query, taken in turn from the query's shuffled
    negatives (repeating when it has fewer); documents of queries with no positive (or no
    negative) train as single pairs. Depends only on ``(seed, epoch)``, so a resumed run
    sees what an uninterrupted one would.
    """
    rng = random.Random(seed * 1_000_003 + epoch)
    units: list[list[Example]] = []
    if hard_negatives == 0:
        units = [[ex] for ex in _pointwise(groups)]
    else:
        for gi, g in enumerate(groups):
            if not g.positives or not g.negatives:
                units.extend([Example(gi, d, bool(g.positives))] for d in (g.positives or g.negatives))
                continue
            negatives = list(g.negatives)
            rng.shuffle(negatives)
            cursor = 0
            for positive in g.positives:
                unit = [Example(gi, positive, True)]
                for _ in range(min(hard_negatives, len(negatives))):
                    unit.append(Example(gi, negatives[cursor % len(negatives)], False))
                    cursor += 1
                units.append(unit)
    rng.shuffle(units)
    return units


def pack(units: list[list[Example]], batch_size: int) -> list[list[list[Example]]]:
    """Micro-batches of whole units, at most ``batch_size`` pairs (a larger unit goes alone)."""
    batches: list[list[list[Example]]] = []
    current: list[list[Example]] = []
    size = 0
    for unit in units:
        if current and size + len(unit) > batch_size:
            batches.append(current)
            current, size = [], 0
        current.append(unit)
        size += len(unit)
    if current:
        batches.append(current)
    return batches


# ----------------------------------------------------------------------------- model helpers


def lora_targets(model: Any, train_vision: bool) -> list[str]:
    """Full names of the linear layers LoRA wraps.

    The language model's q/k/v/o/gate/up/down projections; the vision tower (found by
    identity: ``model.model.visual``) only with ``train_vision``, then all its linear layers
    (attention qkv/proj, MLP, patch merger).
    """
    core = getattr(model, "model", model)
    visual = getattr(core, "visual", None) or getattr(model, "visual", None)
    vision_ids = {id(m) for m in visual.modules()} if visual is not None else set()
    names, n_language = [], 0
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        if id(module) in vision_ids:
            if train_vision:
                names.append(name)
        elif name.rsplit(".", 1)[-1] in LM_TARGETS:
            names.append(name)
            n_language += 1
    if not n_language:
        raise ValueError("found no q/k/v/o/gate/up/down projections in the language model to put LoRA on")
    return names


def _has_lora(model: Any) -> bool:
    return any("lora_" in name for name, _ in model.named_parameters())


def _checkpoints(output_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints in ``output_dir``, oldest first."""
    found = []
    if output_dir.is_dir():
        for path in output_dir.iterdir():
            m = re.fullmatch(re.escape(CHECKPOINT_PREFIX) + r"(\d+)", path.name)
            if m and path.is_dir() and (path / STATE_FILE).is_file():
                found.append((int(m.group(1)), path))
    return sorted(found)


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    found = _checkpoints(Path(output_dir))
    return found[-1][1] if found else None


def ranking_metrics(
    scores: Sequence[float], labels: Sequence[bool], queries: Sequence[int]
) -> tuple[float, float, int]:
    """(accuracy at 0.5, MRR, number of queries with a relevant document).

    Kept here rather than shared with :mod:`.eval` on purpose: training only needs a
    binary-label MRR, and the evaluation command can evolve without changing what a
    checkpoint's history means.
    """
    if not scores:
        return float("nan"), float("nan"), 0
    accuracy = sum((s >= 0.5) == bool(y) for s, y in zip(scores, labels)) / len(scores)
    by_query: dict[int, list[tuple[float, bool]]] = {}
    for s, y, q in zip(scores, labels, queries):
        by_query.setdefault(q, []).append((s, bool(y)))
    rr = []
    for items in by_query.values():
        positives = [s for s, y in items if y]
        if not positives:
            continue
        best = max(positives)
        # Pessimistic ties: every negative scoring >= the best positive ranks above it.
        rank = 1 + sum(1 for s, y in items if not y and s >= best)
        rr.append(1.0 / rank)
    mrr = sum(rr) / len(rr) if rr else float("nan")
    return accuracy, mrr, len(rr)


# ----------------------------------------------------------------------------- training


class _Trainer:
    def __init__(self, reranker: "LycheeReranker", config: FinetuneConfig, train: Dataset, held: list[Group],
                 bad_records: list[BadRecord]) -> None:
        backend = reranker.backend.training_view()
        if _has_lora(backend.model):
            raise ValueError(
                "the model already carries an unmerged adapter: load it with merge_adapter=True to train a new "
                "adapter on top of it"
            )
        self.reranker = reranker
        self.backend: TrainingView = backend
        self.config = config
        self.train_groups = train.groups
        self.eval_groups = held
        self.bad_records = bad_records
        self.instruction_default = resolve_instruction(config.instruction)
        self.device = backend.device
        self.history: list[EvalResult] = []
        self.checkpoints_written: list[str] = []

    # ------------------------------------------------------------------ model
    def wrap(self) -> None:
        from peft import LoraConfig, get_peft_model

        c = self.config
        model = self.backend.model
        targets = lora_targets(model, c.train_vision)
        lora = LoraConfig(r=c.lora_r, lora_alpha=c.lora_alpha, lora_dropout=c.lora_dropout,
                          target_modules=targets, bias="none")
        torch.manual_seed(c.seed)  # LoRA A init
        with warnings.catch_warnings():  # peft probes a property transformers 5 deprecates
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            self.peft_model = get_peft_model(model, lora)
        # get_peft_model injects the LoRA layers into ``model`` itself: the backend keeps
        # scoring through the same object, now with the adapter active.
        assert self.backend.model is self.peft_model.get_base_model()
        self.trainable = [p for p in self.peft_model.parameters() if p.requires_grad]
        self.n_trainable = sum(p.numel() for p in self.trainable)
        self.n_total = sum(p.numel() for p in self.peft_model.parameters())
        self.checkpointing = bool(c.gradient_checkpointing and getattr(model, "supports_gradient_checkpointing", False))
        if self.checkpointing:
            # Non-reentrant: the frozen embeddings' outputs need no requires_grad hook.
            kwargs = {"use_reentrant": False}
            if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5 name
                model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
            else:
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        if c.train_vision:
            self.backend.vision_cache.clear()

    def unwrap(self) -> None:
        model = self.backend.model
        if getattr(self, "checkpointing", False):
            disable = getattr(model, "activation_checkpointing_disable", None) or model.gradient_checkpointing_disable
            disable()
        model.eval()
        if self.config.train_vision:
            self.backend.vision_cache.clear()  # features from the old tower are stale

    # ------------------------------------------------------------------ forward
    def _pairs(self, examples: Sequence[tuple[Group, Any]]) -> list[Any]:
        pairs = []
        for i, (group, document) in enumerate(examples):
            query = to_content(group.query, base_dir=group.base_dir)
            doc = to_content(document, base_dir=group.base_dir)
            instruction = group.instruction or self.instruction_default
            pairs.append(self.backend.pair(i, query, doc, instruction))
        return pairs

    def _features(self, pairs: list[Any], grad: bool) -> list[torch.Tensor]:
        images = [im for p in pairs for im in p.images]
        if not images:
            return []
        if self.config.train_vision:
            with torch.set_grad_enabled(grad):
                return self.backend.image_features(images)
        # Frozen tower: its outputs are constants; reuse the backend's bounded feature cache.
        keys = [k for p in pairs for k in p.keys]
        cache = self.backend.vision_cache
        found: dict[Any, torch.Tensor] = {}
        for k in keys:
            cached = cache.get(k)
            if cached is not None:
                found[k] = cached
        missing = list(dict.fromkeys(k for k in keys if k not in found))
        if missing:
            first = {k: im for k, im in zip(keys, images)}
            with torch.no_grad():
                for k, feats in zip(missing, self.backend.image_features([first[k] for k in missing])):
                    found[k] = feats
                    cache.put(k, feats)
        return [found[k] for k in keys]

    def _yes_no(self, logits: torch.Tensor) -> torch.Tensor:
        return logits[:, [self.backend.no_id, self.backend.yes_id]]

    def _loss(self, batch: list[list[Example]], groups: Sequence[Group]) -> torch.Tensor:
        examples = [ex for unit in batch for ex in unit]
        pairs = self._pairs([(groups[ex.group], ex.document) for ex in examples])
        logits = self.backend.batch_logits(pairs, self._features(pairs, grad=True))
        labels = torch.tensor([int(ex.label) for ex in examples], device=logits.device)
        two = self._yes_no(logits)
        if self.config.loss == "vocab":
            targets = torch.where(labels.bool(), self.backend.yes_id, self.backend.no_id)
            loss = F.cross_entropy(logits, targets)
        else:
            loss = F.cross_entropy(two, labels)
        if self.config.hard_negatives and self.config.listwise_weight:
            margins = two[:, 1] - two[:, 0]
            terms, start = [], 0
            for unit in batch:
                if len(unit) > 1 and unit[0].label:
                    terms.append(-F.log_softmax(margins[start : start + len(unit)], dim=0)[0])
                start += len(unit)
            if terms:
                loss = loss + self.config.listwise_weight * torch.stack(terms).mean()
        return loss

    @torch.no_grad()
    def evaluate(self, step: int, epoch: int) -> EvalResult | None:
        if not self.eval_groups:
            return None
        model = self.backend.model
        was_training = model.training
        model.eval()
        examples = _pointwise(self.eval_groups)
        scores: list[float] = []
        losses: list[float] = []
        size = self.config.eval_batch_size
        for start in range(0, len(examples), size):
            chunk = examples[start : start + size]
            pairs = self._pairs([(self.eval_groups[ex.group], ex.document) for ex in chunk])
            two = self._yes_no(self.backend.batch_logits(pairs, self._features(pairs, grad=False)))
            labels = torch.tensor([int(ex.label) for ex in chunk], device=two.device)
            losses.extend(F.cross_entropy(two, labels, reduction="none").tolist())
            scores.extend(torch.softmax(two, dim=-1)[:, 1].tolist())
        model.train(was_training)
        accuracy, mrr, n_queries = ranking_metrics(scores, [ex.label for ex in examples], [ex.group for ex in examples])
        result = EvalResult(step=step, epoch=epoch, loss=sum(losses) / len(losses), accuracy=accuracy, mrr=mrr,
                            n_pairs=len(examples), n_queries=n_queries)
        self.history.append(result)
        logger.info("eval at step %d: loss %.4f, accuracy %.3f, MRR %.3f", step, result.loss, accuracy, mrr)
        return result

    # ------------------------------------------------------------------ schedule and state
    def _micro_batches(self, epoch: int) -> list[list[list[Example]]]:
        c = self.config
        return pack(epoch_units(self.train_groups, epoch, c.seed, c.hard_negatives), c.batch_size)

    def total_steps(self) -> int:
        c = self.config
        if c.max_steps is not None:
            return c.max_steps
        return sum(math.ceil(len(self._micro_batches(e)) / c.grad_accum) for e in range(c.epochs))

    def _schedule(self, total: int) -> Any:
        warmup = int(self.config.warmup_ratio * total)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / (warmup + 1)
            return max(0.0, (total - step) / max(1, total - warmup))

        return torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)

    def save_checkpoint(self, step: int, epoch: int, micro: int) -> Path:
        out = self.config.output_dir
        final = out / f"{CHECKPOINT_PREFIX}{step}"
        tmp = out / f".{CHECKPOINT_PREFIX}{step}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        self.peft_model.save_pretrained(str(tmp))
        state = {
            "step": step, "epoch": epoch, "micro": micro,
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "history": [asdict(h) for h in self.history],
        }
        torch.save(state, tmp / STATE_FILE)
        (tmp / CONFIG_FILE).write_text(json.dumps(self.config.to_json(), indent=2))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)  # a checkpoint is either complete or absent
        self.checkpoints_written.append(str(final))
        for _, old in _checkpoints(out)[: -self.config.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def load_checkpoint(self, path: Path) -> tuple[int, int, int]:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        saved = json.loads((path / CONFIG_FILE).read_text())
        mismatched = [k for k in RESUME_KEYS if saved.get(k) != getattr(self.config, k)]
        if mismatched:
            details = ", ".join(f"{k}: checkpoint {saved.get(k)!r} vs now {getattr(self.config, k)!r}" for k in mismatched)
            raise ValueError(f"cannot resume from {path} ({details}); use resume=False (--no-resume) or another output dir")
        weights = load_file(str(path / "adapter_model.safetensors"), device=str(self.device))
        result = set_peft_model_state_dict(self.peft_model, weights)
        unexpected = getattr(result, "unexpected_keys", [])
        if unexpected:
            raise ValueError(f"checkpoint {path} has weights this model lacks: {unexpected[:3]}")
        state = torch.load(path / STATE_FILE, map_location=self.device, weights_only=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"].cpu())
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])
        self.history = [EvalResult(**h) for h in state["history"]]
        return int(state["step"]), int(state["epoch"]), int(state["micro"])

    # ------------------------------------------------------------------ loop
    def run(self) -> FinetuneReport:
        c = self.config
        c.output_dir.mkdir(parents=True, exist_ok=True)
        self.wrap()
        try:
            return self._run()
        finally:
            self.unwrap()

    def _run(self) -> FinetuneReport:
        c = self.config
        torch.manual_seed(c.seed)
        self.optimizer = torch.optim.AdamW(self.trainable, lr=c.lr, weight_decay=c.weight_decay)
        total = self.total_steps()
        self.scheduler = self._schedule(total)
        step, epoch, micro = 0, 0, 0
        resumed_from: int | None = None
        checkpoint = latest_checkpoint(c.output_dir) if c.resume else None
        if checkpoint is not None:
            step, epoch, micro = self.load_checkpoint(checkpoint)
            resumed_from = step
            logger.info("resumed from %s (step %d, epoch %d)", checkpoint, step, epoch)
        elif not c.resume:
            # Starting over: an older run's checkpoints would otherwise be picked up by a later resume.
            for _, old in _checkpoints(c.output_dir):
                shutil.rmtree(old, ignore_errors=True)
        logger.info(
            "fine-tuning %s: %d steps, %d training pairs (%d queries), %d held-out pairs, %d trainable parameters",
            self.backend.model_name, total, sum(g.n_pairs for g in self.train_groups), len(self.train_groups),
            sum(g.n_pairs for g in self.eval_groups), self.n_trainable,
        )
        if resumed_from is None:
            self.evaluate(step=0, epoch=0)

        model = self.backend.model
        bar = _progress_bar(total, step, c.progress)
        running: float | None = None
        last_loss: float | None = None
        train_seconds = 0.0
        steps_done = 0
        last_eval_step = self.history[-1].step if self.history else None
        try:
            while step < total:
                batches = self._micro_batches(epoch)
                if not batches:
                    raise ValueError("no training pairs")
                model.train()
                while micro < len(batches) and step < total:
                    window = batches[micro : micro + c.grad_accum]
                    started = time.perf_counter()
                    window_loss = 0.0
                    for batch in window:
                        loss = self._loss(batch, self.train_groups) / len(window)
                        loss.backward()
                        window_loss += float(loss.detach())
                    if c.max_grad_norm:
                        torch.nn.utils.clip_grad_norm_(self.trainable, c.max_grad_norm)
                    self.optimizer.step()
                    self.scheduler.step()
                    self.optimizer.zero_grad(set_to_none=True)
                    train_seconds += time.perf_counter() - started
                    steps_done += 1
                    step += 1
                    micro += len(window)
                    last_loss = window_loss
                    running = window_loss if running is None else 0.9 * running + 0.1 * window_loss
                    bar.update(1)
                    bar.set_postfix(loss=f"{running:.4f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}", epoch=epoch)
                    epoch_done = micro >= len(batches)
                    if epoch_done:
                        epoch, micro = epoch + 1, 0
                    if epoch_done or (c.eval_every and step % c.eval_every == 0):
                        self.evaluate(step=step, epoch=epoch)
                        last_eval_step = step
                        model.train()
                    if step % c.save_every == 0 and step < total:
                        self.save_checkpoint(step, epoch, micro)
                    if epoch_done:
                        break
        finally:
            bar.close()
        model.eval()
        if last_eval_step != step:
            self.evaluate(step=step, epoch=epoch)
        if not (c.output_dir / f"{CHECKPOINT_PREFIX}{step}" / STATE_FILE).is_file():
            self.save_checkpoint(step, epoch, micro)
        self.peft_model.save_pretrained(str(c.output_dir))
        (c.output_dir / CONFIG_FILE).write_text(json.dumps(self.config.to_json(), indent=2))
        eval_pairs = sum(g.n_pairs for g in self.eval_groups)
        report = FinetuneReport(
            output_dir=str(c.output_dir),
            adapter_dir=str(c.output_dir),
            base_model=str(self.backend.model_name),
            steps=step,
            resumed_from_step=resumed_from,
            epochs_completed=epoch,
            train_pairs=sum(g.n_pairs for g in self.train_groups),
            train_queries=len(self.train_groups),
            eval_pairs=eval_pairs,
            eval_queries=len(self.eval_groups),
            trainable_parameters=self.n_trainable,
            total_parameters=self.n_total,
            train_seconds=round(train_seconds, 3),
            steps_per_second=round(steps_done / train_seconds, 3) if train_seconds else 0.0,
            last_train_loss=last_loss,
            history=list(self.history),
            bad_records=list(self.bad_records),
            checkpoints=[str(p) for _, p in _checkpoints(c.output_dir)],
        )
        (c.output_dir / REPORT_FILE).write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        return report


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def set_postfix(self, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, initial: int, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="fine-tuning", unit="step", file=sys.stderr, dynamic_ncols=True)


# ----------------------------------------------------------------------------- entry point


def finetune(
    model: "str | Path | LycheeReranker",
    train: str | Path | Iterable[Mapping[str, Any]],
    eval: str | Path | Iterable[Mapping[str, Any]] | None = None,  # noqa: A002 - the name users expect
    *,
    output_dir: str | Path,
    max_steps: int | None = None,
    epochs: int = 1,
    lr: float = 1e-4,
    batch_size: int = 4,
    grad_accum: int = 1,
    lora_r: int = 16,
    lora_alpha: int = 32,
    lora_dropout: float = 0.05,
    train_vision: bool = False,
    hard_negatives: int = 0,
    seed: int = 0,
    resume: bool = True,
    eval_split: float = 0.1,
    progress: bool = True,
    **options: Any,
) -> FinetuneReport:
    """Train a LoRA adapter for ``model`` on ``train`` and write it to ``output_dir``.

    ``model`` is a hub id or local directory (loaded with
    :meth:`LycheeReranker.from_pretrained`: BF16 on GPU, FP32 on CPU), or a loaded
    :class:`LycheeReranker`, which then scores with the new adapter when this returns.
    ``eval`` is a held-out JSONL; without it ``eval_split`` of the training queries is held
    out. Other keyword arguments are :class:`FinetuneConfig` fields (``save_every``,
    ``eval_every``, ``loss``, ``listwise_weight``, ``instruction``, ``device``, ...).

    ``output_dir`` receives the final adapter (``adapter_config.json`` +
    ``adapter_model.safetensors``, loadable with ``from_pretrained(base, adapter=output_dir)``),
    ``checkpoint-N/`` directories, ``finetune_config.json`` and ``finetune_report.json``.
    """
    config = FinetuneConfig(
        output_dir=Path(output_dir), max_steps=max_steps, epochs=epochs, lr=lr, batch_size=batch_size,
        grad_accum=grad_accum, lora_r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
        train_vision=train_vision, hard_negatives=hard_negatives, seed=seed, resume=resume,
        eval_split=eval_split, progress=progress, **options,
    )
    return finetune_with_config(model, train, eval, config)


def finetune_with_config(
    model: "str | Path | LycheeReranker",
    train: str | Path | Iterable[Mapping[str, Any]],
    eval: str | Path | Iterable[Mapping[str, Any]] | None,  # noqa: A002
    config: FinetuneConfig,
) -> FinetuneReport:
    """:func:`finetune` with the settings in a :class:`FinetuneConfig`."""
    from ..engine import LycheeReranker

    data = load_dataset(train)
    bad = list(data.bad_records)
    if not data.groups:
        raise ValueError(f"no usable training records ({len(bad)} bad)")
    if eval is not None:
        held = load_dataset(eval)
        bad.extend(held.bad_records)
        train_groups, eval_groups = data.groups, held.groups
    else:
        train_groups, eval_groups = split_groups(data.groups, config.eval_split, config.seed)
    if isinstance(model, LycheeReranker):
        reranker = model
    else:
        # Only what the user set: the rest keeps from_pretrained's defaults, so training sees the
        # same pixel budget and token limits as inference.
        names = ("max_query_tokens", "max_doc_tokens", "min_pixels", "max_pixels")
        kwargs = {k: getattr(config, k) for k in names if getattr(config, k) is not None}
        reranker = LycheeReranker.from_pretrained(
            model, device=config.device, dtype=config.dtype, attn_implementation=config.attn_implementation, **kwargs
        )
    trainer = _Trainer(reranker, config, Dataset(train_groups, []), eval_groups, bad)
    return trainer.run()


__all__ = [
    "BadRecord", "Dataset", "EvalResult", "FinetuneConfig", "FinetuneReport", "Group", "finetune",
    "finetune_with_config", "latest_checkpoint", "load_dataset", "lora_targets", "ranking_metrics",
]
