"""Turn whatever a user hands us into a :class:`Content` (text and/or a clean RGB image).

Every interface (library, CLI, HTTP, UI) funnels through :func:`to_content`, so an image
is decoded, rotated and converted exactly once and the same way everywhere; that is what
keeps a pair's score independent of the interface that asked for it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import stat
import unicodedata
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Decompression-bomb limits (pixels, encoded bytes): one home for every surface, in .config.
from .config import DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_IMAGE_PIXELS  # noqa: E402

SUPPORTED_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")


class InputError(ValueError):
    """A query or document that cannot be used; the message says what is wrong and why."""


@dataclass(frozen=True)
class Content:
    """One side of a pair: text, an image, or both (the image is shown before the text)."""

    text: str | None = None
    image: Image.Image | None = field(default=None, compare=False)
    source: str | None = None
    """Where the image came from (a path, ``"<bytes>"``, ``"<data-uri>"``), for display."""
    image_hash: str | None = None
    """SHA-256 of the decoded RGB pixels, so caches and tests can recognise the same image."""
    caption: str | None = None
    """Text that travels with the image: a same-name ``.txt`` sidecar or EXIF ImageDescription."""

    @property
    def has_image(self) -> bool:
        return self.image is not None

    @property
    def has_text(self) -> bool:
        return bool(self.text)

    @property
    def is_empty(self) -> bool:
        """Nothing to rank: no image and no visible text (whitespace or zero-width characters only)."""
        return not self.has_image and is_blank(self.text)

    @property
    def modality(self) -> str:
        """``"text"``, ``"image"`` or ``"text+image"``."""
        if self.has_image and self.has_text:
            return "text+image"
        return "image" if self.has_image else "text"

    def describe(self) -> str:
        """A short label for tables and logs."""
        if self.source:
            return self.source
        if self.has_text:
            text = self.text or ""
            return text if len(text) <= 60 else text[:57] + "..."
        return "<image>"


InputLike = Union[str, bytes, Path, Image.Image, Content, Mapping[str, Any]]


@dataclass(frozen=True)
class ImageLimits:
    """Limits applied while decoding, so one hostile file cannot take the process down."""

    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    max_bytes: int = DEFAULT_MAX_IMAGE_BYTES


def to_content(obj: InputLike, *, limits: ImageLimits | None = None, base_dir: Path | None = None) -> Content:
    """Normalise a query or document.

    ``str`` is text (unless it is a ``data:image/...`` URI), ``Path`` is an image file,
    ``bytes`` are an encoded image, a ``PIL.Image`` is used as is, and a mapping
    ``{"text": ..., "image": ...}`` (or a :class:`Content`) mixes both. Raises
    :class:`InputError` with a precise message for anything unusable.
    """
    limits = limits or ImageLimits()
    if isinstance(obj, Content):
        if obj.image is not None and (obj.image.mode != "RGB" or obj.image_hash is None):
            image = to_rgb(obj.image)
            return replace(obj, image=image, image_hash=pixel_hash(image))
        return obj
    if isinstance(obj, str):
        if obj.startswith("data:"):
            return _image_content(decode_data_uri(obj), "<data-uri>", limits)
        return Content(text=obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return _image_content(bytes(obj), "<bytes>", limits)
    if isinstance(obj, Path):
        path = base_dir / obj if base_dir is not None and not obj.is_absolute() else obj
        content = _image_content(_read_path(path, limits), str(obj), limits)
        sidecar = sidecar_caption(path)
        return replace(content, caption=sidecar) if sidecar else content
    if isinstance(obj, Image.Image):
        check_pixels(obj.size, limits, "image")
        caption = _exif_caption(obj)
        image = to_rgb(obj)
        return Content(image=image, source=None, image_hash=pixel_hash(image), caption=caption)
    if isinstance(obj, Mapping):
        unknown = set(obj) - {"text", "image", "source"}
        if unknown:
            raise InputError(
                f"unsupported key(s) {sorted(unknown)} in a content mapping: expected 'text' and/or 'image'"
            )
        text = obj.get("text")
        if text is not None and not isinstance(text, str):
            raise InputError(f"'text' must be a string, got {type(text).__name__}")
        image_obj = obj.get("image")
        image_part = None
        if image_obj is not None:
            if isinstance(image_obj, str) and not image_obj.startswith("data:"):
                # In a mapping, a plain string under "image" can only mean a file path.
                image_obj = Path(image_obj)
            image_part = to_content(image_obj, limits=limits, base_dir=base_dir)
            if not image_part.has_image:
                raise InputError("'image' must be an image (path, bytes, data: URI or PIL image)")
        return Content(
            text=text,
            image=image_part.image if image_part else None,
            source=obj.get("source") or (image_part.source if image_part else None),
            image_hash=image_part.image_hash if image_part else None,
            caption=image_part.caption if image_part else None,
        )
    raise InputError(
        f"unsupported input type {type(obj).__name__}: expected str (text), PIL.Image.Image, "
        "pathlib.Path (image file), bytes (encoded image), a data: URI, or {'text': ..., 'image': ...}"
    )


def to_query(obj: InputLike, *, limits: ImageLimits | None = None) -> Content:
    """Like :func:`to_content`, but an empty query is an error: nothing can be ranked against it."""
    query = to_content(obj, limits=limits)
    if query.is_empty:
        raise InputError("query is empty: give text, an image, or both")
    return query


def is_blank(text: str | None) -> bool:
    """True when ``text`` has nothing visible: whitespace and format characters (zero-width
    space and joiners, BOM, bidi marks: Unicode category Cf) only."""
    return not any(not ch.isspace() and unicodedata.category(ch) != "Cf" for ch in text or "")


def decode_data_uri(uri: str) -> bytes:
    """Decode ``data:image/png;base64,....``; only base64 image payloads are accepted."""
    header, sep, payload = uri.partition(",")
    if not sep:
        raise InputError("malformed data: URI (no comma between header and payload)")
    mime = header[5:].split(";")[0].strip().lower()
    if mime and not mime.startswith("image/"):
        raise InputError(f"unsupported data: URI media type {mime!r}: only image/* is accepted")
    if ";base64" not in header.lower():
        raise InputError("unsupported data: URI: only base64-encoded payloads are accepted")
    # Strict decoding: a lenient one drops every character outside the alphabet, so junk
    # became "empty image data" instead of the real problem. Whitespace and the URL-safe
    # alphabet are still accepted.
    compact = "".join(payload.split())
    altchars = b"-_" if ("-" in compact or "_" in compact) else None
    try:
        data = base64.b64decode(compact, altchars=altchars, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"data: URI payload is not valid base64 ({exc})") from exc
    if compact and not data:
        raise InputError("data: URI payload is not valid base64 (nothing decodes from it)")
    return data


def _read_path(path: Path, limits: ImageLimits) -> bytes:
    return read_image_file(path, limits.max_bytes)


class NotRegularFile(OSError):
    """The path names a device, FIFO or socket: never read."""


class FileTooLarge(OSError):
    """The file holds more than the allowed bytes: ``size`` as ``stat`` says, or ``None`` when only
    the capped read found out (then the true size is unknown, just over the limit)."""

    def __init__(self, size: int | None) -> None:
        super().__init__("over the size limit" if size is None else f"{size} bytes")
        self.size = size

    def describe(self, max_bytes: int) -> str:
        """``is N bytes, over the limit of M bytes`` (or ``is over ...`` when N is unknown)."""
        size = "is" if self.size is None else f"is {self.size:,} bytes,"
        return f"{size} over the limit of {max_bytes:,} bytes (max_image_bytes)"


def read_regular_file(path: str | Path, max_bytes: int, *, follow_symlinks: bool = True) -> bytes:
    """The bytes of a regular file, at most ``max_bytes`` of them: the one place any surface
    (library, CLI, batch, UI, HTTP) reads an image from disk.

    Opened with ``O_NONBLOCK`` (a FIFO cannot hang us) and checked with ``fstat`` on the opened
    descriptor (no race with a swapped path): a directory raises ``IsADirectoryError``, a device,
    FIFO or socket :class:`NotRegularFile`. The read stops at ``max_bytes + 1``, since ``st_size``
    cannot be trusted (``/proc`` files say 0, a file can grow between ``stat`` and ``read``); too
    much raises :class:`FileTooLarge`. ``follow_symlinks=False`` adds ``O_NOFOLLOW``. Other
    failures are the ``OSError``/``ValueError`` (a NUL byte) of ``os.open``.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(21, "Is a directory", str(path))
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(f"not a regular file: {path}")
        if info.st_size > max_bytes:
            raise FileTooLarge(info.st_size)
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise FileTooLarge(None)
    return data


