"""``ServerSettings``: every knob of ``lychee serve`` in one validated object.

Values come from, in order of precedence: the ``lychee serve`` flags, ``LYCHEE_*`` environment
variables (``LYCHEE_API_KEY``, ``LYCHEE_MODEL``, ``LYCHEE_MAX_DOCUMENTS``, ...), then the
defaults below. Tests and embedding applications build one directly and hand it to
:func:`lychee_rerank.serving.app.create_app`.

What model to load is one nested :class:`~lychee_rerank.config.RerankerConfig` (``reranker``),
not a copy of its fields. Each of its fields is still set by its own name, as a keyword
(``ServerSettings(model=..., device=...)``, which the flags use) or as ``LYCHEE_<NAME>``
(``LYCHEE_MODEL``, ``LYCHEE_FAMILY``, ``LYCHEE_DEVICE``, ...), with two exceptions: the pixel
budget keeps its server names (``model_max_pixels``/``model_min_pixels``, apart from the
decoding limit ``max_image_pixels``), and the image decoding limits come from the server's
``max_image_pixels``/``max_image_bytes``, one value for the HTTP reader and the engine.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Optional

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ..config import DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_IMAGE_PIXELS, MiB, RerankerConfig

#: Settings names of ``RerankerConfig`` fields that are not the field's own name (kept from
#: before the nesting: ``max_pixels`` alone reads too much like ``max_image_pixels``).
RENAMED = {"model_max_pixels": "max_pixels", "model_min_pixels": "min_pixels"}
#: ``RerankerConfig`` fields set from the server's own limits, never by their own name.
FROM_SERVER_LIMITS = {"image_max_pixels": "max_image_pixels", "image_max_bytes": "max_image_bytes"}
#: Reranker fields that must be positive when set.
POSITIVE = ("min_pixels", "max_pixels", "max_query_tokens", "max_doc_tokens", "max_batch_tokens")


def reranker_names() -> dict[str, str]:
    """{settings name: ``RerankerConfig`` field} for every reranker field settable on the server."""
    names = {f.name: f.name for f in dataclasses.fields(RerankerConfig) if f.name not in FROM_SERVER_LIMITS}
    for settings_name, field_name in RENAMED.items():
        del names[field_name]
        names[settings_name] = field_name
    return names


class _RerankerEnv(PydanticBaseSettingsSource):
    """``LYCHEE_<NAME>`` for each reranker field: they are not fields of the settings, so the
    standard environment source would not read them. Gives them nested under ``reranker``."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        prefix = str(self.config.get("env_prefix") or "").lower()
        environ = {k.lower(): v for k, v in os.environ.items()}  # like the standard source (case-insensitive)
        found = {field: environ[prefix + name] for name, field in reranker_names().items() if prefix + name in environ}
        return {"reranker": found} if found else {}


class ServerSettings(BaseSettings):
    """Configuration of the HTTP service; the limits are the service's promise to its operators."""

    model_config = SettingsConfigDict(env_prefix="LYCHEE_", extra="ignore", frozen=True)

    # ---------------------------------------------------------------- binding and model
    host: str = Field("127.0.0.1", description="Interface to bind. Loopback by default: exposing it is a decision.")
    port: int = Field(8080, ge=0, le=65535)
    reranker: RerankerConfig = Field(
        default_factory=RerankerConfig,
        description="What to load: backend, model, family, adapter, device, dtype, pixel budget, ... Each field is "
        "also accepted by its own name (`model=`, `LYCHEE_MODEL`); see the module docstring.",
    )
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

    @model_validator(mode="before")
    @classmethod
    def _nest_reranker_fields(cls, data: Any) -> Any:
        """``model=``, ``device=``, ``model_max_pixels=``... (flags, keywords) → ``reranker``; they
        win over ``LYCHEE_*`` values already nested there, as flags do over the environment."""
        if not isinstance(data, dict):
            return data
        names = reranker_names()
        flat = {names[k]: data[k] for k in data if k in names}
        if not flat:
            return data
        nested = data.get("reranker") or {}
        nested = dataclasses.asdict(nested) if isinstance(nested, RerankerConfig) else dict(nested)
        return {**{k: v for k, v in data.items() if k not in names}, "reranker": {**nested, **flat}}

    @field_validator("reranker")
    @classmethod
    def _usable_reranker(cls, value: RerankerConfig) -> RerankerConfig:
        """Refuse at start-up what would only fail when the model loads: an unknown backend or
        family (named with the known ones), a non-positive pixel budget or token limit."""
        from ..backends import families, names

        if value.backend != "auto" and value.backend not in names():
            raise ValueError(f"unknown backend {value.backend!r}: use one of {', '.join(('auto', *names()))}")
        if value.family is not None:
            families.get(value.family)
        for name in POSITIVE:
            number = getattr(value, name)
            if number is not None and number <= 0:
                raise ValueError(f"{name} must be > 0, not {number}")
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
        return dataclasses.replace(
            self.reranker, image_max_pixels=self.max_image_pixels, image_max_bytes=self.max_image_bytes
        )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The standard sources, plus ``LYCHEE_<NAME>`` for the reranker's fields (below the
        settings' own environment variables, above the defaults)."""
        return init_settings, env_settings, _RerankerEnv(settings_cls), dotenv_settings, file_secret_settings

    @property
    def json_values_limit(self) -> int:
        """``max_json_values``, or its default: 32 per allowed document, at least 4,096."""
        return self.max_json_values if self.max_json_values is not None else max(4096, 32 * self.max_documents)

    @property
    def api_key_value(self) -> Optional[str]:
        return self.api_key.get_secret_value() if self.api_key is not None else None
