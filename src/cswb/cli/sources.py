"""``cswb sources``: the built-in mappings and the open-data catalogue; portal downloads."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from cswb.cli.common import console, err_console, settings_of
from cswb.ingest.portals import PortalClient, adapter_for, download, make_client
from cswb.ingest.portals.base import Checkpoint, DownloadResult
from cswb.ingest.registry import (
    CALLS_FOR_SERVICE,
    BuiltinSource,
    CatalogueEntry,
    Support,
    builtin_sources,
    catalogue_path,
    read_catalogue,
)

sources_app = typer.Typer(
    help="Where calls come from: built-in mappings, the open-data catalogue, portal downloads.",
    no_args_is_help=True,
)

CatalogueOption = Annotated[Path | None, typer.Option(
    "--catalogue", dir_okay=False,
    help="The OpenPoliceData source table (opd_source_table.csv); default: the "
         "catalogue_path setting.")]


class RichDownloadProgress:
    """Shows a download's records and pages as a bar on standard error."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def start(self, total: int | None, checkpoint: Checkpoint) -> None:
        self.task = self.progress.add_task(_page_label(checkpoint), total=total,
                                           completed=checkpoint.rows_written)

    def page(self, checkpoint: Checkpoint) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=checkpoint.rows_written,
                                 description=_page_label(checkpoint))


def _page_label(checkpoint: Checkpoint) -> str:
    return f"{checkpoint.adapter}: {checkpoint.pages} pages"


