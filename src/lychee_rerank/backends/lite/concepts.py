"""Zero-shot image-text matching from an ImageNet classifier and a text embedding (ConSE).

ConSE (Norouzi et al., 2014) reads an image as the probability-weighted mix of its classes'
text embeddings. Here the "classes" are a concept vocabulary: the 1000 ImageNet classes, the
coarse bilingual groups of :mod:`.taxonomy` (hypernyms such as "bird 鸟" over 59 bird
classes, with Chinese names) and a few scene words read from pixel statistics (sky, night,
greenery...; ImageNet has no class for them) and, last, the Chinese names of 766 classes
(``data/imagenet_classes_zh.json``, from CC-CEDICT). Matching happens between each concept and the
query in multilingual-e5 space, so a Chinese query reaches English class names too. A class is
matched through its label and its label with its WordNet definition (see
:data:`DEFINITION_WEIGHT`), and a Chinese query through itself and its English gloss (see
:data:`GLOSS_WEIGHT` and :mod:`.glossary`).

Three normalisations make the evidence comparable across queries and images:

* **query side**: a query's cosine to each concept is turned into a z-score over the whole
  vocabulary, so "how much more this concept fits the query than concepts in general" - e5's
  raw cosines bunch between 0.7 and 0.9 and depend on the query's language;
* **image side**: an image's evidence for a query is standardised by the same evidence for
  every vocabulary concept taken as a query (a per-image mean and spread). An image whose
  classes are vague ("web site", "jigsaw puzzle") resembles many queries a little; after this
  it no longer wins every query (the "hub" effect, cf. CSLS in cross-lingual retrieval);
* the two are independent of the other documents in the batch, so a pair's score never
  depends on what else is ranked with it.

The concept embeddings are computed once from the shipped e5 model and shipped as package data
(``data/lite_concepts.npz``, float16), because embedding ~1100 labels takes ~30 s on a small CPU;
``python -m lychee_rerank.backends.lite.concepts --build`` recomputes it and a test checks that
the shipped vectors still equal what the model gives.
"""

from __future__ import annotations

import argparse
import json
import threading
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from .glossary import has_chinese
from .taxonomy import GROUPS
from .vision import imagenet_classes

if TYPE_CHECKING:
    from .text import Embedder

#: Scene words ImageNet has no class for, with the pixel rule that gives their strength (0-1):
#: see :func:`scene_strengths`.
SCENES: tuple[tuple[str, str], ...] = (
    ("sky", "sky 天空 蓝天"),
    ("clouds", "clouds 云 白云"),
    ("night", "night 夜晚 夜景"),
    ("sunset", "sunset 日落 晚霞"),
    ("fog", "fog 雾"),
    ("greenery", "greenery, plants, forest 植物 绿色 森林"),
    ("water", "water 水 湖"),
    ("sand", "sand 沙子 沙滩"),
    ("snow", "snow 雪"),
)
#: How much a group (hypernym) counts next to its member classes (its probability is the sum of
#: its classes'). More than a class: the group's name is often the word people type, and for
#: Chinese queries it is the only Chinese text in the vocabulary. Chosen on the tuning half
#: (0.25-3; 1.5 best, Recall@1 0.75 vs 0.73 at 1.0).
GROUP_WEIGHT = 1.5
#: How much a class's Chinese name (a concept of its own, see :func:`imagenet_names_zh`) counts
#: next to the class's English name. Chosen on the tuning half (0-2; 0.75 best: Recall@1 0.761
#: vs 0.744 at 0.5 and 1.0, 0.692 at 1.5).
ZH_WEIGHT = 0.75
#: The same for a query with no Chinese characters. There the Chinese name is only a second,
#: noisier vote for a class whose English name already speaks; at 0.75 it let images with many
#: named runner-up classes pass the right one (English Recall@1 on the tuning half 0.744 before
#: the names, 0.667 with them at 0.75). Chosen on the tuning half (0-0.75; 0.5 and 0.6 best:
#: English Recall@1 0.744, nDCG@5 0.769 vs 0.733 at 0.75, 0.701 at 0; other languages unchanged).
ZH_WEIGHT_NO_CJK = 0.5
#: How much a scene word counts at full strength, relative to an object class at probability 1.
SCENE_WEIGHT = 0.35
#: Classes kept per image (the rest of the probability mass is spread thin and adds only noise).
TOP_CLASSES = 20
#: Weight of a Chinese query's English gloss (:mod:`.glossary`) next to the query itself in
#: its concept relevance. Chosen on the tuning half (Chinese queries, nDCG@5: 0.718 without the
#: gloss; 0.846, 0.832, 0.805 at 0.35, 0.5, 0.65; 0.679 for the gloss alone, not standardised
#: again); 0.5, the middle of that plateau, weighs both views equally.
GLOSS_WEIGHT = 0.5
#: Exponent on class probabilities: < 1 lets runners-up speak (ImageNet splits one object over
#: sibling classes), 1 is plain ConSE.
PROB_POWER = 0.5

