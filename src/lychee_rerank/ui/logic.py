"""What the UI computes, kept out of the Streamlit script so it can be tested directly."""

from __future__ import annotations

import base64
import hashlib
import html
import io
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Callable, Sequence

from PIL import Image

from ..inputs import (
    MAX_SIDECAR_BYTES,
    SUPPORTED_IMAGE_SUFFIXES,
    Content,
    ImageLimits,
    InputError,
    sidecar_caption_text,
    to_content,
)
from ..results import RerankResult
from .i18n import t

#: What the image uploaders accept: the library's own list (TIFF included), not a second one.
IMAGE_TYPES = [suffix.lstrip(".") for suffix in SUPPORTED_IMAGE_SUFFIXES]

THUMB_SIZE = (360, 360)
#: Result cards per row; ranks read left to right, then the next row.
CARDS_PER_ROW = 4
GOLD = (212, 175, 55)
#: The winner's border at full emphasis (px).
MAX_BORDER = 6


@dataclass(frozen=True)
class Upload:
    """A decoded upload, cached by content digest so re-ranking never decodes it again."""

    name: str
    digest: str
    content: Content | None
    error: str | None
    thumbnail_uri: str | None


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def image_data_uri(image: Image.Image, max_size: tuple[int, int] | None = THUMB_SIZE, quality: int = 85) -> str:
    img = image
    if max_size is not None:
        img = image.copy()  # thumbnail() works in place; the full-size viewer needs no copy
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
    return Upload(name, key, content, None, image_data_uri(content.image))


def winner_emphasis(results: Sequence[RerankResult]) -> float:
    """0..1: how clearly the winner beats the runner-up (0 when nearly tied, 1 when far ahead)."""
    scored = [r for r in results if r.error is None]
    if not scored:
        return 0.0
    if len(scored) == 1:
        return 1.0
    margin = scored[0].raw_score - scored[1].raw_score
    return max(0.0, min(1.0, margin / 0.2))


CARD_CSS = """<style>
.lychee-card{border-radius:10px;margin-bottom:4px;box-sizing:border-box}
.lychee-thumb{position:relative;height:200px;display:flex;align-items:center;justify-content:center;
  background:rgba(128,128,128,0.10);border-radius:6px;overflow:hidden}
.lychee-thumb img{max-width:100%;max-height:100%;object-fit:contain;display:block}
.lychee-hover{position:absolute;left:0;right:0;bottom:0;padding:4px 8px;background:rgba(0,0,0,0.62);color:#fff;
  font-size:0.85em;opacity:0;transition:opacity .15s;pointer-events:none}
.lychee-card:hover .lychee-hover{opacity:1}
.lychee-head{display:flex;justify-content:space-between;gap:6px;margin-top:4px;white-space:nowrap;height:1.6em}
.lychee-head span{overflow:hidden;text-overflow:ellipsis}
.lychee-tie{font-size:0.8em;opacity:0.8}
.lychee-name,.lychee-evidence{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.lychee-name{font-size:0.8em;opacity:0.7}
.lychee-evidence{font-size:0.8em;height:1.5em}
</style>"""
"""Card styles, injected once: every thumbnail sits in the same box, so rows line up."""


