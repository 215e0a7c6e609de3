"""Turn whatever a user hands us into a :class:`Content` (text and/or a clean RGB image).

Every interface (library, CLI, HTTP, UI) funnels through :func:`to_content`, so an image
is decoded, rotated and converted the same way everywhere; that is what keeps a pair's
score independent of the interface that asked for it.

An image read from bytes, a file or a data URI is checked by decoding it once (a corrupt
file is refused when it is read, with its own message), but only its encoded bytes are
kept (an :class:`ImageSource`): a 1.4 KB WebP can hold 6000x6000 pixels (108 MB), so a
request of many documents must cost their bytes, not their pixels. ``Content.image``
decodes again when a batch needs the pixels (same bytes, same decoder: the same pixels),
and every decode runs under one process-wide pixel budget (:data:`DECODE_BUDGET`).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import io
import os
import re
import stat
import threading
import unicodedata
import warnings
import weakref
from collections import OrderedDict
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Union

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# Decompression-bomb limits (pixels, encoded bytes): one home for every surface, in .config.
from .config import DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_IMAGE_PIXELS  # noqa: E402

SUPPORTED_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
#: Video files and mapping keys are refused by name: no family here scores video, and a clear
#: "not supported" beats "not a supported image" (or, worse, a score of the text of a path).
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp")
VIDEO_NOT_SUPPORTED = "video input is not supported (queries and documents are text and images): give a frame as an image"


class InputError(ValueError):
    """A query or document that cannot be used; the message says what is wrong and why."""


class PixelBudget:
    """A process-wide bound on the pixels being decoded (and used) at once.

    Each request's images are decoded one batch at a time, but requests, reader threads and
    preprocessing workers run side by side; without one shared bound their peaks add up.
    ``hold(n)`` waits until ``n`` more pixels fit. A hold larger than the whole budget waits
    until nothing else is held (one huge image at a time, never refused), and a thread that
    already holds pixels never waits for more (nested holds cannot deadlock).
    """

    def __init__(self, max_pixels: int) -> None:
        self.max_pixels = max_pixels
        self.in_use = 0
        self.peak = 0
        """Most pixels held at once since start (tests and benchmarks read it)."""
        self._cond = threading.Condition()
        self._local = threading.local()

    @contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        depth = getattr(self._local, "depth", 0)
        with self._cond:
            if depth == 0:
                self._cond.wait_for(lambda: self.in_use == 0 or self.in_use + pixels <= self.max_pixels)
            self.in_use += pixels
            self.peak = max(self.peak, self.in_use)
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth
            with self._cond:
                self.in_use -= pixels
                self._cond.notify_all()


def return_freed_pixels() -> None:
    """Let freed large images go back to the system, for a long-lived process (the server).

    Pillow allocates a large image in 16 MB blocks, which glibc serves from its heaps and keeps
    once freed (a server's RSS grew 0.7 GB after eight 6000x6000 decodes, all freed). Blocks over
    glibc's 32 MB mmap ceiling are mapped and unmapped. Small images are unaffected (a block is
    never larger than the image). Pillow's setting is process-wide, so the library never changes
    it on import: the server calls this when it is built; ``PILLOW_BLOCK_SIZE`` wins.
    """
    if "PILLOW_BLOCK_SIZE" not in os.environ:
        Image.core.set_block_size(max(Image.core.get_block_size(), 64 << 20))

#: Pixels the process decodes (and uses) at once, whatever the number of requests or documents:
#: one image of the largest size ``max_image_pixels`` allows by default, or many small ones.
#: Decoding costs more than the 3-4 bytes a pixel keeps: a 6000x6000 WebP peaks at ~550 MB.
DEFAULT_DECODE_BUDGET_PIXELS = DEFAULT_MAX_IMAGE_PIXELS
DECODE_BUDGET = PixelBudget(DEFAULT_DECODE_BUDGET_PIXELS)


class ImageSource:
    """A checked image whose pixels are decoded only when asked for.

    It keeps the encoded bytes and the upright size (known without decoding). While one
    caller still holds the decoded image, others get the same object (a weak reference), so
    one batch decodes an image once; when nobody holds it the pixels are freed.
    """

    def __init__(self, data: bytes, name: str, limits: "ImageLimits", size: tuple[int, int]) -> None:
        self.data = data
        self.name = name
        self.limits = limits
        self.size = size
        self._ref: weakref.ref[Image.Image] | None = None
        self._lock = threading.Lock()

    @property
    def width(self) -> int:
        return self.size[0]

    @property
    def height(self) -> int:
        return self.size[1]

    @property
    def pixels(self) -> int:
        return self.size[0] * self.size[1]

    def decode(self) -> Image.Image:
        """The upright RGB image, decoded under :data:`DECODE_BUDGET` unless a caller still holds it."""
        with DECODE_BUDGET.hold(self.pixels):
            return self._decode_held()

    def _decode_held(self) -> Image.Image:
        """:meth:`decode` for a caller that already holds this image's pixels in the budget.

        The budget is always taken before the lock (no thread waits for the budget while holding
        a lock another needs); threads asking at once wait for one decode.
        """
        with self._lock:
            image = self._ref() if self._ref is not None else None
            if image is None:
                with _decoded(self.data, limits=self.limits, name=self.name, budget=False) as (image, _caption):
                    pass
                self._ref = weakref.ref(image)
            return image

    def __getstate__(self) -> dict[str, Any]:
        return {"data": self.data, "name": self.name, "limits": self.limits, "size": self.size}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"ImageSource({self.name!r}, {self.width}x{self.height}, {len(self.data):,} bytes)"


StoredImage = Union[Image.Image, ImageSource]


@contextmanager
def pixels(image: StoredImage) -> Iterator[Image.Image]:
    """The pixels of a stored image, counted in :data:`DECODE_BUDGET` for the whole block.

    Backends wrap the step that uses an image (preprocessing, analysis) in it, so the
    process never holds more decoded pixels in those steps than the budget. A PIL image
    handed in by the caller is already in memory: it is yielded as it is.
    """
    if isinstance(image, ImageSource):
        with DECODE_BUDGET.hold(image.pixels):
            yield image._decode_held()
    else:
        yield image


class _ImageSlot:
    """``Content.image``: the PIL image, decoded from its :class:`ImageSource` on access.

    Installed on :class:`Content` after the dataclass is made (so the field keeps its
    ``None`` default and stays out of ``==`` and ``repr``); ``Content.raw_image`` is what
    is stored, and passing that on shares an image without decoding it.
    """

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return None
        stored = obj.__dict__.get("_image")
        return stored.decode() if isinstance(stored, ImageSource) else stored

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__["_image"] = value  # only the dataclass __init__ gets here (frozen)


@dataclass(frozen=True)
class Content:
    """One side of a pair: text, an image, or both (the image is shown before the text)."""

    text: str | None = None
    image: Image.Image | None = field(default=None, compare=False, repr=False)
    """The RGB pixels (decoded on access when the image was read from bytes; see :class:`ImageSource`)."""
    source: str | None = None
    """Where the image came from (a path, ``"<bytes>"``, ``"<data-uri>"``), for display."""
    image_hash: str | None = None
    """SHA-256 of the decoded RGB pixels, so caches and tests can recognise the same image."""
    caption: str | None = None
    """Text that travels with the image: a same-name ``.txt`` sidecar or EXIF ImageDescription."""

    @property
    def has_image(self) -> bool:
        return self.raw_image is not None

    @property
    def raw_image(self) -> StoredImage | None:
        """The image as stored (a PIL image, or an :class:`ImageSource` not decoded yet)."""
        return self.__dict__.get("_image")

    @property
    def image_size(self) -> tuple[int, int] | None:
        """(width, height) of the upright image, without decoding it."""
        raw = self.raw_image
        return None if raw is None else raw.size

    def replace(self, **changes: Any) -> "Content":
        """``dataclasses.replace`` that passes the image on as stored, without decoding it."""
        changes.setdefault("image", self.raw_image)
        return dataclasses.replace(self, **changes)

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


Content.image = _ImageSlot()  # type: ignore[assignment]

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
        raw = obj.raw_image
        if isinstance(raw, Image.Image) and (raw.mode != "RGB" or obj.image_hash is None):
            image = to_rgb(raw)
            return obj.replace(image=image, image_hash=pixel_hash(image))
        return obj
    if isinstance(obj, str):
        if obj.startswith("data:"):
            return _image_content(decode_data_uri(obj), "<data-uri>", limits)
        return Content(text=_checked_text(obj))
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return _image_content(bytes(obj), "<bytes>", limits)
    if isinstance(obj, Path):
        if obj.suffix.lower() in VIDEO_SUFFIXES:
            raise InputError(f"{obj}: {VIDEO_NOT_SUPPORTED}")
        path = base_dir / obj if base_dir is not None and not obj.is_absolute() else obj
        content = _image_content(_read_path(path, limits), str(obj), limits)
        sidecar = sidecar_caption(path)
        return content.replace(caption=sidecar) if sidecar else content
    if isinstance(obj, Image.Image):
        check_pixels(obj.size, limits, "image")
        caption = _exif_caption(obj)
        image = to_rgb(obj)
        return Content(image=image, source=None, image_hash=pixel_hash(image), caption=caption)
    if isinstance(obj, Mapping):
        unknown = set(obj) - {"text", "image", "source"}
        if unknown & {"video", "videos", "video_url"}:
            raise InputError(VIDEO_NOT_SUPPORTED)
        if unknown:
            raise InputError(
                f"unsupported key(s) {sorted(unknown)} in a content mapping: expected 'text' and/or 'image'"
            )
        text = obj.get("text")
        if text is not None and not isinstance(text, str):
            raise InputError(f"'text' must be a string, got {type(text).__name__}")
        if text is not None:
            _checked_text(text)
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
            image=image_part.raw_image if image_part else None,
            source=obj.get("source") or (image_part.source if image_part else None),
            image_hash=image_part.image_hash if image_part else None,
            caption=image_part.caption if image_part else None,
        )
    raise InputError(
        f"unsupported input type {type(obj).__name__}: expected str (text), PIL.Image.Image, "
        "pathlib.Path (image file), bytes (encoded image), a data: URI, or {'text': ..., 'image': ...}"
    )


_SURROGATE = re.compile("[\ud800-\udfff]")


def _checked_text(text: str) -> str:
    """``text``, unless it holds a lone surrogate (JSON's ``"\\udfff"``, a file read with
    ``surrogateescape``): that is no Unicode text, no tokenizer can take it, and it would fail
    later with a library's message instead of this one."""
    found = _SURROGATE.search(text)
    if found is not None:
        raise InputError(
            f"text holds a lone surrogate (U+{ord(found.group()):04X}) at character {found.start() + 1}: "
            "not valid Unicode text (send it as UTF-8)"
        )
    return text


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
    checked = _check(data, limits, source)
    return Content(
        image=ImageSource(data, source, limits, checked.size), source=source,
        image_hash=checked.image_hash, caption=checked.caption,
    )