#: How much a class's vector leans towards its label with its WordNet definition ("ram, tup:
#: uncastrated adult male sheep") rather than its bare label. A bare label can be ambiguous or
#: unknown to e5-small: "ram, tup" reads as computer memory. The definition alone would let generic
#: words ("architectural", "any of various") pull classes together; half and half keeps the label
#: in charge. Chosen on the tuning halves of both photo sets: weights 0.3, 0.5, 0.7 gave nDCG@5 0.808,
#: 0.812, 0.809 on the first set (0.810 without definitions) and 0.591, 0.589, 0.580 on the
#: second (0.554 without).
DEFINITION_WEIGHT = 0.5

DATA_FILE = "data/lite_concepts.npz"
ZH_FILE = "data/imagenet_classes_zh.json"
DEFINITIONS_FILE = "data/imagenet_definitions.json"


@lru_cache(maxsize=1)
def imagenet_names_zh() -> dict[int, str]:
    """Class index -> Chinese name, for the classes the shipped list names."""
    path = resources.files("lychee_rerank").joinpath(ZH_FILE)
    data = json.loads(path.read_text(encoding="utf-8"))
    return {int(i): str(name) for i, name in data["names"].items()}


@lru_cache(maxsize=1)
def imagenet_definitions() -> list[str]:
    """WordNet 3.0 definition of each class, by class index (``scripts/build_imagenet_definitions.py``)."""
    path = resources.files("lychee_rerank").joinpath(DEFINITIONS_FILE)
    return [str(d) for d in json.loads(path.read_text(encoding="utf-8"))["definitions"]]


def defined_classes() -> list[str]:
    """Each class label with its definition, the second text a class vector is made from."""
    return [f"{label}: {definition}" for label, definition in zip(imagenet_classes(), imagenet_definitions())]


def concept_labels() -> list[str]:
    """Text of every concept, in vector order: classes, groups, scenes."""
    zh = imagenet_names_zh()
    return [*imagenet_classes(), *(g.label for g in GROUPS), *(text for _, text in SCENES), *zh.values()]


@lru_cache(maxsize=1)
def _membership() -> np.ndarray:
    """(n_groups, 1000) 0/1 matrix: which classes each group sums over."""
    m = np.zeros((len(GROUPS), 1000), dtype=np.float64)
    for i, g in enumerate(GROUPS):
        m[i, list(g.classes)] = 1.0
    return m


