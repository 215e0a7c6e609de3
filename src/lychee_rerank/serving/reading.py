"""Reading a request's query and documents into the :class:`~lychee_rerank.inputs.Content` the engine scores.

A request item may be a string, ``{"text", "image"}``, ``{"content": [parts]}`` or a list of
OpenAI-style content parts; whatever the form, it ends as one text and at most one image, read
through :mod:`lychee_rerank.serving.sources` (which applies the operator's policy) and then the same
:func:`~lychee_rerank.inputs.to_content` the library uses, so a pair scores the same over HTTP
as in Python. The query failing fails the request; a document failing fails only itself.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from .schemas import DocumentEcho, ImagePart, ImageUrl, ImageUrlPart, MultimodalItem, RerankInput, TextPart
from ..engine import LycheeReranker
from ..inputs import VIDEO_NOT_SUPPORTED, Content, ImageLimits, InputError, is_blank, to_content
from ..results import RerankResult
from .settings import ServerSettings
from .sources import LimitExceeded, SourceError, SourcePolicy, UrlFetcher, load_image


class InvalidQuery(Exception):
    """The query cannot be used: nothing could be scored against it (422)."""


class ReadingAbandoned(TimeoutError):
    """The request's deadline passed while its documents were read: the client has had its 504,
    so the reading thread stops instead of checking (decoding) the rest."""


@dataclass
class Item:
    """One query or document after reading its request form: text and image bytes."""

    text: Optional[str] = None
    image: Optional[bytes] = None
    caption: Optional[str] = None
    """A local file's sidecar caption (see :func:`.sources.read_local`)."""


@dataclass
class Prepared:
    """A request's documents as engine inputs, plus the ones that failed before the model."""

    query: Content
    contents: list[Optional[Content]]
    echoes: list[DocumentEcho]
    failures: dict[int, Exception] = field(default_factory=dict)
    """Documents that failed while reading, by request index (a :class:`LimitExceeded` for an
    image over a limit: a route whose one document is the request answers it with 413)."""
    images: int = 0


#: ``data:<type>/<subtype>[;params],`` as a whole string: media, not text (as the library reads it).
_DATA_URI = re.compile(r"data:[a-z]+/[a-z0-9.+-]+(;[a-z0-9=.+-]*)*,", re.IGNORECASE)


def _split(value: RerankInput | MultimodalItem, name: str) -> tuple[Optional[str], Optional[str]]:
    """(text, image string) of a request item, whatever of the accepted forms it has."""
    if isinstance(value, str):
        if value.startswith("data:video/"):
            raise SourceError(f"{name}: {VIDEO_NOT_SUPPORTED}")
        # Any other media data URI is an image to read (a non-image type is refused there, by name).
        return (None, value) if _DATA_URI.match(value) else (value, None)
    if isinstance(value, MultimodalItem):
        if value.video is not None or value.video_url is not None:
            raise SourceError(f"{name}: {VIDEO_NOT_SUPPORTED}")
        if value.content is not None:
            if value.text is not None or value.image is not None:
                raise SourceError(f"{name}: give 'content' parts or 'text'/'image', not both")
            return _split(value.content, name)
        return value.text, value.image
    texts: list[str] = []
    images: list[str] = []
    for part in value:
        if isinstance(part, TextPart):
            texts.append(part.text)
        elif isinstance(part, ImageUrlPart):
            images.append(part.image_url.url if isinstance(part.image_url, ImageUrl) else part.image_url)
        elif isinstance(part, ImagePart):
            images.append(part.image)
        else:
            raise SourceError(f"{name}: {VIDEO_NOT_SUPPORTED}")
    if len(images) > 1:
        raise SourceError(f"{name}: {len(images)} images in one item; an item holds at most one image")
    return ("\n".join(texts) if texts else None), (images[0] if images else None)


