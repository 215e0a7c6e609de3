"""What the UI computes, kept out of the Streamlit script so it can be tested directly."""

from __future__ import annotations

import base64
import hashlib
import html
import io
from dataclasses import dataclass
from typing import Sequence

from PIL import Image

from ..inputs import Content, ImageLimits, InputError, to_content
from ..results import RerankResult

THUMB_SIZE = (360, 360)
GOLD = (212, 175, 55)


@dataclass(frozen=True)
class Upload:
    """A decoded upload, cached by content digest so re-ranking never decodes it again."""

    name: str
    digest: str
    content: Content | None
    error: str | None
    thumbnail_uri: str | None
    full_uri: str | None = None
    """Full-size image, encoded once at upload rather than on every rerun."""


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def image_data_uri(image: Image.Image, max_size: tuple[int, int] | None = THUMB_SIZE, quality: int = 85) -> str:
    img = image.copy()
    if max_size is not None:
        img.thumbnail(max_size)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def decode_upload(name: str, data: bytes, limits: ImageLimits | None = None) -> Upload:
    """Decode one uploaded file; a corrupt or non-image file becomes an error, never an exception."""
    key = digest(data)
    try:
        content = to_content(data, limits=limits)
    except InputError as exc:
        message = str(exc).replace("<bytes>: ", "").replace("<bytes>", "file")
        return Upload(name, key, None, message, None)
    content = Content(image=content.image, source=name, image_hash=content.image_hash, caption=content.caption)
    return Upload(name, key, content, None, image_data_uri(content.image), image_data_uri(content.image, max_size=None))


def winner_emphasis(results: Sequence[RerankResult]) -> float:
    """0..1: how clearly the winner beats the runner-up (0 when nearly tied, 1 when far ahead)."""
    scored = [r for r in results if r.error is None]
    if not scored:
        return 0.0
    if len(scored) == 1:
        return 1.0
    margin = scored[0].raw_score - scored[1].raw_score
    return max(0.0, min(1.0, margin / 0.2))


def card_html(result: RerankResult, thumbnail_uri: str, full_uri: str, *, winner: bool, emphasis: float, labels: dict[str, str]) -> str:
    """One result card. Clicking the thumbnail opens the full-size image (a <details> toggle)."""
    if winner:
        width = 2 + round(4 * emphasis)
        alpha = 0.35 + 0.65 * emphasis
        border = f"{width}px solid rgba({GOLD[0]},{GOLD[1]},{GOLD[2]},{alpha:.2f})"
        shadow = f"0 0 {4 + round(12 * emphasis)}px rgba({GOLD[0]},{GOLD[1]},{GOLD[2]},{alpha:.2f})"
    else:
        border, shadow = "1px solid rgba(128,128,128,0.35)", "none"
    tie = f' <span class="lychee-tie">{html.escape(labels["near_tie"])}</span>' if result.tie else ""
    name = html.escape(result.source or f"#{result.index}")
    classes = "lychee-card lychee-winner" if winner else "lychee-card"
    return (
        f'<div class="{classes}" data-rank="{result.rank}" data-name="{name}" data-score="{result.score:.6f}" '
        f'style="border:{border};box-shadow:{shadow};border-radius:10px;padding:8px;margin-bottom:6px">'
        f'<details><summary style="list-style:none;cursor:zoom-in">'
        f'<img src="{thumbnail_uri}" alt="{name}" style="width:100%;border-radius:6px"></summary>'
        f'<img src="{full_uri}" alt="{name} (full size)" style="width:100%;margin-top:6px"></details>'
        f'<div style="display:flex;justify-content:space-between;margin-top:4px">'
        f'<b>{html.escape(labels["rank"])} {result.rank}</b>'
        f'<span>{html.escape(labels["score"])} <b>{result.score:.4f}</b>{tie}</span></div>'
        f'<div style="font-size:0.8em;opacity:0.7;overflow:hidden;text-overflow:ellipsis;white-space:nowrap">{name}</div>'
        f"</div>"
    )


def evidence_of(result: RerankResult) -> dict:
    """What explains the score: logits for the model backend, tags/OCR/colours for lite."""
    out: dict = {}
    if result.yes_logit is not None:
        out["yes_logit"] = result.yes_logit
        out["no_logit"] = result.no_logit
    if result.raw_output is not None:
        out["raw_output"] = result.raw_output
    out.update(result.evidence or {})
    out["raw_score"] = result.raw_score
    return out