def scene_strengths(image: Image.Image) -> np.ndarray:
    """(len(SCENES),) strengths in 0-1 from a 64 px thumbnail's HSV statistics.

    Fixed rules, no learning: sky = blue-ish, bright pixels in the top third; clouds = bright
    unsaturated pixels in the top third next to sky; night = a dark image with some bright
    spots; sunset = warm, saturated top half; fog = bright, flat, unsaturated image; greenery =
    green share; water = blue/cyan share in the bottom half; sand = pale warm bottom; snow =
    white bottom half.
    """
    thumb = image.convert("RGB").copy()
    thumb.thumbnail((64, 64), Image.Resampling.BILINEAR)
    hsv = np.asarray(thumb.convert("HSV"), dtype=np.float32) / 255.0
    h, s, v = hsv[..., 0] * 360.0, hsv[..., 1], hsv[..., 2]
    rows = h.shape[0]
    top, bottom = slice(0, max(1, rows // 3)), slice(rows // 2, rows)
    blue = (h >= 185) & (h < 250) & (s > 0.2) & (v > 0.45)
    pale = (s < 0.15) & (v > 0.75)
    warm = ((h < 45) | (h >= 330)) & (s > 0.45) & (v > 0.35)
    green = (h >= 68) & (h < 165) & (s > 0.2) & (v > 0.15)
    water = (h >= 170) & (h < 250) & (s > 0.15) & (v > 0.2)
    sandy = (h >= 20) & (h < 55) & (s > 0.12) & (s < 0.5) & (v > 0.55)
    sky_share = float(blue[top].mean())
    dark = float((v < 0.22).mean())
    bright_spots = float((v > 0.7).mean())
    # A photo on a white background (a product shot) is not fog or snow.
    white_border = float(np.concatenate([pale[0], pale[-1], pale[:, 0], pale[:, -1]]).mean())
    flatness = 1.0 - min(1.0, float(v.std()) / 0.25)
    out = {
        "sky": _ramp(sky_share, 0.15, 0.6),
        "clouds": _ramp(float(pale[top].mean()), 0.1, 0.4) * _ramp(sky_share, 0.05, 0.3),
        "night": _ramp(dark, 0.45, 0.8) * _ramp(bright_spots, 0.003, 0.03),
        "sunset": _ramp(float(warm[top].mean()), 0.25, 0.6) * _ramp(float(v[top].mean()), 0.3, 0.6),
        "fog": _ramp(float(pale.mean()) + 0.5 * float((s < 0.12).mean()), 0.6, 0.95) * flatness * (1 - white_border),
        "greenery": _ramp(float(green.mean()), 0.15, 0.5),
        "water": _ramp(float(water[bottom].mean()), 0.2, 0.6),
        "sand": _ramp(float(sandy[bottom].mean()), 0.25, 0.6),
        "snow": _ramp(float(pale[bottom].mean()), 0.35, 0.7) * (1 - white_border),
    }
    return np.asarray([out[name] for name, _ in SCENES], dtype=np.float64)


def _ramp(x: float, lo: float, hi: float) -> float:
    return float(min(1.0, max(0.0, (x - lo) / (hi - lo))))


def zh_weight_for(query: str | None) -> float:
    """Weight of the classes' Chinese names for this query: :data:`ZH_WEIGHT` if the query has
    Chinese characters, else :data:`ZH_WEIGHT_NO_CJK`."""
    return ZH_WEIGHT if has_chinese(query) else ZH_WEIGHT_NO_CJK


def concept_weights(class_probs: dict[int, float], scenes: np.ndarray, zh_weight: float | None = None) -> np.ndarray:
    """(n_concepts,) how much each concept speaks for the image (ConSE weights, sum 1).

    ``class_probs``: the image's top classes (index -> probability); ``scenes``: scene
    strengths. Groups get their summed member probability times :data:`GROUP_WEIGHT`; the
    classes' Chinese names their class's weight times ``zh_weight`` (default
    :data:`ZH_WEIGHT`; see :func:`zh_weight_for`).
    """
    if zh_weight is None:
        zh_weight = ZH_WEIGHT
    probs = np.zeros(1000, dtype=np.float64)
    for index, prob in class_probs.items():
        probs[int(index)] = float(prob)
    groups = _membership() @ probs
    named = list(imagenet_names_zh())
    w = np.concatenate(
        [
            probs**PROB_POWER,
            GROUP_WEIGHT * groups**PROB_POWER,
            SCENE_WEIGHT * np.asarray(scenes, dtype=np.float64),
            zh_weight * probs[named] ** PROB_POWER,
        ]
    )
    total = w.sum()
    return w / total if total > 0 else w


@dataclass
class ConceptSpace:
    """The concept vocabulary's e5 vectors and the derived relevance statistics."""

    labels: list[str]
    vectors: np.ndarray
    """(n, 384) L2-normalised e5 passage embeddings, float32 (from float16 data)."""
    core: int = 0
    """How many leading concepts are the English-or-bilingual core (classes, groups, scenes),
    before the classes' Chinese names; 0: all of them."""

    @property
    def core_vectors(self) -> np.ndarray:
        """The core concepts' vectors: the fixed reference the text gate was calibrated on
        (adding ~770 Chinese names would move a Chinese query's baseline, not its meaning)."""
        return self.vectors[: self.core or len(self.vectors)]

    def __post_init__(self) -> None:
        sims = self.vectors @ self.vectors.T
        # Each concept as a query: its z-scored relevance to every concept (rows). Used for the
        # per-image reference statistics (what an image's evidence looks like for queries in
        # general).
        self.reference = _zscore_rows(sims)

    def query_relevance(self, query_vector: np.ndarray, gloss_vector: np.ndarray | None = None) -> np.ndarray:
        """(n,) z-scores of the query's cosine to each concept over the whole vocabulary.

        With ``gloss_vector`` (the e5 query vector of the query's English gloss, see
        :mod:`.glossary`), the query's and the gloss's z-scores are averaged with weight
        :data:`GLOSS_WEIGHT`, then standardised again. Standardising again keeps the relevance on
        the scale that every concept-as-query has in the per-image reference. An average of two
        z-score vectors has a spread below 1, so without it a Chinese query's evidence would
        shrink towards the image's mean.
        """
        relevance = _zscore_rows((self.vectors @ np.asarray(query_vector, dtype=np.float32))[None, :])
        if gloss_vector is not None:
            glossed = _zscore_rows((self.vectors @ np.asarray(gloss_vector, dtype=np.float32))[None, :])
            relevance = _zscore_rows((1.0 - GLOSS_WEIGHT) * relevance + GLOSS_WEIGHT * glossed)
        return relevance[0]

    def image_reference(self, weights: np.ndarray) -> tuple[float, float]:
        """Mean and spread of the image's evidence over every concept taken as a query."""
        # Only the image's few non-zero concepts (top classes, their groups and names, scenes)
        # count: a sparse product keeps this ~20x cheaper than the full (n, n) one per image.
        nz = np.flatnonzero(weights)
        ev = self.reference[:, nz] @ weights[nz]
        return float(ev.mean()), float(max(ev.std(), 1e-6))

    def evidence(self, weights: np.ndarray, relevance: np.ndarray, reference: tuple[float, float]) -> float:
        """The image's ConSE evidence for a query, standardised against the image's own mean and
        spread (so a "hub" image does not score high for everything)."""
        mean, spread = reference
        return (float(weights @ relevance) - mean) / spread


@lru_cache(maxsize=4096)
def image_concepts(
    class_probs: tuple[tuple[int, float], ...], scenes: tuple[float, ...], zh_weight: float
) -> tuple[np.ndarray, tuple[float, float]]:
    """An image's concept weights (:func:`concept_weights`, read-only) and its reference (mean,
    spread; :meth:`ConceptSpace.image_reference`), memoised. Both depend on the image and on the
    query's Chinese-name weight only, not on the query, so a gallery reranked for many queries
    computes them once per image instead of once per pair (~0.4 ms each)."""
    weights = concept_weights(dict(class_probs), np.asarray(scenes, dtype=np.float64), zh_weight)
    weights.setflags(write=False)
    return weights, concept_space().image_reference(weights)


def _zscore_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=1, keepdims=True)
    std = np.maximum(x.std(axis=1, keepdims=True), 1e-9)
    return (x - mean) / std


_lock = threading.Lock()
_space: ConceptSpace | None = None


def concept_space() -> ConceptSpace:
    """The shipped concept vectors (loaded once per process)."""
    global _space
    with _lock:
        if _space is None:
            path = resources.files("lychee_rerank").joinpath(DATA_FILE)
            with path.open("rb") as handle:
                data = np.load(handle)
                labels = [str(x) for x in data["labels"]]
                vectors = data["vectors"].astype(np.float32)
            if labels != concept_labels():
                raise RuntimeError(f"{DATA_FILE} is out of date: rebuild it (python -m {__name__} --build)")
            _space = ConceptSpace(labels, vectors, core=1000 + len(GROUPS) + len(SCENES))
        return _space


def build(out: Path) -> None:
    """Embed every concept label with the shipped e5 model and write the data file."""
    from .text import Embedder

    labels = concept_labels()
    vectors = concept_vectors(Embedder(threads=2), labels).astype(np.float16)
    np.savez_compressed(out, labels=np.asarray(labels), vectors=vectors)


def concept_vectors(embedder: Embedder, labels: list[str]) -> np.ndarray:
    """(n, 384) unit vectors of the concepts. A class's vector mixes its label's and its
    defined label's e5 passages (:data:`DEFINITION_WEIGHT`); every other concept is its text's."""
    vectors = embedder.passages(labels).astype(np.float32)
    defined = embedder.passages(defined_classes()).astype(np.float32)
    mixed = (1.0 - DEFINITION_WEIGHT) * vectors[:1000] + DEFINITION_WEIGHT * defined
    vectors[:1000] = mixed / np.linalg.norm(mixed, axis=1, keepdims=True)
    return vectors


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Rebuild the shipped concept vectors.")
    parser.add_argument("--build", action="store_true", required=True)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / DATA_FILE)
    args = parser.parse_args()
    build(args.out)
    print(f"wrote {args.out}")
