"""What the lite backend knows about one image, independent of any query.

Everything here depends on the pixels only, so it is computed once per image (content hash)
and cached on disk (:mod:`.cache`); ranking the same gallery against a new query then costs one
query embedding and some arithmetic.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .colours import ColourShare, dominant_colours
from .ocr import OcrLine
from .vision import Tag


@dataclass
class ImageAnalysis:
    tags: list[Tag]
    """Top ImageNet classes with probabilities."""
    groups: list[Tag]
    """Coarse bilingual groups (e.g. "cat 猫") with summed probabilities."""
    ocr: list[OcrLine]
    ocr_boxes: int
    """Text boxes OCR detection found; 0 when it found nothing (recognition was then skipped)."""
    colour_hist: np.ndarray
    """(12,) share of pixels per basic colour name (:data:`.colours.COLOURS` order)."""
    embedding: np.ndarray
    """(1280,) L2-normalised EfficientNet-Lite0 features, for image-to-image similarity."""
    label_vectors: np.ndarray
    """(len(tags) + len(groups), 384) e5 passage embeddings of the tag and group labels."""
    ocr_vector: np.ndarray | None = None
    """(384,) e5 passage embedding of the OCR text, if there is any."""
    class_probs: list[tuple[int, float]] = field(default_factory=list)
    """The top ImageNet classes as (index, probability), for the concept (ConSE) evidence."""
    scenes: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Scene-word strengths (:data:`.concepts.SCENES` order) from pixel statistics."""
    seconds: float = 0.0
    """Wall time the analysis took when it was computed (not when read from the cache)."""
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ocr_text(self) -> str:
        return "\n".join(line.text for line in self.ocr)

    @property
    def colours(self) -> list[ColourShare]:
        return dominant_colours(self.colour_hist)

    @property
    def labels(self) -> list[Tag]:
        """Tags then groups, in ``label_vectors`` row order."""
        return [*self.tags, *self.groups]

    def to_json(self) -> dict[str, Any]:
        return {
            "tags": [[t.label, t.prob, t.index] for t in self.tags],
            "groups": [[g.label, g.prob] for g in self.groups],
            "ocr": [[line.text, line.confidence] for line in self.ocr],
            "ocr_boxes": self.ocr_boxes,
            "colour_hist": [round(float(x), 5) for x in self.colour_hist],
            "embedding": pack_array(self.embedding),
            "label_vectors": pack_array(self.label_vectors),
            "ocr_vector": pack_array(self.ocr_vector) if self.ocr_vector is not None else None,
            "class_probs": [[int(i), round(float(p), 5)] for i, p in self.class_probs],
            "scenes": [round(float(x), 4) for x in self.scenes],
            "seconds": round(self.seconds, 4),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ImageAnalysis":
        tags = [Tag(str(label), float(prob), int(index)) for label, prob, index in data["tags"]]
        groups = [Tag(str(label), float(prob)) for label, prob in data["groups"]]
        label_vectors = unpack_array(data["label_vectors"]).reshape(len(tags) + len(groups), -1)
        return cls(
            tags=tags,
            groups=groups,
            ocr=[OcrLine(str(text), float(conf)) for text, conf in data["ocr"]],
            ocr_boxes=int(data["ocr_boxes"]),
            colour_hist=np.asarray(data["colour_hist"], dtype=np.float64),
            embedding=unpack_array(data["embedding"]),
            label_vectors=label_vectors,
            ocr_vector=unpack_array(data["ocr_vector"]) if data.get("ocr_vector") else None,
            class_probs=[(int(i), float(p)) for i, p in data.get("class_probs", [])],
            scenes=np.asarray(data.get("scenes", []), dtype=np.float64),
            seconds=float(data.get("seconds", 0.0)),
            timings=dict(data.get("timings", {})),
        )


def pack_array(array: np.ndarray) -> dict[str, Any]:
    """float16 + base64: 1280 floats in ~3.4 kB of JSON, precision far beyond what ranking needs."""
    arr = np.asarray(array, dtype=np.float16)
    return {"shape": list(arr.shape), "f16": base64.b64encode(arr.tobytes()).decode("ascii")}


def unpack_array(data: dict[str, Any]) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(data["f16"]), dtype=np.float16)
    return raw.astype(np.float32).reshape(data["shape"])
