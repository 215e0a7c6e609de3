"""Run the code blocks of the documentation pages, so the examples in the docs cannot rot.

The contract (shared by everyone who writes a page; README.md and every ``docs/**/*.md`` but the
generated API pages):

* Fenced ``python`` blocks run: all of a page's blocks, in page order, in ONE fresh
  ``.venv/bin/python`` process (later blocks see the names of earlier ones).
* Fenced ``console`` / ``bash`` / ``sh`` / ``shell`` blocks: each command (``console``: the lines
  that start with ``$ ``; the others: every line that is not a comment; ``\\`` continuations,
  open quotes and here-documents joined) RUNS when it starts with ``lychee `` or ``curl ``; any
  other command is shown only (counted). ``export NAME=value`` lines apply to the page's later
  commands and python blocks. Commands run with ``bash -o pipefail``; ``curl`` reads a
  ``.curlrc`` with ``--fail-with-body`` (an HTTP error fails the example; an example that shows an
  error response on purpose ends in ``|| true``).
* ``<!-- docs-test: skip: REASON -->`` on the line before a fence: the block is not run (listed).
* ``<!-- docs-test: server ARGS -->`` anywhere on a page: ``lychee serve ARGS`` is started on a
  free loopback port before its blocks run, stopped after; ``localhost:8000`` in its blocks
  becomes that address.
* Each page runs in a fresh temp dir where ``examples/`` links to the repo's examples (the
  gallery built if missing), with ``PATH`` starting at the venv's bin, and an HF hub cache in
  which the published hub ids the page names resolve to tiny random checkpoints
  (``lychee_rerank.testing.*``, built once and cached under ``.cache/docs-hub``), offline.
* Outputs shown in blocks are illustrative, never compared; each block must succeed.

Python blocks and commands run in page order inside one driver process (the page's python
process), so a command can read what a python block wrote and the other way round. A failure
names the page and the line of the failing block or command.

Command line::

    .venv/bin/python -m tests.docs.runner docs/guides/quickstart.md [more pages]   # run pages
    .venv/bin/python -m tests.docs.runner --count                                  # count blocks
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

from lychee_rerank.testing.processes import wait_healthy
from tests.family_support import hub_snapshot
from tests.serving.conftest import free_port
from tests.ui.browser import stop_session

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PYTHON = VENV_BIN / "python"
GENERATED = ("docs/reference/",)  # API pages written by mkdocstrings/the OpenAPI hook: no examples to run
RUN_PREFIXES = ("lychee ", "curl ")
SHELL_LANGS = {"console", "bash", "sh", "shell", "shell-session"}
SKIP_RE = re.compile(r"^\s*<!--\s*docs-test:\s*skip:\s*(.+?)\s*-->\s*$")
SERVER_RE = re.compile(r"<!--\s*docs-test:\s*server\b(.*?)-->")
FENCE_RE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
PAGE_TIMEOUT_S = float(os.environ.get("LYCHEE_DOCS_PAGE_TIMEOUT", "1200"))
COMMAND_TIMEOUT_S = float(os.environ.get("LYCHEE_DOCS_COMMAND_TIMEOUT", "600"))

#: Published hub id -> how to build its tiny stand-in: (module, function, kwargs, subdirectory of
#: the build output that is the checkpoint, or None for the output itself).
TINY_CHECKPOINTS: dict[str, tuple[str, str, dict, str | None]] = {
    "vec-ai/lychee-rerank-mm": ("lychee_rerank.testing.tiny_model", "build", {}, None),
    "Qwen/Qwen3-Reranker-0.6B": ("lychee_rerank.testing.tiny_qwen3_reranker", "build", {}, None),
    "cross-encoder/ms-marco-MiniLM-L6-v2": ("lychee_rerank.testing.tiny_cross_encoder", "build", {}, None),
    "jinaai/jina-reranker-m0": ("lychee_rerank.testing.tiny_jina_m0", "build", {}, None),
    "Qwen/Qwen3-VL-Reranker-2B": ("lychee_rerank.testing.tiny_qwen3_vl", "build", {}, None),
    "lightonai/MonoQwen2-VL-v0.1": ("lychee_rerank.testing.tiny_qwen2_vl", "build_mono", {}, "adapter"),
    "Qwen/Qwen2-VL-2B-Instruct": ("lychee_rerank.testing.tiny_qwen2_vl", "build_mono", {}, "base"),
}
#: Ids that need another id in the cache too (an adapter names its base).
NEEDS = {"lightonai/MonoQwen2-VL-v0.1": ["Qwen/Qwen2-VL-2B-Instruct"]}
#: Adapter configs rewritten to name their base by hub id, as the published adapter does.
ADAPTER_BASE = {"lightonai/MonoQwen2-VL-v0.1": "Qwen/Qwen2-VL-2B-Instruct"}


class DocsExampleError(AssertionError):
    """A block or command of a page failed: the message names the page and line."""


@dataclasses.dataclass
class Step:
    """One thing to run (or count): a python block, or one command of a shell block."""

    kind: str  # "python" | "command" | "export" | "shown" | "skipped"
    line: int  # 1-based line in the page (the fence line for a block, the command's own line otherwise)
    text: str
    reason: str = ""


@dataclasses.dataclass
class Page:
    path: Path
    steps: list[Step]
    server_args: list[str] | None  # None: no server marker

    @property
    def rel(self) -> str:
        with contextlib.suppress(ValueError):
            return str(self.path.resolve().relative_to(ROOT))
        return str(self.path)

    def counts(self) -> dict[str, int]:
        c = {"python": 0, "commands": 0, "shown": 0, "skipped": 0}
        for s in self.steps:
            if s.kind == "python":
                c["python"] += 1
            elif s.kind == "command":
                c["commands"] += 1
            elif s.kind in ("shown", "export"):
                c["shown"] += 1
            elif s.kind == "skipped":
                c["skipped"] += 1
        return c


# ----------------------------------------------------------------------------------------------
# Parsing


def _blocks(text: str) -> Iterator[tuple[int, str, list[str], str | None]]:
    """(fence line, language, body lines (dedented by the fence's indent), skip reason)."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE_RE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence = m.group("indent"), m.group("fence")
        info = m.group("info").strip()
        lang = info.split()[0].lstrip("{.").rstrip("}").lower() if info else ""
        prev = lines[i - 1] if i > 0 else ""
        skip = SKIP_RE.match(prev)
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines):
            stripped = lines[i].strip()
            if stripped.startswith(fence[0] * len(fence)) and set(stripped) <= {fence[0]}:
                break
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i].lstrip())
            i += 1
        i += 1
        yield start + 1, lang, body, skip.group(1) if skip else None