@dataclass(frozen=True)
class _Checked:
    """What decoding an image once tells us, kept instead of its pixels."""

    size: tuple[int, int]
    image_hash: str
    caption: str | None


#: Images checked recently, by (SHA-256 of the encoded bytes, pixel limit): a gallery sent
#: with every query, or one file repeated in a request, is decoded to be checked once.
_CHECKED: "OrderedDict[tuple[bytes, int], _Checked]" = OrderedDict()
_CHECKED_ITEMS = 4096
_checked_lock = threading.Lock()


def _check(data: bytes, limits: ImageLimits, name: str) -> _Checked:
    """Decode ``data`` once to refuse what cannot be used (corrupt, truncated, too large) and
    to learn its size, pixel hash and caption; the pixels are dropped on return."""
    _check_bytes(data, limits, name)
    key = (hashlib.sha256(data).digest(), limits.max_pixels)
    with _checked_lock:
        hit = _CHECKED.get(key)
        if hit is not None:
            _CHECKED.move_to_end(key)
            return hit
    with _decoded(data, limits=limits, name=name) as (image, caption):
        checked = _Checked(image.size, pixel_hash(image), caption)
    with _checked_lock:
        _CHECKED[key] = checked
        while len(_CHECKED) > _CHECKED_ITEMS:
            _CHECKED.popitem(last=False)
    return checked


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
    with _decoded(data, limits=limits or ImageLimits(), name=name) as (image, _caption):
        return image


