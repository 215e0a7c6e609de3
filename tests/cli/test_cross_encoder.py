"""The `lychee` command on a sequence-classification cross-encoder (text only): the family is found
from config.json and named on the model line, every score is the library's (one real
console-script process, then CliRunner for the flags), `lychee analyze` shows the pair as the model
reads it, an image is refused with the reason, and `lychee finetune` stops early and says why
(the checks every family shares are in tests/cli/family_checks.py)."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from ..cross_encoder_support import FAMILY, TEXT_ONLY
from ..qwen3_vl_support import library_scores
from .family_checks import TEXT_QUERY as QUERY, TEXTS, TOL, check_console_script, check_rerank, invoke


def test_console_script_scores_texts_like_the_library_and_names_the_family(cross_encoder_dir, cross_encoder_reranker):
    expected = library_scores(cross_encoder_reranker, QUERY, TEXTS)
    check_console_script(cross_encoder_dir, FAMILY, QUERY, ["--text", *TEXTS], expected, min_spread=1e-2)


def test_the_family_flag_an_ignored_instruction_and_an_image_document(cross_encoder_dir, cross_encoder_reranker, tmp_path):
    picture = tmp_path / "picture.png"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(picture)
    check_rerank(library_scores(cross_encoder_reranker, QUERY, TEXTS), "--model", str(cross_encoder_dir),
                 "--family", FAMILY, QUERY, "--text", *TEXTS, "--format", "json", "--instruction", "Find the passage")
    result = invoke("rerank", "--model", str(cross_encoder_dir), QUERY, str(picture), "--format", "json")
    records = json.loads(result.stdout)
    assert len(records) == 1 and TEXT_ONLY in records[0]["error"], result.output


def test_analyze_shows_the_pair_and_the_score(cross_encoder_dir, cross_encoder_reranker):
    result = invoke("analyze", "--model", str(cross_encoder_dir), QUERY, TEXTS[0], "--json")
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
    result = invoke("finetune", "--model", str(cross_encoder_dir), "--train", str(train), "--output", str(out),
                    "--max-steps", "1", "--device", "cpu")
    assert result.exit_code == 1, result.output
    assert "fine-tuning does not apply to the cross_encoder family" in result.output
    assert "sentence-transformers" in result.output  # where to train one instead
    assert not out.exists() or not any(out.iterdir())  # nothing was trained or written
