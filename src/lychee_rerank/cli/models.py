"""``lychee models`` (alias ``lychee families``): the checkpoint families the model backend scores.

Reads only the family registry's metadata (:mod:`lychee_rerank.backends.families`), so it
answers at once and imports no torch or transformers.
"""

from __future__ import annotations

import json
from typing import Any

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
    console = Console()
    for spec in specs:  # one block per family: readable at any terminal width
        console.print(f"[bold]{cell(spec.name)}[/bold]  {cell(spec.title)}")
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(overflow="fold")
        for key, value in (
            ("licence", spec.licence), ("modalities", _modalities(spec)),
            ("fine-tuning", spec.fine_tuning), ("status", spec.status), ("checkpoints", "\n".join(spec.checkpoints)),
        ):
            grid.add_row(f"  {key}", cell(value))
        console.print(grid)
        console.print()


def _modalities(spec: Any) -> str:
    """``text, image``; or per side where the family has a per-side rule (``queries: text; documents: image``)."""
    if spec.query_modalities is None and spec.document_modalities is None:
        return ", ".join(spec.modalities)
    query, document = spec.side_modalities("query"), spec.side_modalities("document")
    return f"queries: {', '.join(query)}; documents: {', '.join(document)}"


app.command("models")(models)
app.command("families", help="Alias of `lychee models`.")(models)
