"""Scoring backends, and the one place a backend is chosen and built.

Every surface (library, CLI, HTTP, Ray Serve, batch, eval, UI, fine-tuning) gets its backend
from :func:`create`; adding a backend is one :func:`register` call. Factories are named as
``"module:function"`` strings and imported on first use, so importing this package (and so
``lychee --help``) never imports torch, transformers or the lite models.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable, Union

from ..config import RerankerConfig
from .base import Backend, ProgressCallback
from .choice import DEFAULT_HUB_MODEL, BackendChoice, choose_backend

#: ``factory(config, **options) -> Backend``; ``options`` are backend-specific extras.
Factory = Callable[..., Backend]

_FACTORIES: dict[str, Union[Factory, str]] = {
    "lychee": "lychee_rerank.backends.lychee:create_backend",
    "lite": "lychee_rerank.backends.lite:create_backend",
}
#: The pip extra (:mod:`lychee_rerank.extras`) a backend's packages come from, if not the core.
_EXTRAS: dict[str, str] = {"lite": "lite"}


def register(name: str, factory: Union[Factory, str], *, extra: str | None = None) -> None:
    """Make ``--backend NAME`` (and ``RerankerConfig(backend=NAME)``) build with ``factory``.

    ``factory`` is a callable ``(config, **options) -> Backend`` or a ``"module:function"``
    string imported when the backend is first created. ``extra`` names the pip extra its
    packages come from, so a missing one fails with the install command, not an ImportError.
    """
    if name == "auto":
        raise ValueError("'auto' is not a backend name: it picks one of the others")
    _FACTORIES[name] = factory
    if extra:
        _EXTRAS[name] = extra


def names() -> tuple[str, ...]:
    """Registered backend names (``auto`` not included)."""
    return tuple(_FACTORIES)


def choose(backend: str = "auto", model: str | Path | None = None) -> BackendChoice:
    """Which backend (and model) ``backend``/``model`` mean; ``auto`` takes the model when one
    is configured (``model``, ``$LYCHEE_MODEL``) or in the hub cache, else the lite backend."""
    return choose_backend(backend, model, names())


def _factory(name: str) -> Factory:
    entry = _FACTORIES[name]
    if name in _EXTRAS:
        from ..extras import require

        require(_EXTRAS[name], f"the {name} backend")
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module), attr)
        _FACTORIES[name] = entry
    return entry


def create(
    config: RerankerConfig | str = "auto",
    *,
    notice: Callable[[str], None] | None = None,
    **options: Any,
) -> Backend:
    """Build the backend ``config`` describes (``auto`` resolved by :func:`choose`).

    A string is shorthand for ``RerankerConfig(backend=...)``. ``notice`` receives the
    one-line explanation when ``auto`` falls back to the lite backend. ``options`` go to the
    backend's factory (e.g. ``cache_dir``, ``ocr`` for lite).
    """
    if isinstance(config, str):
        config = RerankerConfig(backend=config)
    chosen = choose(config.backend, config.model)
    if chosen.notice and notice is not None:
        notice(chosen.notice)
    return _factory(chosen.backend)(config.with_(backend=chosen.backend, model=chosen.model), **options)


__all__ = [
    "Backend",
    "BackendChoice",
    "DEFAULT_HUB_MODEL",
    "Factory",
    "ProgressCallback",
    "RerankerConfig",
    "choose",
    "create",
    "names",
    "register",
]