@sources_app.command("list")
def list_sources(
    ctx: typer.Context,
    *,
    catalogue: CatalogueOption = None,
    table_type: Annotated[str, typer.Option(
        "--table-type", help="Catalogue table type; 'all' for every type.")] = CALLS_FOR_SERVICE,
    state: Annotated[str | None, typer.Option(help="Only this state (e.g. Arizona).")] = None,
    portal: Annotated[str | None, typer.Option(
        help="Only this portal type: Socrata, ArcGIS, CKAN, CSV, Excel, HTML...")] = None,
    search: Annotated[str | None, typer.Option(
        help="Text in the source or agency name (also filters built-in mappings).")] = None,
    year: Annotated[int | None, typer.Option(help="Only entries holding this year.")] = None,
    limit: Annotated[int, typer.Option(help="Catalogue entries shown (0: all).")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Built-in mappings first, then the catalogue entries matching the filters."""
    builtins = [b for b in builtin_sources() if search is None or _builtin_matches(b, search)]
    settings = settings_of(ctx)
    entries: list[CatalogueEntry] = []
    wanted_type = None if table_type.strip().lower() == "all" else table_type
    have_catalogue = catalogue is not None or settings.catalogue_path is not None
    if not have_catalogue:
        err_console.print("No catalogue: pass --catalogue FILE or set CSWB_CATALOGUE_PATH to "
                          "list the open-data catalogue too.")
    else:
        chosen = read_catalogue(catalogue_path(settings, catalogue))
        entries = chosen.filter(table_type=wanted_type, state=state, search=search,
                                portal=portal, year=year)
    shown = entries if limit <= 0 else entries[:limit]
    if as_json:
        typer.echo(json.dumps({"builtin": [_builtin_json(b) for b in builtins],
                               "catalogue": [_entry_json(e) for e in shown],
                               "catalogue_matches": len(entries)}, indent=2))
        return
    console.print(_builtin_table(builtins))
    if have_catalogue:
        console.print(_entry_table(shown, len(entries), with_type=wanted_type is None))


def _builtin_matches(source: BuiltinSource, text: str) -> bool:
    needle = text.strip().lower()
    return any(needle in v.lower() for v in (source.name, source.title, source.agency))


def _builtin_table(builtins: list[BuiltinSource]) -> Table:
    table = Table(title="Built-in mappings (cswb ingest FILE --source NAME)")
    table.add_column("mapping", no_wrap=True)
    table.add_column("agency")
    table.add_column("title")
    table.add_column("catalogue entry", no_wrap=True)
    for b in builtins:
        table.add_row(b.name, b.agency, b.title, b.source_table_id or "")
    return table


_FETCH_LABEL = {Support.SUPPORTED: "yes", Support.NOT_YET: "not yet", Support.NOT_PLANNED: "no"}


def _entry_table(entries: list[CatalogueEntry], matches: int, with_type: bool) -> Table:
    table = Table(title=f"Catalogue entries ({len(entries)} of {matches} shown; "
                        "cswb sources fetch SOURCE_TABLE_ID)")
    table.add_column("source_table_id", no_wrap=True)
    table.add_column("state")
    table.add_column("source")
    if with_type:
        table.add_column("table type")
    for name in ("years", "portal", "fetch", "mapping"):
        table.add_column(name, no_wrap=True)
    for e in entries:
        cells = [e.source_table_id, e.state, e.source_name]
        if with_type:
            cells.append(e.table_type.lower())
        cells += [e.years, e.portal_label, _FETCH_LABEL[e.support], e.mapping or ""]
        table.add_row(*cells)
    return table


def _builtin_json(source: BuiltinSource) -> dict[str, str | None]:
    return {"name": source.name, "title": source.title, "agency": source.agency,
            "time_zone": source.time_zone, "file_format": source.file_format,
            "source_table_id": source.source_table_id}


def _entry_json(entry: CatalogueEntry) -> dict[str, object]:
    return {
        "source_table_id": entry.source_table_id, "state": entry.state,
        "source_name": entry.source_name, "agency": entry.agency_full,
        "table_type": entry.table_type, "year": entry.year, "year_label": entry.year_label,
        "coverage_start": _iso(entry.coverage_start), "coverage_end": _iso(entry.coverage_end),
        "portal": entry.portal_label, "adapter": entry.adapter, "support": entry.support.value,
        "url": entry.url, "dataset_id": entry.dataset_id, "date_field": entry.date_field,
        "query": entry.query, "mapping": entry.mapping,
    }


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


@sources_app.command("fetch")
def fetch(
    ctx: typer.Context,
    *,
    source_table_id: Annotated[str, typer.Argument(
        help="The catalogue entry to download (see `cswb sources list`).")],
    out: Annotated[Path | None, typer.Option(
        "--out", dir_okay=False,
        help="JSON-lines file to write; default: <data_dir>/downloads/<id>.jsonl.")] = None,
    catalogue: CatalogueOption = None,
    page_size: Annotated[int, typer.Option(min=1, help="Records asked for per request.")] = 1000,
    max_pages: Annotated[int | None, typer.Option(
        min=1, help="Stop after this many pages (run again to continue).")] = None,
    since: Annotated[datetime | None, typer.Option(
        formats=["%Y-%m-%d"], help="First date wanted (YYYY-MM-DD).")] = None,
    until: Annotated[datetime | None, typer.Option(
        formats=["%Y-%m-%d"], help="Last date wanted (YYYY-MM-DD), included.")] = None,
    restart: Annotated[bool, typer.Option(
        "--restart", help="Discard an earlier download into --out and start again.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
) -> None:
    """Download a catalogue entry's records from its portal, resumably, into JSON lines.

    --since and --until are dates (YYYY-MM-DD, both included) on the entry's date field.
    Interrupted, the same command resumes where the last page ended.
    """
    settings = settings_of(ctx)
    entry = read_catalogue(catalogue_path(settings, catalogue)).get(source_table_id)
    target = out or settings.downloads_dir / f"{entry.source_table_id}.jsonl"
    with make_client() as client:
        adapter = adapter_for(entry, PortalClient(client), since=since.date() if since else None,
                              until=until.date() if until else None)
        if quiet:
            result = download(adapter, target, page_size=page_size, max_pages=max_pages,
                              restart=restart)
        else:
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=err_console, transient=True) as bar:
                result = download(adapter, target, page_size=page_size, max_pages=max_pages,
                                  restart=restart, count_total=True,
                                  progress=RichDownloadProgress(bar))
    if not quiet:
        typer.echo(fetch_report(result, entry))  # plain text: paths and commands unwrapped


def fetch_report(result: DownloadResult, entry: CatalogueEntry) -> str:
    """What a download run did and what to do next, in a few lines."""
    done = result.checkpoint
    if result.already_complete:
        lines = [f"{result.path} is already complete ({done.rows_written:,} records); "
                 "use --restart to download it again."]
    else:
        start = (f", resuming at record {result.resumed_from:,}"
                 if result.resumed_from is not None else "")
        lines = [f"Fetched {result.rows_this_run:,} records in {result.pages_this_run:,} pages"
                 f"{start}; {result.path} holds {done.rows_written:,} records."]
        if result.truncated_bytes:
            lines.append(f"Removed {result.truncated_bytes:,} bytes of an interrupted page first.")
    if not done.finished:
        lines.append("Not finished: run the same command again to continue.")
    elif entry.mapping:
        lines.append(f"Next: cswb ingest {result.path} --source {entry.mapping}")
    else:
        lines.append(f"Next: write a mapping (docs/mappings.md), then cswb ingest {result.path} "
                     "--mapping MAPPING.yaml")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Add ``cswb sources`` to the ``cswb`` app."""
    app.add_typer(sources_app, name="sources")
