"""Container test fixtures: the image, built once per session from a debootstrap base with podman.

These tests build a ~10 GB image (torch's CUDA wheels) and take minutes: they run only with
LYCHEE_CONTAINER_TESTS=1 (``make container-test``); the normal ``pytest`` run skips them. Every
container and image made here is removed at the end of the session, on failure too; set
LYCHEE_CONTAINER_KEEP=1 to keep the base and the image (and the build's layer cache) while
working on the Dockerfile, or LYCHEE_CONTAINER_IMAGE=TAG to test an image built beforehand
(it is not removed: a broken variant, for instance, to see these tests fail).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import podman

ENABLED = os.environ.get("LYCHEE_CONTAINER_TESTS") == "1"
KEEP = os.environ.get("LYCHEE_CONTAINER_KEEP") == "1"
#: Measured numbers (build time, image size, time to healthy) land here for docs/guides/container.md.
TIMINGS = Path(__file__).resolve().parents[2] / "artifacts" / "container-timings.json"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip this folder's tests unless asked for: the normal suite must not build images."""
    if ENABLED:
        return
    here = Path(__file__).parent
    skip = pytest.mark.skip(reason="builds and runs a container image: LYCHEE_CONTAINER_TESTS=1 (make container-test)")
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(skip)


class Run:
    """This session's names: a label on everything it makes, and the tags of its images."""

    def __init__(self) -> None:
        self.label = "dev" if KEEP else f"{os.getpid()}-{int(time.time())}"
        self.base = f"localhost/lychee-ctest-base:{self.label}"
        self.image = f"localhost/lychee-ctest:{self.label}"
        self.images: list[str] = [self.image, self.base]
        self.timings: dict[str, float | str] = {}
        self.dangling_before = podman.dangling_images()  # what was there before: not this run's to remove
        self._names = 0

    def name(self, role: str) -> str:
        self._names += 1
        return f"lychee-ctest-{self.label}-{role}-{self._names}"

    def record(self, **values: float | str) -> None:
        self.timings.update(values)
        TIMINGS.parent.mkdir(parents=True, exist_ok=True)
        TIMINGS.write_text(json.dumps(self.timings, indent=2) + "\n")


@pytest.fixture(scope="session")
def run() -> Iterator[Run]:
    for tool in ("podman", "debootstrap", "runc"):
        assert shutil.which(tool), f"{tool} is missing: apt-get install -y podman debootstrap runc (make container-test does)"
    current = Run()
    try:
        yield current
    finally:
        if not KEEP:
            podman.remove_everything(current.label, current.images, current.dangling_before)


@pytest.fixture(scope="session")
def image(run: Run) -> str:
    """The project's image, built from the Dockerfile on a Debian base, torch from the host's wheels."""
    given = os.environ.get("LYCHEE_CONTAINER_IMAGE")
    if given:
        return given
    start = time.monotonic()
    tarball_existed = podman.BASE_TARBALL.exists()
    podman.base_tarball()
    debootstrap_s = time.monotonic() - start
    podman.import_base(run.base)
    start = time.monotonic()
    podman.build_image(run.image, run.base, keep_layers=KEEP, run_label=run.label)
    build_s = time.monotonic() - start
    size = podman.image_size_bytes(run.image)
    run.record(
        debootstrap_s=round(debootstrap_s, 1) if not tarball_existed else "cached", build_s=round(build_s, 1),
        image_bytes=size, image_gb=round(size / 1e9, 2),
    )
    return run.image


@pytest.fixture(scope="session")
def tiny_checkpoint() -> Iterator[Path]:
    """The tiny lychee checkpoint, in a folder the container's user (uid 10001) can read: pytest's
    own temporary folders are private to root."""
    from lychee_rerank.testing.tiny_model import build

    folder = Path(tempfile.mkdtemp(prefix="lychee-ctest-model-"))
    try:
        model = build(folder / "tiny")
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        yield model
    finally:
        shutil.rmtree(folder, ignore_errors=True)
