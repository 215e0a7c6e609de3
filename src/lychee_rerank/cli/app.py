"""``lychee``: the command line.

Results go to stdout (table, JSON or CSV); progress, the model line and notices go to stderr,
so ``lychee rerank ... --format json | jq`` stays clean.
"""

from __future__ import annotations

import glob
import io
import json
import logging
import os
import sys
from contextlib import nullcontext
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ..config import RerankerConfig
from ..inputs import InputError, is_image_path, to_query
from ..lines import check_readable_stream, text_lines
from ..prompt import load_templates
from ..results import RerankResult, to_csv, to_json, to_jsonl

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Multimodal reranking with lychee-rerank-mm, Qwen3-VL-Reranker and the other families of `lychee models`.")
err = Console(stderr=True, soft_wrap=True)  # soft_wrap: a notice stays one line
PROGRESS_MIN_DOCS = 6


# User text (queries, documents, paths, templates, errors quoting them) is never Rich markup:
# "[/INST]" must not raise MarkupError nor "[quote]x[/quote]" print "x", so it goes out as Text.
def say(message: Any, style: str = "", label: str = "") -> None:
    """One stderr line printed as is: ``label:`` (or the whole line) in ``style``, no markup, no emoji codes."""
    if label:
        err.print(Text.assemble((f"{label}:", style), " ", str(message)))
    else:
        err.print(Text(str(message), style=style))


def fail(message: Any) -> None:
    say(message, "red", "error")


def warn(message: Any) -> None:
    say(message, "yellow", "warning")


def cell(value: Any) -> Text:
    """A table cell holding user text, printed literally."""
    return Text("" if value is None else str(value))


def check_family(value: Optional[str]) -> Optional[str]:
    """``--family``: a known checkpoint family or a usage error naming them, before anything loads."""
    if value is None:
        return None
    from ..backends import families  # metadata only: no torch

    try:
        families.get(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return value


def family_option(envvar: Optional[str] = "LYCHEE_FAMILY") -> Any:
    """The ``--family`` option every command that loads a model takes (``lychee models`` lists them)."""
    return typer.Option(
        None, "--family", envvar=envvar, callback=check_family,
        help="Checkpoint family (see `lychee models`) [default: read from the checkpoint's config.json].",
    )


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


class Scoring(str, Enum):
    yesno = "yesno"
    generate = "generate"


def expand_documents(docs: list[str], as_text: bool) -> list[Any]:
    """DOC arguments → inputs: image files, every image in a directory, or a glob's matches."""
    if as_text:
        return list(docs)
    out: list[Any] = []
    for arg in docs:
        path = Path(arg)
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.is_file() and is_image_path(p)))
        elif path.exists():
            out.append(path)
        elif any(ch in arg for ch in "*?["):
            matches = sorted(Path(m) for m in glob.glob(arg) if Path(m).is_file())
            if not matches:
                warn(f"no file matches {arg!r}")
            out.extend(matches)
        else:
            out.append(path)  # reported as "image file not found" in its own record
    return out


def read_docs_file(path: str) -> list[str]:
    """One document per ``\\n``-separated line (blank lines skipped).

    Form feeds, U+2028 and the other characters ``str.splitlines`` breaks at stay inside their
    document, so document N is still the N-th non-blank line of the file.
    """
    where = "stdin" if path == "-" else path
    try:
        if path != "-":
            check_readable_stream(path, "--docs-file")
        with (nullcontext(sys.stdin.buffer) if path == "-" else open(path, "rb")) as fh:
            docs = []
            for number, text, problem in text_lines(fh):
                if problem:
                    raise ValueError(f"--docs-file {where}, line {number}: {problem}")
                if text.strip():
                    docs.append(text.strip())
            return docs
    except OSError as exc:
        raise ValueError(f"cannot read --docs-file {where}: {exc.strerror or exc}") from None


def render(results: list[RerankResult], fmt: OutputFormat, scale: float) -> str:
    if fmt is OutputFormat.json:
        return to_json(results)
    if fmt is OutputFormat.jsonl:
        return to_jsonl(results)
    if fmt is OutputFormat.csv:
        return to_csv(results).rstrip("\n")
    table = Table(show_edge=False)
    for col in ("rank", "score", "document", "yes/no logits · evidence", "note"):
        table.add_column(col, justify="right" if col in ("rank", "score") else "left")
    digits = 2 if scale == 10 else 4
    for r in results:
        score = f"{'≈' if r.tie else ''}{r.score:.{digits}f}"
        logits = f"{r.yes_logit:.2f} / {r.no_logit:.2f}" if r.yes_logit is not None else (r.raw_output or evidence_summary(r.evidence))
        note = r.error or ("truncated" if r.truncated else "")
        table.add_row(str(r.rank), score, cell(r.source), cell(logits), cell(note))
    buf = io.StringIO()
    Console(file=buf, width=120, force_terminal=False).print(table)
    return buf.getvalue().rstrip("\n")