def file_refusal(exc: OSError | ValueError, path: str, max_bytes: int) -> str:
    """Why :func:`read_regular_file` refused ``path``, in the words every surface uses (the
    library and CLI raise it as an :class:`InputError`, the server as its own error types)."""
    if isinstance(exc, FileNotFoundError):
        return f"image file not found: {path}"
    if isinstance(exc, IsADirectoryError):
        return f"expected an image file, got a directory: {path}"
    if isinstance(exc, NotRegularFile):
        return f"refused {path}: not a regular file (device, FIFO or socket)"
    if isinstance(exc, FileTooLarge):
        return f"image file {path} {exc.describe(max_bytes)}"
    # ValueError: an embedded NUL byte in the path
    return f"cannot open image file {path}: {getattr(exc, 'strerror', None) or exc}"


def read_image_file(path: str | Path, max_bytes: int) -> bytes:
    """:func:`read_regular_file` with each refusal as an :class:`InputError` that names the path."""
    try:
        return read_regular_file(path, max_bytes)
    except (OSError, ValueError) as exc:
        raise InputError(file_refusal(exc, str(path), max_bytes)) from None


def check_pixels(size: tuple[int, int], limits: ImageLimits, name: str) -> None:
    width, height = size
    if width * height > limits.max_pixels:
        raise InputError(
            f"{name} is {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{limits.max_pixels:,} (max_image_pixels)"
        )
    if width < 1 or height < 1:
        raise InputError(f"{name} has no pixels ({width}x{height})")


