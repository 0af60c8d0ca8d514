"""``cswb synth``: the synthetic city's demo data and CAD exports of any size."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from cswb.cli.common import console, err_console
from cswb.synth.city import DEFAULT_LAST_YEAR, build_city
from cswb.synth.demo import DEMO_CALLS_PER_YEAR, write_demo_city
from cswb.synth.export import ExportResult, write_export

synth_app = typer.Typer(help="The synthetic city: demo data and benchmark CAD exports.",
                        no_args_is_help=True)

Seed = Annotated[int, typer.Option(help="Random seed: the same seed writes the same bytes.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")]
LastYear = Annotated[int, typer.Option(help="Last calendar year of calls.")]


@contextmanager
def calls_progress(description: str, quiet: bool) -> Iterator[Callable[[int, int], None]]:
    """A callback ``(calls done, total)`` drawing a Rich bar on standard error."""
    if quiet:
        yield lambda done, total: None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=err_console,
                  transient=True) as bar:
        task = bar.add_task(description, total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield advance


def export_table(result: ExportResult) -> Table:
    """Rows, faults and the counts an ingest must report, as a Rich table."""
    table = Table(title=f"{result.csv_path}", show_header=True)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("calls", f"{result.calls:,}")
    table.add_row("rows written", f"{result.rows:,}")
    expected = result.expected
    for label, value in (("ingest: stored", expected.inserted),
                         ("ingest: duplicates", expected.duplicate),
                         ("ingest: quarantined", expected.quarantined),
                         ("ingest: stored with quality flags", expected.flagged)):
        table.add_row(label, f"{value:,}")
    table.caption = f"faults and expected counts in {result.faults_path.name}"
    return table


@synth_app.command("city")
def city_command(
    *,
    out: Annotated[Path, typer.Option(help="Folder to write the demo city into.",
                                      file_okay=False)],
    seed: Seed = 7,
    years: Annotated[int, typer.Option(min=1, max=30, help="Calendar years of calls.")] = 3,
    calls_per_year: Annotated[int, typer.Option(min=0, help="Calls per year.")] =
        DEMO_CALLS_PER_YEAR,
    last_year: LastYear = DEFAULT_LAST_YEAR,
    quiet: Quiet = False,
) -> None:
    """Write the demo city: CAD export, fault sidecar, neighbourhoods and truth."""
    with calls_progress("writing the demo city", quiet) as progress:
        demo = write_demo_city(out, seed=seed, years=years, calls_per_year=calls_per_year,
                               last_year=last_year, progress=progress)
    if quiet:
        return
    console.print(f"{demo.name}: {demo.calls:,} calls in {demo.export_csv} "
                  f"(ingest with --source {demo.mapping_name})")
    for label, path in (("faults", demo.faults_json),
                        ("neighbourhoods", demo.neighbourhoods_geojson),
                        ("populations", demo.neighbourhoods_csv),
                        ("truth", demo.truth_parquet), ("city", demo.city_json)):
        console.print(f"  {label}: {path}")


@synth_app.command("export")
def export_command(
    *,
    calls: Annotated[int, typer.Option(min=0, help="Number of calls to write.")],
    out: Annotated[Path, typer.Option(help="CSV file to write.", dir_okay=False)],
    seed: Seed = 7,
    years: Annotated[int, typer.Option(min=1, max=30, help="Calendar years of calls.")] = 4,
    last_year: LastYear = DEFAULT_LAST_YEAR,
    faults: Annotated[float, typer.Option(min=0.0, max=0.5,
                                          help="Share of faulty rows.")] = 0.01,
    truth: Annotated[Path | None, typer.Option(help="Also write each call's truth (Parquet).",
                                               dir_okay=False)] = None,
    quiet: Quiet = False,
) -> None:
    """Write a native CAD export of the synthetic city (and OUT.faults.json beside it)."""
    with calls_progress("writing calls", quiet) as progress:
        result = write_export(build_city(seed), out, calls, years=years, last_year=last_year,
                              fault_rate=faults, truth_path=truth, progress=progress)
    if not quiet:
        console.print(export_table(result))


def register(app: typer.Typer) -> None:
    """Add ``cswb synth`` to the ``cswb`` app."""
    app.add_typer(synth_app, name="synth")
