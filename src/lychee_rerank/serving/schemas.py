"""The HTTP API contract: request and response models of ``lychee serve``.

These pydantic models ARE the contract: ``/openapi.json`` and ``/docs`` are generated from
them, and the rerank shapes follow what Cohere v2, Jina and vLLM clients already send and
parse. Fields those clients add that we do not use are accepted and ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, field_validator, model_validator

_TINY_PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGM4IScHAAK2AQU0pnWqAAAAAElFTkSuQmCC"
)


class _Lenient(BaseModel):
    """Unknown fields (``max_tokens_per_doc``, ``rank_fields``, ...) are ignored, not rejected."""

    model_config = ConfigDict(extra="ignore")


def _not_bool(value: Any) -> Any:
    """JSON ``true`` is not the number 1: a client sending it has a bug worth a 422."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    return value


NoBool = BeforeValidator(_not_bool)


# --------------------------------------------------------------------------- inputs
IMAGE_DESCRIPTION = (
    "An image: base64, or a data: URI (data:image/png;base64,...). An http(s) URL only when the server "
    "runs with --allow-urls; a file path (or file:PATH) only with --allow-local-dir, relative to that directory."
)


class ImageUrl(_Lenient):
    url: str = Field(..., description=IMAGE_DESCRIPTION)


class TextPart(_Lenient):
    """OpenAI-style content part carrying text."""

    type: Literal["text"]
    text: str


class ImageUrlPart(_Lenient):
    """OpenAI-style content part carrying an image (``image_url.url`` or a bare string)."""

    type: Literal["image_url"]
    image_url: Union[ImageUrl, str]


class ImagePart(_Lenient):
    """Content part with the image under ``image`` (as some clients write it)."""

    type: Literal["image"]
    image: str = Field(..., description=IMAGE_DESCRIPTION)


class VideoPart(_Lenient):
    """A video content part (``video_url`` or ``video``): recognised so that it fails with a clear
    error (that item's own: "video input is not supported"), never scored as an empty item."""

    type: Literal["video_url", "video"]


ContentPart = Annotated[Union[TextPart, ImageUrlPart, ImagePart, VideoPart], Field(discriminator="type")]


class MultimodalItem(_Lenient):
    """A query or document with text, an image, or both: ONE item, scored as one.

    ``content`` (vLLM's shape) is a list of content parts; it may be used instead of, not with,
    ``text``/``image``.
    """

    text: Optional[str] = Field(None, description="Text of the item.")
    image: Optional[str] = Field(None, description=IMAGE_DESCRIPTION)
    content: Optional[list[ContentPart]] = Field(None, description="Content parts (alternative to text/image).")
    video: Optional[Any] = Field(None, description="Not supported (text and images only): an item with a video fails with that error.")
    video_url: Optional[Any] = Field(None, description="As ``video``: not supported.")

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"examples": [{"text": "a red bicycle", "image": _TINY_PNG}]},
    )


RerankInput = Union[str, MultimodalItem, list[ContentPart]]
"""A string is text (or an image when it is a ``data:image/...`` URI); an object or a list of parts mixes both."""
QueryInput = Union[Annotated[str, Field(min_length=1)], MultimodalItem, list[ContentPart]]
"""As :data:`RerankInput`; an empty query cannot be scored against (422)."""
Instruction = Annotated[str, Field(min_length=1, description="Task instruction; the model's default when omitted.")]


# --------------------------------------------------------------------------- /v1/rerank
class ContentDocuments(_Lenient):
    """vLLM's multimodal documents: ``{"content": [parts]}``, where EACH part is one document."""

    content: list[ContentPart]


def rank_fields_text(document: dict[str, Any], fields: list[str]) -> str:
    """Cohere's ``rank_fields``: the text scored for an object document.

    One field: its value. Several: ``name: value`` lines in the order given (the YAML-like
    form Cohere documents for structured documents). Missing fields are skipped.
    """
    present = [f for f in fields if document.get(f) is not None]
    if len(present) == 1:
        return str(document[present[0]])
    return "\n".join(f"{f}: {document[f]}" for f in present)


