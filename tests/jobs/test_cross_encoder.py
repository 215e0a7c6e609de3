"""``lychee batch`` on a sequence-classification cross-encoder (text only): Ray Data actors, --local,
and the command, each pair scored once with the library's score (English and Chinese texts,
grouped and flat records); an image candidate fails alone ("reads text only") while the texts are
scored, and an image query is that query's error. As tests/jobs/test_qwen3_reranker.py does."""

from __future__ import annotations

from typing import Any

import pytest

from ..cross_encoder_support import FAMILY, TEXT_ONLY
from ..ray_support import ray_local  # noqa: F401 - the shared session fixture
from .family_batch import check_command, check_ray_and_local, library_truth, text_job_fixture  # noqa: F401 - job

EXPECT = {"failed": (7, 1, TEXT_ONLY), "refused": TEXT_ONLY}  # the image candidate; the image query


@pytest.fixture(scope="module")
def truth(job, cross_encoder_reranker) -> dict[Any, dict[int, float]]:
    return library_truth(cross_encoder_reranker, job["calls"], "en", 1e-2, asked_of_7=(0, 2, 3))


def test_ray_actors_and_local_give_the_library_scores(ray_local, job, truth, cross_encoder_dir, cross_encoder_reranker, tmp_path):
    check_ray_and_local(job, truth, cross_encoder_dir, cross_encoder_reranker, tmp_path, counts=(4, 11, 1, 1),
                        same_errors_locally=True, **EXPECT)


def test_the_command_with_the_family_flag(job, truth, cross_encoder_dir, tmp_path):
    check_command(job, truth, cross_encoder_dir, FAMILY, tmp_path, pairs=11, **EXPECT)