def _complete(cmd: str) -> bool:
    """Whether ``cmd`` is a whole shell command (no open quote, no trailing backslash)."""
    if cmd.rstrip().endswith("\\"):
        return False
    try:
        shlex.split(cmd, comments=True)  # a quote inside a trailing comment opens nothing
    except ValueError:
        return False
    return True


def _commands(lang: str, body: list[str], first_line: int) -> Iterator[tuple[int, str]]:
    """(line, command) of a shell block: prompts stripped, continuations and heredocs joined."""
    i = 0
    while i < len(body):
        raw = body[i]
        line_no = first_line + i
        if lang == "console":
            if not raw.startswith("$ "):
                i += 1
                continue
            raw = raw[2:]
        if not raw.strip() or raw.lstrip().startswith("#"):
            i += 1
            continue
        cmd = raw
        i += 1
        while not _complete(cmd) and i < len(body):
            nxt = body[i]
            if lang == "console" and nxt.startswith("> "):
                nxt = nxt[2:]
            cmd += "\n" + nxt  # bash reads a backslash-newline as a continuation itself
            i += 1
        heredoc = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", cmd)
        if heredoc:
            end = heredoc.group(1)
            while i < len(body):
                cmd += "\n" + body[i]
                i += 1
                if body[i - 1].strip() == end:
                    break
        yield line_no, cmd.strip()


