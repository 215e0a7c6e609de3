"""The tiny checkpoint has the published checkpoint's on-disk layout."""

from __future__ import annotations

import json
import subprocess
import sys


def test_layout_matches_the_published_checkpoint(tiny_model_dir):
    names = {p.name for p in tiny_model_dir.iterdir()}
    assert {
        "config.json",
        "generation_config.json",
        "preprocessor_config.json",
        "chat_template.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "model.safetensors.index.json",
    } <= names
    assert len([n for n in names if n.endswith(".safetensors")]) == 2
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["model_type"] == "qwen2_5_vl" and "text_config" not in config  # 4.x flat layout
    assert config["rope_scaling"]["type"] == "mrope"
    keys = json.loads((tiny_model_dir / "model.safetensors.index.json").read_text())["weight_map"]
    assert any(k.startswith("visual.") for k in keys) and any(k.startswith("model.layers.") for k in keys)
    assert "chat_template" not in json.loads((tiny_model_dir / "tokenizer_config.json").read_text())
    size = sum(p.stat().st_size for p in tiny_model_dir.iterdir())
    assert size < 5_000_000


def test_module_entry_point_writes_a_checkpoint(tmp_path):
    out = tmp_path / "tiny"
    proc = subprocess.run(
        [sys.executable, "-m", "lychee_rerank.testing.tiny_model", str(out), "--seed", "1"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "config.json").exists() and (out / "chat_template.json").exists()