def card_html(
    result: RerankResult, thumbnail_uri: str, *, winner: bool, emphasis: float, labels: dict[str, str], evidence: str = ""
) -> str:
    """One result card: a uniform thumbnail box, "Rank N | Score" on hover, one line of evidence."""
    if winner:
        width = 2 + round((MAX_BORDER - 2) * emphasis)
        alpha = 0.35 + 0.65 * emphasis
        border = f"{width}px solid rgba({GOLD[0]},{GOLD[1]},{GOLD[2]},{alpha:.2f})"
        shadow = f"0 0 {4 + round(12 * emphasis)}px rgba({GOLD[0]},{GOLD[1]},{GOLD[2]},{alpha:.2f})"
    else:
        width, border, shadow = 1, "1px solid rgba(128,128,128,0.35)", "none"
    padding = 8 + MAX_BORDER - width  # border + padding is the same on every card: rows line up
    tie = f' <span class="lychee-tie">{html.escape(labels["near_tie"])}</span>' if result.tie else ""
    name = html.escape(result.source or f"#{result.index}")
    hover = html.escape(f"{labels['rank']} {result.rank} | {labels['score']} {result.score:.4f}")
    classes = "lychee-card lychee-winner" if winner else "lychee-card"
    ev = html.escape(evidence)
    return (
        f'<div class="{classes}" data-rank="{result.rank}" data-name="{name}" data-score="{result.score:.6f}" '
        f'title="{hover}" style="border:{border};box-shadow:{shadow};padding:{padding}px">'
        f'<div class="lychee-thumb"><img src="{thumbnail_uri}" alt="{name}">'
        f'<div class="lychee-hover">{hover}</div></div>'
        f'<div class="lychee-head"><b>{html.escape(labels["rank"])} {result.rank}</b>'
        f'<span>{html.escape(labels["score"])} <b>{result.score:.4f}</b>{tie}</span></div>'
        f'<div class="lychee-name" title="{name}">{name}</div>'
        f'<div class="lychee-evidence" title="{ev}">{ev}</div>'
        f"</div>"
    )


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def evidence_line(result: RerankResult, lang: str) -> str:
    """Why this score, in one line a person can read: the model's yes/no logits, or lite's
    matched tags, OCR snippet, colours and caption (the raw record stays behind an expander)."""
    if result.error:
        return ""
    if result.yes_logit is not None and result.no_logit is not None:
        return f"yes {result.yes_logit:.2f} · no {result.no_logit:.2f}"
    if result.raw_output is not None:
        return f"“{_clip(result.raw_output, 60)}”"
    ev = result.evidence or {}
    parts: list[str] = []
    tags = [m["label"] for m in ev.get("matched_tags") or [] if m.get("label")][:2]
    if tags:
        parts.append(f"{t('ev_tags', lang)} {', '.join(tags)}")
    ocr = ev.get("ocr_match") or ev.get("ocr")
    if ocr:
        parts.append(f"{t('ev_ocr', lang)} “{_clip(str(ocr), 28)}”")
    if ev.get("query_colours") and ev.get("colours"):
        key = "zh" if lang == "zh" else "name"
        names = [str(c.get(key) or c.get("name")) for c in ev["colours"][:2]]
        parts.append(f"{t('ev_colours', lang)} {', '.join(names)}")
    if ev.get("caption"):
        parts.append(f"{t('ev_caption', lang)} “{_clip(str(ev['caption']), 28)}”")
    text_match = (ev.get("channels") or {}).get("text")
    if text_match is not None:  # a text document: how well its text matched the query
        parts.insert(0, f"{t('ev_text', lang)} {text_match:.2f}")
    if not parts and ev:
        return t("ev_none", lang)
    return " · ".join(parts)


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


@dataclass(frozen=True)
class Refused:
    """A dropped file that is not ranked, with the reason shown next to its name."""

    name: str
    reason: str


@dataclass
class UploadSet:
    """The files of one drop, sorted the way the CLI reads a folder: images are ranked, a
    ``photo.txt`` next to ``photo.jpg`` is that photo's caption, anything else is refused."""

    images: list[Upload] = field(default_factory=list)
    sidecars: dict[str, str] = field(default_factory=dict)
    """Image name -> caption read from its uploaded sidecar."""
    refused: list[Refused] = field(default_factory=list)

    def default_caption(self, upload: Upload) -> str:
        """What the caption box starts with: the sidecar, else the EXIF description (as the CLI)."""
        caption = self.sidecars.get(upload.name)
        if caption is None and upload.content is not None:
            caption = upload.content.caption
        return caption or ""


def classify_uploads(
    files: Sequence[tuple[str, bytes]], decode: Callable[[str, bytes], Upload] = decode_upload
) -> UploadSet:
    """Sort uploaded ``(name, bytes)`` into ranked images, sidecar captions and refused files.

    ``decode`` is injected so the app can cache decoding across reruns.
    """
    out = UploadSet()
    texts: list[tuple[str, bytes]] = []
    for name, data in files:
        suffix = PurePath(name).suffix.lower()
        if suffix in SUPPORTED_IMAGE_SUFFIXES:
            upload = decode(name, data)
            if upload.error:
                out.refused.append(Refused(name, upload.error))
            else:
                out.images.append(upload)
        elif suffix == ".txt":
            texts.append((name, data))
        else:
            kinds = ", ".join(s.lstrip(".") for s in SUPPORTED_IMAGE_SUFFIXES)
            shown = suffix or "(no extension)"
            out.refused.append(Refused(name, f"unsupported file type {shown}: expected an image ({kinds}) or a .txt caption"))
    # Exactly the CLI's rule: photo.txt belongs to the image whose name is photo + an image suffix.
    by_sidecar = {str(PurePath(u.name).with_suffix(".txt")): u.name for u in out.images}
    for name, data in texts:
        image_name = by_sidecar.get(name)
        if image_name is None:
            stem = PurePath(name).stem
            out.refused.append(Refused(
                name, f"a .txt file is read only as the caption of an image with the same name: no image named {stem}.* was uploaded"
            ))
        elif len(data) > MAX_SIDECAR_BYTES:
            out.refused.append(Refused(name, f"caption file over {MAX_SIDECAR_BYTES:,} bytes"))
        else:
            caption = sidecar_caption_text(data)
            if caption:
                out.sidecars[image_name] = caption
    return out


def document_for(upload: Upload, caption: str | None) -> Content:
    """The ranked document: the decoded image with the caption the user kept (None: no caption)."""
    assert upload.content is not None
    return upload.content.replace(caption=(caption or "").strip() or None)  # keeps the image as stored
