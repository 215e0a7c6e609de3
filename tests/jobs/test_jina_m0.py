"""``lychee batch`` on a jina-reranker-m0 checkpoint: Ray Data actors, --local, and the command, each
pair scored once with the library's score (texts, images, an image query); a corrupt image candidate
fails alone. As tests/jobs/test_qwen3_vl.py does for Qwen3-VL-Reranker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ..jina_m0_support import (  # noqa: F401 - shared fixtures
    FAMILY,
    TEXTS,
    jina_m0_pngs,
    jina_m0_reranker,
)
from ..ray_support import ray_local  # noqa: F401 - the shared session fixture
from .family_batch import check_command, check_ray_and_local, library_truth, picture_job

EXPECT = {"failed": ("image-query", 2, "")}  # the corrupt candidate: any error


@pytest.fixture(scope="module")
def job(tmp_path_factory, jina_m0_pngs: list[Path]) -> dict[str, Any]:
    """Image paths relative to the input; an image-only query; a corrupt image candidate."""
    folder = tmp_path_factory.mktemp("jm0-batch")
    (folder / "broken.png").write_bytes(jina_m0_pngs[0].read_bytes()[:60])
    names = [p.name for p in jina_m0_pngs]
    return picture_job(folder, jina_m0_pngs, TEXTS, second={"image": names[1]}, image_query={"image": names[2]},
                       failing={"image": "broken.png"}, bare_images=True)


@pytest.fixture(scope="module")
def truth(job, jina_m0_reranker) -> dict[Any, dict[int, float]]:
    return library_truth(jina_m0_reranker, job["calls"], 7, 1e-3)  # the pictures score apart


def test_ray_actors_and_local_give_the_library_scores(ray_local, job, truth, jina_m0_dir, jina_m0_reranker, tmp_path):
    check_ray_and_local(job, truth, jina_m0_dir, jina_m0_reranker, tmp_path, counts=(4, 13, 1, 0),
                        same_errors_locally=False, **EXPECT)


def test_the_command_with_the_family_flag(job, truth, jina_m0_dir, tmp_path):
    check_command(job, truth, jina_m0_dir, FAMILY, tmp_path, pairs=13, **EXPECT)
