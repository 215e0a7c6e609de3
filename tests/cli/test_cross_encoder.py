"""The `lychee` command on a sequence-classification cross-encoder (text only): the family is found
from config.json and named on the model line, every score is the library's (one real
console-script process, then CliRunner for the flags), `lychee analyze` shows the pair as the model
reads it, an image is refused with the reason, and `lychee finetune` stops early and says why."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from lychee_rerank import LycheeReranker
from lychee_rerank.cli import app

from ..cross_encoder_support import FAMILY, TEXT_ONLY

LYCHEE = str(Path(sys.executable).parent / "lychee")
TOL = 1e-6  # JSON carries the full float; the same weights, inputs and dtype
QUERY = "What is the capital of China?"
TEXTS = ["The capital of China is Beijing.", "Gravity is a force that attracts two bodies.", "北京是中国的首都。",
         "a black cat sleeping on a sofa"]
runner = CliRunner()


def _scores(reranker: LycheeReranker, query: str, docs: list[str], **kwargs) -> dict[int, float]:
    results = reranker.rerank(query, docs, **kwargs)
    assert all(r.error is None for r in results), [r.error for r in results]
    return {r.index: r.score for r in results}


def test_console_script_scores_texts_like_the_library_and_names_the_family(cross_encoder_dir, cross_encoder_reranker):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("LYCHEE_FAMILY", None)
    proc = subprocess.run(
        [LYCHEE, "rerank", "--model", str(cross_encoder_dir), QUERY, "--text", *TEXTS, "--format", "json"],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    expected = _scores(cross_encoder_reranker, QUERY, TEXTS)
    assert {r["index"]: r["score"] for r in records} == pytest.approx(expected, abs=TOL)
    assert max(expected.values()) - min(expected.values()) > 1e-2
    assert f"lychee ({FAMILY}): {cross_encoder_dir} on cpu · float32" in proc.stderr


def test_the_family_flag_an_ignored_instruction_and_an_image_document(cross_encoder_dir, cross_encoder_reranker, tmp_path):
    picture = tmp_path / "picture.png"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(picture)
    result = runner.invoke(app, ["rerank", "--model", str(cross_encoder_dir), "--family", FAMILY, QUERY,
                                 "--text", *TEXTS, "--format", "json", "--instruction", "Find the passage"])
    assert result.exit_code == 0, result.output
    expected = _scores(cross_encoder_reranker, QUERY, TEXTS)
    assert {r["index"]: r["score"] for r in json.loads(result.stdout)} == pytest.approx(expected, abs=TOL)
    result = runner.invoke(app, ["rerank", "--model", str(cross_encoder_dir), QUERY, str(picture), "--format", "json"])
    records = json.loads(result.stdout)
    assert len(records) == 1 and TEXT_ONLY in records[0]["error"], result.output


def test_analyze_shows_the_pair_and_the_score(cross_encoder_dir, cross_encoder_reranker):
    result = runner.invoke(app, ["analyze", "--model", str(cross_encoder_dir), QUERY, TEXTS[0], "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout[result.stdout.index("{"):])
    assert data["score"] == pytest.approx(cross_encoder_reranker.rerank(QUERY, [TEXTS[0]])[0].score, abs=TOL)
    assert data["prompt"] == "[CLS] what is the capital of china? [SEP] the capital of china is beijing. [SEP]"
    assert data["truncated"] is False


def test_finetune_fails_early_and_says_it_does_not_apply(cross_encoder_dir, tmp_path):
    pytest.importorskip("peft")
    train = tmp_path / "train.jsonl"
    records = [{"query": "a", "positives": ["a b"], "negatives": ["c"]}, {"query": "d", "document": "d e", "label": 1},
               {"query": "d", "document": "f", "label": 0}]
    train.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    out = tmp_path / "adapter"
    result = runner.invoke(app, ["finetune", "--model", str(cross_encoder_dir), "--train", str(train), "--output", str(out),
                                 "--max-steps", "1", "--device", "cpu"])
    assert result.exit_code == 1, result.output
    assert "fine-tuning does not apply to the cross_encoder family" in result.output
    assert "sentence-transformers" in result.output  # where to train one instead
    assert not out.exists() or not any(out.iterdir())  # nothing was trained or written
