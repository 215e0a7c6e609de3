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
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..config import RerankerConfig
from ..inputs import InputError, is_image_path, to_query
from ..prompt import load_templates
from ..results import RerankResult, to_csv, to_json, to_jsonl

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Multimodal reranking with lychee-rerank-mm.")
err = Console(stderr=True, soft_wrap=True)  # soft_wrap: a notice stays one line
PROGRESS_MIN_DOCS = 6


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
                err.print(f"[yellow]warning:[/] no file matches {arg!r}")
            out.extend(matches)
        else:
            out.append(path)  # reported as "image file not found" in its own record
    return out


def read_docs_file(path: str) -> list[str]:
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


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
        table.add_row(str(r.rank), score, r.source or "", logits, note)
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
    max_pixels: Optional[int] = typer.Option(None, "--max-pixels", help="Pixel budget per image (default 1280*28*28)."),
    adapter: Optional[str] = typer.Option(None, "--adapter", help="LoRA adapter directory (from `lychee finetune`) or hub id."),
) -> None:
    """Rerank documents (images, texts, or both) against a query."""
    if instruction is not None and template is not None:
        raise typer.BadParameter("give --instruction or --template, not both")
    documents: list[Any] = expand_documents(docs or [], as_text)
    if docs_file:
        documents.extend(read_docs_file(docs_file))
    if not documents:
        err.print("[red]error:[/] no documents: pass image paths, a directory, a glob, --text DOCS or --docs-file FILE")
        raise typer.Exit(2)
    query_input: Any = query
    if query_image is not None:
        query_input = {"text": query or None, "image": query_image}
    try:
        to_query(query_input)  # fail fast, before seconds of model loading
    except InputError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2)
    rr = _load_reranker(backend, model, device=device, dtype=dtype, attn=attn, max_pixels=max_pixels,
                        scoring=scoring.value, adapter=adapter, templates_file=templates_file)

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
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2)
    failed = sum(1 for r in results if r.error)
    if failed:
        err.print(f"[yellow]{failed} document(s) could not be scored; see the error column[/]")
    typer.echo(render(results, fmt, scale))


def _load_reranker(
    backend: str, model: str | None, *, device: str = "auto", dtype: str = "auto", attn: str = "auto",
    max_pixels: int | None = None, scoring: str = "yesno", adapter: str | None = None,
    templates_file: Path | None = None,
) -> Any:
    """Load the reranker the way every command does, or exit with a one-line reason."""
    config = RerankerConfig(backend=backend, model=model, adapter=adapter, scoring=scoring).with_(  # type: ignore[arg-type]
        device=device, dtype=dtype, attn_implementation=attn, max_pixels=max_pixels,
        templates_file=str(templates_file) if templates_file else None,
    )
    return load_reranker(config)


def load_reranker(config: RerankerConfig) -> Any:
    """:func:`_load_reranker` from a config: the one place the CLI builds a reranker."""
    from .. import backends
    from ..engine import LycheeReranker

    try:
        backends.choose(config.backend, config.model)
    except ValueError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2)
    _quiet_libraries()  # imports transformers: only once a backend is about to load
    try:
        rr = LycheeReranker.from_config(config, notice=lambda line: err.print(f"[yellow]{line}[/]"))
    except (OSError, ValueError, ImportError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1)
    info = rr.info
    err.print(f"[dim]{info['backend']}: {info['model']} on {info['device']} · {info['dtype']} · {info['attn_implementation']}[/]")
    return rr