def _check_bytes(data: bytes, limits: ImageLimits, name: str) -> None:
    if len(data) == 0:
        raise InputError(f"{name}: empty image data")
    if len(data) > limits.max_bytes:
        raise InputError(f"{name} is {len(data):,} bytes, over the limit of {limits.max_bytes:,} (max_image_bytes)")


@contextmanager
def _decoded(
    data: bytes, *, limits: ImageLimits, name: str, budget: bool = True
) -> Iterator[tuple[Image.Image, str | None]]:
    """The upright RGB image and its EXIF caption, decoded (and held through the block) under
    :data:`DECODE_BUDGET` (``budget=False``: the caller holds it already); the header is checked
    against the limits before any pixel is decoded."""
    _check_bytes(data, limits, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            # The header gives the size before any pixel is decoded: refuse bombs here.
            check_pixels(image.size, limits, name)
    except InputError:
        raise
    except UnidentifiedImageError as exc:
        raise InputError(f"{name}: not a supported image (could not identify the format)") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(f"{name}: refused as a decompression bomb ({exc})") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{name}: corrupt or truncated image ({exc})") from exc
    with DECODE_BUDGET.hold(image.size[0] * image.size[1]) if budget else nullcontext():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise InputError(f"{name}: refused as a decompression bomb ({exc})") from exc
        except (OSError, SyntaxError, ValueError) as exc:
            raise InputError(f"{name}: corrupt or truncated image ({exc})") from exc
        if getattr(image, "n_frames", 1) > 1:
            image.seek(0)  # animated GIF/WebP: the first frame stands for the image
        caption = _exif_caption(image)
        try:
            ImageOps.exif_transpose(image, in_place=True)  # a copy only where there is a rotation
        except Exception:  # noqa: BLE001 - a broken EXIF block must not lose the picture
            pass
        yield to_rgb(_pixels_only(image)), caption


def _pixels_only(image: Image.Image) -> Image.Image:
    """The decoded pixels as a plain image that shares them (no copy). A file's image also keeps
    its decoder's buffers for as long as it lives (WebP: the frame twice more, 288 MB at 6000x6000)."""
    return image._new(image.im) if isinstance(image, ImageFile.ImageFile) else image


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
    """Content hash of decoded pixels (plus size), independent of the file's encoding.

    The bytes are those of ``image.tobytes()``, streamed from Pillow's raw encoder (what
    ``tobytes`` runs) into the digest: ``tobytes`` would hold them twice (its chunks, then
    their join), 216 MB for a 6000x6000 image, and take twice as long.
    """
    width, height = image.size
    digest = hashlib.sha256()
    digest.update(f"{image.mode}:{width}x{height}:".encode())
    image.load()
    if width and height:
        encoder = Image._getencoder(image.mode, "raw", image.mode)
        try:
            encoder.setimage(image.im, (0, 0, width, height))
            while True:
                _, status, data = encoder.encode(_HASH_CHUNK_BYTES)
                digest.update(data)
                if status:
                    break
            if status < 0:
                raise RuntimeError(f"encoder error {status} while hashing pixels")
        finally:
            encoder.cleanup()
    return digest.hexdigest()


_HASH_CHUNK_BYTES = 1 << 20


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_IMAGE_SUFFIXES
