"""``lychee batch`` on a MonoQwen2-VL adapter directory: Ray Data actors, --local, and the command,
each pair scored once with the library's score (English and Chinese queries, grouped and flat
records, image candidates as relative paths); a text candidate fails alone ("reads image documents
only") while the images are scored, and an image query is that query's error. As
tests/jobs/test_qwen3_reranker.py does for the text family."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from ..qwen2_vl_support import FAMILY
from ..ray_support import ray_local  # noqa: F401 - the shared session fixture
from .family_batch import check_command, check_ray_and_local, library_truth, write_jsonl

IMAGE_ONLY = "reads image documents only"
TEXT_QUERIES = "reads text queries only"
EXPECT = {"failed": (7, 1, IMAGE_ONLY), "refused": TEXT_QUERIES}  # the text candidate; the image query


@pytest.fixture(scope="module")
def job(tmp_path_factory, mono_qwen2_vl_images) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("mono-batch")
    names = []
    for p in mono_qwen2_vl_images[:5]:
        shutil.copy(p, folder / p.name)
        names.append(p.name)
    img = [{"image": n} for n in names]
    records = [
        {"query_id": "en", "query": "a cat sitting on a window sill", "candidates": img[:4]},
        {"query_id": 7, "query": "一只黑猫趴在窗台上", "candidates": [img[2], "a text candidate", img[0], img[4]]},
        {"query_id": "image-query", "query": {"text": "like this", "image": names[0]}, "candidates": img[:2]},
    ]
    records += [{"query_id": "flat", "query": "quarterly revenue chart", "candidate": c} for c in (img[1], img[3])]
    files = [folder / n for n in names]
    calls = {
        "en": ("a cat sitting on a window sill", files[:4]),
        7: ("一只黑猫趴在窗台上", [files[2], files[0], files[4]]),  # candidates 0, 2, 3
        "flat": ("quarterly revenue chart", [files[1], files[3]]),
    }
    return {"path": write_jsonl(folder / "input.jsonl", records), "calls": calls}


@pytest.fixture(scope="module")
def truth(job, mono_qwen2_vl_reranker) -> dict[Any, dict[int, float]]:
    return library_truth(mono_qwen2_vl_reranker, job["calls"], "en", 1e-3, asked_of_7=(0, 2, 3))


def test_ray_actors_and_local_give_the_library_scores(ray_local, job, truth, mono_qwen2_vl_dir, mono_qwen2_vl_reranker, tmp_path):
    check_ray_and_local(job, truth, mono_qwen2_vl_dir, mono_qwen2_vl_reranker, tmp_path, counts=(4, 10, 1, 1),
                        same_errors_locally=True, **EXPECT)


def test_the_command_with_the_family_flag(job, truth, mono_qwen2_vl_dir, tmp_path):
    check_command(job, truth, mono_qwen2_vl_dir, FAMILY, tmp_path, pairs=10, **EXPECT)
