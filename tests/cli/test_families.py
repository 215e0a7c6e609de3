"""Checkpoint families on the command line (issue 21): ``lychee models``, ``--family`` on every
command that loads a model, and the backend chosen once per command."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lychee_rerank.backends import families
from lychee_rerank.cli import app

runner = CliRunner()


class Captured(RuntimeError):
    """Raised by a stub in place of loading anything; carries what it was given."""


@pytest.fixture()
def no_model_env(monkeypatch):
    for name in [n for n in os.environ if n.startswith("LYCHEE_")]:
        monkeypatch.delenv(name)
    return monkeypatch


def test_models_lists_every_family_with_licence_and_status():
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    for spec in families.FAMILIES.values():
        for text in (spec.name, spec.licence, *spec.checkpoints):
            assert text in result.output
    assert "Qwen/Qwen3-VL-Reranker-2B" in result.output and "qwen2_5_vl" in result.output
    listed = json.loads(runner.invoke(app, ["models", "--json"]).stdout)
    modalities = {f["name"]: f["modalities"] for f in listed}
    assert modalities["qwen3_reranker"] == ["text"] and modalities["qwen3_vl"] == ["text", "image"]
    assert all(f["fine_tuning"] for f in listed)


@pytest.mark.parametrize("command", ["models", "families"])
def test_models_json_is_the_registry(command):
    result = runner.invoke(app, [command, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [spec.as_dict() for spec in families.FAMILIES.values()]


def _files(tmp_path: Path) -> dict[str, str]:
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"query": "q", "candidates": ["a"]}\n')
    return {"jsonl": str(jsonl), "dir": str(tmp_path), "out": str(tmp_path / "out")}


COMMANDS = {
    "rerank": lambda f: ["rerank", "q", "--text", "a"],
    "analyze": lambda f: ["analyze", "q", "d"],
    "eval": lambda f: ["eval", f["jsonl"], "--images", f["dir"]],
    "batch": lambda f: ["batch", "--local", f["jsonl"], f["out"] + ".jsonl"],
    "finetune": lambda f: ["finetune", "--model", "m", "--train", f["jsonl"], "--output", f["out"]],
    "ui": lambda f: ["ui"],
    "serve": lambda f: ["serve"],
    "serve-ray": lambda f: ["serve-ray"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_model_command_refuses_an_unknown_family_naming_the_known_ones(command, tmp_path, no_model_env):
    args = COMMANDS[command](_files(tmp_path))
    result = runner.invoke(app, [*args, "--family", "nope"])
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.replace("│", " ").split())  # Rich's error box wraps the line
    known = ", ".join(sorted(families.FAMILIES))
    assert "unknown model family 'nope'" in said and f"known families are {known}" in said


def test_rerank_family_reaches_the_config_and_the_hub_cache_is_scanned_once(no_model_env):
    """``auto`` is resolved once per command: building the backend must not scan the cache again."""
    from lychee_rerank import backends
    from lychee_rerank.backends import choice

    scans: list[str] = []
    no_model_env.setattr(choice, "hub_cache_has", lambda repo: scans.append(repo) or False)

    def factory(config, **options):
        raise Captured(config)

    no_model_env.setitem(backends._FACTORIES, "lite", factory)
    result = runner.invoke(app, ["rerank", "q", "--text", "a", "--family", "qwen3_vl"])
    assert isinstance(result.exception, Captured), result.output
    config = result.exception.args[0]
    assert (config.backend, config.family) == ("lite", "qwen3_vl")
    assert len(scans) == 1, scans
    assert "lite backend" in result.output  # auto's notice is still said


def test_batch_resolves_the_backend_once_and_passes_the_family(no_model_env, tmp_path):
    from lychee_rerank.jobs import batch

    def run_batch(input_path, output_path, spec, *args, **kwargs):
        raise Captured(spec)

    no_model_env.setattr(batch, "run_batch", run_batch)
    files = _files(tmp_path)
    result = runner.invoke(app, ["batch", "--local", files["jsonl"], files["out"] + ".jsonl", "--family", "qwen3_vl",
                                 "--model", "some/model"])
    assert isinstance(result.exception, Captured), result.output
    spec = result.exception.args[0]
    assert (spec.backend, spec.model, spec.family) == ("lychee", "some/model", "qwen3_vl")  # workers get it resolved


def test_eval_systems_carry_the_family():
    from lychee_rerank.cli.jobs import system_config

    assert system_config("some/model:adapter", None, "qwen3_vl").family == "qwen3_vl"
    assert system_config("lite", None, None).family is None


def test_ui_passes_the_family_to_the_app(no_model_env):
    def execve(path, command, env):
        raise Captured(env)

    no_model_env.setattr(os, "execve", execve)
    result = runner.invoke(app, ["ui", "--family", "qwen3_vl", "--backend", "lychee", "--model", "m"])
    assert isinstance(result.exception, Captured), result.output
    env = result.exception.args[0]
    assert (env["LYCHEE_FAMILY"], env["LYCHEE_MODEL"], env["LYCHEE_UI_BACKEND"]) == ("qwen3_vl", "m", "lychee")


def test_finetune_family_reaches_the_training_config(no_model_env, tmp_path):
    pytest.importorskip("peft")
    from lychee_rerank.training import finetune

    def run(model, train, eval_file, **kwargs):
        raise Captured(kwargs)

    no_model_env.setattr(finetune, "finetune", run)
    files = _files(tmp_path)
    result = runner.invoke(app, ["finetune", "--model", "m", "--train", files["jsonl"], "--output", files["out"],
                                 "--family", "qwen3_vl", "--device", "cpu"])
    assert isinstance(result.exception, Captured), result.output
    config = finetune.FinetuneConfig(output_dir=tmp_path, **{k: v for k, v in result.exception.args[0].items()
                                                             if k not in ("output_dir",)})
    assert (config.reranker.family, config.reranker.device) == ("qwen3_vl", "cpu")