def parse_page(path: str | Path) -> Page:
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    server = SERVER_RE.search(text)
    steps: list[Step] = []
    for line, lang, body, skip in _blocks(text):
        if lang not in SHELL_LANGS and lang not in ("python", "py", "python3"):
            continue
        if skip is not None:
            steps.append(Step("skipped", line, "\n".join(body), reason=skip))
            continue
        if lang in ("python", "py", "python3"):
            steps.append(Step("python", line, "\n".join(body)))
            continue
        for cmd_line, cmd in _commands(lang, body, line + 1):
            if re.match(r"^export\s+\w+=", cmd):
                steps.append(Step("export", cmd_line, cmd))
            elif cmd.startswith(RUN_PREFIXES):
                steps.append(Step("command", cmd_line, cmd))
            else:
                steps.append(Step("shown", cmd_line, cmd))
    return Page(path, steps, shlex.split(server.group(1)) if server else None)


def doc_pages(root: Path = ROOT) -> list[Path]:
    """README.md and every docs/**/*.md but the generated API pages."""
    pages = [root / "README.md"] if (root / "README.md").exists() else []
    for p in sorted((root / "docs").rglob("*.md")):
        rel = p.relative_to(root).as_posix()
        if not rel.startswith(GENERATED):
            pages.append(p)
    return pages


# ----------------------------------------------------------------------------------------------
# The offline HF cache of tiny checkpoints


def hub_cache_dir() -> Path:
    return Path(os.environ.get("LYCHEE_DOCS_HUB_CACHE", ROOT / ".cache" / "docs-hub"))


@functools.cache
def _builder_stamp(hub_id: str) -> str:
    """Changes when the builder's source or transformers changes: then the checkpoint is rebuilt."""
    import transformers

    h = hashlib.sha256()
    for f in sorted((ROOT / "src/lychee_rerank/testing").glob("*.py")):  # the builders and what they share
        h.update(f.read_bytes())
    h.update(transformers.__version__.encode())
    h.update(repr(TINY_CHECKPOINTS[hub_id]).encode())
    return h.hexdigest()[:40]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_checkpoint(hub_id: str, cache: Path | None = None) -> Path:
    """The snapshot directory of ``hub_id`` in the docs hub cache (the hub's on-disk layout:
    ``models--org--name/refs/main`` + ``snapshots/<commit>/``), built from the tiny builder if
    missing or stale."""
    cache = cache or hub_cache_dir()
    for dep in NEEDS.get(hub_id, []):
        ensure_checkpoint(dep, cache)
    stamp = _builder_stamp(hub_id)
    repo = cache / ("models--" + hub_id.replace("/", "--"))
    snapshot = repo / "snapshots" / stamp
    with _locked(cache / ".locks" / (hub_id.replace("/", "--") + ".lock")):
        if (repo / "refs" / "main").is_file() and (repo / "refs" / "main").read_text().strip() == stamp and snapshot.is_dir():
            return snapshot
        module, func, kwargs, sub = TINY_CHECKPOINTS[hub_id]
        import importlib

        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            out = getattr(importlib.import_module(module), func)(Path(tmp) / "build", **kwargs)
            built = Path(tmp) / "build" / sub if sub else Path(out)
            if hub_id in ADAPTER_BASE:
                cfg_path = built / "adapter_config.json"
                cfg = json.loads(cfg_path.read_text())
                cfg["base_model_name_or_path"] = ADAPTER_BASE[hub_id]
                cfg_path.write_text(json.dumps(cfg, indent=2))
            shutil.rmtree(repo, ignore_errors=True)
            return hub_snapshot(cache, hub_id, built, stamp)


def ids_on_page(page: Page, text: str | None = None) -> list[str]:
    text = text if text is not None else page.path.read_text(encoding="utf-8")
    return [hub_id for hub_id in TINY_CHECKPOINTS if hub_id in text]


def ensure_gallery() -> None:
    gallery = ROOT / "examples" / "gallery"
    with _locked(ROOT / ".cache" / "docs-gallery.lock"):
        if not (gallery / ".done").exists():
            subprocess.run([str(PYTHON), "-m", "lychee_rerank.demo.gallery", str(gallery)], check=True, cwd=ROOT)
            (gallery / ".done").touch()


# ----------------------------------------------------------------------------------------------
# Running


