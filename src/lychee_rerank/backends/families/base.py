"""The family adapter interface: everything the model driver asks a checkpoint family.

The driver (:class:`lychee_rerank.backends.lychee.LycheeBackend`) owns the speed and the
robustness: packing under a token budget, the shared-prefix KV cache, the vision-feature
cache, preprocessing on helper threads, OOM back-off, cancellation, progress and per-pair
errors. It calls the model in exactly one way, ``backbone(input_ids, attention_mask,
position_ids, **encoder_inputs, cache...)`` followed by the family's score head on the last
position's hidden state, and leaves every fact about the checkpoint to the adapter:

* how to load it (model and processor classes, dtype and attention rules): :meth:`load`;
* its prompt (template pieces, default instruction, empty side): :attr:`prompt`;
* its image geometry (patch, merge, resize rule, pixel budget in its own units):
  :meth:`grid`, :meth:`preprocess`;
* the vision features its language model needs, all of which the cache keeps
  (:meth:`vision`, :meth:`encoder_inputs`);
* its positions (:meth:`positions`), its score head (:meth:`head`) and its truncation
  rule (:meth:`truncate`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence


import torch
from PIL import Image

from ...prompt import PromptSpec
from . import FamilySpec


@dataclass(frozen=True)
class Loaded:
    """What :meth:`FamilyAdapter.load` returns: the model (eval mode, on its device) and processor."""

    model: Any
    processor: Any
    attn_implementation: str


class ScoreHead:
    """The score of a pair from its last hidden state: ``sigmoid(yes - no)`` of two vocabulary rows.

    ``difference=True`` first forms the one-row head ``w_yes - w_no`` in the model's dtype and
    scores with it (Qwen3-VL-Reranker's official scorer does exactly this); ``False`` takes the
    two logits as the language-model head computes them (lychee-rerank-mm's scripts). In FP32
    the two agree to rounding; in BF16 each matches its own reference.
    """

    def __init__(self, weight: torch.Tensor, yes_id: int, no_id: int, *, difference: bool) -> None:
        self.yes_id, self.no_id = yes_id, no_id
        self.weight = weight
        # Scoring reads two rows (and their difference): copied once here, since the output layer
        # is frozen (fine-tuning trains LoRA layers of the decoder, never it).
        with torch.no_grad():
            self.rows = weight[[no_id, yes_id]].detach().clone()  # [no, yes]
            self.difference_row = (weight[yes_id] - weight[no_id]).detach() if difference else None

    def pair_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """``[batch, 2]`` float32 logits of ``no`` and ``yes``: softmax of them is the score (training)."""
        return torch.nn.functional.linear(hidden, self.weight[[self.no_id, self.yes_id]].to(hidden.dtype)).float()

    def vocab_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """``[batch, vocab]`` float32 logits (the plain SFT loss over the whole vocabulary)."""
        return torch.nn.functional.linear(hidden, self.weight.to(hidden.dtype)).float()

    @torch.no_grad()
    def scores(self, hidden: torch.Tensor) -> tuple[list[float], list[float], list[float]]:
        """(p(yes), yes logit, no logit) per row of ``hidden`` (``[batch, dim]``)."""
        two = torch.nn.functional.linear(hidden, self.rows.to(hidden.dtype)).float()
        no, yes = two[:, 0], two[:, 1]
        if self.difference_row is not None:
            margin = (hidden @ self.difference_row.to(hidden.dtype)).float()
        else:
            margin = yes - no
        return torch.sigmoid(margin).tolist(), yes.tolist(), no.tolist()


def yes_no_head(model: Any, tokenizer: Any, *, difference: bool) -> ScoreHead:
    """The usual head of a generative reranker: the output embedding's ``yes`` and ``no`` rows."""
    yes, no = single_token_id(tokenizer, "yes"), single_token_id(tokenizer, "no")
    return ScoreHead(model.get_output_embeddings().weight, yes, no, difference=difference)


def single_token_id(tokenizer: Any, word: str) -> int:
    """The one token ``word`` is; a ValueError where the tokenizer splits it (no yes/no score then)."""
    ids = tokenizer.encode(word, add_special_tokens=False)
    if len(ids) != 1:
        raise ValueError(f"the tokenizer splits {word!r} into {len(ids)} tokens; yes/no scoring needs one token each")
    return int(ids[0])


class FamilyAdapter(ABC):
    """One checkpoint family, as the driver and fine-tuning see it (see the module docstring)."""

    spec: ClassVar[FamilySpec]
    prompt: ClassVar[PromptSpec]
    min_pixels: ClassVar[int]
    """Default pixel budget of one image, in pixels (each family counts its own patch size)."""
    max_pixels: ClassVar[int]
    max_query_tokens: ClassVar[int]
    max_doc_tokens: ClassVar[int]
    image_token: ClassVar[str] = "<|image_pad|>"
    query_first: ClassVar[bool] = True
    """Whether the query's part precedes the document's in the prompt: the order images are handed
    to the model in, and whether a prefix shared by a call's pairs may hold the query's images."""
    notice: ClassVar[str | None] = None
    """A notice users must see (a non-commercial licence, say): ``info()`` carries it as ``note``."""
    training_refusal: ClassVar[str | None] = None
    """Why ``lychee finetune`` cannot train this family (``None``: it can); said before any step."""

    @property
    def modalities(self) -> frozenset[str]:
        """What a query or document of this family may hold (its spec says); an image sent to a
        text-only family is refused when it is read (the query: a 422 / InputError; a document:
        its own error)."""
        return frozenset(self.spec.modalities)

    def side_modalities(self, side: str) -> frozenset[str]:
        """What a ``"query"`` or a ``"document"`` of this family may hold (its spec's per-side
        rule, else :attr:`modalities`): MonoQwen2-VL reads text queries and image documents."""
        return frozenset(self.spec.side_modalities(side))

    @property
    def name(self) -> str:
        return self.spec.name

    # ------------------------------------------------------------------ loading
    def resolve(self, device: Any, dtype: Any, attn_implementation: Any) -> tuple[torch.device, torch.dtype, str]:
        """Device, dtype and attention for the requested values (``"auto"`` resolved).

        The default rule suits every transformers decoder here: BF16 (else FP16) and
        Flash-Attention-2 (else SDPA) on CUDA, FP32 and SDPA on CPU. A family whose model lacks
        one of them, or needs FP32 somewhere, overrides this.
        """
        from ..loading import resolve_attn, resolve_device, resolve_dtype

        dev = resolve_device(device)
        dt = resolve_dtype(dtype, dev)
        return dev, dt, resolve_attn(attn_implementation, dev, dt)

    @abstractmethod
    def load(
        self, name: str, *, device: torch.device, dtype: torch.dtype, attn_implementation: str,
        min_pixels: int, max_pixels: int, trust_remote_code: bool,
    ) -> Loaded:
        """Model (eval, on ``device``) and processor of checkpoint ``name`` (local directory or hub id)."""

    def tokenizer(self, processor: Any) -> Any:
        """The tokenizer inside what :meth:`load` returned as the processor (a text family may return the tokenizer itself)."""
        return getattr(processor, "tokenizer", processor)

    def messages(self, query: Any, document: Any, instruction: str, mode: str) -> list[dict[str, Any]] | None:
        """The chat messages of one pair before templating, or ``None`` for a family whose prompt is
        a plain string (what ``/v1/analyze`` shows must be what the model reads, not a generic chat).

        Default: the family's :class:`~lychee_rerank.prompt.PromptSpec` through
        :func:`~lychee_rerank.prompt.build_messages`.
        """
        from ...prompt import build_messages

        return build_messages(query, document, instruction, mode=mode, spec=self.prompt).messages

    def render(self, processor: Any, query: Any, document: Any, instruction: str, mode: str) -> str:
        """The prompt text of one pair (images as their placeholders); user texts arrive as markers.

        Default: :meth:`messages` through the checkpoint's chat template.
        """
        messages = self.messages(query, document, instruction, mode)
        assert messages is not None, f"{type(self).__name__} renders a plain string: it overrides render()"
        return processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def backbone(self, model: Any) -> Any:
        """The module whose forward returns ``last_hidden_state`` (the language model under the head)."""
        return model.model

    @abstractmethod
    def head(self, model: Any, tokenizer: Any) -> ScoreHead:
        """The score head, built from the loaded weights."""

    # ------------------------------------------------------------------ images
    @abstractmethod
    def grid(self, width: int, height: int, min_pixels: int, max_pixels: int) -> tuple[int, int, int]:
        """(t, h, w) patch grid of an image of this size; ValueError for a shape the family refuses."""

    @abstractmethod
    def image_tokens(self, grid: tuple[int, int, int]) -> int:
        """Visual tokens in the prompt for an image of this patch grid."""

    @abstractmethod
    def preprocess(
        self, processor: Any, images: Sequence[Image.Image], min_pixels: int, max_pixels: int
    ) -> dict[str, torch.Tensor]:
        """The vision tower's inputs for decoded RGB images (``pixel_values``, grids...), on CPU."""

    @abstractmethod
    def vision(self, model: Any, inputs: dict[str, torch.Tensor]) -> list[Any]:
        """Vision-tower outputs, one entry per image: everything the language model needs of it."""

    @abstractmethod
    def encoder_inputs(self, features: Sequence[Any]) -> dict[str, Any]:
        """Backbone keyword arguments that hand it ``features`` (in prompt order); ``{}`` for none."""

    def positions(
        self, model: Any, input_ids: torch.Tensor, mask: torch.Tensor, grids: Sequence[tuple[int, int, int]],
        image_token_id: int,
    ) -> torch.Tensor | None:
        """Position ids of the full (left-padded) sequences, sequence last; ``None``: the model's own."""
        return None

    def generate_inputs(self, input_ids: torch.Tensor, vision_inputs: dict[str, torch.Tensor], image_token_id: int) -> dict:
        """Extra ``model.generate`` arguments beside the ids and pixels (``scoring="generate"``)."""
        return {}

    # ------------------------------------------------------------------ text
    def truncate(self, ids: list[int], special_ids: frozenset[int]) -> tuple[list[int], bool]:
        """The family's whole-prompt length rule, after each text was cut to its own limit."""
        return ids, False

    @staticmethod
    def feature_bytes(features: Any) -> int:
        """Bytes one image's features hold (the vision cache is bounded in bytes)."""
        if isinstance(features, torch.Tensor):
            return features.numel() * features.element_size()
        return sum(FamilyAdapter.feature_bytes(f) for f in features)
