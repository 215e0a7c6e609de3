"""What the families' support modules (tests/<family>_support.py) share: a tiny checkpoint built
once per process, and the library on it (FP32, CPU) as every surface's yardstick."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

_built: dict[str, Path] = {}


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], Path]) -> Path:
    """``build(folder)`` in a fresh temporary folder ``name``, once per process and ``name`` (the
    name carries the seed and options, so it is the cache key)."""
    if name not in _built:
        _built[name] = build(tmp_path_factory.mktemp(name))
    return _built[name]


def library_reranker(model_dir: Path, family: str) -> Any:
    """The library on ``model_dir`` (FP32, CPU; the family read from the checkpoint), which must be ``family``."""
    from lychee_rerank import LycheeReranker

    rr = LycheeReranker.from_pretrained(model_dir, device="cpu", dtype="float32")
    assert rr.info["family"] == family
    return rr


def hub_snapshot(cache: Path, hub_id: str, directory: Path, commit: str = "0" * 40) -> Path:
    """Copy checkpoint ``directory`` into hub cache ``cache`` as ``hub_id`` (the hub's on-disk
    layout: ``models--org--name/refs/main`` + ``snapshots/<commit>/``), so that with
    ``HF_HUB_CACHE=cache HF_HUB_OFFLINE=1`` the hub id resolves as a downloaded one does."""
    import shutil

    repo = cache / ("models--" + hub_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    shutil.copytree(directory, snapshot)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot
