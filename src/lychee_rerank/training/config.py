"""``FinetuneConfig``: every setting of a fine-tuning run, validated once.

How the model is loaded (device, dtype, family, pixel budget, token limits) is one nested
:class:`~lychee_rerank.config.RerankerConfig`, the same record inference is built from, so
training sees what inference will. Its fields are also accepted by name
(``FinetuneConfig(output_dir=..., device="cpu")``, ``finetune(..., family="qwen3_vl")``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..backends import families
from ..config import RerankerConfig


class FinetuneConfig(BaseModel):
    """Every knob of a run; saved next to each checkpoint so a resume can check it."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

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
    reranker: RerankerConfig = Field(default_factory=RerankerConfig)
    """The model the adapter is trained on is loaded from this (its ``backend``/``model`` are
    set by :func:`~lychee_rerank.training.finetune.finetune`'s ``model``); ``None`` fields
    are the family's defaults, as at inference."""

    @model_validator(mode="before")
    @classmethod
    def _nest_reranker_fields(cls, data: Any) -> Any:
        """``device=``, ``family=``, ``max_pixels=``... → ``reranker`` (a RerankerConfig field name
        that is not one of this config's own). Built as a RerankerConfig, so a value it accepts
        (a ``torch.dtype`` for ``dtype``, say) is accepted here too."""
        if not isinstance(data, dict):
            return data
        names = {f.name for f in dataclasses.fields(RerankerConfig)} - set(cls.model_fields)
        flat = {k: v for k, v in data.items() if k in names}
        if not flat:
            return data
        base = data.get("reranker") or RerankerConfig()
        base = base if isinstance(base, RerankerConfig) else RerankerConfig(**base)
        return {**{k: v for k, v in data.items() if k not in names}, "reranker": dataclasses.replace(base, **flat)}

    @model_validator(mode="after")
    def _check(self) -> "FinetuneConfig":
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
        if self.reranker.family is not None:
            families.get(self.reranker.family)  # unknown: the known ones named, before any data is read
        return self

    def to_json(self) -> dict[str, Any]:
        """The run's settings as saved next to a checkpoint (a non-JSON value, e.g. a torch dtype, as text)."""
        return self.model_dump(mode="json", fallback=str, warnings=False)
