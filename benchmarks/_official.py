"""The official scorers as throughput columns (``throughput.py --family qwen3_vl / qwen3_reranker``).

Qwen3-Reranker (:class:`ReadmeLoop`): the README code (vendored unchanged in
``tests/official/qwen3_reranker_readme.py``, loaded by ``tests/official/run_qwen3_reranker.py``)
runs in this process on the project's transformers. The README scores all its pairs in one
``compute_logits(process_inputs(pairs))`` call; for 100 passages a user chunks them, so each
request's documents go through that call ``batch_size`` at a time, in the given order.

Qwen3-VL-Reranker (:class:`OfficialScorer`):

The official scorer (vendored unchanged in ``tests/official/qwen3_vl_reranker.py``) needs
transformers 4.57.3, so it runs in a subprocess on ``.cache/official-qwen3vl`` (built by
``scripts/official_env.sh``) through the tests' harness. Its time is the runner's
``score_seconds``: the ``process()`` loop only (one call per request, one pair per forward), not the
imports or the model load. Its inputs are the scenario's, with every image written once to a PNG
file (lossless: the same pixels) that the runner opens with PIL inside that loop.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from PIL import Image

from _scenarios import Scenario

ROOT = Path(__file__).resolve().parents[1]


class OfficialScorer:
    """Runs a scenario through the official scorer; images are saved under ``image_dir``."""

    def __init__(self, model_dir: str | Path, image_dir: str | Path, timeout: float = 3600) -> None:
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        from tests.official.harness import ensure_official_env

        ensure_official_env()
        self.model_dir, self.image_dir, self.timeout = str(model_dir), Path(image_dir), timeout
        self._paths: dict[int, str] = {}

    def _path(self, image: Image.Image) -> str:
        if id(image) not in self._paths:
            path = self.image_dir / f"image-{len(self._paths)}.png"
            image.save(path)
            self._paths[id(image)] = str(path)
        return self._paths[id(image)]

    def _side(self, text: str | None, image: Image.Image | None) -> dict[str, Any]:
        side: dict[str, Any] = {}
        if image is not None:
            side["image"] = self._path(image)
        if text is not None:
            side["text"] = text
        return side

    def calls(self, scenario: Scenario) -> list[dict]:
        """The scenario's requests as the runner's calls (default instruction)."""
        return [
            {"query": self._side(r.query_text, r.query_image),
             "documents": [self._side(d.get("doc_text"), d.get("doc_image")) for d in r.docs]}
            for r in scenario.requests
        ]

    def run(self, calls: list[dict]) -> tuple[float, list[float]]:
        """(seconds inside the official ``process()`` loop, every score in pair order)."""
        from tests.official.harness import run_official_qwen3_vl

        result = run_official_qwen3_vl(self.model_dir, calls, timeout=self.timeout)
        return result["score_seconds"], [s for call in result["scores"] for s in call]


class ReadmeLoop:
    """The official Qwen3-Reranker README loop: ``compute_logits(process_inputs(pairs))`` per chunk."""

    def __init__(self, model_dir: str | Path, batch_size: int = 8) -> None:
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        from tests.official.run_qwen3_reranker import ReadmeReranker

        self.readme, self.batch_size = ReadmeReranker(model_dir), batch_size

    def scores(self, query: str, documents: list[str], batch_size: int | None = None) -> list[float]:
        size = batch_size or self.batch_size
        out: list[float] = []
        for i in range(0, len(documents), size):
            out += self.readme.scores(query, documents[i:i + size])  # default instruction
        return out

    def run(self, scenario: Scenario, batch_size: int | None = None) -> list[float]:
        """Every score of the scenario, in pair order (``batch_size`` pairs a call; 1: the naive loop)."""
        return [s for r in scenario.requests
                for s in self.scores(r.query_text, [d["doc_text"] for d in r.docs], batch_size)]