def _image_content(data: bytes, source: str, limits: ImageLimits) -> Content:
    image, caption = _decode(data, limits=limits, name=source)
    return Content(image=image, source=source, image_hash=pixel_hash(image), caption=caption)


def sidecar_caption(path: Path, *, follow_symlinks: bool = True) -> str | None:
    """A ``photo.txt`` next to ``photo.jpg`` is the photo's caption (common in datasets); the
    server reads it with ``follow_symlinks=False`` so a symlinked sidecar cannot leave its directory."""
    try:  # the one reader of files: regular files only, at most MAX_SIDECAR_BYTES read
        data = read_regular_file(path.with_suffix(".txt"), MAX_SIDECAR_BYTES, follow_symlinks=follow_symlinks)
    except (OSError, ValueError):  # NotRegularFile and FileTooLarge are OSErrors
        return None  # no sidecar, or one that is not a caption: the image stands on its own
    return sidecar_caption_text(data)


#: A sidecar larger than this is not a caption (a log or a book), so it is ignored.
MAX_SIDECAR_BYTES = 64 * 1024


def sidecar_caption_text(data: bytes) -> str | None:
    """A sidecar's bytes as a caption, read the same way for a file (CLI) and an upload (UI)."""
    if len(data) > MAX_SIDECAR_BYTES:
        return None
    text = data.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    return text.strip() or None


def _exif_caption(image: Image.Image) -> str | None:
    try:
        value = image.getexif().get(0x010E)  # ImageDescription
    except Exception:  # noqa: BLE001 - a broken EXIF block is no caption, not an error
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, str) and value.strip().strip("\x00"):
        return value.strip().strip("\x00").strip()
    return None


def decode_image(data: bytes, *, limits: ImageLimits | None = None, name: str = "image") -> Image.Image:
    """Decode encoded bytes into an upright RGB image, refusing bombs and broken files."""
    return _decode(data, limits=limits or ImageLimits(), name=name)[0]


def _decode(data: bytes, *, limits: ImageLimits, name: str) -> tuple[Image.Image, str | None]:
    if len(data) == 0:
        raise InputError(f"{name}: empty image data")
    if len(data) > limits.max_bytes:
        raise InputError(f"{name} is {len(data):,} bytes, over the limit of {limits.max_bytes:,} (max_image_bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            # The header gives the size before any pixel is decoded: refuse bombs here.
            check_pixels(image.size, limits, name)
            image.load()
    except InputError:
        raise
    except UnidentifiedImageError as exc:
        raise InputError(f"{name}: not a supported image (could not identify the format)") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(f"{name}: refused as a decompression bomb ({exc})") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{name}: corrupt or truncated image ({exc})") from exc
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)  # animated GIF/WebP: the first frame stands for the image
    caption = _exif_caption(image)
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not lose the picture
        pass
    return to_rgb(image), caption


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB.

    Transparency is composited on white (what a viewer shows), and 16/32-bit greyscale is
    rescaled rather than clipped, which PIL's plain ``convert`` would do.
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        if mode == "F":
            top = max(float(arr.max(initial=1.0)), 1e-12)
        arr8 = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, mode="L").convert("RGB")
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def pixel_hash(image: Image.Image) -> str:
    """Content hash of decoded pixels (plus size), independent of the file's encoding."""
    digest = hashlib.sha256()
    digest.update(f"{image.mode}:{image.size[0]}x{image.size[1]}:".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_IMAGE_SUFFIXES
