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
``false`` or ``1``/``0`` (the loss trains a yes/no answer: a graded or soft label is a bad record,
so map grades to 1/0 first). Bad records (invalid JSON, other labels, missing fields, unreadable
images) are logged with their line number, counted in the report and skipped; a bad document
inside a group skips that document only. Lines end at ``\n`` only. Training data with no positive
(or no negative) pair is refused: the adapter would learn one answer for everything.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F

from ..inputs import to_content
from ..prompt import resolve_instruction
from .config import FinetuneConfig
from .data import (
    BadRecord, Dataset, Example, Group, epoch_units, load_dataset, pack, pointwise_examples, require_both_labels, split_groups,
)
from .losses import listwise_loss, pointwise_loss, ranking_metrics, yes_no

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


# ----------------------------------------------------------------------------- report


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

    def _features(self, pairs: list[Any], grad: bool) -> list[Any]:
        images = [im for p in pairs for im in p.images]
        if not images:
            return []
        if self.config.train_vision:
            with torch.set_grad_enabled(grad):
                return self.backend.image_features(images)
        # Frozen tower: its outputs are constants; reuse the backend's bounded feature cache.
        keys = [k for p in pairs for k in p.keys]
        cache = self.backend.vision_cache
        found: dict[Any, Any] = {}
        for k in keys:
            cached = cache.get(k)
            if cached is not None:
                found[k] = cached
                self.backend.stats["vision_cache_hits"] += 1
        missing = list(dict.fromkeys(k for k in keys if k not in found))
        if missing:
            first = {k: im for k, im in zip(keys, images)}
            with torch.no_grad():
                for k, feats in zip(missing, self.backend.image_features([first[k] for k in missing])):
                    found[k] = feats
                    cache.put(k, feats)
        return [found[k] for k in keys]

    def _yes_no(self, logits: torch.Tensor) -> torch.Tensor:
        return yes_no(logits, self.backend.yes_id, self.backend.no_id)

    def _loss(self, batch: list[list[Example]], groups: Sequence[Group]) -> torch.Tensor:
        examples = [ex for unit in batch for ex in unit]
        pairs = self._pairs([(groups[ex.group], ex.document) for ex in examples])
        logits = self.backend.batch_logits(pairs, self._features(pairs, grad=True))
        labels = torch.tensor([int(ex.label) for ex in examples], device=logits.device)
        loss = pointwise_loss(logits, labels, self.backend.yes_id, self.backend.no_id, self.config.loss)
        if self.config.hard_negatives and self.config.listwise_weight:
            listwise = listwise_loss(self._yes_no(logits), [(len(unit), bool(unit[0].label)) for unit in batch])
            if listwise is not None:
                loss = loss + self.config.listwise_weight * listwise
        return loss

    @torch.no_grad()
    def evaluate(self, step: int, epoch: int) -> EvalResult | None:
        if not self.eval_groups:
            return None
        model = self.backend.model
        was_training = model.training
        model.eval()
        examples = pointwise_examples(self.eval_groups)
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
        step, epoch, micro, resumed_from = self._resume_or_reset()
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
        return self._write_report(step, epoch, resumed_from, train_seconds, steps_done, last_loss)

    def _resume_or_reset(self) -> tuple[int, int, int, int | None]:
        """(step, epoch, micro-batch, resumed-from step) from the latest checkpoint, or a clean start."""
        c = self.config
        checkpoint = latest_checkpoint(c.output_dir) if c.resume else None
        if checkpoint is not None:
            step, epoch, micro = self.load_checkpoint(checkpoint)
            logger.info("resumed from %s (step %d, epoch %d)", checkpoint, step, epoch)
            return step, epoch, micro, step
        if not c.resume:
            # Starting over: an older run's checkpoints would otherwise be picked up by a later resume.
            for _, old in _checkpoints(c.output_dir):
                shutil.rmtree(old, ignore_errors=True)
        return 0, 0, 0, None

    def _write_report(
        self, step: int, epoch: int, resumed_from: int | None, train_seconds: float, steps_done: int,
        last_loss: float | None,
    ) -> FinetuneReport:
        """Save the adapter and its config, then the run's report next to them."""
        c = self.config
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
    require_both_labels(data.groups, f"the training data ({train if isinstance(train, (str, Path)) else 'records'})")
    if eval is not None:
        held = load_dataset(eval)
        bad.extend(held.bad_records)
        train_groups, eval_groups = data.groups, held.groups
    else:
        train_groups, eval_groups = split_groups(data.groups, config.eval_split, config.seed)
        require_both_labels(train_groups, f"what is left for training after holding out {len(eval_groups)} queries")
    if isinstance(model, LycheeReranker):
        reranker = model
    else:
        # The same RerankerConfig inference is built from (unset limits: the family's defaults),
        # so training sees the pixel budget, token limits and prompt that inference will.
        reranker = LycheeReranker.from_config(config.reranker.with_(backend="lychee", model=str(model)))
    trainer = _Trainer(reranker, config, Dataset(train_groups, []), eval_groups, bad)
    return trainer.run()


__all__ = [
    "BadRecord", "Dataset", "EvalResult", "FinetuneConfig", "FinetuneReport", "Group", "finetune",
    "finetune_with_config", "latest_checkpoint", "load_dataset", "lora_targets", "ranking_metrics",
]
