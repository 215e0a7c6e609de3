"""What the lite backend is, in one sentence every interface shows (CLI notice, UI footer,
``/health``), so that nobody mistakes it for the model.

The figure is the held-out Recall@1 of ``make eval``: the ``heldout`` halves of both photo sets
(``examples/eval/photos_eval.jsonl`` and ``photos2_eval.jsonl``: real photos, and queries never
used for tuning). Update it when the lite analysis changes.
"""

from __future__ import annotations

#: Recall@1 on the held-out halves of both photo sets together (168 queries, en/zh/mixed; 59 and
#: 64 photos): 0.753 on the first, 0.701 on the second.
HELDOUT_RECALL_AT_1 = 0.73
MODEL_HINT = "--model vec-ai/lychee-rerank-mm (or set LYCHEE_MODEL; ~17 GB, GPU)"
LITE_NOTE = (
    "lite is an offline approximation built from small models shipped in pip packages, not the "
    f"lychee-rerank-mm model: Recall@1 {HELDOUT_RECALL_AT_1:.2f} on held-out real photos. "
    f"For the model: {MODEL_HINT}."
)
