"""On-disk cache of image analyses, keyed by image content hash and backend version.

One small JSON file per image under ``<cache_dir>/<version>/<hash[:2]>/<hash>.json``. Files are
written to a temporary name and renamed into place, so concurrent processes (a CLI run beside a
server) never see half a record; a corrupt or unreadable file is treated as a miss. A new
backend version (models, settings or record layout changed) reads from a new directory, so old
entries are never misread; they can be deleted with the directory.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from .analysis import ImageAnalysis

logger = logging.getLogger("lychee_rerank")

ENV_CACHE_DIR = "LYCHEE_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$LYCHEE_CACHE_DIR`` if set, else ``~/.cache/lychee-rerank/lite``."""
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "lychee-rerank" / "lite"


class AnalysisCache:
    """Get/put :class:`ImageAnalysis` records by image hash; ``enabled=False`` keeps nothing."""

    def __init__(self, cache_dir: str | os.PathLike[str] | None, version: str, *, enabled: bool = True) -> None:
        self.root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        self.version = version
        self.enabled = enabled
        self.hits = 0
        self.misses = 0

    @property
    def directory(self) -> Path:
        return self.root / self.version

    def path(self, image_hash: str) -> Path:
        safe = "".join(ch for ch in image_hash if ch.isalnum())
        if len(safe) < 8:
            raise ValueError(f"not a content hash: {image_hash!r}")
        return self.directory / safe[:2] / f"{safe}.json"

    def get(self, image_hash: str) -> ImageAnalysis | None:
        if not self.enabled:
            return None
        path = self.path(image_hash)
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            if data.get("version") != self.version:
                raise ValueError("version mismatch")
            analysis = ImageAnalysis.from_json(data["analysis"])
        except FileNotFoundError:
            self.misses += 1
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("lite cache: ignoring unreadable entry %s (%s)", path, exc)
            self.misses += 1
            return None
        self.hits += 1
        return analysis

    def put(self, image_hash: str, analysis: ImageAnalysis) -> None:
        """Store a record; a read-only or full disk costs the cache, never the ranking."""
        if not self.enabled:
            return
        payload = json.dumps({"version": self.version, "analysis": analysis.to_json()}, ensure_ascii=False)
        self._write(self.path(image_hash), payload)

    def get_extra(self, name: str) -> dict[str, Any] | None:
        """A named, version-scoped JSON record (e.g. embeddings of the calibration references)."""
        if not self.enabled:
            return None
        try:
            data = json.loads((self.directory / f"{name}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and data.get("version") == self.version else None

    def put_extra(self, name: str, data: dict[str, Any]) -> None:
        if self.enabled:
            self._write(
                self.directory / f"{name}.json", json.dumps({**data, "version": self.version}, ensure_ascii=False)
            )

    def _write(self, path: Path, payload: str) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(payload)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            logger.warning("lite cache: could not write %s (%s)", path, exc)