class RerankRequest(_Lenient):
    """Cohere v1/v2 / Jina / vLLM / infinity rerank request, with lychee's instruction and threshold."""

    model: Optional[str] = Field(None, description="Accepted for client compatibility; the server's model answers.")
    query: QueryInput = Field(..., description="The query: text, an image, or both.")
    documents: Union[list[RerankInput], ContentDocuments] = Field(
        ..., description="Candidates to rank: texts, images, or both per document; or vLLM's {'content': [parts]}, one document per part."
    )
    top_n: Optional[Annotated[int, NoBool]] = Field(
        None, ge=0, description="Return only the best N (failed documents are always listed); 0 means all (vLLM)."
    )
    return_documents: bool = Field(False, description="Echo each document (as sent) in its result.")
    rank_fields: Optional[list[str]] = Field(
        None, description="Cohere v1: for object documents, the fields whose values make the text scored (one field: its value; several: 'name: value' lines)."
    )
    raw_scores: bool = Field(False, description="infinity: relevance_score is the raw logit (yes - no) instead of p(yes).")
    instruction: Optional[Instruction] = None
    template: Optional[str] = Field(None, description="Name of a built-in instruction template (see `lychee templates`).")
    score_threshold: Optional[Annotated[float, NoBool]] = Field(
        None, allow_inf_nan=False, description="Drop results scoring below this (0-1); a finite number."
    )

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "query": "a cat sleeping on a windowsill",
                    "documents": [
                        "A black cat naps in the sun by the window.",
                        {"text": "product photo", "image": _TINY_PNG},
                        [{"type": "text", "text": "a dog"}, {"type": "image_url", "image_url": {"url": _TINY_PNG}}],
                    ],
                    "top_n": 2,
                    "return_documents": True,
                }
            ]
        },
    )
    _parts: Optional[list[dict[str, Any]]] = PrivateAttr(None)

    @model_validator(mode="before")
    @classmethod
    def _rank_fields(cls, data: Any) -> Any:
        """Object documents named by ``rank_fields`` become their text (an image field is kept)."""
        if isinstance(data, dict) and data.get("rank_fields") and isinstance(data.get("documents"), list):
            fields = [str(f) for f in data["rank_fields"]]
            docs = []
            for doc in data["documents"]:
                if isinstance(doc, dict) and "content" not in doc:
                    new: dict[str, Any] = {"text": rank_fields_text(doc, fields) or None}
                    if doc.get("image") is not None and "image" not in fields:
                        new["image"] = doc["image"]
                    doc = new
                docs.append(doc)
            data = {**data, "documents": docs}
        return data

    @field_validator("top_n")
    @classmethod
    def _zero_means_all(cls, value: Optional[int]) -> Optional[int]:
        return None if value == 0 else value

    @model_validator(mode="after")
    def _expand_parts(self) -> "RerankRequest":
        """``{"content": [parts]}``: one document per part; results echo the part (``multi_modal``)."""
        if isinstance(self.documents, ContentDocuments):
            parts = self.documents.content
            self._parts = [p.model_dump(exclude_none=True) for p in parts]
            self.documents = [MultimodalItem(text=p.text) if isinstance(p, TextPart) else [p] for p in parts]
        return self

    def echo(self, index: int, echo: "DocumentEcho") -> "DocumentEcho":
        """The document as the client sent it: vLLM's ``{"multi_modal": part}`` for an image part."""
        if self._parts is not None and self._parts[index].get("type") != "text":
            return DocumentEcho(multi_modal=self._parts[index])
        return echo


class DocumentEcho(BaseModel):
    """The document as sent (``return_documents``): Cohere and Jina clients read ``document.text``."""

    text: Optional[str] = None
    image: Optional[str] = None
    multi_modal: Optional[dict[str, Any]] = Field(None, description="vLLM: the image content part, as sent.")


class RerankResultItem(BaseModel):
    index: int = Field(..., description="Position of the document in the request.")
    relevance_score: float = Field(..., description="p(yes) in 0-1; 0 for a document that failed.")
    document: Optional[DocumentEcho] = None
    error: Optional[str] = Field(None, description="Why this document could not be scored (the request still succeeds).")
    truncated: Optional[bool] = Field(None, description="True when the text was cut to the model's token limit.")


class Usage(BaseModel):
    documents: int = Field(..., description="Documents received.")
    scored: int = Field(..., description="Documents that got a score.")
    images: int = Field(..., description="Images decoded for this request (query included).")
    prompt_tokens: int = Field(
        0, description="Tokens the model read, summed over scored pairs (image tokens included; lite backend: see README)."
    )
    total_tokens: int = Field(0, description="Same as prompt_tokens (a reranker generates nothing); infinity and Jina clients read it.")


class RerankResponse(BaseModel):
    id: str
    model: str
    results: list[RerankResultItem] = Field(..., description="Best first; failed documents last.")
    usage: Usage

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "5f0c6a2e9b7d4c1f8e3a2b1c0d9e8f7a",
                    "model": "vec-ai/lychee-rerank-mm",
                    "results": [{"index": 0, "relevance_score": 0.93}, {"index": 1, "relevance_score": 0.12}],
                    "usage": {"documents": 2, "scored": 2, "images": 0},
                }
            ]
        }
    )


# --------------------------------------------------------------------------- /api/rerank (seed 001)
class SeedItem(_Lenient):
    text: Optional[str] = None
    image: Optional[str] = Field(None, description=IMAGE_DESCRIPTION)
    video: Optional[Any] = Field(None, description="Not supported (text and images only): an item with a video fails with that error.")
    video_url: Optional[Any] = Field(None, description="As ``video``: not supported.")


class SeedRerankRequest(_Lenient):
    """The request of the Docker/Streamlit article's ``/api/rerank``."""

    query: SeedItem
    documents: list[SeedItem]
    mode: Literal["single", "batch"] = Field(
        "batch", description="Accepted for compatibility; both modes score every document the same way."
    )
    instruction: Optional[Instruction] = None

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "query": {"text": "how to replace a laptop hard drive", "image": None},
                    "documents": [
                        {"text": "Step 1: shut down and unplug the power...", "image": None},
                        {"text": "SSD vs HDD comparison table...", "image": None},
                    ],
                    "mode": "single",
                }
            ]
        },
    )


class SeedResult(BaseModel):
    index: int
    rank: int
    score: float
    text: Optional[str] = None
    yes_logit: Optional[float] = None
    no_logit: Optional[float] = None
    error: Optional[str] = None


class SeedRerankResponse(BaseModel):
    mode: str
    model: str
    results: list[SeedResult]
    elapsed_ms: float


# --------------------------------------------------------------------------- /v1/analyze
class AnalyzeRequest(_Lenient):
    """One (query, document) pair to explain."""

    query: QueryInput
    document: RerankInput
    instruction: Optional[Instruction] = None
    template: Optional[str] = Field(None, description="Name of a built-in instruction template.")

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"examples": [{"query": "a cat", "document": {"text": "a black cat", "image": _TINY_PNG}}]},
    )


class ImageInfo(BaseModel):
    side: Literal["query", "document"]
    width: int
    height: int


class AnalyzeResponse(BaseModel):
    model: str
    backend: str
    score: float = Field(..., description="p(yes) = sigmoid(yes_logit - no_logit).")
    yes_logit: Optional[float] = None
    no_logit: Optional[float] = None
    instruction: str
    prompt: str = Field(
        ...,
        description="The prompt as the model sees it, images as placeholders (the chat-templated text for the "
        "lychee backend; a plain rendering of the messages for backends without a chat template, e.g. lite).",
    )
    messages: Optional[list[dict[str, Any]]] = Field(
        None,
        description="Chat messages before templating ({'type': 'image'} for images); null where the model reads no "
        "chat (jina-reranker-m0 and Qwen3-Reranker read one plain string, a cross-encoder a tokenizer pair).",
    )
    images: list[ImageInfo]
    truncated: bool = False
    evidence: dict[str, Any] = Field(default_factory=dict, description="Backend-specific reasons (lite backend).")


# --------------------------------------------------------------------------- service
class HealthResponse(BaseModel):
    status: Literal["ok", "loading", "error"] = Field(..., description="ok: serving; loading: not yet (503); error: loading failed (503).")
    backend: Optional[str] = Field(None, description="Scoring backend: lychee (a model checkpoint), lite, or a registered one.")
    model: Optional[str] = Field(None, description="Hub id or local directory of the loaded model.")
    family: Optional[str] = Field(
        None, description="Checkpoint family of the loaded model (`lychee models` lists them, e.g. qwen3_vl); null for "
        "a backend without families (lite).",
    )
    device: Optional[str] = Field(None, description="Where it runs (cpu, cuda:0, ...).")
    dtype: Optional[str] = Field(None, description="Weights' dtype (float32, bfloat16, ...).")
    attn_implementation: Optional[str] = Field(None, description="Attention kernel (sdpa, flash_attention_2, eager).")
    uptime_s: float = Field(..., description="Seconds since the service started.")
    error: Optional[str] = Field(None, description="Why loading failed (status 'error').")
    note: Optional[str] = Field(None, description="What the backend is, e.g. that lite is an offline approximation.")


class ErrorBody(BaseModel):
    type: str = Field(..., description="limit_exceeded, invalid_request, unauthorized, timeout, overloaded, loading, ...")
    message: str
    limit: Optional[str] = Field(None, description="Name of the limit that was passed (e.g. max_documents).")
    value: Optional[float] = Field(None, description="The request's value for that limit.")
    max: Optional[float] = Field(None, description="The configured maximum.")
    details: Optional[list[dict[str, Any]]] = None


class ErrorResponse(BaseModel):
    error: ErrorBody

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "type": "limit_exceeded",
                        "message": "1200 documents, over the limit of 1000 (max_documents)",
                        "limit": "max_documents",
                        "value": 1200,
                        "max": 1000,
                    }
                }
            ]
        }
    )
