"""One evaluation front end: ``lychee eval --backend`` (what ``make eval`` runs) and ``--system``
give the same numbers for the same reranker."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from lychee_rerank.cli import app

runner = CliRunner()


def test_backend_and_system_flags_evaluate_the_same_reranker(tiny_model_dir, tmp_path, photos, monkeypatch):
    monkeypatch.chdir(tmp_path)
    gallery = tmp_path / "gallery"
    gallery.mkdir()
    for i, photo in enumerate(photos[:3]):
        photo.save(gallery / f"p{i}.png")
    labelled = tmp_path / "set.jsonl"
    labelled.write_text(
        "\n".join(json.dumps(r) for r in [
            {"id": "a", "lang": "en", "query": "first", "relevant": {"p0.png": 2}},
            {"id": "b", "lang": "en", "query": "second", "relevant": {"p2.png": 1}},
        ])
    )
    by_backend = runner.invoke(app, ["eval", str(labelled), "--images", str(gallery), "--backend", "lychee",
                                     "--model", str(tiny_model_dir), "--json"])
    assert by_backend.exit_code == 0, by_backend.output
    by_system = runner.invoke(app, ["eval", str(labelled), "--images", str(gallery), "--system", str(tiny_model_dir), "--json"])
    assert by_system.exit_code == 0, by_system.output
    a, b = json.loads(by_backend.stdout)["metrics"], json.loads(by_system.stdout)["metrics"]
    assert [r["system"] for r in a] == ["lychee", "lychee"] and [r["set"] for r in a] == ["all", "en"]
    assert [{k: v for k, v in r.items() if k != "system"} for r in a] == [
        {k: v for k, v in r.items() if k != "system"} for r in b
    ]
    assert (tmp_path / "eval-pr.png").read_bytes()[:4] == b"\x89PNG"
    both = runner.invoke(app, ["eval", str(labelled), "--images", str(gallery), "--system", "lite", "--backend", "lite"])
    assert both.exit_code == 2 and "not both" in both.output
