"""Build and run the project's image with Debian's podman (rootful, runc) on this kind of machine.

No container registry is reachable here, so the base image is made from Debian packages by
``debootstrap`` and imported; pip inside the build reads the host's CA bundle as a build secret
and the host's local wheel folders (torch) through read-only build volumes. The recipe and its
pitfalls (crun, ulimits) are in shared/notes/containers.md.

Everything made here carries the run's label, so the session's teardown can remove whatever a
failed test left behind: containers (with their anonymous volumes) and images.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The debootstrap base, kept between runs (``.cache/`` is git-ignored): ~120 MB, 30-95 s to make.
BASE_TARBALL = ROOT / ".cache" / "container" / "debian-bookworm-minbase.tar"
#: crun fails here ("cgroups in hybrid mode not supported"); podman's default ulimits exceed the
#: machine's hard limits ("setrlimit RLIMIT_NOFILE: Operation not permitted"). Both set for every
#: podman command (builds, runs, the derived image's build) by a private containers.conf.
CONTAINERS_CONF = BASE_TARBALL.parent / "containers.conf"
CONF_TEXT = """[containers]
default_ulimits = ["nofile=16384:16384", "nproc=16384:16384"]

[engine]
runtime = "runc"
"""
PODMAN = ["podman"]
LABEL = "lychee-ctest"
#: No systemd here to run podman's healthcheck timers: the check runs on demand (`podman healthcheck run`).
NO_TIMER = ["--health-interval", "disable"]


def podman_env() -> dict[str, str]:
    CONTAINERS_CONF.parent.mkdir(parents=True, exist_ok=True)
    if not CONTAINERS_CONF.exists() or CONTAINERS_CONF.read_text() != CONF_TEXT:
        CONTAINERS_CONF.write_text(CONF_TEXT)
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


class ContainerFailed(RuntimeError):
    """The container did not become healthy: it exited, or never answered in time (logs attached)."""


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    """One podman command; on failure the error carries its output."""
    proc = subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=timeout, env=podman_env(), check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args[:3])} ... failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def apt_mirror() -> str:
    """The Debian mirror apt already uses (debootstrap must reach the same one)."""
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        found = re.search(r"^URIs:\s*(\S+/debian)\s*$", path.read_text(), re.MULTILINE)
        if found:
            return found.group(1)
    sources = Path("/etc/apt/sources.list")
    found = re.search(r"^deb\s+(\S+/debian)\s", sources.read_text() if sources.exists() else "", re.MULTILINE)
    return found.group(1) if found else "http://deb.debian.org/debian"


def base_tarball() -> Path:
    """A minimal Debian bookworm root filesystem as a tar, made once by debootstrap and cached."""
    if BASE_TARBALL.exists():
        return BASE_TARBALL
    BASE_TARBALL.parent.mkdir(parents=True, exist_ok=True)
    rootfs = BASE_TARBALL.parent / "rootfs.tmp"
    shutil.rmtree(rootfs, ignore_errors=True)
    try:
        subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs), apt_mirror()],
                       check=True, capture_output=True, timeout=900)
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / leftover).glob("*"):
                if path.is_file():
                    path.unlink()
        partial = BASE_TARBALL.with_suffix(".partial")
        subprocess.run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(partial), "."], check=True, timeout=300)
        partial.rename(BASE_TARBALL)
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
    return BASE_TARBALL


def import_base(tag: str) -> None:
    with base_tarball().open("rb") as tar:
        proc = subprocess.run([*PODMAN, "import", "-", tag], stdin=tar, capture_output=True, text=True, timeout=300,
                              env=podman_env(), check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"podman import failed:\n{proc.stderr}")


def host_pip_sources() -> tuple[list[str], list[str]]:
    """(local ``file://`` indexes, find-links folders) that pip uses on this host: torch's 5.5 GB
    of CUDA wheels are there. The build reads them through read-only volumes at the same paths."""
    proc = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60, check=False)
    indexes: list[str] = []
    links: list[str] = []
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("=")
        name = key.split(".")[-1]
        for item in value.strip("'\"").split():
            if name == "extra-index-url" and item.startswith("file:///") and Path(item[7:]).is_dir():
                indexes.append(item)
            elif name == "find-links" and Path(item.removeprefix("file://")).is_dir():
                links.append(item.removeprefix("file://"))
    return list(dict.fromkeys(indexes)), list(dict.fromkeys(links))


def build_image(tag: str, base: str, *, keep_layers: bool = False, run_label: str) -> None:
    """``podman build`` the project's Dockerfile on ``base`` (``--format docker`` keeps HEALTHCHECK,
    which the OCI format drops)."""
    indexes, links = host_pip_sources()
    # An index's pages link to ../../files/: mount the folder above "simple".
    mounts = sorted({str(Path(i[7:]).parent) if i.rstrip("/").endswith("/simple") else i[7:] for i in indexes} | set(links))
    args = ["build", "--format", "docker", "--build-arg", f"CUDA_IMAGE={base}",
            "--label", f"{LABEL}={run_label}", f"--layers={'true' if keep_layers else 'false'}", "-t", tag]
    for folder in mounts:
        args += ["-v", f"{folder}:{folder}:ro"]
    if indexes:
        args += ["--build-arg", f"PIP_EXTRA_INDEX_URL={' '.join(indexes)}"]
    if links:
        args += ["--build-arg", f"PIP_FIND_LINKS={' '.join(links)}"]
    ca = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"
    if Path(ca).is_file():
        args += ["--secret", f"id=hostca,src={ca}"]  # read by pip during the build, never stored in a layer
    podman(*args, str(ROOT), timeout=1800)


def image_inspect(tag: str) -> dict:
    return json.loads(podman("image", "inspect", tag).stdout)[0]


def image_size_bytes(tag: str) -> int:
    return int(image_inspect(tag)["Size"])


@dataclass
class Container:
    """A running container: its name, and the host URL of its published port."""

    name: str
    url: str
    started: float = field(default_factory=time.monotonic)

    def logs(self) -> str:
        proc = podman("logs", self.name, check=False, timeout=60)
        return (proc.stdout + proc.stderr)[-6000:]

    def state(self) -> dict:
        return json.loads(podman("inspect", "--type", "container", self.name, timeout=60).stdout)[0]["State"]

    def exec(self, *command: str) -> subprocess.CompletedProcess:
        return podman("exec", self.name, *command, check=False, timeout=60)

    def stop(self, grace_s: int = 10) -> tuple[float, int]:
        """``podman stop`` (SIGTERM, SIGKILL after ``grace_s``): (seconds it took, exit code)."""
        start = time.monotonic()
        podman("stop", "-t", str(grace_s), self.name, timeout=grace_s + 60)
        took = time.monotonic() - start
        return took, int(self.state()["ExitCode"])

    def wait_healthy(self, path: str, timeout_s: float = 300) -> tuple[dict | str, float]:
        """Poll ``path`` over the published port until it answers 200: (body, seconds since start).

        Fails fast, with the container's log, when the container exits; fails with the log when
        it never answers within ``timeout_s``. A 503 with status "error" (loading failed) fails too.
        """
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            state = self.state()
            if not state.get("Running"):
                raise ContainerFailed(f"{self.name} exited ({state.get('ExitCode')}) before it was healthy:\n{self.logs()}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=5) as resp:
                    body = resp.read().decode()
                    took = time.monotonic() - self.started
                    try:
                        return json.loads(body), took
                    except ValueError:
                        return body, took
            except urllib.error.HTTPError as exc:
                text = exc.read()[:2000].decode(errors="replace")
                last = f"{exc.code} {text}"
                with contextlib.suppress(ValueError):
                    if json.loads(text).get("status") == "error":
                        raise ContainerFailed(f"{self.name}: loading failed: {last}\n{self.logs()}") from None
            except OSError as exc:
                last = repr(exc)
            time.sleep(0.5)
        raise ContainerFailed(f"{self.name} not healthy on {path} within {timeout_s:.0f} s (last: {last}):\n{self.logs()}")


@contextlib.contextmanager
def running(image: str, name: str, port: int, container_port: int, *, run_label: str,
            env: dict[str, str] | None = None, volumes: Sequence[str] = (), command: Sequence[str] = ()) -> Iterator[Container]:
    """``podman run -d`` with ``container_port`` published on 127.0.0.1:``port``; removed (with its
    anonymous volumes) on the way out, whatever happened."""
    args = ["run", "-d", "--name", name, "--label", f"{LABEL}={run_label}", *NO_TIMER,
            "-p", f"127.0.0.1:{port}:{container_port}"]
    for key, value in (env or {}).items():
        args += ["-e", f"{key}={value}"]
    for volume in volumes:
        args += ["-v", volume]
    container = Container(name=name, url=f"http://127.0.0.1:{port}")
    try:
        podman(*args, image, *command, timeout=120)
        yield container
    finally:
        podman("rm", "-f", "-v", "-t", "2", name, check=False, timeout=120)


def dangling_images() -> set[str]:
    return set(podman("images", "-a", "-q", "--filter", "dangling=true", check=False).stdout.split())


def remove_everything(run_label: str, images: Sequence[str], dangling_before: set[str]) -> None:
    """Containers and images of this run (by label and by tag), then the untagged images that
    appeared during the run (its build stages): never anything else on the host."""
    listed = podman("ps", "-a", "-q", "--filter", f"label={LABEL}={run_label}", check=False).stdout.split()
    if listed:
        podman("rm", "-f", "-v", "-t", "2", *listed, check=False, timeout=300)
    for tag in images:
        podman("rmi", "-f", tag, check=False, timeout=300)
    labelled = podman("images", "-a", "-q", "--filter", f"label={LABEL}={run_label}", check=False).stdout.split()
    if labelled:
        podman("rmi", "-f", *sorted(set(labelled)), check=False, timeout=300)
    left = sorted(dangling_images() - dangling_before)
    if left:
        podman("rmi", "-f", *left, check=False, timeout=300)
