"""Every page's code blocks run (tests/docs/runner.py has the contract), and the runner fails,
naming page and line, when an example breaks."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from . import conftest
from .runner import FENCE_RE, ROOT, SERVER_RE, SKIP_RE, DocsExampleError, PageRun, doc_pages, parse_page, run_page

PAGES = doc_pages()


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_page_examples_run(page: Path) -> None:
    started = time.monotonic()
    try:
        result = run_page(page)
    except DocsExampleError as exc:
        parsed = parse_page(page)
        skipped = [(s.line, s.reason) for s in parsed.steps if s.kind == "skipped"]
        conftest.RESULTS.append(PageRun(parsed.rel, parsed.counts(), skipped, time.monotonic() - started, "",
                                        error=str(exc).splitlines()[0]))
        raise
    conftest.RESULTS.append(result)


def test_every_marker_is_well_formed() -> None:
    """A ``docs-test`` marker the runner would not understand (a skip without a reason, a typo, a
    skip away from its fence) must not quietly run or skip a block."""
    bad = []
    for page in PAGES:
        lines = page.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            if "docs-test:" in line and not (SKIP_RE.match(line) or SERVER_RE.search(line)):
                bad.append(f"{page.relative_to(ROOT)}:{number}: {line.strip()}")
            if SKIP_RE.match(line) and not (number < len(lines) and FENCE_RE.match(lines[number])):
                bad.append(f"{page.relative_to(ROOT)}:{number}: a skip marker not right above a fence")
    assert bad == []


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def test_parsing_follows_the_contract(tmp_path: Path) -> None:
    page = write(tmp_path / "page.md", '''
        # Page

        ```console
        $ lychee rerank "a cup of coffee" \\
        >     examples/gallery --top-k 3
         rank  score  document
        $ pip install lychee-rerank
        ```

        ```bash
        # a comment
        export LYCHEE_BACKEND=lite
        curl -s http://localhost:8000/v1/rerank \\
          -d '{"query": "coffee",
               "documents": ["espresso"]}'
        cat > q.jsonl <<'EOF'
        {"query": "x"}
        EOF
        make demo
        ```

        <!-- docs-test: skip: needs a GPU -->
        ```python
        raise SystemExit(1)
        ```

        ```python
        x = 1
        ```

        ```text
        lychee rerank is not run here
        ```
    ''')
    steps = [(s.kind, s.line) for s in parse_page(page).steps]
    assert steps == [
        ("command", 4), ("shown", 7), ("export", 12), ("command", 13), ("shown", 16), ("shown", 19),
        ("skipped", 23), ("python", 27),
    ]
    cmds = [s.text for s in parse_page(page).steps if s.kind == "command"]
    assert cmds[0].splitlines()[1].strip() == "examples/gallery --top-k 3"
    assert cmds[1].endswith('"documents": ["espresso"]}\'')
    assert parse_page(page).counts() == {"python": 1, "commands": 2, "shown": 4, "skipped": 1}  # the export counts as shown


def test_a_broken_python_example_fails_naming_page_and_line(tmp_path: Path) -> None:
    page = write(tmp_path / "broken.md", '''
        # Broken

        ```python
        from lychee_rerank import LycheeReranker
        ```

        Some prose.

        ```python
        reranker = LycheeReranker.no_such_constructor()
        ```
    ''')
    with pytest.raises(DocsExampleError) as err:
        run_page(page)
    message = str(err.value)
    assert message.startswith(f"{page}:9: python block raised AttributeError"), message
    assert f'File "{page}", line 10' in message  # the traceback points at the page's own line


def test_a_failing_cli_example_fails_naming_page_and_line(tmp_path: Path) -> None:
    page = write(tmp_path / "broken_cli.md", '''
        # Broken CLI

        ```console
        $ lychee models
        $ lychee rerank "a cup of coffee" examples/gallery/coffee.jpg --model no-such-org/no-such-model
        ```
    ''')
    with pytest.raises(DocsExampleError) as err:
        run_page(page)
    message = str(err.value)
    assert message.startswith(f"{page}:5: command exited with 1: lychee rerank"), message
    assert "no-such-org/no-such-model" in message


def test_a_server_page_runs_in_order_with_exports_and_fails_on_http_errors(tmp_path: Path) -> None:
    """The server marker, ``localhost:8000`` rewritten, exports, python and commands in page order,
    curl failing on an HTTP error status."""
    good = write(tmp_path / "server.md", '''
        # Server

        <!-- docs-test: server --backend lite -->

        ```python
        from pathlib import Path
        Path("body.json").write_text('{"query": "a cup of coffee", "documents": ["an espresso", "a horse"]}')
        ```

        ```bash
        export ENDPOINT=http://localhost:8000/v1/rerank
        curl -s "$ENDPOINT" -H 'Content-Type: application/json' -d @body.json -o out.json
        ```

        ```python
        import json
        ranked = json.loads(Path("out.json").read_text())["results"]
        assert ranked[0]["index"] == 0, ranked
        ```
    ''')
    result = run_page(good)
    assert result.counts == {"python": 2, "commands": 1, "shown": 1, "skipped": 0}
    bad = write(tmp_path / "server_bad.md", '''
        # Server

        <!-- docs-test: server --backend lite -->

        ```bash
        curl -s http://localhost:8000/v1/rerank -H 'Content-Type: application/json' -d '{"query": "x"}'
        ```
    ''')
    with pytest.raises(DocsExampleError, match=rf"^{bad}:6: command exited with 22"):
        run_page(bad)


def test_the_runner_command_stops_its_server_and_page_on_sigterm(tmp_path: Path) -> None:
    """``python -m tests.docs.runner`` (the command line) starts a ``lychee serve`` and a page driver,
    each in its own session: a SIGTERM to the runner stops both, not only the runner."""
    import contextlib
    import signal
    import subprocess
    import sys

    import psutil

    from lychee_rerank.testing.processes import stop_process

    started = tmp_path / "started"
    page = write(tmp_path / "waits.md", f'''
        # Server

        <!-- docs-test: server --backend lite -->

        ```python
        import pathlib, time
        pathlib.Path({str(started)!r}).touch()
        time.sleep(600)
        ```
    ''')
    runner = subprocess.Popen([sys.executable, "-m", "tests.docs.runner", str(page)], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    spawned: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 240
        while not started.exists():
            assert runner.poll() is None, "the runner exited before the page started"
            assert time.monotonic() < deadline, "the page did not start within 240 s"
            time.sleep(0.5)
        spawned = psutil.Process(runner.pid).children(recursive=True)
        assert len(spawned) >= 2, spawned  # the server and the page driver
        runner.send_signal(signal.SIGTERM)
        runner.wait(timeout=60)
        gone, alive = psutil.wait_procs(spawned, timeout=30)
        assert alive == [], [p.cmdline() for p in alive]
    finally:
        stop_process(runner, grace_s=5)
        for p in spawned:  # whatever is left when the assertion failed
            with contextlib.suppress(psutil.Error):
                p.kill()