class RequestReader:
    """Reads request items into :class:`Content`, enforcing the text and image limits."""

    def __init__(self, settings: ServerSettings, fetcher: Optional[UrlFetcher]):
        self.settings = settings
        self.fetcher = fetcher
        self.policy = SourcePolicy(
            max_image_bytes=settings.max_image_bytes,
            max_image_pixels=settings.max_image_pixels,
            allow_local_dir=settings.allow_local_dir,
            allow_urls=settings.allow_urls,
            url_timeout_s=settings.url_timeout_s,
            url_max_redirects=settings.url_max_redirects,
        )
        self.limits = ImageLimits(max_pixels=settings.max_image_pixels, max_bytes=settings.max_image_bytes)

    def check_text(self, text: Optional[str], name: str) -> None:
        if text is not None and len(text) > self.settings.max_text_chars:
            raise LimitExceeded(
                "max_text_chars", len(text), self.settings.max_text_chars,
                f"{name} text is {len(text):,} characters, over the limit of {self.settings.max_text_chars:,} (max_text_chars)",
            )

    def item(self, value: RerankInput | MultimodalItem, name: str) -> Item:
        text, spec = _split(value, name)
        self.check_text(text, name)
        if spec is None:
            return Item(text=text)
        loaded = load_image(spec, self.policy, self.fetcher, name=f"{name} image")
        return Item(text=text, image=loaded.data, caption=loaded.caption)

    def content(self, item: Item, name: str) -> Content:
        """The same Content the library builds from ``{"text": ..., "image": <bytes>}``."""
        if item.image is None and is_blank(item.text):  # the library's Content.is_empty rule
            raise InputError(f"{name} is empty: give text, an image, or both")
        mapping: dict[str, Any] = {"text": item.text}
        if item.image is not None:
            mapping["image"] = item.image
        content = to_content(mapping, limits=self.limits)
        # As the library reads a Path: the sidecar, when there is one, is the caption.
        return content.replace(caption=item.caption) if item.caption else content

    def prepare(
        self, reranker: LycheeReranker, query: Any, documents: Sequence[Any], deadline: Optional[float] = None
    ) -> Prepared:
        """Read the query (its failure fails the request) and each document (its failure is its own).

        ``deadline`` (a ``time.perf_counter()`` value): past it, reading stops with :class:`ReadingAbandoned`.
        """
        if len(documents) > self.settings.max_documents:
            raise LimitExceeded(
                "max_documents", len(documents), self.settings.max_documents,
                f"{len(documents)} documents, over the limit of {self.settings.max_documents} (max_documents)",
            )
        for i, doc in enumerate(documents):  # request-level limits first, before any decoding work
            text, _ = _safe_split(doc, f"document {i}")
            self.check_text(text, f"document {i}")
        try:
            q_item = self.item(query, "query")
            q = reranker.to_query(self.content(q_item, "query"))
        except (SourceError, InputError) as exc:
            raise InvalidQuery(str(exc)) from None
        prepared = Prepared(query=q, contents=[], echoes=[], images=int(q.has_image))
        for i, doc in enumerate(documents):
            if deadline is not None and time.perf_counter() > deadline:
                raise ReadingAbandoned(f"the request's deadline passed after reading {i} of {len(documents)} documents")
            name = f"document {i}"
            echo = DocumentEcho()
            try:
                text, spec = _split(doc, name)
                echo = DocumentEcho(text=text, image=spec)
                content = reranker.check_image(self.content(self.item(doc, name), name), name)
                prepared.images += int(content.has_image)
                prepared.contents.append(content)
            except (SourceError, InputError, LimitExceeded) as exc:
                # A document's image over max_image_bytes/max_image_pixels is that document's
                # error, as in the library: the other documents are still scored. (Text limits
                # were checked for the whole request above; the query's limits refuse it.)
                prepared.contents.append(None)
                prepared.failures[i] = exc
            prepared.echoes.append(echo)
        return prepared


def _safe_split(value: Any, name: str) -> tuple[Optional[str], Optional[str]]:
    try:
        return _split(value, name)
    except SourceError:
        return None, None


def merge_results(results: list[RerankResult], valid: list[int], failures: dict[int, Exception]) -> list[RerankResult]:
    """Map engine results back to request indices and list documents that failed before the model.

    The engine already puts scored documents first (sorted) and its own failures last; failures
    from reading the request join those, in request order. (Dialects cut to top_n afterwards.)
    """
    scored, failed = [], []
    for r in results:
        r.index = valid[r.index]
        (failed if r.error is not None else scored).append(r)
    failed.extend(
        RerankResult(index=i, score=0.0, rank=0, document=None, error=str(exc)) for i, exc in failures.items()
    )
    failed.sort(key=lambda r: r.index)
    merged = scored + failed
    for position, r in enumerate(merged, start=1):
        r.rank = position
    return merged
