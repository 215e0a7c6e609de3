"""``lychee eval`` and ``lychee batch``: jobs over a file of queries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from ..config import RerankerConfig
from .app import _quiet_libraries, app, cell, family_option, fail, load_reranker, resolve_backend, say


def system_config(spec: str, cache_dir: Optional[Path] = None, family: Optional[str] = None) -> RerankerConfig:
    """``--system`` value → config: a backend name (``lite``, ``auto``, ...) or ``MODEL[:ADAPTER]``;
    ``family`` is for the checkpoints among them (the lite backend has none)."""
    from .. import backends

    lite_cache = str(cache_dir) if cache_dir else None
    if spec == "auto" or spec in backends.names():
        return RerankerConfig(backend=spec, family=family, lite_cache_dir=lite_cache)
    model, _, adapter = spec.partition(":")
    return RerankerConfig(backend="lychee", model=model, family=family, adapter=adapter or None)


@app.command("eval")
def eval_command(
    file: Path = typer.Argument(..., help="Labelled queries (JSONL; see lychee_rerank.jobs.eval)."),
    images: Path = typer.Option(..., "--images", help="Gallery directory the labels refer to."),
    backend: Optional[str] = typer.Option(
        None, "--backend", help="auto, lychee or lite [default: auto]; one system (use --system for several)."
    ),
    model: Optional[str] = typer.Option(None, "--model", "-m", envvar="LYCHEE_MODEL", help="Model for --backend lychee/auto."),
    family: Optional[str] = family_option(),
    system: list[str] = typer.Option(
        None, "--system", "-s",
        help="What to evaluate, repeatable for a side-by-side table: lite, auto, MODEL or MODEL:ADAPTER.",
    ),
    k: int = typer.Option(5, "--k", min=1, help="Cut-off for nDCG@k and Recall@k."),
    pr_curve: Path = typer.Option(Path("eval-pr.png"), "--pr-curve", help="PNG of the precision-recall curve."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Lite backend analysis cache [$LYCHEE_CACHE_DIR]."),
    per_query: bool = typer.Option(False, "--per-query", help="Also print each query's top documents."),
    split: Optional[str] = typer.Option(
        None, "--split", help="Only the queries whose 'split' field is this (e.g. heldout: report the held-out half alone)."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """nDCG@k, MRR, MAP, Recall@k per query set and overall; PR curve and score thresholds."""
    from ..extras import require

    require("eval", "lychee eval")
    from ..jobs import eval as ev
    from ..jobs.thresholds import write_pr_curve

    if system and (backend or model):
        raise typer.BadParameter("give --system (repeatable) or --backend/--model, not both")
    if system:
        configs = [(spec, system_config(spec, cache_dir, family)) for spec in system]
    else:
        name = backend or "auto"
        lite_cache = str(cache_dir) if cache_dir else None
        configs = [(name, RerankerConfig(backend=name, model=model, family=family, lite_cache_dir=lite_cache))]
    queries = {row["id"]: row for row in ev.load_queries(file)}
    rows: list[dict[str, Any]] = []
    thresholds: dict[str, list[Any]] = {}
    for i, (spec, config) in enumerate(configs):
        report = ev.evaluate(load_reranker(config), file, images, split=split)
        if per_query and not as_json:
            say(ev.format_report(report))
        set_rows, scores, labels = ev.metric_rows(report, queries, k)
        rows.extend({"system": spec, **row} for row in set_rows)
        png = pr_curve if len(configs) == 1 else pr_curve.with_name(f"{pr_curve.stem}-{i + 1}{pr_curve.suffix}")
        thresholds[spec] = write_pr_curve(png, scores, labels)
        say(f"{spec}: precision-recall curve written to {png}", "dim")
    if as_json:
        typer.echo(json.dumps({"metrics": rows, "thresholds": {s: [vars(r) for r in t] for s, t in thresholds.items()}},
                              ensure_ascii=False, indent=2, default=str))
        return
    print_eval_tables(rows, thresholds)


def print_eval_tables(rows: list[dict[str, Any]], thresholds: dict[str, list[Any]]) -> None:
    """The metrics side by side, then each system's score-threshold choices."""
    table = Table(title="Ranking quality", show_edge=False)
    for col in rows[0]:
        table.add_column(col, justify="left" if col in ("system", "set") else "right")
    for row in rows:
        table.add_row(*(cell(f"{v:.3f}" if isinstance(v, float) else v) for v in row.values()))
    out = Console(width=140)
    out.print(table)
    for spec, trs in thresholds.items():
        t = Table(title=cell(f"score_threshold choices ({spec})"), show_edge=False)
        for col in ("name", "rule", "threshold", "precision", "recall", "F1", "kept", "note"):
            t.add_column(col)
        for r in trs:
            fmt = lambda v: "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))  # noqa: E731
            t.add_row(*map(cell, (r.name, r.rule, fmt(r.threshold), fmt(r.precision), fmt(r.recall), fmt(r.f1), fmt(r.kept), r.note)))
        out.print(t)


@app.command()
def batch(
    input_path: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSONL or Parquet: {query_id, query, candidates} or {query_id, query, candidate}."),
    output_path: Path = typer.Argument(..., dir_okay=False, help="JSONL (one line per query) or .parquet; rerunning resumes it."),
    local: bool = typer.Option(False, "--local", help="Score in this process, without Ray (same code path)."),
    backend: str = typer.Option("auto", "--backend", help="auto (model if configured, else lite), lychee or lite."),
    model: Optional[str] = typer.Option(None, "--model", "-m", envvar="LYCHEE_MODEL", help="Hub id or local directory."),
    family: Optional[str] = family_option(),
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
    from ..extras import require

    if not local or any(p.suffix == ".parquet" for p in (input_path, output_path)):
        require("scale", "lychee batch without --local (Ray Data) or with Parquet files")
    from ..jobs.batch import ScoreOptions, run_batch, stderr_progress

    # Resolved here, once: every worker builds the same backend and none scans the hub cache.
    spec = resolve_backend(RerankerConfig(backend=backend, model=model, family=family, adapter=adapter, device=device, dtype=dtype))
    _quiet_libraries()
    try:
        summary = run_batch(
            input_path, output_path, spec, ScoreOptions(instruction=instruction, batch_size=batch_size), local=local,
            concurrency=concurrency, num_gpus_per_actor=num_gpus_per_actor, num_cpus_per_actor=num_cpus_per_actor,
            queries_per_batch=queries_per_batch, ray_address=address, progress=stderr_progress,
        )
    except (OSError, ValueError, ImportError) as exc:
        fail(exc)
        raise typer.Exit(1)
    if summary.errors:
        say(f"{summary.errors} error(s) written to {output_path} (records with an 'error' field)", "yellow")
