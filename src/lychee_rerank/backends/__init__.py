"""Scoring backends: one small module each, all behind :class:`~.base.Backend`."""

from .base import Backend

__all__ = ["Backend"]