@app.command()
def analyze(
    query: str = typer.Argument(..., help="Query text (may be '' with --query-image)."),
    document: str = typer.Argument("", help="Document text (may be '' with --doc-image)."),
    query_image: Optional[Path] = typer.Option(None, "--query-image"),
    doc_image: Optional[Path] = typer.Option(None, "--doc-image"),
    model: Optional[str] = typer.Option(None, "--model", "-m", envvar="LYCHEE_MODEL"),
    backend: str = typer.Option("auto", "--backend"),
    instruction: Optional[str] = typer.Option(None, "--instruction", "-i"),
    template: Optional[str] = typer.Option(None, "--template"),
    adapter: Optional[str] = typer.Option(None, "--adapter"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Explain one pair: score, yes/no logits, the instruction and the prompt as the model reads it."""
    from ..inputs import to_content
    from ..prompt import resolve_instruction

    q: Any = {"text": query or None, "image": query_image} if query_image else query
    d: Any = {"text": document or None, "image": doc_image} if doc_image else document
    try:
        to_query(q)
        instruction_used = resolve_instruction(instruction, template)
    except (InputError, ValueError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2)
    rr = _load_reranker(backend, model, adapter=adapter)
    result = rr.rerank(q, [d], instruction=instruction_used)[0]
    if result.error:
        err.print(f"[red]error:[/] {result.error}")
        raise typer.Exit(2)
    prompt = rr.backend.render_prompt(rr.to_query(q), to_content(d), instruction_used)
    data = {
        "score": result.score, "yes_logit": result.yes_logit, "no_logit": result.no_logit,
        "instruction": instruction_used, "truncated": result.truncated, "prompt": prompt, "evidence": result.evidence,
    }
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
        return
    typer.echo(f"score        {result.score:.6f}")
    if result.yes_logit is not None:
        typer.echo(f"yes / no     {result.yes_logit:.4f} / {result.no_logit:.4f}")
    typer.echo(f"instruction  {instruction_used}")
    if result.evidence:
        typer.echo(f"evidence     {json.dumps(result.evidence, ensure_ascii=False, default=str)}")
    if prompt:
        typer.echo("prompt:\n" + prompt)


@app.command("eval")
def eval_command(
    file: Path = typer.Argument(..., help="Labelled queries (JSONL; see lychee_rerank.jobs.eval)."),
    images: Path = typer.Option(..., "--images", help="Gallery directory the labels refer to."),
    system: list[str] = typer.Option(
        None, "--system", "-s",
        help="What to evaluate, repeatable for a side-by-side table: lite, auto, MODEL or MODEL:ADAPTER.",
    ),
    k: int = typer.Option(5, "--k", min=1, help="Cut-off for nDCG@k and Recall@k."),
    pr_curve: Path = typer.Option(Path("eval-pr.png"), "--pr-curve", help="PNG of the precision-recall curve."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """nDCG@k, MRR, MAP, Recall@k per query set and overall; PR curve and score thresholds."""
    from ..jobs import eval as ev
    from ..jobs.thresholds import write_pr_curve

    systems = system or ["auto"]
    queries = {row["id"]: row for row in ev.load_queries(file)}
    rows: list[dict[str, Any]] = []
    thresholds: dict[str, list[Any]] = {}
    for i, spec in enumerate(systems):
        if spec in ("lite", "auto"):
            rr = _load_reranker(spec, None)
        else:
            model, _, adapter = spec.partition(":")
            rr = _load_reranker("lychee", model, adapter=adapter or None)
        report = ev.evaluate(rr, file, images)
        by_set: dict[str, list[Any]] = {}
        scores, labels = [], []
        for q in report.queries:
            grades = {d: float(g) for d, g in queries[q.id]["relevant"].items()}
            by_set.setdefault(q.lang, []).append((q, grades))
            scores.extend(q.scores)
            labels.extend(grades.get(d, 0.0) for d in q.ranking)
        for name, members in [("all", [m for ms in by_set.values() for m in ms]), *sorted(by_set.items())]:
            n = len(members)
            rows.append({
                "system": spec, "set": name, "queries": n,
                f"nDCG@{k}": sum(ev.ndcg_at_k(q.ranking, g, k) for q, g in members) / n,
                "MRR": sum(ev.reciprocal_rank(q.ranking, g) for q, g in members) / n,
                "MAP": sum(ev.average_precision(q.ranking, g) for q, g in members) / n,
                "Recall@1": sum(ev.recall_at_k(q.ranking, g, 1) for q, g in members) / n,
                f"Recall@{k}": sum(ev.recall_at_k(q.ranking, g, k) for q, g in members) / n,
            })
        png = pr_curve if len(systems) == 1 else pr_curve.with_name(f"{pr_curve.stem}-{i + 1}{pr_curve.suffix}")
        thresholds[spec] = write_pr_curve(png, scores, labels)
        err.print(f"[dim]{spec}: precision-recall curve written to {png}[/]")
    if as_json:
        typer.echo(json.dumps({"metrics": rows, "thresholds": {s: [vars(r) for r in t] for s, t in thresholds.items()}},
                              ensure_ascii=False, indent=2, default=str))
        return
    table = Table(title="Ranking quality", show_edge=False)
    for col in rows[0]:
        table.add_column(col, justify="left" if col in ("system", "set") else "right")
    for row in rows:
        table.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()))
    out = Console(width=140)
    out.print(table)
    for spec, trs in thresholds.items():
        t = Table(title=f"score_threshold choices ({spec})", show_edge=False)
        for col in ("name", "rule", "threshold", "precision", "recall", "F1", "kept", "note"):
            t.add_column(col)
        for r in trs:
            fmt = lambda v: "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))  # noqa: E731
            t.add_row(r.name, r.rule, fmt(r.threshold), fmt(r.precision), fmt(r.recall), fmt(r.f1), fmt(r.kept), r.note)
        out.print(t)


@app.command()
def templates(templates_file: Optional[Path] = typer.Option(None, "--templates-file")) -> None:
    """List the named instruction templates."""
    for name, text in sorted(load_templates(templates_file).items()):
        typer.echo(f"{name}\t{text}")


@app.command()
def serve(
    host: Optional[str] = typer.Option(None, "--host", help="Interface to bind [default: 127.0.0.1]."),
    port: Optional[int] = typer.Option(None, "--port", "-p", help="Port [default: 8080]."),
    backend: Optional[str] = typer.Option(None, "--backend", help="auto, lychee or lite [default: auto]."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Hub id or local directory (or LYCHEE_MODEL)."),
    adapter: Optional[str] = typer.Option(None, "--adapter", help="LoRA adapter directory from `lychee finetune`."),
    api_key: Optional[str] = typer.Option(
        None, "--api-key", help="Require 'Authorization: Bearer KEY' on every route but /health (or LYCHEE_API_KEY)."
    ),
    allow_local_dir: Optional[Path] = typer.Option(
        None, "--allow-local-dir", help="Let requests name image files inside this directory (nowhere else)."
    ),
    allow_urls: Optional[bool] = typer.Option(
        None, "--allow-urls/--no-allow-urls", help="Let requests name http(s) image URLs (public addresses only)."
    ),
    device: Optional[str] = typer.Option(None, "--device"),
    dtype: Optional[str] = typer.Option(None, "--dtype"),
    attn: Optional[str] = typer.Option(None, "--attn", help="auto, flash_attention_2, sdpa or eager."),
    model_max_pixels: Optional[int] = typer.Option(None, "--max-pixels", help="Pixel budget per image, model side."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b", min=1),
    max_documents: Optional[int] = typer.Option(None, "--max-documents", help="Documents per request [1000]."),
    max_request_bytes: Optional[int] = typer.Option(None, "--max-request-bytes", help="Request body size [64 MiB]."),
    max_image_bytes: Optional[int] = typer.Option(None, "--max-image-bytes", help="Encoded size of one image [20 MiB]."),
    max_image_pixels: Optional[int] = typer.Option(None, "--max-image-pixels", help="Width x height of one image [40 M]."),
    max_text_chars: Optional[int] = typer.Option(None, "--max-text-chars", help="Characters of one text [100000]."),
    request_timeout_s: Optional[float] = typer.Option(None, "--request-timeout", help="Seconds per request, then 504 [120]."),
    max_queue: Optional[int] = typer.Option(None, "--max-queue", help="Requests admitted to the model, then 503 [64]."),
    max_wait_ms: Optional[float] = typer.Option(None, "--max-wait-ms", help="Micro-batching: wait for concurrent requests [5]."),
    url_timeout_s: Optional[float] = typer.Option(None, "--url-timeout", help="Seconds to fetch one image URL [10]."),
    log_level: str = typer.Option("info", "--log-level"),
) -> None:
    """Serve the reranker over HTTP (Cohere/Jina/vLLM-compatible /v1/rerank; docs at /docs)."""
    import uvicorn
    from pydantic import ValidationError

    from ..serving.settings import ServerSettings

    given = {
        "host": host, "port": port, "backend": backend, "model": model, "api_key": api_key,
        "allow_local_dir": allow_local_dir, "allow_urls": allow_urls, "device": device, "dtype": dtype,
        "attn_implementation": attn, "model_max_pixels": model_max_pixels, "adapter": adapter, "batch_size": batch_size,
        "max_documents": max_documents, "max_request_bytes": max_request_bytes, "max_image_bytes": max_image_bytes,
        "max_image_pixels": max_image_pixels, "max_text_chars": max_text_chars,
        "request_timeout_s": request_timeout_s, "max_queue": max_queue, "max_wait_ms": max_wait_ms, "url_timeout_s": url_timeout_s,
    }
    try:
        settings = ServerSettings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        for problem in exc.errors():
            where = ".".join(str(x) for x in problem["loc"])
            err.print(f"[red]error:[/] {where}: {problem['msg']}")
        raise typer.Exit(2)
    from ..serving.app import create_app  # imports torch: only once the settings are known to be valid

    _quiet_libraries()
    logging.getLogger("lychee_rerank").setLevel(logging.INFO)
    if settings.host not in ("127.0.0.1", "localhost", "::1") and not settings.api_key_value:
        err.print(f"[yellow]warning:[/] listening on {settings.host} without --api-key: anyone who can reach it can use it")
    err.print(f"[dim]lychee serve: http://{settings.host}:{settings.port} (docs at /docs); loading the model...[/]")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=log_level)


@app.command()
def ui(
    port: int = typer.Option(8501, "--port"),
    host: str = typer.Option("127.0.0.1", "--host"),
    backend: str = typer.Option("auto", "--backend", help="auto, lychee or lite."),
    model: Optional[str] = typer.Option(None, "--model", "-m", envvar="LYCHEE_MODEL"),
    adapter: Optional[str] = typer.Option(None, "--adapter", help="LoRA adapter directory (model backend)."),
    lang: Optional[str] = typer.Option(None, "--lang", help="zh or en (default: the browser's language)."),
) -> None:
    """Start the web UI (Streamlit): gallery ranking, single analysis, batch text ranking."""
    import subprocess
    from importlib import resources

    app_path = str(resources.files("lychee_rerank") / "ui" / "app.py")
    env = {**os.environ, "LYCHEE_UI_BACKEND": backend}
    for key, value in (("LYCHEE_MODEL", model), ("LYCHEE_ADAPTER", adapter), ("LYCHEE_UI_LANG", lang)):
        if value:
            env[key] = value
    command = [
        sys.executable, "-m", "streamlit", "run", app_path,
        "--server.port", str(port), "--server.address", host, "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.maxUploadSize", "64", "--client.toolbarMode", "viewer",
    ]
    err.print(f"[dim]lychee ui: http://{host}:{port}[/]")
    raise typer.Exit(subprocess.call(command, env=env))


@app.command()
def finetune(
    model: Optional[str] = typer.Option(None, "--model", "-m", envvar="LYCHEE_MODEL", help="Base model: hub id or local directory."),
    train: Path = typer.Option(..., "--train", exists=True, dir_okay=False, help="Training JSONL: pairs or groups (image paths relative to it)."),
    eval_file: Optional[Path] = typer.Option(
        None, "--eval", exists=True, dir_okay=False, help="Held-out JSONL [default: hold out --eval-split of the training queries]."
    ),
    output: Path = typer.Option(..., "--output", "-o", file_okay=False, help="Directory for the adapter, checkpoints and report."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", min=1, help="Optimizer steps (wins over --epochs)."),
    epochs: int = typer.Option(1, "--epochs", min=1),
    lr: float = typer.Option(1e-4, "--lr", min=0.0),
    batch_size: int = typer.Option(4, "--batch-size", "-b", min=1, help="Pairs per micro-batch."),
    grad_accum: int = typer.Option(1, "--grad-accum", min=1, help="Micro-batches per optimizer step."),
    lora_r: int = typer.Option(16, "--lora-r", min=1),
    lora_alpha: int = typer.Option(32, "--lora-alpha", min=1),
    lora_dropout: float = typer.Option(0.05, "--lora-dropout", min=0.0, max=0.99),
    train_vision: bool = typer.Option(False, "--train-vision", help="Also put LoRA on the vision tower."),
    hard_negatives: int = typer.Option(
        0, "--hard-negatives", min=0, help="Negatives of the same query trained next to each positive (groups only)."
    ),
    eval_split: float = typer.Option(0.1, "--eval-split", min=0.0, max=0.99),
    save_every: int = typer.Option(200, "--save-every", min=1, help="Checkpoint every N steps (and at the end)."),
    seed: int = typer.Option(0, "--seed"),
    resume: bool = typer.Option(
        True, "--resume/--no-resume", help="Continue from the latest checkpoint in --output (--no-resume deletes them)."
    ),
    instruction: Optional[str] = typer.Option(None, "--instruction", "-i", help="Instruction for records without their own."),
    device: str = typer.Option("auto", "--device"),
    dtype: str = typer.Option("auto", "--dtype", help="auto: bfloat16 on GPU, float32 on CPU."),
) -> None:
    """Fine-tune a LoRA adapter on labelled JSONL with the exact inference prompt."""
    from ..training.finetune import finetune as run_finetune

    if not model:
        err.print("[red]error:[/] no base model: pass --model PATH_OR_HUB_ID or set LYCHEE_MODEL")
        raise typer.Exit(2)
    _quiet_libraries()
    try:
        report = run_finetune(
            model, train, eval_file, output_dir=output, max_steps=max_steps, epochs=epochs, lr=lr,
            batch_size=batch_size, grad_accum=grad_accum, lora_r=lora_r, lora_alpha=lora_alpha,
            lora_dropout=lora_dropout, train_vision=train_vision, hard_negatives=hard_negatives, seed=seed,
            resume=resume, eval_split=eval_split, save_every=save_every, instruction=instruction,
            device=device, dtype=dtype, progress=True,
        )
    except (OSError, ValueError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1)
    if report.resumed_from_step is not None:
        err.print(f"[dim]resumed from step {report.resumed_from_step}[/]")
    if report.bad_records:
        err.print(
            f"[yellow]{len(report.bad_records)} bad record(s) skipped[/] (file:line and reason in "
            f"{output / 'finetune_report.json'})"
        )
    table = Table(show_edge=False, title="held-out evaluation")
    for col in ("step", "epoch", "loss", "accuracy", "MRR"):
        table.add_column(col, justify="right")
    for h in report.history:
        table.add_row(str(h.step), str(h.epoch), f"{h.loss:.4f}", f"{h.accuracy:.3f}", f"{h.mrr:.3f}")
    if report.history:
        err.print(table)
    else:
        err.print("[dim]no held-out data (pass --eval FILE or --eval-split > 0)[/]")
    err.print(
        f"{report.steps} steps on {report.train_pairs} pairs ({report.steps_per_second:.2f} steps/s), "
        f"{report.trainable_parameters:,} trainable parameters"
    )
    typer.echo(str(output))
    err.print(f"[dim]use it: lychee rerank --model {model} --adapter {output} QUERY DOCS...[/]")


@app.command()
def batch(
    input_path: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSONL or Parquet: {query_id, query, candidates} or {query_id, query, candidate}."),
    output_path: Path = typer.Argument(..., dir_okay=False, help="JSONL (one line per query) or .parquet; rerunning resumes it."),
    local: bool = typer.Option(False, "--local", help="Score in this process, without Ray (same code path)."),
    backend: str = typer.Option("auto", "--backend", help="auto (model if configured, else lite), lychee or lite."),
    model: Optional[str] = typer.Option(None, "--model", "-m", envvar="LYCHEE_MODEL", help="Hub id or local directory."),
    adapter: Optional[str] = typer.Option(None, "--adapter", help="LoRA adapter directory (from `lychee finetune`)."),
    instruction: Optional[str] = typer.Option(None, "--instruction", "-i"),
    concurrency: int = typer.Option(1, "--concurrency", "-c", min=1, help="Ray actors, each holding one reranker."),
    num_gpus_per_actor: float = typer.Option(0.0, "--num-gpus-per-actor", min=0.0, help="GPUs per actor (1 = one model per GPU)."),
    num_cpus_per_actor: float = typer.Option(1.0, "--num-cpus-per-actor", min=0.0),
    batch_size: int = typer.Option(8, "--batch-size", "-b", min=1, help="Pairs per forward pass (also capped by the token budget)."),
    queries_per_batch: int = typer.Option(16, "--queries-per-batch", min=1, help="Queries per Ray batch (and per shared scoring call)."),
    device: str = typer.Option("auto", "--device"),
    dtype: str = typer.Option("auto", "--dtype"),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster to join (or RAY_ADDRESS); default: a local instance."),
) -> None:
    """Rerank a file of queries offline (Ray Data actors, or --local); resumable after a crash."""
    from .. import backends
    from ..jobs.batch import ScoreOptions, run_batch, stderr_progress

    try:
        backends.choose(backend, model)
    except ValueError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2)
    _quiet_libraries()
    spec = RerankerConfig(backend=backend, model=model, adapter=adapter, device=device, dtype=dtype)
    try:
        summary = run_batch(
            input_path, output_path, spec, ScoreOptions(instruction=instruction, batch_size=batch_size), local=local,
            concurrency=concurrency, num_gpus_per_actor=num_gpus_per_actor, num_cpus_per_actor=num_cpus_per_actor,
            queries_per_batch=queries_per_batch, ray_address=address, progress=stderr_progress,
        )
    except (OSError, ValueError, ImportError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1)
    if summary.errors:
        err.print(f"[yellow]{summary.errors} error(s) written to {output_path} (records with an 'error' field)[/]")


@app.command("serve-ray")
def serve_ray(
    replicas: int = typer.Option(1, "--replicas", "-r", min=1, help="Replicas (one model each); initial count with autoscaling."),
    host: Optional[str] = typer.Option(None, "--host", help="Interface of Serve's HTTP proxy [default: 127.0.0.1]."),
    port: Optional[int] = typer.Option(None, "--port", "-p", help="Port [default: 8080]."),
    backend: Optional[str] = typer.Option(None, "--backend", help="auto, lychee or lite [default: auto]."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Hub id or local directory (or LYCHEE_MODEL)."),
    adapter: Optional[str] = typer.Option(None, "--adapter", help="LoRA adapter directory from `lychee finetune`."),
    api_key: Optional[str] = typer.Option(None, "--api-key", help="Require 'Authorization: Bearer KEY' (or LYCHEE_API_KEY)."),
    allow_local_dir: Optional[Path] = typer.Option(None, "--allow-local-dir", help="Let requests name image files in this directory."),
    device: Optional[str] = typer.Option(None, "--device"),
    dtype: Optional[str] = typer.Option(None, "--dtype"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b", min=1),
    max_documents: Optional[int] = typer.Option(None, "--max-documents", help="Documents per request [1000]."),
    request_timeout_s: Optional[float] = typer.Option(None, "--request-timeout", help="Seconds per request, then 504 [120]."),
    max_queue: Optional[int] = typer.Option(None, "--max-queue", help="Requests admitted to one replica's model, then 503 [64]."),
    max_wait_ms: Optional[float] = typer.Option(None, "--max-wait-ms", help="Micro-batching window inside a replica [5]."),
    max_ongoing_requests: int = typer.Option(16, "--max-ongoing-requests", min=1, help="Requests Serve sends one replica at once."),
    num_gpus_per_replica: float = typer.Option(0.0, "--num-gpus-per-replica", min=0.0),
    num_cpus_per_replica: float = typer.Option(1.0, "--num-cpus-per-replica", min=0.0),
    autoscaling_min: Optional[int] = typer.Option(None, "--autoscaling-min", min=0, help="With --autoscaling-max: fewest replicas [1]."),
    autoscaling_max: Optional[int] = typer.Option(None, "--autoscaling-max", min=1, help="Turn on Serve autoscaling up to this many replicas."),
    target_ongoing_requests: float = typer.Option(4.0, "--target-ongoing-requests", min=0.1, help="Autoscaling target per replica."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster to join (or RAY_ADDRESS); default: a local instance."),
) -> None:
    """Serve the same HTTP API on Ray Serve with N replicas (one model each)."""
    from pydantic import ValidationError

    from ..serving.settings import ServerSettings

    given = {
        "host": host, "port": port, "backend": backend, "model": model, "adapter": adapter, "api_key": api_key,
        "allow_local_dir": allow_local_dir, "device": device, "dtype": dtype, "batch_size": batch_size,
        "max_documents": max_documents, "request_timeout_s": request_timeout_s, "max_queue": max_queue, "max_wait_ms": max_wait_ms,
    }
    try:
        settings = ServerSettings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        for problem in exc.errors():
            err.print(f"[red]error:[/] {'.'.join(str(x) for x in problem['loc'])}: {problem['msg']}")
        raise typer.Exit(2)
    from ..serving.ray_serve import ReplicaOptions, run

    options = ReplicaOptions(
        num_replicas=replicas, max_ongoing_requests=max_ongoing_requests, num_cpus=num_cpus_per_replica,
        num_gpus=num_gpus_per_replica, autoscaling_min=autoscaling_min, autoscaling_max=autoscaling_max,
        target_ongoing_requests=target_ongoing_requests,
    )
    _quiet_libraries()
    if settings.host not in ("127.0.0.1", "localhost", "::1") and not settings.api_key_value:
        err.print(f"[yellow]warning:[/] listening on {settings.host} without --api-key: anyone who can reach it can use it")
    err.print(f"[dim]lychee serve-ray: http://{settings.host}:{settings.port} with {replicas} replica(s); loading the models...[/]")
    run(settings, options, address=address, blocking=True)


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
    app()


if __name__ == "__main__":
    main()