@contextlib.contextmanager
def _server(args: list[str], env: dict, cwd: Path, log: Path, timeout: float = 300) -> Iterator[str]:
    port = free_port()
    sink = open(log, "w+", encoding="utf-8")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(VENV_BIN / "lychee"), "serve", *args, "--host", "127.0.0.1", "--port", str(port)],
        cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_healthy(proc, f"{base}/health", sink, timeout, f"lychee serve {' '.join(args)}")
        except (RuntimeError, TimeoutError) as exc:
            raise DocsExampleError(str(exc)) from exc
        yield base
    finally:
        stop_session(proc, grace_s=15)
        sink.close()


def page_env(tmp: Path, cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "LYCHEE_"))}
    env.update({
        "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        "HF_HOME": str(tmp / ".hf-home"),
        "HF_HUB_CACHE": str(cache),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "RAY_USAGE_STATS_ENABLED": "0",
        "CURL_HOME": str(tmp),
        "MPLBACKEND": "Agg",
        "PYTHONUNBUFFERED": "1",
    })
    env.pop("VIRTUAL_ENV", None)
    return env


# The page's driver: python blocks exec'd in one namespace (compiled with the page's path and line
# numbers, so a traceback points at the page), commands through bash, in page order.
DRIVER = r'''
import json, os, subprocess, sys, traceback
steps = json.load(open(sys.argv[1], encoding="utf-8"))
page, timeout = sys.argv[2], float(sys.argv[3])
namespace = {"__name__": "__main__", "__file__": page}

def fail(step, what):
    sys.stdout.flush()
    sys.stderr.write(f"\nDOCS-TEST-FAILED {page}:{step['line']}: {what}\n")
    sys.stderr.flush()
    sys.exit(3)

for step in steps:
    print(f"--- {page}:{step['line']} {step['kind']}", flush=True)
    if step["kind"] == "python":
        code = compile("\n" * step["line"] + step["text"] + "\n", page, "exec")
        try:
            exec(code, namespace)
        except SystemExit as exc:
            if exc.code not in (None, 0):
                fail(step, f"python block exited with {exc.code!r}")
        except BaseException:
            traceback.print_exc()
            fail(step, "python block raised " + traceback.format_exc().strip().splitlines()[-1])
    elif step["kind"] == "export":
        out = subprocess.run(["bash", "-c", step["text"] + "\nenv -0"], capture_output=True, timeout=60)
        if out.returncode:
            fail(step, f"export failed: {out.stderr.decode(errors='replace')}")
        os.environ.clear()
        os.environ.update(dict(kv.split("=", 1) for kv in out.stdout.decode().split("\0") if "=" in kv))
    else:
        print(f"$ {step['text']}", flush=True)
        try:
            proc = subprocess.run(["bash", "-o", "pipefail", "-c", step["text"]], timeout=timeout)
        except subprocess.TimeoutExpired:
            fail(step, f"command ran past {timeout:.0f} s: {step['text']}")
        if proc.returncode:
            fail(step, f"command exited with {proc.returncode}: {step['text']}")
sys.stdout.flush()
'''


@dataclasses.dataclass
class PageRun:
    page: str
    counts: dict[str, int]
    skipped: list[tuple[int, str]]
    seconds: float
    log: str
    error: str | None = None  # the failure's first line (page:line: what), None when it passed


