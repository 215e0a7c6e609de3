"""A packed (unpadded) forward pass for BERT-layout cross-encoders on CPU.

Why: on a CPU every padded token costs as much as a real one, and a cross-encoder's score is read
from one row (the first token) of the last layer. The stock forward pads a batch to its longest
pair, masks the padding in attention, and runs the whole last layer on every token. This one
runs the model's own modules (embeddings, query/key/value, ``attention.output``,
``intermediate``, ``output``, the classification head) on a ``[tokens, hidden]`` matrix of the
real tokens only:

* every pair attends to its own tokens (one unmasked attention call per pair), so no work is
  spent on padding in the linear layers or in attention;
* the feed-forward block runs in blocks of :data:`BLOCK_TOKENS` rows, whose intermediate
  activations stay in the CPU cache instead of making a round trip to memory;
* the last layer computes the query, attention, output and feed-forward of the first token of
  each pair only (keys and values still come from every token): nothing else is read.

The arithmetic of every kept row is the stock model's (same modules, same weights, same order of
operations); only rows no one reads are skipped and padding is never computed, so scores equal
the stock forward's to float rounding (tested against sentence-transformers' ``CrossEncoder``).

It applies only to the heads in :data:`HEADS` with the BERT layer layout, absolute positions, and
no decoder / cross-attention; anything else runs the stock forward. On CUDA the stock (padded,
one-kernel) forward is faster than one attention call per pair, so this path is for CPU.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

#: Rows of the feed-forward block per call and per torch thread: 256 x intermediate 1536 floats is
#: 1.5 MB, which stays in a core's L2 cache (profiled on one thread, MiniLM-L6 size: the GELU's
#: share of a forward pass fell from ~8% on a whole batch's activations to ~3%).
BLOCK_TOKENS = 256

#: How each supported head turns the last layer's first-token rows ``[n, 1, hidden]`` into logits.
HEADS: dict[str, Callable[[Any, Any, torch.Tensor], torch.Tensor]] = {
    # BERT: pooler (dense + tanh on position 0), dropout, classifier
    "BertForSequenceClassification": lambda model, base, rows: model.classifier(model.dropout(base.pooler(rows))),
    # RoBERTa / XLM-R / ELECTRA: the classification head reads position 0 of the sequence output
    "RobertaForSequenceClassification": lambda model, base, rows: model.classifier(rows),
    "XLMRobertaForSequenceClassification": lambda model, base, rows: model.classifier(rows),
    "ElectraForSequenceClassification": lambda model, base, rows: model.classifier(rows),
}


class PackedEncoder:
    """Scores padded cross-encoder batches without computing the padding (see the module docstring)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.base = getattr(model, model.base_model_prefix)
        self.layers = list(self.base.encoder.layer)
        self.head = HEADS[type(model).__name__]
        attention = self.layers[0].attention.self
        self.heads = int(attention.num_attention_heads)
        self.head_dim = int(attention.attention_head_size)
        self.scale = float(getattr(attention, "scaling", self.head_dim**-0.5))
        self.project = getattr(self.base, "embeddings_project", None)

    @classmethod
    def attach(cls, model: Any) -> "PackedEncoder | None":
        """A packed runner for ``model``, or ``None`` where its layout is not the one this reads."""
        if type(model).__name__ not in HEADS or not type(model).__module__.startswith("transformers.models."):
            return None  # remote code may reuse a class name (jina-reranker-v2) with another layout
        config = model.config
        if getattr(config, "is_decoder", False) or getattr(config, "add_cross_attention", False):
            return None
        if getattr(config, "position_embedding_type", "absolute") not in (None, "absolute"):
            return None
        base = getattr(model, getattr(model, "base_model_prefix", ""), None)
        layers = getattr(getattr(base, "encoder", None), "layer", None)
        if base is None or not layers or getattr(base, "embeddings", None) is None:
            return None
        needed = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output",
                  "intermediate", "output")
        for layer in layers:
            for path in needed:
                obj: Any = layer
                for part in path.split("."):
                    obj = getattr(obj, part, None)
                if obj is None:
                    return None
            if not hasattr(layer.attention.self, "num_attention_heads"):
                return None
        if type(model).__name__ == "BertForSequenceClassification" and getattr(base, "pooler", None) is None:
            return None
        return cls(model)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor) -> None:
        """One pair's attention, unmasked: ``q`` [m, hidden] against ``k``/``v`` [length, hidden],
        written into ``out`` [m, hidden] (heads split and merged by views: one copy)."""
        h, d = self.heads, self.head_dim
        heads = F.scaled_dot_product_attention(
            q.view(-1, h, d).transpose(0, 1), k.view(-1, h, d).transpose(0, 1), v.view(-1, h, d).transpose(0, 1),
            scale=self.scale,
        )
        out.view(-1, h, d).copy_(heads.transpose(0, 1))

    @staticmethod
    def _feed_forward(layer: Any, attended: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """``attention.output`` then the feed-forward block, on blocks of rows (:data:`BLOCK_TOKENS`)."""
        out = torch.empty_like(hidden)
        block = BLOCK_TOKENS * torch.get_num_threads()  # each thread's share of rows stays in its cache
        for start in range(0, hidden.shape[0], block):
            rows = slice(start, start + block)
            a = layer.attention.output(attended[rows], hidden[rows])
            out[rows] = layer.output(layer.intermediate(a), a)
        return out

    def __call__(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits ``[batch, labels]`` of a padded batch (``input_ids``, ``attention_mask``, ...)."""
        mask = inputs["attention_mask"].bool()
        embedded = self.base.embeddings(input_ids=inputs["input_ids"], token_type_ids=inputs.get("token_type_ids"))
        if self.project is not None:
            embedded = self.project(embedded)
        hidden = embedded[mask]  # [tokens, hidden]: the real tokens of every pair, in order
        lengths = mask.sum(dim=1).tolist()
        starts = [0]
        for n in lengths:
            starts.append(starts[-1] + n)
        spans = list(zip(starts[:-1], starts[1:]))
        first = torch.tensor(starts[:-1], dtype=torch.long)
        *inner, last = self.layers
        for layer in inner:
            sa = layer.attention.self
            q, k, v = sa.query(hidden), sa.key(hidden), sa.value(hidden)
            attended = torch.empty_like(hidden)
            for s, e in spans:
                self._attend(q[s:e], k[s:e], v[s:e], attended[s:e])
            hidden = self._feed_forward(layer, attended, hidden)
        # The last layer: keys and values of every token, everything else for the first token only.
        sa = last.attention.self
        rows = hidden.index_select(0, first)
        q, k, v = sa.query(rows), sa.key(hidden), sa.value(hidden)
        attended = torch.empty_like(rows)
        for i, (s, e) in enumerate(spans):
            self._attend(q[i : i + 1], k[s:e], v[s:e], attended[i : i + 1])
        rows = self._feed_forward(last, attended, rows)
        return self.head(self.model, self.base, rows.unsqueeze(1))
