"""``lychee batch`` on a Qwen3-VL-Reranker checkpoint: Ray Data actors, --local, and the command,
each pair scored once with the library's score (texts, images, an image query); a video
candidate fails alone with its reason. As tests/jobs/test_batch.py does for lychee, smaller."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ..qwen3_vl_support import (  # noqa: F401 - shared fixtures
    FAMILY,
    TEXTS,
    qwen3_vl_pngs,
    qwen3_vl_reranker,
)
from ..ray_support import ray_local  # noqa: F401 - the shared session fixture
from .family_batch import check_command, check_ray_and_local, library_truth, picture_job

EXPECT = {"failed": ("image-query", 2, "video input is not supported")}  # the video candidate


@pytest.fixture(scope="module")
def job(tmp_path_factory, qwen3_vl_pngs: list[Path]) -> dict[str, Any]:
    """Image paths relative to the input; an image query with text; a video candidate."""
    folder = tmp_path_factory.mktemp("q3-batch")
    (folder / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(64))
    names = [p.name for p in qwen3_vl_pngs]
    return picture_job(folder, qwen3_vl_pngs, TEXTS, second={"text": "a drawing", "image": names[1]},
                       image_query={"text": "like this", "image": names[2]}, failing={"video": "clip.mp4"},
                       bare_images=False)


@pytest.fixture(scope="module")
def truth(job, qwen3_vl_reranker) -> dict[Any, dict[int, float]]:
    return library_truth(qwen3_vl_reranker, job["calls"], 7, 1e-4)  # the pictures score apart


def test_ray_actors_and_local_give_the_library_scores(ray_local, job, truth, qwen3_vl_dir, qwen3_vl_reranker, tmp_path):
    check_ray_and_local(job, truth, qwen3_vl_dir, qwen3_vl_reranker, tmp_path, counts=(4, 13, 1, 0),
                        same_errors_locally=False, **EXPECT)


def test_the_command_with_the_family_flag(job, truth, qwen3_vl_dir, tmp_path):
    check_command(job, truth, qwen3_vl_dir, FAMILY, tmp_path, pairs=13, **EXPECT)
