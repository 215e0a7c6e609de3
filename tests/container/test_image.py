"""The image, built and run for real with podman: the API on lite and on a mounted checkpoint, the
UI in a real browser, the API key, a clean stop, a non-root user, no baked-in secret.

Each container publishes its port on a free loopback port of the host; requests go over real
HTTP. The photos are real (scikit-image's, as in the example gallery). Skipped unless
LYCHEE_CONTAINER_TESTS=1 (see conftest.py; ``make container-test``).
"""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path

import httpx
import pytest

from ..serving.conftest import free_port
from .conftest import Run
from .podman import NO_TIMER, ContainerFailed, image_inspect, podman, running

LITE_NOTE_WORDS = "offline approximation"


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two real photos: a cat (chelsea) and a cup of coffee, as JPEG files."""
    from lychee_rerank.demo.gallery import _load_photo

    folder = tmp_path_factory.mktemp("photos")
    out = {}
    for name in ("chelsea", "coffee"):
        buf = io.BytesIO()
        _load_photo(name).save(buf, format="JPEG", quality=90)
        (folder / f"{name}.jpg").write_bytes(buf.getvalue())
        out[name] = folder / f"{name}.jpg"
    return out


def rerank_body(query: str, photos: dict[str, Path]) -> dict:
    """A /v1/rerank request: the text query against the photos, in the order [chelsea, coffee]."""
    docs = [{"image": base64.b64encode(photos[name].read_bytes()).decode()} for name in ("chelsea", "coffee")]
    return {"query": query, "documents": docs}


def test_the_image_runs_as_a_non_root_user_and_holds_no_secret(image: str):
    inspected = image_inspect(image)
    config = inspected["Config"]
    assert config["User"].split(":")[0] not in ("", "0", "root")
    env = dict(item.split("=", 1) for item in config["Env"])
    for secret in ("LYCHEE_API_KEY", "PIP_CERT", "HF_TOKEN"):
        assert secret not in env, secret
    assert set(config["Volumes"]) == {"/home/lychee/.cache/huggingface", "/home/lychee/.cache/lychee-rerank/lite"}
    assert env["HF_HOME"] in config["Volumes"] and env["LYCHEE_CACHE_DIR"] in config["Volumes"]
    health = inspected["Healthcheck"]  # kept by `podman build --format docker` only
    assert health["Test"][0] == "CMD" and "LYCHEE_HEALTH_URL" in " ".join(health["Test"])
    assert config["Cmd"] == ["lychee", "serve"]
    # The build's CA bundle (a secret) and the host's wheel folders were mounted during the build
    # only (podman leaves the empty mount points behind), and the project's wheel was removed.
    probe = podman("run", "--rm", *NO_TIMER, "--entrypoint", "sh", image, "-c",
                   "id -u; ls /run/secrets 2>/dev/null | wc -l; find /opt/pypi* /opt/wheels /tmp/dist -type f 2>/dev/null | wc -l",
                   timeout=120)
    uid, secrets, leftovers = probe.stdout.split()
    assert uid == "10001" and secrets == "0" and leftovers == "0", probe.stdout


def test_api_on_lite_ranks_the_matching_photo_first_and_stops_on_sigterm(image: str, run: Run, photos):
    """No GPU, no model: the default command serves the lite backend and /health says so."""
    port = free_port()
    env = {"LYCHEE_MODEL": ""}  # as docker-compose.yml passes it when the host leaves it unset
    with running(image, run.name("lite"), port, 8080, run_label=run.label, env=env) as box:
        health, took = box.wait_healthy("/health")
        run.record(api_lite_healthy_s=round(took, 1))
        assert health["status"] == "ok" and health["backend"] == "lite", health
        assert LITE_NOTE_WORDS in health["note"]
        assert box.exec("id", "-u").stdout.strip() == "10001"
        # The image's own HEALTHCHECK, run by podman inside the container.
        assert podman("healthcheck", "run", box.name, check=False, timeout=60).returncode == 0
        with httpx.Client(base_url=box.url, timeout=300) as client:
            for n, (query, expected) in enumerate((("a cup of coffee", 1), ("a cat", 0))):
                start = time.monotonic()
                r = client.post("/v1/rerank", json=rerank_body(query, photos))
                # The first request analyses both photos (the lite cache volume starts empty); the second reads them back.
                run.record(**{("api_lite_first_rerank_s", "api_lite_second_rerank_s")[n]: round(time.monotonic() - start, 2)})
                assert r.status_code == 200, r.text
                results = r.json()["results"]
                assert results[0]["index"] == expected, (query, results)
                assert results[0]["relevance_score"] > results[1]["relevance_score"]
        took, code = box.stop(grace_s=10)
        run.record(api_stop_s=round(took, 2), api_stop_exit_code=code)
        assert took < 10 and code == 0, (took, code, box.logs())  # uvicorn's own clean stop; 137 would be SIGKILL after the grace


def test_api_on_a_mounted_checkpoint_matches_the_library_and_enforces_the_key(image: str, run: Run, photos, tiny_checkpoint):
    from lychee_rerank import LycheeReranker

    key = "container-test-key"
    port = free_port()
    env = {"LYCHEE_API_KEY": key, "LYCHEE_DEVICE": "cpu", "LYCHEE_DTYPE": "float32", "LYCHEE_BATCH_SIZE": "8"}
    command = ["lychee", "serve", "--model", "/models/tiny"]
    with running(image, run.name("model"), port, 8080, run_label=run.label, env=env,
                 volumes=[f"{tiny_checkpoint}:/models/tiny:ro"], command=command) as box:
        health, took = box.wait_healthy("/health")  # /health never needs the key
        run.record(api_model_healthy_s=round(took, 1))
        assert health["backend"] == "lychee" and health["model"] == "/models/tiny", health
        body = rerank_body("a cup of coffee", photos)
        with httpx.Client(base_url=box.url, timeout=300) as client:
            assert client.post("/v1/rerank", json=body).status_code == 401
            assert client.post("/v1/rerank", json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
            r = client.post("/v1/rerank", json=body, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200, r.text
        served = {x["index"]: x["relevance_score"] for x in r.json()["results"]}
        library = LycheeReranker.from_pretrained(tiny_checkpoint, device="cpu", dtype="float32")
        expected = {x.index: x.score for x in library.rerank("a cup of coffee", [photos["chelsea"], photos["coffee"]], batch_size=8)}
        assert served.keys() == expected.keys() == {0, 1}
        for index, score in expected.items():
            assert abs(served[index] - score) < 1e-5, (served, expected)
        took, code = box.stop(grace_s=10)
        assert took < 10 and code == 0, (took, code, box.logs())


def test_ui_role_answers_its_health_check_and_serves_the_page(image: str, run: Run):
    from lychee_rerank.ui.i18n import t

    from ..ui.browser import browser_page, chromium_path

    assert chromium_path(), "Debian's chromium is required (scripts/setup.sh --browser installs it)"
    port = free_port()
    # As docker-compose.yml runs the UI role (LYCHEE_MODEL empty: the lite backend).
    env = {"LYCHEE_HEALTH_URL": "http://127.0.0.1:8501/_stcore/health", "LYCHEE_UI_LANG": "en", "LYCHEE_MODEL": ""}
    command = ["lychee", "ui", "--host", "0.0.0.0", "--port", "8501"]
    with running(image, run.name("ui"), port, 8501, run_label=run.label, env=env, command=command) as box:
        body, took = box.wait_healthy("/_stcore/health")
        run.record(ui_healthy_s=round(took, 1))
        assert body == "ok"
        assert podman("healthcheck", "run", box.name, check=False, timeout=60).returncode == 0
        with browser_page(1200, 900) as page:
            page.goto(box.url)
            page.get_by_role("button", name=t("rerank", "en")).wait_for(timeout=180_000)
            assert page.get_by_role("tab", name=t("tab_gallery", "en")).count() == 1
        took, code = box.stop(grace_s=10)
        assert took < 10 and code in (0, 143), (took, code, box.logs())  # SIGTERM reached Streamlit; 137: SIGKILL after the grace


def test_a_broken_entrypoint_fails_the_health_check(image: str, run: Run, tmp_path):
    """The check can fail: an image whose entrypoint cannot start is reported, with its log, as
    soon as the container exits (not after the whole wait)."""
    broken = f"localhost/lychee-ctest-broken:{run.label}"
    run.images.append(broken)
    (tmp_path / "Containerfile").write_text(
        f'FROM {image}\nENTRYPOINT ["lychee", "serve", "--backend", "no-such-backend"]\nCMD []\n'
    )
    podman("build", "--format", "docker", "--label", f"lychee-ctest={run.label}", "-t", broken, str(tmp_path), timeout=300)
    start = time.monotonic()
    with running(broken, run.name("broken"), free_port(), 8080, run_label=run.label) as box, \
            pytest.raises(ContainerFailed) as failed:
        box.wait_healthy("/health", timeout_s=120)
    assert time.monotonic() - start < 60
    assert "exited" in str(failed.value) and "no-such-backend" in str(failed.value)
