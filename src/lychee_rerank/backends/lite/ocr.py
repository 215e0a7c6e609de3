"""Text in images: PP-OCRv4 (Chinese + English) through RapidOCR 1.4.4.

``rapidocr-onnxruntime==1.4.4`` carries the detection, direction and recognition ONNX models
inside the wheel (Apache-2.0); later ``rapidocr`` releases fetch models at run time, which this
backend must never do. Recognition only runs on the boxes detection found, so a photo without
text costs one detection pass.
"""

from __future__ import annotations

import threading
import unicodedata
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

#: Longest side the text detector sees. Detection is the expensive step and its cost grows
#: with the area; at 640 px a 1920x1080 photo costs ~0.1 s on one core instead of ~0.25 s at
#: 960 px, and text a person would search for (a sign, a slide title) is still found.
DEFAULT_DET_SIDE = 640
#: Recognition confidence below which a line is dropped (short lines need more: a lone "小"
#: at 0.64 is usually texture, not text).
MIN_CONFIDENCE = 0.6
MIN_CONFIDENCE_SHORT = 0.85


@dataclass(frozen=True)
class OcrLine:
    text: str
    confidence: float


@dataclass
class OcrResult:
    lines: list[OcrLine]
    boxes: int
    """Text boxes detection found (0: nothing, and then recognition did not run)."""

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)


class Reader:
    """RapidOCR's models, loaded on first use, one image at a time.

    Detection runs on a copy reduced to ``det_side``; the boxes are scaled back and the lines
    are cut out of the image as given (the backend passes its 960 px working copy), so small
    print is recognised at the higher resolution. Recognition only runs when detection found
    something. This uses RapidOCR 1.4.4's stages (``text_det``, ``get_crop_img_list``,
    ``text_cls``, ``text_rec``) directly, which is why the version is pinned.
    """

    def __init__(self, *, det_side: int = DEFAULT_DET_SIDE, threads: int | None = 1) -> None:
        self.det_side = det_side
        self.threads = threads
        self._engine: Any = None
        self._lock = threading.Lock()
        self.recognitions = 0
        """Images that went through recognition (tests check that text-free ones do not)."""

    def _load(self) -> Any:
        from rapidocr_onnxruntime import RapidOCR

        # limit_type "max": never upscale for detection (the default "min" blows a small image
        # up to 736 px on its short side, which is slow and invents text in textures).
        kwargs: dict[str, Any] = {"det_limit_type": "max", "det_limit_side_len": self.det_side}
        if self.threads:
            # ONNX Runtime's spinning thread pool suffers like OpenMP on a shared 2-core box.
            kwargs.update(intra_op_num_threads=self.threads, inter_op_num_threads=1)
        return RapidOCR(**kwargs)

    def read(self, image: Image.Image) -> OcrResult:
        rgb = image.convert("RGB")
        if min(rgb.size) < 8:
            return OcrResult(lines=[], boxes=0)
        scale = min(1.0, self.det_side / max(rgb.size))
        small = rgb
        if scale < 1:
            size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
            small = rgb.resize(size, Image.Resampling.BILINEAR)
        full_bgr = np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])
        small_bgr = np.ascontiguousarray(np.asarray(small)[:, :, ::-1])
        with self._lock:
            if self._engine is None:
                self._engine = self._load()
            engine = self._engine
            boxes, _ = engine.text_det(small_bgr)
            if boxes is None or len(boxes) == 0:
                return OcrResult(lines=[], boxes=0)
            ordered = engine.sorted_boxes(np.asarray(boxes))
            fx, fy = rgb.width / small.width, rgb.height / small.height
            scaled = [(np.asarray(box, dtype=np.float32) * np.array([fx, fy], dtype=np.float32)) for box in ordered]
            crops = engine.get_crop_img_list(full_bgr, scaled)
            crops, _, _ = engine.text_cls(crops)
            recognised, _ = engine.text_rec(crops)
            self.recognitions += 1
        lines = []
        for item in recognised or []:
            text, conf = _clean(str(item[0])), float(item[1])
            if not text:
                continue
            needed = MIN_CONFIDENCE_SHORT if len(text) <= 2 else MIN_CONFIDENCE
            if conf >= needed:
                lines.append(OcrLine(text, round(conf, 4)))
        return OcrResult(lines=lines, boxes=len(scaled))


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).strip()
    if not any(ch.isalnum() for ch in text):
        return ""
    return text
