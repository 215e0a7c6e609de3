"""Shared fixtures: the tiny checkpoint is built once per session, in the real on-disk layout."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# ``qwen3_vl_dir`` (a tiny Qwen3-VL-Reranker checkpoint) and ``official_env`` (the official
# scorer's environment) for every test folder.
pytest_plugins = [
    "tests.official.harness", "tests.qwen3_reranker_support", "tests.cross_encoder_support",
    "tests.qwen2_vl_support", "tests.jina_m0_support",
]


def pytest_configure(config: pytest.Config) -> None:
    """SIGTERM (a CI job cancelled, ``kill``) unwinds the run like Ctrl-C.

    By default SIGTERM ends pytest on the spot: no ``finally`` and no fixture teardown runs, so a
    Streamlit or uvicorn server a test started (in its own session) would be orphaned. As a
    KeyboardInterrupt, every context manager that starts a server stops it on the way out.
    """
    signal.signal(signal.SIGTERM, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def _no_process_left_behind() -> Iterator[None]:
    """Every process a test starts must stop with it; this is the net under the fixtures.

    At the end of the session any descendant still running (a Streamlit, uvicorn or Ray
    process a fixture missed) gets a few seconds to exit, then SIGTERM, then SIGKILL, and is
    named on stderr so the leak gets fixed where it started.
    """
    yield
    import psutil

    leftovers = psutil.Process().children(recursive=True)
    _, alive = psutil.wait_procs(leftovers, timeout=5)
    if not alive:
        return
    names = []
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            names.append(f"{proc.pid} {' '.join(proc.cmdline())[:120]}")
            proc.terminate()
    _, alive = psutil.wait_procs(alive, timeout=10)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    sys.stderr.write("\nprocesses left running by the tests, now stopped:\n  " + "\n  ".join(names) + "\n")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lychee_rerank.testing.tiny_model import build

    return build(tmp_path_factory.mktemp("tiny-lychee"))


@pytest.fixture(scope="session")
def qwen_vocab_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random checkpoint with the real Qwen2 vocabulary (~100 MB, built here, never committed)."""
    from lychee_rerank.testing.tiny_model import build

    return build(tmp_path_factory.mktemp("tiny-lychee-qwen-vocab"), vocab="qwen2")


@pytest.fixture(scope="session")
def reranker(tiny_model_dir: Path):
    from lychee_rerank import LycheeReranker

    return LycheeReranker.from_pretrained(tiny_model_dir, device="cpu", dtype="float32")


@pytest.fixture(scope="session")
def naive(tiny_model_dir: Path):
    """The deliberately naive reference (one pair per forward, eager, no caches) on the tiny model."""
    from lychee_rerank.testing.reference import NaiveReference

    return NaiveReference(tiny_model_dir)


def make_photo(width: int, height: int, seed: int) -> Image.Image:
    """A deterministic picture with structure (gradients + blobs), not a flat colour."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = rng.uniform(0, 255, size=3)
    img = np.stack(
        [
            (base[c] + 80 * np.sin(x / rng.uniform(5, 40) + c) + 60 * np.cos(y / rng.uniform(5, 40))) % 256
            for c in range(3)
        ],
        axis=-1,
    )
    return Image.fromarray(img.astype(np.uint8), "RGB")


@pytest.fixture(scope="session")
def photos() -> list[Image.Image]:
    sizes = [(64, 48), (120, 90), (56, 200), (300, 160), (90, 90), (200, 75), (40, 40), (150, 220)]
    return [make_photo(w, h, seed=i) for i, (w, h) in enumerate(sizes)]


@pytest.fixture(scope="session")
def image_files(tmp_path_factory: pytest.TempPathFactory, photos: list[Image.Image]) -> list[Path]:
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for i, photo in enumerate(photos[:4]):
        path = folder / f"img{i}.png"
        photo.save(path)
        paths.append(path)
    return paths


def png_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()
