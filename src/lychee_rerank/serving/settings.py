"""``ServerSettings``: every knob of ``lychee serve`` in one validated object.

Values come from, in order of precedence: the ``lychee serve`` flags, ``LYCHEE_*`` environment
variables (``LYCHEE_API_KEY``, ``LYCHEE_MODEL``, ``LYCHEE_MAX_DOCUMENTS``, ...), then the
defaults below. Tests and embedding applications build one directly and hand it to
:func:`lychee_rerank.serving.app.create_app`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..config import DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_IMAGE_PIXELS, MiB, RerankerConfig


class ServerSettings(BaseSettings):
    """Configuration of the HTTP service; the limits are the service's promise to its operators."""

    model_config = SettingsConfigDict(env_prefix="LYCHEE_", extra="ignore", frozen=True)

    # ---------------------------------------------------------------- binding and model
    host: str = Field("127.0.0.1", description="Interface to bind. Loopback by default: exposing it is a decision.")
    port: int = Field(8080, ge=0, le=65535)
    backend: str = Field("auto", description="Which scoring backend to load: auto, lychee, lite (or a registered one).")
    model: Optional[str] = Field(None, description="Hub id or local directory of the model (backend lychee).")
    device: str = "auto"
    dtype: str = "auto"
    attn_implementation: str = "auto"
    model_max_pixels: Optional[int] = Field(None, gt=0, description="Visual-token pixel budget per image (model side).")
    adapter: Optional[str] = Field(None, description="LoRA adapter directory from `lychee finetune` (backend lychee).")
    batch_size: int = Field(8, ge=1, description="Pairs per forward pass.")
    max_wait_ms: float = Field(
        5.0, ge=0, description="How long a request waits for concurrent ones to share its forward passes (micro-batching)."
    )
    max_batch_documents: int = Field(256, ge=1, description="Documents coalesced into one micro-batch at most.")

    # ---------------------------------------------------------------- security
    api_key: Optional[SecretStr] = Field(
        None, description="When set, every route except /health needs 'Authorization: Bearer KEY'."
    )
    allow_local_dir: Optional[Path] = Field(
        None, description="Directory from which requests may name image files; none may be read otherwise."
    )
    allow_urls: bool = Field(False, description="Let requests name http(s) image URLs (public addresses only).")
    url_timeout_s: float = Field(10.0, gt=0, description="Total time allowed to fetch one image URL.")
    url_max_redirects: int = Field(3, ge=0)

    # ---------------------------------------------------------------- limits
    max_documents: int = Field(1000, ge=1, description="Documents per request.")
    max_request_bytes: int = Field(64 * MiB, ge=1024, description="Size of a request body.")
    max_image_bytes: int = Field(DEFAULT_MAX_IMAGE_BYTES, ge=1, description="Size of one encoded image.")
    max_image_pixels: int = Field(
        DEFAULT_MAX_IMAGE_PIXELS, ge=1, description="Width x height of one image, checked before decoding."
    )
    max_text_chars: int = Field(100_000, ge=1, description="Characters in one query, document or instruction text.")
    request_timeout_s: float = Field(120.0, gt=0, description="Wall-clock limit for one request; past it: 504.")
    max_queue: int = Field(64, ge=1, description="Requests admitted to the model (running + waiting); past it: 503.")
    max_header_bytes: int = Field(
        64 * 1024, ge=1024, description="Request line and headers together; past it: 431 and the connection is closed."
    )
    body_timeout_s: float = Field(
        10.0, gt=0, description="Seconds to wait for the next part of a request body (a body shorter than its "
        "Content-Length); past it: 400."
    )
    head_timeout_s: float = Field(
        10.0, gt=0, description="Seconds a request head may take to arrive (from the connection's start, or its first "
        "byte on a kept-alive connection), and a chunked body's trailers; past it: 408 and the connection is closed "
        "(an idle new connection is just closed)."
    )
    max_json_values: Optional[int] = Field(
        None, ge=1, description="Array elements and object members in a request body, counted before it is parsed; "
        "past it: 413. Parsing and validation cost time per item on the event loop: the default, 32 per document "
        "allowed (max_documents) and at least 4,096, keeps that under ~0.2 s."
    )

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        from ..backends import names

        if value != "auto" and value not in names():
            raise ValueError(f"unknown backend {value!r}: use one of {', '.join(('auto', *names()))}")
        return value

    @field_validator("api_key")
    @classmethod
    def _sendable_key(cls, value: Optional[SecretStr]) -> Optional[SecretStr]:
        """A key no client can send would lock everyone out: HTTP strips the spaces around a
        header value and forbids control characters in it. Other characters (any language) are
        fine: clients send them as UTF-8 bytes."""
        if value is None:
            return None
        key = value.get_secret_value()
        if not key.strip(" \t"):
            # `--api-key "$KEY"` with KEY unset must not serve without a key: omit the option for that.
            raise ValueError("the API key is empty: give a key, or omit --api-key/LYCHEE_API_KEY to serve without one")
        if key != key.strip(" \t"):
            raise ValueError("the API key starts or ends with a space or tab, which HTTP strips: no client could send it")
        bad = sorted({f"U+{ord(c):04X}" for c in key if (ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F})
        if bad:
            raise ValueError(f"the API key holds control characters ({', '.join(bad)}), which an HTTP header cannot carry")
        return value

    @field_validator("allow_local_dir")
    @classmethod
    def _existing_dir(cls, value: Optional[Path]) -> Optional[Path]:
        if value is None:
            return None
        resolved = value.expanduser().resolve()
        if not resolved.is_dir():
            raise ValueError(f"allow_local_dir {value} is not an existing directory")
        return resolved

    def reranker_config(self) -> RerankerConfig:
        """The reranker these settings describe (the service's image limits included)."""
        return RerankerConfig(backend=self.backend, model=self.model, adapter=self.adapter).with_(
            device=self.device, dtype=self.dtype, attn_implementation=self.attn_implementation,
            max_pixels=self.model_max_pixels, image_max_pixels=self.max_image_pixels,
            image_max_bytes=self.max_image_bytes,
        )

    @property
    def json_values_limit(self) -> int:
        """``max_json_values``, or its default: 32 per allowed document, at least 4,096."""
        return self.max_json_values if self.max_json_values is not None else max(4096, 32 * self.max_documents)

    @property
    def api_key_value(self) -> Optional[str]:
        return self.api_key.get_secret_value() if self.api_key is not None else None
