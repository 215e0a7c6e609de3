"""Ranking metrics and a labelled-set evaluation for any backend.

    lychee eval examples/eval/gallery_eval.jsonl --images examples/gallery --backend lite

The JSONL file has one query per line::

    {"id": "q01", "lang": "en", "query": "a cup of coffee", "relevant": {"coffee.jpg": 2}}
    {"id": "q41", "lang": "image", "query_image": "queries/cat_closeup.jpg", "relevant": {"chelsea.jpg": 2}}

``relevant`` maps gallery file names to graded labels (2 = what the query asks for, 1 = partly
relevant; anything absent is 0). ``query`` and ``query_image`` may be combined (a mixed query).
Every query ranks every image of the gallery directory (top level, sorted by name; sidecar
``.txt`` captions are picked up as usual).

Metric conventions (the usual IR definitions):

* ``recall_at_k``: relevant documents (label >= 1) in the top k, divided by ``min(k, #relevant)``
  (capped recall, so one relevant document found at rank 1 gives Recall@1 = 1);
* ``reciprocal_rank`` / MRR: 1 / rank of the first relevant document, 0 if none is ranked;
* ``ndcg_at_k``: graded gain ``2**label - 1``, discount ``log2(rank + 1)``, normalised by the
  ideal ordering of the labels;
* ``average_precision``: mean of precision@rank over the ranks of the relevant documents.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

from ..lines import check_readable_stream, text_lines

# ----------------------------------------------------------------------------- pure metrics


def _relevant(labels: Mapping[str, float] | Iterable[str]) -> set[str]:
    if isinstance(labels, Mapping):
        return {doc for doc, grade in labels.items() if grade > 0}
    return set(labels)


def recall_at_k(ranked: Sequence[str], labels: Mapping[str, float] | Iterable[str], k: int) -> float:
    """Share of the relevant documents found in the top ``k``, capped at ``min(k, #relevant)``."""
    if k < 1:
        raise ValueError("k must be >= 1")
    relevant = _relevant(labels)
    if not relevant:
        return 0.0
    found = len(relevant.intersection(ranked[:k]))
    return found / min(k, len(relevant))


def reciprocal_rank(ranked: Sequence[str], labels: Mapping[str, float] | Iterable[str]) -> float:
    """1 / rank (1-based) of the first relevant document; 0 when none is ranked."""
    relevant = _relevant(labels)
    for rank, doc in enumerate(ranked, start=1):
        if doc in relevant:
            return 1.0 / rank
    return 0.0


def mrr(rankings: Sequence[Sequence[str]], labels: Sequence[Mapping[str, float] | Iterable[str]]) -> float:
    """Mean reciprocal rank over queries."""
    if len(rankings) != len(labels):
        raise ValueError("one label set per ranking")
    if not rankings:
        return 0.0
    return sum(reciprocal_rank(r, lab) for r, lab in zip(rankings, labels)) / len(rankings)


def dcg_at_k(gains: Sequence[float], k: int) -> float:
    return sum((2.0**g - 1.0) / math.log2(i + 2) for i, g in enumerate(gains[:k]))


def ndcg_at_k(ranked: Sequence[str], labels: Mapping[str, float], k: int) -> float:
    """Normalised DCG with graded labels; 0 when nothing is relevant."""
    if k < 1:
        raise ValueError("k must be >= 1")
    ideal = dcg_at_k(sorted((g for g in labels.values() if g > 0), reverse=True), k)
    if ideal <= 0:
        return 0.0
    return dcg_at_k([float(labels.get(doc, 0.0)) for doc in ranked], k) / ideal


def average_precision(ranked: Sequence[str], labels: Mapping[str, float] | Iterable[str]) -> float:
    """Mean of precision@rank at each relevant document's rank (missing ones count 0)."""
    relevant = _relevant(labels)
    if not relevant:
        return 0.0
    hits, total = 0, 0.0
    for rank, doc in enumerate(ranked, start=1):
        if doc in relevant:
            hits += 1
            total += hits / rank
    return total / len(relevant)


# ----------------------------------------------------------------------------- evaluation


@dataclass
class QueryResult:
    id: str
    lang: str
    query: str
    ranking: list[str]
    scores: list[float]
    labels: list[float]
    """Graded label of each ranked document (0 = not relevant), in ranking order."""
    recall_at_1: float
    reciprocal_rank: float
    ndcg_at_5: float
    average_precision: float
    seconds: float


def separation(relevant: Sequence[float], irrelevant: Sequence[float]) -> dict[str, float]:
    """AUC of relevant vs irrelevant scores (Mann-Whitney: pairs ordered right, ties count half)
    and each group's median; empty when either group is."""
    if not len(relevant) or not len(irrelevant):
        return {}
    import numpy as np

    p, n = np.asarray(relevant, dtype=float), np.sort(np.asarray(irrelevant, dtype=float))
    below = np.searchsorted(n, p, side="left")
    ties = np.searchsorted(n, p, side="right") - below
    auc = float((below + 0.5 * ties).sum() / (len(p) * len(n)))
    return {
        "auc": round(auc, 4),
        "median_relevant": round(float(np.median(p)), 4),
        "median_irrelevant": round(float(np.median(n)), 4),
    }


@dataclass
class EvalReport:
    queries: list[QueryResult] = field(default_factory=list)
    documents: int = 0

    def mean(self, metric: str, lang: str | None = None) -> float:
        rows = [q for q in self.queries if lang is None or q.lang == lang]
        return sum(getattr(q, metric) for q in rows) / len(rows) if rows else 0.0

    def score_separation(self) -> dict[str, float]:
        """Do scores mean the same across queries? AUC of relevant (label >= 1) vs irrelevant
        pair scores pooled over all queries, and each group's median score."""
        pos = [s for q in self.queries for s, g in zip(q.scores, q.labels) if g > 0]
        neg = [s for q in self.queries for s, g in zip(q.scores, q.labels) if g <= 0]
        return separation(pos, neg)

    def summary(self) -> dict[str, Any]:
        langs = sorted({q.lang for q in self.queries})
        return {
            **self.score_separation(),
            "queries": len(self.queries),
            "documents": self.documents,
            "recall@1": round(self.mean("recall_at_1"), 4),
            "mrr": round(self.mean("reciprocal_rank"), 4),
            "ndcg@5": round(self.mean("ndcg_at_5"), 4),
            "map": round(self.mean("average_precision"), 4),
            "seconds_per_query": round(self.mean("seconds"), 4),
            "by_lang": {
                lang: {
                    "queries": sum(1 for q in self.queries if q.lang == lang),
                    "recall@1": round(self.mean("recall_at_1", lang), 4),
                    "mrr": round(self.mean("reciprocal_rank", lang), 4),
                    "ndcg@5": round(self.mean("ndcg_at_5", lang), 4),
                }
                for lang in langs
            },
        }


def load_queries(jsonl_path: str | Path) -> list[dict[str, Any]]:
    """Read and check the labelled queries."""
    check_readable_stream(jsonl_path, "query file")
    with Path(jsonl_path).open("rb") as fh:  # lines end at "\n" only: a U+2028 in a query is text
        return _checked_queries(jsonl_path, text_lines(fh))


def _checked_queries(jsonl_path: str | Path, numbered: Iterable[tuple[int, str, Optional[str]]]) -> list[dict[str, Any]]:
    rows = []
    for n, line, problem in numbered:
        if problem:
            raise ValueError(f"{jsonl_path}:{n}: {problem}")
        if not line.strip():
            continue
        row = json.loads(line)
        if not row.get("query") and not row.get("query_image"):
            raise ValueError(f"{jsonl_path}:{n}: needs 'query' and/or 'query_image'")
        if not isinstance(row.get("relevant"), dict) or not row["relevant"]:
            raise ValueError(f"{jsonl_path}:{n}: 'relevant' must be a non-empty object")
        row.setdefault("id", f"line{n}")
        row.setdefault("lang", "image" if not row.get("query") else "?")
        rows.append(row)
    return rows


def gallery_files(image_dir: str | Path) -> list[Path]:
    from ..inputs import is_image_path

    return sorted(p for p in Path(image_dir).iterdir() if p.is_file() and is_image_path(p))


def _decode_or_path(path: Path) -> Any:
    from ..inputs import InputError, to_content

    try:
        return to_content(path)
    except InputError:
        return path


def evaluate(
    reranker: Any, jsonl_path: str | Path, image_dir: str | Path, *, split: str | None = None
) -> EvalReport:
    """Rank the whole gallery for every labelled query and score the rankings.

    ``split``: only the rows whose ``"split"`` field has this value (e.g. ``heldout``), so a set
    with a tuning half and a held-out half reports the held-out half alone.
    """
    image_dir = Path(image_dir)
    files = gallery_files(image_dir)
    if not files:
        raise ValueError(f"no images in {image_dir}")
    names = [p.name for p in files]
    queries = load_queries(jsonl_path)
    if split is not None:
        queries = [q for q in queries if q.get("split") == split]
        if not queries:
            raise ValueError(f"{jsonl_path}: no query has split {split!r}")
    missing = sorted({doc for q in queries for doc in q["relevant"]} - set(names))
    if missing:
        raise ValueError(f"labelled documents not in {image_dir}: {', '.join(missing)} (build the gallery first)")
    # Decode once; every query then reuses the same Content objects. A file that cannot be
    # decoded stays a path: the engine reports it per document instead of aborting the run.
    documents = [_decode_or_path(p) for p in files]
    report = EvalReport(documents=len(files))
    for row in queries:
        query: Any
        if row.get("query_image"):
            image_path = image_dir / row["query_image"]
            query = {"text": row["query"], "image": str(image_path)} if row.get("query") else image_path
        else:
            query = row["query"]
        start = time.perf_counter()
        results = reranker.rerank(query, documents)
        seconds = time.perf_counter() - start
        ranking = [names[r.index] for r in results]
        labels = {k: float(v) for k, v in row["relevant"].items()}
        report.queries.append(
            QueryResult(
                id=row["id"],
                lang=row["lang"],
                query=row.get("query") or f"<image {row['query_image']}>",
                ranking=ranking,
                scores=[round(float(r.score), 4) for r in results],
                labels=[labels.get(name, 0.0) for name in ranking],
                recall_at_1=recall_at_k(ranking, labels, 1),
                reciprocal_rank=reciprocal_rank(ranking, labels),
                ndcg_at_5=ndcg_at_k(ranking, labels, 5),
                average_precision=average_precision(ranking, labels),
                seconds=seconds,
            )
        )
    return report


def format_report(report: EvalReport, *, per_query: bool = True) -> str:
    lines = []
    if per_query:
        lines.append(f"{'id':<5} {'lang':<6} {'R@1':>4} {'RR':>5} {'nDCG@5':>6}  {'top-1 (score)':<30} query")
        for q in report.queries:
            top = f"{q.ranking[0]} ({q.scores[0]:.2f})" if q.ranking else "-"
            lines.append(
                f"{q.id:<5} {q.lang:<6} {q.recall_at_1:>4.0f} {q.reciprocal_rank:>5.2f} {q.ndcg_at_5:>6.3f}  {top:<30} {q.query}"
            )
        lines.append("")
    s = report.summary()
    lines.append(f"{s['queries']} queries over {s['documents']} images")
    lines.append(f"Recall@1 {s['recall@1']:.3f}   MRR {s['mrr']:.3f}   nDCG@5 {s['ndcg@5']:.3f}   MAP {s['map']:.3f}")
    if "auc" in s:
        lines.append(
            f"scores: AUC {s['auc']:.3f}   median relevant {s['median_relevant']:.3f}   "
            f"median irrelevant {s['median_irrelevant']:.3f}"
        )
    for lang, m in s["by_lang"].items():
        lines.append(
            f"  {lang:<6} n={m['queries']:<3} Recall@1 {m['recall@1']:.3f}   MRR {m['mrr']:.3f}   nDCG@5 {m['ndcg@5']:.3f}"
        )
    lines.append(f"{s['seconds_per_query'] * 1000:.0f} ms per query (whole gallery)")
    return "\n".join(lines)


def metric_rows(
    report: EvalReport, queries: Mapping[str, Mapping[str, Any]], k: int
) -> tuple[list[dict[str, Any]], list[float], list[float]]:
    """Per query set (``all`` first, then each ``lang``): nDCG@k, MRR, MAP, Recall@1, Recall@k.

    Also returns every (score, graded label) pair of the report, for the precision-recall curve.
    """
    by_set: dict[str, list[Any]] = {}
    scores: list[float] = []
    labels: list[float] = []
    for q in report.queries:
        grades = {d: float(g) for d, g in queries[q.id]["relevant"].items()}
        by_set.setdefault(q.lang, []).append((q, grades))
        scores.extend(q.scores)
        labels.extend(grades.get(d, 0.0) for d in q.ranking)
    rows = []
    for name, members in [("all", [m for ms in by_set.values() for m in ms]), *sorted(by_set.items())]:
        n = len(members)
        rows.append({
            "set": name, "queries": n,
            f"nDCG@{k}": sum(ndcg_at_k(q.ranking, g, k) for q, g in members) / n,
            "MRR": sum(reciprocal_rank(q.ranking, g) for q, g in members) / n,
            "MAP": sum(average_precision(q.ranking, g) for q, g in members) / n,
            "Recall@1": sum(recall_at_k(q.ranking, g, 1) for q, g in members) / n,
            f"Recall@{k}": sum(recall_at_k(q.ranking, g, k) for q, g in members) / n,
            **EvalReport([q for q, _ in members]).score_separation(),
        })
    return rows, scores, labels
