"""Run the official Qwen3-VL-Reranker scorer from any test, and the fixtures that go with it.

The official scorer (vendored unchanged in ``qwen3_vl_reranker.py``) needs transformers 4.57.x, so
it runs in a subprocess on the official environment that ``scripts/official_env.sh`` builds once
under ``.cache/official-qwen3vl`` (a ``pip --target`` layer over the project venv).

From a test anywhere::

    from tests.official.harness import official_qwen3_vl_scores

    scores = official_qwen3_vl_scores(model_dir, [
        {"query": {"text": "a cat"}, "documents": [{"text": "a black cat"}, {"image": str(png)}]},
        {"instruction": "Find the picture", "query": {"image": str(png)}, "documents": [{}]},
    ])  # -> [[p, p], [p]]

Each call is ``{instruction?, query: {text?, image?}, documents: [{text?, image?}, ...]}`` where
``text``/``image`` is one value or a list and ``image`` is a file path (opened with PIL by the
runner); see ``run_qwen3_vl.py`` for the options. Fixtures (session scope): ``official_env``
(the environment's path; skips the test when it cannot be built, fails instead when
``LYCHEE_OFFICIAL_REQUIRED=1``) and ``qwen3_vl_dir`` (the tiny Qwen3-VL-Reranker checkpoint).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV_SCRIPT = ROOT / "scripts" / "official_env.sh"
RUNNER = Path(__file__).resolve().parent / "run_qwen3_vl.py"
OFFICIAL_TRANSFORMERS = "4.57.3"

_env_dir: Path | None = None
_env_error: str | None = None
_checkpoints: dict[int, Path] = {}


class OfficialEnvUnavailable(RuntimeError):
    """The official environment could not be built (no package registry, pip failure)."""


def ensure_official_env(timeout: float = 900) -> Path:
    """Build the official environment once per process (a no-op when its stamp is current)."""
    global _env_dir, _env_error
    if _env_dir is not None:
        return _env_dir
    if _env_error is not None:
        raise OfficialEnvUnavailable(_env_error)
    try:
        proc = subprocess.run(
            ["bash", str(ENV_SCRIPT)], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
            env={**os.environ, "PYTHON": sys.executable},
        )
    except subprocess.TimeoutExpired as exc:
        _env_error = f"scripts/official_env.sh ran past {timeout} s:\n{exc.stderr or ''}"
        raise OfficialEnvUnavailable(_env_error) from None
    if proc.returncode != 0:
        _env_error = f"scripts/official_env.sh failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
        raise OfficialEnvUnavailable(_env_error)
    _env_dir = (ROOT / proc.stdout.strip().splitlines()[-1]).resolve()
    return _env_dir


def run_official_qwen3_vl(
    model_dir: str | Path,
    calls: list[dict],
    *,
    images_as: str = "pil",
    reranker_kwargs: dict | None = None,
    return_inputs: bool = False,
    timeout: float = 600,
) -> dict:
    """Run the official scorer on ``calls`` in a subprocess; returns the runner's whole result
    (``scores``, ``transformers_version``, timings and, if asked, ``inputs``)."""
    env_dir = ensure_official_env()
    with tempfile.TemporaryDirectory(prefix="official-qwen3vl-") as tmp:
        request, out = Path(tmp) / "request.json", Path(tmp) / "out.json"
        request.write_text(json.dumps({
            "model_dir": str(model_dir), "calls": calls, "images_as": images_as,
            "reranker_kwargs": reranker_kwargs or {}, "return_inputs": return_inputs,
        }))
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update(PYTHONPATH=str(env_dir), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                   TOKENIZERS_PARALLELISM="false")
        try:
            proc = subprocess.run(
                [sys.executable, str(RUNNER), str(request), str(out)], cwd=ROOT, env=env,
                capture_output=True, text=True, timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"official runner ran past {timeout} s; stderr:\n{exc.stderr or ''}") from None
        if proc.returncode != 0 or not out.exists():
            raise AssertionError(
                f"official runner failed ({proc.returncode}); stdout:\n{proc.stdout[-2000:]}\n"
                f"stderr:\n{proc.stderr[-6000:]}"
            )
        result = json.loads(out.read_text())
    assert result["transformers_version"] == OFFICIAL_TRANSFORMERS, result["transformers_version"]
    assert f"transformers {OFFICIAL_TRANSFORMERS}" in proc.stdout
    return result


def official_qwen3_vl_scores(model_dir: str | Path, calls: list[dict], **options) -> list[list[float]]:
    """The official scorer's scores: one list per call, one float per document."""
    return run_official_qwen3_vl(model_dir, calls, **options)["scores"]


def tiny_qwen3_vl_checkpoint(tmp_path_factory: pytest.TempPathFactory, seed: int = 0) -> Path:
    """The tiny Qwen3-VL-Reranker checkpoint, built once per process and seed."""
    if seed not in _checkpoints:
        from lychee_rerank.testing.tiny_qwen3_vl import build

        _checkpoints[seed] = build(tmp_path_factory.mktemp(f"tiny-qwen3-vl-{seed}"), seed=seed)
    return _checkpoints[seed]


@pytest.fixture(scope="session")
def official_env() -> Path:
    """The official environment's directory; skips (or fails, with LYCHEE_OFFICIAL_REQUIRED=1)
    when it cannot be built here."""
    try:
        return ensure_official_env()
    except OfficialEnvUnavailable as exc:
        if os.environ.get("LYCHEE_OFFICIAL_REQUIRED") == "1":
            pytest.fail(str(exc))
        pytest.skip(f"official Qwen3-VL-Reranker environment unavailable: {exc}")


@pytest.fixture(scope="session")
def qwen3_vl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen3-VL-Reranker checkpoint in the published layout (~60 MB, seed 0)."""
    return tiny_qwen3_vl_checkpoint(tmp_path_factory)
