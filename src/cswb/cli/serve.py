"""``cswb serve`` (the web pages and the REST API) and ``cswb demo`` (a synthetic city, loaded).

``cswb demo`` writes the synthetic demo city into ``<data_dir>/demo/``, ingests its CAD export
with its built-in mapping, prints what was loaded and serves it. A marker file there remembers
which seed, years and file were loaded, so running it again only serves (``--fresh`` rebuilds).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Protocol

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from cswb.api.loaded import list_sources
from cswb.cli.common import console, err_console, settings_of, store_of
from cswb.cli.ingest import RichProgress, summary_table
from cswb.errors import CswbError
from cswb.ingest.mapping import builtin_mapping
from cswb.ingest.pipeline import BatchSummary, ingest_file
from cswb.settings import Settings
from cswb.storage import AnalyticStore
from cswb.storage.sql import scalar

DEMO_MARKER = "cswb-demo.json"


class DemoCity(Protocol):
    """What :func:`cswb.synth.write_demo_city` returns (the parts ``cswb demo`` uses)."""

    @property
    def export_csv(self) -> Path: ...

    @property
    def mapping_name(self) -> str: ...


CityWriter = Callable[..., DemoCity]


@dataclass(frozen=True)
class DemoLoad:
    """What ``cswb demo`` did: the export it loaded, and the batch (None when reused)."""

    export_csv: Path
    mapping_name: str
    batch: BatchSummary | None

    @property
    def reused(self) -> bool:
        return self.batch is None


HostOption = Annotated[str | None, typer.Option(
    help="Address to listen on (default: settings.host).")]
PortOption = Annotated[int | None, typer.Option(
    min=1, max=65535, help="Port (default: settings.port).")]


def serve(
    ctx: typer.Context,
    *,
    host: HostOption = None,
    port: PortOption = None,
) -> None:
    """Serve the web pages and the REST API (/api/v1) over the analytic store."""
    settings = settings_of(ctx)
    run_server(settings, host or settings.host, port or settings.port)


def demo(
    ctx: typer.Context,
    *,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic city.")] = 7,
    years: Annotated[int, typer.Option(min=1, max=20, help="Years of calls to generate.")] = 3,
    fresh: Annotated[bool, typer.Option("--fresh", help="Rebuild and ingest the city again "
                                        "even if the store already holds it.")] = False,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Load only; do not serve.")
                        ] = False,
    host: HostOption = None,
    port: PortOption = None,
) -> None:
    """Build the synthetic demo city, load it into the store and serve it."""
    settings = settings_of(ctx)
    store = store_of(ctx)
    result = prepare_demo(settings, store, seed=seed, years=years, fresh=fresh)
    print_demo_summary(result, store)
    settings = with_demo_areas(settings)
    if no_serve:
        console.print("Serve it with [bold]cswb serve[/bold] and open "
                      f"{server_url(host or settings.host, port or settings.port)}")
        return
    run_server(settings, host or settings.host, port or settings.port)


def prepare_demo(settings: Settings, store: AnalyticStore, *, seed: int, years: int,
                 fresh: bool = False, writer: CityWriter | None = None) -> DemoLoad:
    """Write and ingest the demo city unless the store already holds this very export."""
    directory = settings.data_dir / "demo"
    marker = _read_marker(directory)
    if not fresh and _already_loaded(store, marker, seed, years):
        return DemoLoad(Path(marker["export_csv"]), marker["mapping_name"], None)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / DEMO_MARKER).unlink(missing_ok=True)
    with err_console.status(f"Building the demo city ({years} years, seed {seed})..."):
        city = (writer or city_writer())(directory, seed=seed, years=years)
    mapping = builtin_mapping(city.mapping_name)
    with Progress(TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.percentage:>5.1f}%"), TimeElapsedColumn(),
                  console=err_console, transient=True) as bar:
        summary = ingest_file(Path(city.export_csv), mapping, store, settings, RichProgress(bar))
    _write_marker(directory, {"seed": seed, "years": years, "export_csv": str(city.export_csv),
                              "mapping_name": city.mapping_name, "batch_id": summary.batch_id,
                              "file_sha256": summary.file_sha256})
    return DemoLoad(Path(city.export_csv), city.mapping_name, summary)


def with_demo_areas(settings: Settings) -> Settings:
    """The settings with the demo city's boundaries and populations, unless already set."""
    directory = settings.data_dir / "demo"
    found = {"area_boundaries": directory / "neighbourhoods.geojson",
             "populations_path": directory / "neighbourhoods.csv"}
    update = {k: p for k, p in found.items() if getattr(settings, k) is None and p.is_file()}
    return settings.model_copy(update=update) if update else settings


def city_writer() -> CityWriter:
    """:func:`cswb.synth.write_demo_city`, imported when needed."""
    try:
        writer: CityWriter = importlib.import_module("cswb.synth").write_demo_city
    except (ImportError, AttributeError) as exc:
        raise CswbError(f"the synthetic demo city is not available: {exc}") from None
    return writer


def _read_marker(directory: Path) -> dict[str, Any]:
    try:
        data = json.loads((directory / DEMO_MARKER).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_marker(directory: Path, data: dict[str, Any]) -> None:
    (directory / DEMO_MARKER).write_text(json.dumps(data, indent=1), encoding="utf-8")


def _already_loaded(store: AnalyticStore, marker: dict[str, Any], seed: int, years: int) -> bool:
    """The marker is for this seed and length, and the store holds its batch."""
    if marker.get("seed") != seed or marker.get("years") != years:
        return False
    if not {"export_csv", "mapping_name", "file_sha256"} <= marker.keys():
        return False
    con = store.connect()
    try:
        held = scalar(con, "SELECT count(*) FROM batches WHERE source = ? AND file_sha256 = ?",
                      [marker["mapping_name"], marker["file_sha256"]])
    finally:
        con.close()
    return bool(held)


def print_demo_summary(result: DemoLoad, store: AnalyticStore) -> None:
    """The batch just loaded (or that it was already there) and what the store holds."""
    if result.batch is not None:
        console.print(summary_table(result.batch))
    else:
        console.print(f"The store already holds the demo city ({result.export_csv.name}); "
                      "use --fresh to build and load it again.")
    con = store.connect()
    try:
        sources = list_sources(con)
    finally:
        con.close()
    console.print("[bold]What the store holds[/bold]")
    for s in sources:
        console.print(f"  {s.source}: {s.calls:,} calls from {s.first_date or '-'} to "
                      f"{s.last_date or '-'}; {s.quarantined:,} rows quarantined, "
                      f"{s.flagged:,} calls flagged; {s.batches:,} batch(es)")


def server_url(host: str, port: int) -> str:
    """The address a browser opens for ``host``:``port``."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def run_server(settings: Settings, host: str, port: int) -> None:
    """Serve the app in the foreground until interrupted."""
    import uvicorn

    from cswb.api import create_app

    app = create_app(settings)
    url = server_url(host, port)
    console.print(f"cswb is serving on [bold]{url}[/bold] (API docs: {url}api/v1/docs); "
                  "press Ctrl+C to stop.")
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower(),
                access_log=False, server_header=False)


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``demo`` to the ``cswb`` app."""
    app.command("serve")(serve)
    app.command("demo")(demo)
