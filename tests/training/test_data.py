"""Fine-tuning data (issue 20, item 13): lines end at ``\\n`` only, labels are binary, one-sided sets are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lychee_rerank.cli import app
from lychee_rerank.training.finetune import finetune, load_dataset


def _write(path: Path, records: list) -> Path:
    path.write_bytes(b"\n".join(r if isinstance(r, bytes) else json.dumps(r, ensure_ascii=False).encode() for r in records) + b"\n")
    return path


def test_separators_inside_json_strings_neither_split_records_nor_shift_lines(tmp_path):
    data = load_dataset(_write(tmp_path / "t.jsonl", [
        {"query": "cat", "document": "a cat\u2028on a mat", "label": 1},  # 1: U+2028 inside a string
        {"query": "cat", "document": "next\u0085line\x0cand\u2029more", "label": 0},  # 2: U+0085, form feed, U+2029
        b'{"query": "cat", "document": "caf\xe9", "label": 1}',  # 3: invalid UTF-8: this line only
        {"query": "cat", "document": "x"},  # 4: no label
        {"query": "dog", "positives": ["a dog\r"], "negatives": ["a cup"]},  # 5
    ]))
    bad = {b.line: b.reason for b in data.bad_records}
    assert sorted(bad) == [3, 4]
    assert "not valid UTF-8 (byte 0xe9 at column 34)" in bad[3] and "missing field 'label'" in bad[4]
    cat, dog = data.groups
    assert cat.positives == ["a cat\u2028on a mat"] and cat.negatives == ["next\u0085line\x0cand\u2029more"]
    assert cat.lines == [1, 2] and dog.lines == [5] and dog.positives == ["a dog\r"]


def test_labels_are_binary_and_anything_else_names_its_line(tmp_path):
    labels = [True, False, 1, 0, 1.0, 0.0, 0.3, 2, 5, 1e308, -1, "yes", None]
    data = load_dataset(_write(tmp_path / "t.jsonl", [{"query": "q", "document": f"d{i}", "label": v} for i, v in enumerate(labels)]))
    bad = {b.line: b.reason for b in data.bad_records}
    assert sorted(bad) == [7, 8, 9, 10, 11, 12, 13]  # 0.3, 2, 5, 1e308, -1, "yes", null
    assert "soft labels are not supported" in bad[7]
    assert "a graded label?" in bad[8] and "a graded label?" in bad[9] and "got 1e+308" in bad[10]
    (group,) = data.groups
    assert group.positives == ["d0", "d2", "d4"] and group.negatives == ["d1", "d3", "d5"]


def test_training_on_one_label_only_is_refused(tiny_model_dir, tmp_path):
    """A set with only negatives trained without a word; the adapter learns to answer "no" to everything."""
    negatives = _write(tmp_path / "neg.jsonl", [{"query": f"q{i}", "document": f"d{i}", "label": 0} for i in range(4)])
    result = CliRunner().invoke(app, ["finetune", "--model", str(tiny_model_dir), "--train", str(negatives),
                                      "--output", str(tmp_path / "out"), "--max-steps", "1", "--eval-split", "0"])
    assert result.exit_code == 1
    assert "has no positive pair (4 pair(s), all negative)" in result.output and "'no' to everything" in result.output
    assert not (tmp_path / "out" / "adapter_model.safetensors").exists()

    positives = [{"query": f"q{i}", "positives": [f"d{i}"]} for i in range(3)]
    with pytest.raises(ValueError, match="has no negative pair"):
        finetune(tiny_model_dir, positives, output_dir=tmp_path / "out2", max_steps=1, progress=False)
    # Both labels, but the only negatives belong to the query held out for evaluation.
    held_out_takes_all = [{"query": "a", "positives": ["x"]}, {"query": "b", "positives": ["y"], "negatives": ["z"]}]
    with pytest.raises(ValueError, match="after holding out 1 queries has no negative"):
        finetune(tiny_model_dir, held_out_takes_all, output_dir=tmp_path / "out3", max_steps=1, eval_split=0.5,
                 seed=_seed_holding_out(held_out_takes_all, "b"), progress=False)


def _seed_holding_out(records: list[dict], query: str) -> int:
    """A seed whose held-out split is exactly ``query`` (the split is a function of the seed)."""
    from lychee_rerank.training.data import split_groups

    groups = load_dataset(records).groups
    return next(s for s in range(100) if [g.query for g in split_groups(groups, 0.5, s)[1]] == [query])
