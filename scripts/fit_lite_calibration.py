#!/usr/bin/env python3
"""Fit the lite backend's concept calibration on the TUNING half; check it on the held-out half.

    python scripts/fit_lite_calibration.py [--plot docs/lite-reliability.png]

1. Scores every (query, photo) pair of both photo sets (``examples/eval/photos_eval.jsonl`` and
   ``photos2_eval.jsonl``, photos fetched by ``make eval``) with the lite backend
   and reads each pair's concept evidence (``evidence["concept_evidence"]``, see
   ``lychee_rerank.backends.lite.concepts``).
2. Fits ``p(relevant) = 1 / (1 + exp(-(z - centre) / width))`` by maximum likelihood (a grid
   search, see ``fit_logistic``; label >= 1 counts as relevant) on the tuning half only, once for
   the queries matched on their own and once for those matched with an English gloss
   (``evidence["query_gloss"]``), and prints the constants to put in ``calibration.CONCEPT`` and
   ``calibration.CONCEPT_GLOSSED``.
3. Draws the reliability diagram (mean predicted score vs observed share of relevant pairs, per
   score bin) of the backend's actual scores on the held-out halves.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))


def fit_logistic(z: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(centre, width) of the maximum-likelihood logistic curve of y on z, width > 0.

    A grid over centre and width refined once around the best cell: robust where Newton's
    method overshoots on nearly separable data, and it can only return an increasing curve.
    """
    z, y = np.asarray(z, dtype=np.float64), np.asarray(y, dtype=np.float64)

    def loglik(centre: np.ndarray, width: np.ndarray) -> np.ndarray:
        t = (z[None, :] - centre[:, None]) / width[:, None]
        # log sigmoid(t) for y=1, log sigmoid(-t) for y=0, computed stably
        return -(y[None, :] * np.logaddexp(0, -t) + (1 - y[None, :]) * np.logaddexp(0, t)).sum(axis=1)

    lo, hi = float(np.percentile(z, 1)), float(np.percentile(z, 99.9))
    centres, widths = np.linspace(lo, hi, 120), np.geomspace(0.05, 5.0, 60)
    for _ in range(2):
        c, w = (a.ravel() for a in np.meshgrid(centres, widths))
        best = int(np.argmax(loglik(c, w)))
        bc, bw = float(c[best]), float(w[best])
        step_c = centres[1] - centres[0]
        centres = np.linspace(bc - step_c, bc + step_c, 41)
        widths = np.geomspace(bw / 1.1, bw * 1.1, 41)
    # Decreasing evidence would need a negative width: check the data goes the right way.
    if np.corrcoef(z, y)[0, 1] <= 0:
        raise RuntimeError("evidence is not positively related to relevance: no monotone fit")
    return bc, bw


def score_split(backend, rows, docs, names):  # type: ignore[no-untyped-def]
    """Per pair: concept evidence, relevance label, score, and whether the query was glossed."""
    from lychee_rerank.inputs import to_content

    z, y, s, g = [], [], [], []
    for row in rows:
        results = backend.score_pairs(to_content(row["query"]), docs)
        for name, r in zip(names, results):
            z.append(float(r.evidence.get("concept_evidence", -10.0)))
            y.append(1.0 if row["relevant"].get(name, 0) > 0 else 0.0)
            s.append(float(r.score))
            g.append("query_gloss" in r.evidence)
    return np.asarray(z), np.asarray(y), np.asarray(s), np.asarray(g, dtype=bool)


def reliability(scores: np.ndarray, labels: np.ndarray, out: Path, title: str) -> list[tuple[float, float, int]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges = np.linspace(0, 1, 11)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (scores >= lo) & ((scores < hi) if hi < 1 else (scores <= hi))
        if mask.sum():
            rows.append((float(scores[mask].mean()), float(labels[mask].mean()), int(mask.sum())))
    fig, ax = plt.subplots(figsize=(5, 5), dpi=110)
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    ax.plot([r[0] for r in rows], [r[1] for r in rows], "o-", color="C0", label="lite (held-out pairs)")
    for x, yv, n in rows:
        ax.annotate(str(n), (x, yv), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xlabel("predicted relevance (lite score, binned by 0.1)")
    ax.set_ylabel("observed share of relevant pairs")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return rows


#: (queries, photos) of each photo set: tuning halves fit the curves, held-out halves draw the diagram.
SETS = (
    (ROOT / "examples" / "eval" / "photos_eval.jsonl", ROOT / "examples" / "eval_photos"),
    (ROOT / "examples" / "eval" / "photos2_eval.jsonl", ROOT / "examples" / "eval_photos2"),
)


def score_sets(backend, split: str):  # type: ignore[no-untyped-def]
    """score_split over every photo set's ``split`` half, concatenated."""
    from lychee_rerank.inputs import to_content
    from lychee_rerank.jobs.eval import gallery_files, load_queries

    parts = []
    for queries, photos in SETS:
        files = gallery_files(photos)
        rows = [r for r in load_queries(queries) if r.get("split") == split]
        parts.append(score_split(backend, rows, [to_content(p) for p in files], [p.name for p in files]))
    return tuple(np.concatenate(column) for column in zip(*parts))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "lite-reliability.png")
    parser.add_argument("--reuse", action="store_true", help="reuse the tuning pairs scored by the last run")
    parser.add_argument("--fit-only", action="store_true", help="print the fitted constants, skip the held-out half")
    args = parser.parse_args()

    from lychee_rerank import backends
    from lychee_rerank.jobs.eval import separation

    backend = backends.create("lite")
    store = Path(backend.cache.directory) / "calibration-pairs.npz"
    if args.reuse and store.exists():
        data = np.load(store)
        z_t, y_t, g_t = data["z_t"], data["y_t"], data["g_t"]
    else:
        z_t, y_t, _, g_t = score_sets(backend, "tuning")
        store.parent.mkdir(parents=True, exist_ok=True)
        np.savez(store, z_t=z_t, y_t=y_t, g_t=g_t)
    fits = {}
    for name, mask in (("CONCEPT", ~g_t), ("CONCEPT_GLOSSED", g_t)):
        fits[name] = fit_logistic(z_t[mask], y_t[mask])
        print(f"tuning half, {name}: {int(mask.sum())} pairs, {int(y_t[mask].sum())} relevant")
    for name, (centre, width) in fits.items():
        print(f"{name} = Logistic(centre={centre:.3f}, width={width:.3f})")
    if args.fit_only:
        return 0
    _, y_h, s_h, _ = score_sets(backend, "heldout")
    scores = separation(s_h[y_h > 0], s_h[y_h == 0])  # the figures `lychee eval` prints
    bins = reliability(
        s_h, y_h, args.plot, f"lite backend, held-out halves of both sets: {len(y_h)} pairs, AUC {scores['auc']:.3f}"
    )
    print(json.dumps({
        "heldout_pairs": len(y_h), **scores,
        "bins": [{"mean_predicted": round(a, 3), "observed": round(b, 3), "pairs": n} for a, b, n in bins],
    }, indent=1))
    print(f"wrote {args.plot}")
    return 0 if all(math.isfinite(c) for c, _ in fits.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