def run_page(path: str | Path, *, cache: Path | None = None, keep: Path | None = None) -> PageRun:
    """Run every runnable step of the page; raise :class:`DocsExampleError` naming page and line
    on the first failure. ``keep``: a directory for the page's working dir (else a temp dir)."""
    page = parse_page(path)
    cache = cache or hub_cache_dir()
    text = page.path.read_text(encoding="utf-8")
    runnable = [s for s in page.steps if s.kind in ("python", "command", "export")]
    skipped = [(s.line, s.reason) for s in page.steps if s.kind == "skipped"]
    start = time.monotonic()
    if not runnable:
        return PageRun(page.rel, page.counts(), skipped, 0.0, "")
    hub_ids = ids_on_page(page, text)
    for hub_id in hub_ids:
        ensure_checkpoint(hub_id, cache)
    ensure_gallery()
    with contextlib.ExitStack() as stack:
        tmp = keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="docs-page-")))
        tmp.mkdir(parents=True, exist_ok=True)
        work = tmp / "work"
        work.mkdir()
        (work / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
        (tmp / ".curlrc").write_text('--fail-with-body\n--silent\n--show-error\n--noproxy "*"\n')
        # The page's own hub cache holds only the ids it names (links into the shared cache):
        # ``--backend auto`` picks lychee-rerank-mm when it is cached, so a page that never names
        # it must not find it.
        page_cache = tmp / "hub"
        page_cache.mkdir()
        for hub_id in {d for h in hub_ids for d in [h, *NEEDS.get(h, [])]}:
            name = "models--" + hub_id.replace("/", "--")
            (page_cache / name).symlink_to(cache / name, target_is_directory=True)
        env = page_env(tmp, page_cache)
        if page.server_args is not None:
            base = stack.enter_context(_server(page.server_args, env, work, tmp / "server.log"))
            address = base.removeprefix("http://")
            for s in runnable:
                s.text = s.text.replace("localhost:8000", address)
        steps_file = tmp / "steps.json"
        steps_file.write_text(json.dumps([dataclasses.asdict(s) for s in runnable]), encoding="utf-8")
        log_path = tmp / "page.log"
        with open(log_path, "w+", encoding="utf-8") as log:
            proc = subprocess.Popen(
                [str(PYTHON), "-c", DRIVER, str(steps_file), page.rel, str(COMMAND_TIMEOUT_S)],
                cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
            try:
                proc.wait(timeout=PAGE_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pass
            finally:
                timed_out = proc.poll() is None
                stop_session(proc, grace_s=5)
            log.seek(0)
            output = log.read()
        if timed_out:
            raise DocsExampleError(f"{page.rel}: the page ran past {PAGE_TIMEOUT_S:.0f} s\n{output[-6000:]}")
        if proc.returncode != 0:
            marker = [ln for ln in output.splitlines() if ln.startswith("DOCS-TEST-FAILED ")]
            head = marker[-1].removeprefix("DOCS-TEST-FAILED ") if marker else f"{page.rel}: exited with {proc.returncode}"
            raise DocsExampleError(f"{head}\n--- output (tail) ---\n{output[-6000:]}")
    return PageRun(page.rel, page.counts(), skipped, time.monotonic() - start, output)


def count_all(pages: list[Path] | None = None) -> dict[str, object]:
    pages = pages if pages is not None else doc_pages()
    per_page = {}
    total = {"python": 0, "commands": 0, "shown": 0, "skipped": 0}
    skips = []
    for p in pages:
        page = parse_page(p)
        c = page.counts()
        per_page[page.rel] = c
        for k in total:
            total[k] += c[k]
        skips += [f"{page.rel}:{s.line}: {s.reason}" for s in page.steps if s.kind == "skipped"]
    return {"pages": len(pages), "total": total, "per_page": per_page, "skips": skips}


def main(argv: list[str] | None = None) -> int:
    import argparse

    # SIGTERM unwinds like Ctrl-C, so the servers and page drivers it started are stopped (finally blocks).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="*", type=Path, help="pages to run (default: every page)")
    parser.add_argument("--count", action="store_true", help="only count blocks and commands; run nothing")
    parser.add_argument("--keep", type=Path, help="keep the working dir of the (single) page here")
    args = parser.parse_args(argv)
    pages = args.pages or doc_pages()
    if args.count:
        summary = count_all(pages)
        for rel, c in summary["per_page"].items():
            print(f"{rel:45} python={c['python']:3} commands={c['commands']:3} shown={c['shown']:3} skipped={c['skipped']:3}")
        t = summary["total"]
        print(f"TOTAL {summary['pages']} pages: python blocks={t['python']} commands run={t['commands']} "
              f"shown only={t['shown']} skipped={t['skipped']}")
        for s in summary["skips"]:
            print("  skip", s)
        return 0
    failed = 0
    for p in pages:
        try:
            r = run_page(p, keep=args.keep)
        except DocsExampleError as exc:
            failed += 1
            print(f"FAIL {exc}")
            continue
        c = r.counts
        print(f"ok   {r.page}: python={c['python']} commands={c['commands']} shown={c['shown']} "
              f"skipped={c['skipped']} ({r.seconds:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
