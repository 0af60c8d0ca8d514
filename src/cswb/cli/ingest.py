"""``cswb ingest``: files into the analytic store through a built-in or custom mapping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from cswb.api.reader import prepare_rollups
from cswb.cli.common import console, err_console, settings_of, store_of
from cswb.errors import MappingError
from cswb.ingest.mapping import Mapping, builtin_mapping, load_mapping, with_linkage
from cswb.ingest.pipeline import BatchSummary, ingest_file
from cswb.ingest.progress import SilentProgress


class RichProgress:
    """Shows each phase of an ingest as a bar on standard error."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def phase(self, name: str) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=100)
        self.task = self.progress.add_task(name, total=100)

    def advance(self, fraction: float) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=round(fraction * 100, 1))


def resolve_mapping(source: str | None, mapping: Path | None) -> Mapping:
    """The mapping named by ``--source`` or read from ``--mapping`` (exactly one)."""
    if (source is None) == (mapping is None):
        raise MappingError("give either --source NAME (a built-in mapping) or --mapping FILE")
    return builtin_mapping(source) if source else load_mapping(mapping)  # type: ignore[arg-type]


def summary_table(summary: BatchSummary) -> Table:
    """A batch's reconciled counts, reasons and problems as a Rich table."""
    table = Table(title=f"{summary.source}: {summary.file_name} (batch {summary.batch_id})",
                  show_header=True)
    table.add_column("rows")
    table.add_column("count", justify="right")
    for label, value in (("read", summary.rows_read), ("stored (new)", summary.inserted),
                         ("stored (updated)", summary.updated),
                         ("already stored, unchanged", summary.unchanged),
                         ("duplicates in this file", summary.duplicate),
                         ("quarantined", summary.quarantined),
                         ("stored with quality flags", summary.flagged)):
        table.add_row(label, f"{value:,}")
    if summary.linked:
        table.add_row("identifying values linked (linkage zone)", f"{summary.linked:,}")
    for reason, count in sorted(summary.reasons.items(), key=lambda kv: -kv[1]):
        table.add_row(f"  quarantined: {reason}", f"{count:,}")
    for problem, count in sorted(summary.problems.items(), key=lambda kv: -kv[1])[:12]:
        table.add_row(f"  flag: {problem}", f"{count:,}")
    status = "reconciles" if summary.reconciles else "DOES NOT RECONCILE"
    table.caption = f"{status}; {summary.seconds:.1f} s"
    return table


def ingest(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Files to ingest, one batch each.")],
    source: Annotated[str | None, typer.Option(help="Name of a built-in mapping.")] = None,
    mapping: Annotated[Path | None, typer.Option(help="A mapping YAML file.",
                                                 dir_okay=False)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or table.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print summaries as JSON.")] = False,
    link: Annotated[list[str] | None, typer.Option(
        "--link", help="An identifying column the mapping drops, to send to the linkage zone "
        "instead (encrypted; needs field_keys and search_key). Repeatable.")] = None,
) -> None:
    """Ingest files into the analytic store: every row stored, flagged or quarantined."""
    settings = settings_of(ctx)
    store = store_of(ctx)
    chosen = with_linkage(resolve_mapping(source, mapping), link or [])
    summaries = []
    for path in paths:
        if quiet or as_json:
            summary = ingest_file(path, chosen, store, settings, SilentProgress())
        else:
            with Progress(TextColumn("{task.description}"), BarColumn(),
                          TextColumn("{task.percentage:>5.1f}%"), TimeElapsedColumn(),
                          console=err_console, transient=True) as bar:
                summary = ingest_file(path, chosen, store, settings, RichProgress(bar))
        summaries.append(summary)
        if not quiet and not as_json:
            console.print(summary_table(summary))
    if summaries:
        prepare_rollups(store)
    if as_json:
        typer.echo(json.dumps([s.to_dict() for s in summaries], indent=2))


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