def evidence_summary(evidence: dict[str, Any]) -> str:
    """One short line of why (lite backend): the matched tag, the OCR that matched, colours."""
    parts = []
    if evidence.get("ocr_match"):
        parts.append(f"ocr “{evidence['ocr_match']}”")
    tags = evidence.get("matched_tags") or []
    if tags:
        parts.append(f"tag {tags[0]['label']} ({tags[0].get('prob', 0):.2f})")
    if evidence.get("query_colours") and evidence.get("colours"):
        parts.append("colours " + ", ".join(c["name"] for c in evidence["colours"][:2]))
    if evidence.get("caption"):
        parts.append("caption")
    return "; ".join(parts)


@app.command()
def rerank(
    query: str = typer.Argument(..., help="Query text (may be '' with --query-image)."),
    docs: list[str] = typer.Argument(None, help="Image files, directories or globs of images (or texts with --text)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", envvar="LYCHEE_MODEL", help="Hub id or local directory."),
    backend: str = typer.Option("auto", "--backend", help="auto (model if configured, else lite), lychee or lite."),
    family: Optional[str] = family_option(),
    query_image: Optional[Path] = typer.Option(None, "--query-image", help="Image for the query (with or without text)."),
    docs_file: Optional[str] = typer.Option(None, "--docs-file", help="Text documents, one per line ('-' for stdin)."),
    as_text: bool = typer.Option(False, "--text", help="Treat DOC arguments as text documents, not paths."),
    top_k: Optional[int] = typer.Option(None, "--top-k", "-k", min=0),
    threshold: Optional[float] = typer.Option(None, "--threshold", "-t", help="Minimum score (in the display scale)."),
    instruction: Optional[str] = typer.Option(None, "--instruction", "-i"),
    template: Optional[str] = typer.Option(None, "--template", help="Named instruction (see `lychee templates`)."),
    templates_file: Optional[Path] = typer.Option(None, "--templates-file", help="JSON {name: instruction} added to the built-ins."),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f"),
    batch_size: int = typer.Option(8, "--batch-size", "-b", min=1),
    scale: float = typer.Option(1.0, "--scale", help="1 for 0-1 scores, 10 for 0-10."),
    normalize: bool = typer.Option(False, "--normalize", help="Min-max normalise the scores of this call."),
    scoring: Scoring = typer.Option(Scoring.yesno, "--scoring", help="yesno (lychee) or generate (chat VLMs)."),
    device: str = typer.Option("auto", "--device"),
    dtype: str = typer.Option("auto", "--dtype"),
    attn: str = typer.Option("auto", "--attn", help="auto, flash_attention_2, sdpa or eager."),
    max_pixels: Optional[int] = typer.Option(None, "--max-pixels", help="Pixel budget per image [default: the family's]."),
    adapter: Optional[str] = typer.Option(None, "--adapter", help="LoRA adapter directory (from `lychee finetune`) or hub id."),
    keep_special_tokens: bool = typer.Option(
        False, "--keep-special-tokens",
        help="Tokenize special-token strings in user text (<|im_end|>, ...) as control tokens, as upstream does.",
    ),
) -> None:
    """Rerank documents (images, texts, or both) against a query."""
    if instruction is not None and template is not None:
        raise typer.BadParameter("give --instruction or --template, not both")
    documents = _gather_documents(docs or [], as_text, docs_file)
    query_input: Any = query
    if query_image is not None:
        query_input = {"text": query or None, "image": query_image}
    try:
        to_query(query_input)  # fail fast, before seconds of model loading
    except InputError as exc:
        fail(exc)
        raise typer.Exit(2)
    rr = _load_reranker(backend, model, family=family, device=device, dtype=dtype, attn=attn, max_pixels=max_pixels,
                        scoring=scoring.value, adapter=adapter, templates_file=templates_file,
                        escape_special_tokens=not keep_special_tokens)

    try:
        if len(documents) >= PROGRESS_MIN_DOCS:
            with Progress(
                TextColumn("Scoring"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=err, transient=True,
            ) as bar:
                task = bar.add_task("score", total=len(documents))
                results = rr.rerank(
                    query_input, documents, instruction=instruction, template=template, top_k=top_k,
                    score_threshold=threshold, batch_size=batch_size, scale=scale, normalize=normalize,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                )
        else:
            results = rr.rerank(
                query_input, documents, instruction=instruction, template=template, top_k=top_k,
                score_threshold=threshold, batch_size=batch_size, scale=scale, normalize=normalize,
            )
    except (InputError, ValueError) as exc:
        fail(exc)
        raise typer.Exit(2)
    failed = sum(1 for r in results if r.error)
    typer.echo(render(results, fmt, scale))
    # Failed documents are always kept in the results (never cut by --top-k or --threshold),
    # so every document failing means nothing was scored: a script must see that as failure.
    if failed == len(documents):
        fail(f"none of the {failed} document(s) could be scored; see the error column")
        raise typer.Exit(1)
    if failed:
        say(f"{failed} document(s) could not be scored; see the error column", "yellow")


def _gather_documents(docs: list[str], as_text: bool, docs_file: Optional[str]) -> list[Any]:
    """DOC arguments, then the lines of --docs-file; exit 2 with one line when there are none."""
    documents: list[Any] = expand_documents(docs, as_text)
    if docs_file:
        try:
            documents.extend(read_docs_file(docs_file))
        except ValueError as exc:
            fail(exc)
            raise typer.Exit(2)
    if not documents:
        fail("no documents: pass image paths, a directory, a glob, --text DOCS or --docs-file FILE")
        raise typer.Exit(2)
    return documents


def _load_reranker(
    backend: str, model: str | None, *, family: str | None = None, device: str = "auto", dtype: str = "auto",
    attn: str = "auto", max_pixels: int | None = None, scoring: str = "yesno", adapter: str | None = None,
    templates_file: Path | None = None, escape_special_tokens: bool = True,
) -> Any:
    """Load the reranker the way every command does, or exit with a one-line reason."""
    config = RerankerConfig(backend=backend, model=model, family=family, adapter=adapter, scoring=scoring).with_(  # type: ignore[arg-type]
        device=device, dtype=dtype, attn_implementation=attn, max_pixels=max_pixels,
        templates_file=str(templates_file) if templates_file else None, escape_special_tokens=escape_special_tokens,
    )
    return load_reranker(config)


def resolve_backend(config: RerankerConfig) -> RerankerConfig:
    """``config`` with ``auto`` (and a missing model) resolved, its notice said; exit 2 on an
    unknown backend. Resolved once: building from the result scans the hub cache no more."""
    from .. import backends

    try:
        chosen = backends.choose(config.backend, config.model)
    except ValueError as exc:
        fail(exc)
        raise typer.Exit(2)
    if chosen.notice:
        say(chosen.notice, "yellow")
    return config.with_(backend=chosen.backend, model=chosen.model)


def load_reranker(config: RerankerConfig) -> Any:
    """:func:`_load_reranker` from a config: the one place the CLI builds a reranker."""
    from ..engine import LycheeReranker

    config = resolve_backend(config)
    _quiet_libraries()  # imports transformers: only once a backend is about to load
    try:
        rr = LycheeReranker.from_config(config)
    except (OSError, ValueError, ImportError) as exc:
        fail(exc)
        raise typer.Exit(1)
    info = rr.info
    family = f" ({info['family']})" if info.get("family") else ""
    say(f"{info['backend']}{family}: {info['model']} on {info['device']} · {info['dtype']} · {info['attn_implementation']}",
        "dim")
    return rr


@app.command()
def analyze(
    query: str = typer.Argument(..., help="Query text (may be '' with --query-image)."),
    document: str = typer.Argument("", help="Document text (may be '' with --doc-image)."),
    query_image: Optional[Path] = typer.Option(None, "--query-image"),
    doc_image: Optional[Path] = typer.Option(None, "--doc-image"),
    model: Optional[str] = typer.Option(None, "--model", "-m", envvar="LYCHEE_MODEL"),
    backend: str = typer.Option("auto", "--backend"),
    family: Optional[str] = family_option(),
    instruction: Optional[str] = typer.Option(None, "--instruction", "-i"),
    template: Optional[str] = typer.Option(None, "--template"),
    adapter: Optional[str] = typer.Option(None, "--adapter"),
    as_text: bool = typer.Option(False, "--text", help="Score DOCUMENT as text even when it names an image file."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Explain one pair: score, yes/no logits, the instruction and the prompt as the model reads it.

    DOCUMENT that names an existing image file is scored as that image, as `lychee rerank` does
    (``--text`` scores the string itself); the output says which was used."""
    from ..inputs import to_content
    from ..prompt import resolve_instruction

    q: Any = {"text": query or None, "image": query_image} if query_image else query
    kind, d = _analyze_document(document, doc_image, as_text)
    say(f"document: {kind}", "dim")
    try:
        to_query(q)
        instruction_used = resolve_instruction(instruction, template)
    except (InputError, ValueError) as exc:
        fail(exc)
        raise typer.Exit(2)
    rr = _load_reranker(backend, model, family=family, adapter=adapter)
    result = rr.rerank(q, [d], instruction=instruction_used)[0]
    if result.error:
        fail(result.error)
        raise typer.Exit(2)
    prompt = rr.backend.render_prompt(rr.to_query(q), to_content(d), instruction_used)
    if instruction_used is None:  # neither given: the family's default is what the model read
        instruction_used = rr.backend.default_instruction
    data = {
        "document_read_as": kind,
        "score": result.score, "yes_logit": result.yes_logit, "no_logit": result.no_logit,
        "instruction": instruction_used, "truncated": result.truncated, "prompt": prompt, "evidence": result.evidence,
    }
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
        return
    typer.echo(f"document     {kind}")
    typer.echo(f"score        {result.score:.6f}")
    if result.yes_logit is not None:
        typer.echo(f"yes / no     {result.yes_logit:.4f} / {result.no_logit:.4f}")
    typer.echo(f"instruction  {instruction_used}")
    if result.evidence:
        typer.echo(f"evidence     {json.dumps(result.evidence, ensure_ascii=False, default=str)}")
    if prompt:
        typer.echo("prompt:\n" + prompt)


def _analyze_document(document: str, doc_image: Optional[Path], as_text: bool) -> tuple[str, Any]:
    """(how DOCUMENT is read, the input): an existing image file is an image unless ``--text``."""
    if doc_image is not None:
        return (f"image {doc_image}" + (" + text" if document else "")), {"text": document or None, "image": doc_image}
    path = Path(document) if document else None
    if path is not None and not as_text and is_image_path(path):
        if path.is_file():
            return f"image {document} (--text to score the path as text)", path
        warn(f"no image file {document!r}; scoring it as text")
    return "text", document


@app.command()
def templates(templates_file: Optional[Path] = typer.Option(None, "--templates-file")) -> None:
    """List the named instruction templates."""
    for name, text in sorted(load_templates(templates_file).items()):
        typer.echo(f"{name}\t{text}")


@app.command()
def ui(
    port: int = typer.Option(8501, "--port"),
    host: str = typer.Option("127.0.0.1", "--host"),
    backend: str = typer.Option("auto", "--backend", help="auto, lychee or lite."),
    model: Optional[str] = typer.Option(None, "--model", "-m", envvar="LYCHEE_MODEL"),
    family: Optional[str] = family_option(),
    adapter: Optional[str] = typer.Option(None, "--adapter", help="LoRA adapter directory (model backend)."),
    lang: Optional[str] = typer.Option(None, "--lang", help="zh or en (default: the browser's language)."),
) -> None:
    """Start the web UI (Streamlit): gallery ranking, single analysis, batch text ranking."""
    from importlib import resources

    from ..extras import require

    require("ui", "lychee ui")

    app_path = str(resources.files("lychee_rerank") / "ui" / "app.py")
    env = {**os.environ, "LYCHEE_UI_BACKEND": backend}
    for key, value in (("LYCHEE_MODEL", model), ("LYCHEE_FAMILY", family), ("LYCHEE_ADAPTER", adapter), ("LYCHEE_UI_LANG", lang)):
        if value:
            env[key] = value
    command = [
        sys.executable, "-m", "streamlit", "run", app_path,
        "--server.port", str(port), "--server.address", host, "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.maxUploadSize", "64", "--client.toolbarMode", "viewer",
    ]
    say(f"lychee ui: http://{host}:{port}", "dim")
    sys.stdout.flush()
    sys.stderr.flush()
    # Become Streamlit (no child process): a signal sent to `lychee ui` reaches the server itself,
    # so stopping it never leaves an orphaned Streamlit behind.
    os.execve(sys.executable, command, env)


def _quiet_libraries() -> None:
    """Keep stderr to what a user needs: no per-shard loading bars from transformers."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass
    logging.getLogger("lychee_rerank").setLevel(logging.WARNING)


def main() -> None:
    from ..extras import MissingExtra

    try:
        app()
    except MissingExtra as exc:  # one line, not a traceback: it says what to install
        fail(exc)
        raise SystemExit(1) from None
