"""``lychee finetune``: train a LoRA adapter with the exact inference prompt."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from .app import _quiet_libraries, app, err, fail, family_option, say


@app.command()
def finetune(
    model: Optional[str] = typer.Option(None, "--model", "-m", envvar="LYCHEE_MODEL", help="Base model: hub id or local directory."),
    family: Optional[str] = family_option(),
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
    from ..extras import require

    require("train", "lychee finetune")
    from ..training.finetune import finetune as run_finetune

    if not model:
        fail("no base model: pass --model PATH_OR_HUB_ID or set LYCHEE_MODEL")
        raise typer.Exit(2)
    _quiet_libraries()
    try:
        report = run_finetune(
            model, train, eval_file, output_dir=output, max_steps=max_steps, epochs=epochs, lr=lr,
            batch_size=batch_size, grad_accum=grad_accum, lora_r=lora_r, lora_alpha=lora_alpha,
            lora_dropout=lora_dropout, train_vision=train_vision, hard_negatives=hard_negatives, seed=seed,
            resume=resume, eval_split=eval_split, save_every=save_every, instruction=instruction,
            device=device, dtype=dtype, family=family, progress=True,
        )
    except (OSError, ValueError) as exc:
        fail(exc)
        raise typer.Exit(1)
    if report.resumed_from_step is not None:
        err.print(f"[dim]resumed from step {report.resumed_from_step}[/]")
    if report.bad_records:
        say(f"{len(report.bad_records)} bad record(s) skipped (file:line and reason in {output / 'finetune_report.json'})",
            "yellow")
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
    family_flag = f" --family {family}" if family else ""
    say(f"use it: lychee rerank --model {model}{family_flag} --adapter {output} QUERY DOCS...", "dim")
