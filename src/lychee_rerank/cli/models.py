"""``lychee models`` (alias ``lychee families``): the checkpoint families the model backend scores.

Reads only the family registry's metadata (:mod:`lychee_rerank.backends.families`), so it
answers at once and imports no torch or transformers.
"""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from .app import app, cell


def models(as_json: bool = typer.Option(False, "--json", help="Print a JSON list, one object per family.")) -> None:
    """List the checkpoint families (name, title, licence, modalities, fine-tuning, status, checkpoints); pick one with --family."""
    from ..backends import families

    specs = list(families.FAMILIES.values())
    if as_json:
        typer.echo(json.dumps([spec.as_dict() for spec in specs], ensure_ascii=False, indent=2))
        return
    table = Table(show_edge=False, show_lines=True)
    for col in ("family", "title", "licence", "modalities", "fine-tuning", "status", "checkpoints"):
        table.add_column(col, no_wrap=col in ("family", "licence", "checkpoints"), overflow="fold")  # names stay whole
    for spec in specs:
        row = (spec.name, spec.title, spec.licence, ", ".join(spec.modalities), spec.fine_tuning, spec.status,
               "\n".join(spec.checkpoints))
        table.add_row(*map(cell, row))
    Console().print(table)


app.command("models")(models)
app.command("families", help="Alias of `lychee models`.")(models)
