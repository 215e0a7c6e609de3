"""Plain records handed back to users (library, CLI, HTTP and UI all serialise these)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

#: Columns of exported records (CLI --format json/csv, UI downloads), in this order.
RECORD_FIELDS = ["rank", "index", "score", "source", "modality", "tie", "yes_logit", "no_logit", "raw_score", "truncated", "error"]


@dataclass
class PairScore:
    """What a backend says about one (query, document) pair, before post-processing."""

    score: float = 0.0
    """Relevance in 0-1 (p(yes) for the model backend)."""
    yes_logit: float | None = None
    no_logit: float | None = None
    raw_output: str | None = None
    """Generated text (``scoring="generate"``), kept so an unparsable answer can be inspected."""
    truncated: bool = False
    error: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    """Backend-specific reasons for the score (e.g. matched tags for the lite backend)."""
    tokens: int | None = None
    """Prompt tokens the model read for this pair (image tokens included); None when the backend has no tokenizer."""


@dataclass
class RerankResult:
    """One ranked document. ``rank`` is 1-based; failed documents come last with ``error`` set."""

    index: int
    """Position of the document in the input list."""
    score: float
    rank: int
    document: Any
    yes_logit: float | None = None
    no_logit: float | None = None
    tie: bool = False
    """True when a neighbour in the ranking is within ``tie_epsilon`` (an ≈ in displays)."""
    error: str | None = None
    truncated: bool = False
    """True when the query's or the document's text was cut to the token limit."""
    raw_score: float = 0.0
    """The 0-1 relevance before normalisation and display scaling."""
    raw_output: str | None = None
    source: str | None = None
    modality: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    tokens: int | None = None
    """Prompt tokens the model read for this pair (HTTP ``usage``); None for backends without a tokenizer."""

    def to_dict(self, include_document: bool = False) -> dict[str, Any]:
        data = asdict(self)
        if not include_document:
            data.pop("document")
        return data


def to_records(results: Sequence[RerankResult]) -> list[dict[str, Any]]:
    """Plain dicts for export: the fixed columns, plus generated text and evidence when present."""
    rows = []
    for r in results:
        row = {k: getattr(r, k) for k in RECORD_FIELDS}
        if r.raw_output is not None:
            row["raw_output"] = r.raw_output
        if r.evidence:
            row["evidence"] = r.evidence
        rows.append(row)
    return rows


def to_json(results: Sequence[RerankResult]) -> str:
    return json.dumps(to_records(results), ensure_ascii=False, indent=2, default=str)


def to_csv(results: Sequence[RerankResult]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=RECORD_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(to_records(results))
    return buf.getvalue()


def to_jsonl(results: Sequence[RerankResult]) -> str:
    """One JSON record per line (streams well into other tools)."""
    return "\n".join(json.dumps(r, ensure_ascii=False, default=str) for r in to_records(results))
