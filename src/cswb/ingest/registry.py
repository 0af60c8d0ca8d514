"""The source registry: where calls for service can come from.

Two kinds of sources are known:

* **built-in mappings** shipped with cswb (``cswb/ingest/mappings/*.yaml``), each ready to ingest
  a file or a portal download of one source;
* **catalogue entries**: rows of the OpenPoliceData source table (``opd_source_table.csv``), one
  per published table of one agency, saying which portal technology publishes it (Socrata,
  ArcGIS, CKAN, a CSV or Excel file...), its URL, dataset id and date field.

A catalogue entry says which portal adapter can fetch it (:attr:`CatalogueEntry.adapter`):
Socrata and ArcGIS entries can be downloaded with ``cswb sources fetch``; CKAN, CSV and Excel
entries are known but not yet supported; other technologies are not planned.

The catalogue is read, never copied into the repository: its path comes from the settings
(``catalogue_path``) or the command line.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path

from cswb.errors import ConfigError, NotFoundError, SourceFileError
from cswb.ingest.mapping import builtin_mapping, builtin_names
from cswb.settings import Settings

REQUIRED_COLUMNS: tuple[str, ...] = (
    "State", "SourceName", "Agency", "AgencyFull", "TableType", "coverage_start",
    "coverage_end", "Year", "source_table_id", "Description", "source_url", "URL", "DataType",
    "date_field", "dataset_id", "agency_field", "query",
)
"""Columns of the OpenPoliceData source table that the registry reads."""

CALLS_FOR_SERVICE = "CALLS FOR SERVICE"

ENTRY_MAPPINGS: dict[str, str] = {
    "ost_bbc74c931ad806be": "mesa_socrata",
    "ost_2c754ff4133530b4": "gilbert_arcgis",
}
"""Catalogue entries (``source_table_id``) that a built-in mapping ingests once downloaded.

Kept here because a mapping file has no field naming its catalogue entry."""


class PortalType(StrEnum):
    """The technology a catalogue entry is published with (the catalogue's ``DataType``)."""

    SOCRATA = "Socrata"
    ARCGIS = "ArcGIS"
    CKAN = "CKAN"
    CSV = "CSV"
    EXCEL = "Excel"
    HTML = "HTML"
    CARTO = "Carto"
    OPENDATASOFT = "Opendatasoft"
    OTHER = "other"

    @classmethod
    def parse(cls, text: str) -> PortalType:
        """The portal type named by ``text`` (case-insensitive); unknown names are ``OTHER``."""
        wanted = text.strip().lower()
        for member in cls:
            if member.value.lower() == wanted:
                return member
        return cls.OTHER


class Support(StrEnum):
    """Whether cswb can fetch an entry's data from its portal."""

    SUPPORTED = "supported"
    NOT_YET = "not yet supported"
    NOT_PLANNED = "not supported"


ADAPTERS: dict[PortalType, str] = {PortalType.SOCRATA: "socrata", PortalType.ARCGIS: "arcgis"}
"""Portal types with an adapter in :mod:`cswb.ingest.portals`, and the adapter's name."""

PLANNED: frozenset[PortalType] = frozenset({PortalType.CKAN, PortalType.CSV, PortalType.EXCEL})
"""Portal types an adapter is planned for (named as not yet supported)."""


@dataclass(frozen=True)
class CatalogueEntry:
    """One published table of one agency, as the catalogue describes it."""

    source_table_id: str
    state: str
    source_name: str
    agency: str
    agency_full: str
    table_type: str
    portal: PortalType
    url: str
    year: int | None = None
    """The single year the table covers; None when it covers several (``MULTIPLE``) or none."""
    year_label: str = ""
    coverage_start: date | None = None
    coverage_end: date | None = None
    description: str = ""
    source_url: str = ""
    dataset_id: str | None = None
    date_field: str | None = None
    agency_field: str | None = None
    query: dict[str, str] = field(default_factory=dict)
    """Equality filters the table needs (the catalogue's ``query``), column to value."""
    portal_label: str = ""

    @property
    def adapter(self) -> str | None:
        """Name of the portal adapter that can fetch this entry, if any."""
        return ADAPTERS.get(self.portal)

    @property
    def support(self) -> Support:
        if self.adapter:
            return Support.SUPPORTED
        return Support.NOT_YET if self.portal in PLANNED else Support.NOT_PLANNED

    @property
    def mapping(self) -> str | None:
        """The built-in mapping that ingests this entry's download, if there is one."""
        return ENTRY_MAPPINGS.get(self.source_table_id)

    @property
    def coverage(self) -> str:
        """The covered period as text (``2017-01-01 to 2020-12-31``), or ``''``."""
        start = self.coverage_start.isoformat() if self.coverage_start else "?"
        end = self.coverage_end.isoformat() if self.coverage_end else "?"
        return "" if start == end == "?" else f"{start} to {end}"

    @property
    def years(self) -> str:
        """The years covered, short: ``2019``, ``2017-2020``, else the catalogue's label."""
        if self.year is not None:
            return str(self.year)
        if self.coverage_start and self.coverage_end:
            first, last = self.coverage_start.year, self.coverage_end.year
            return str(first) if first == last else f"{first}-{last}"
        return self.year_label

    def covers_year(self, year: int) -> bool:
        """Whether the entry holds records of ``year`` (its own year, else its coverage)."""
        if self.year is not None:
            return self.year == year
        if self.coverage_start is None and self.coverage_end is None:
            return False
        first = self.coverage_start.year if self.coverage_start else year
        last = self.coverage_end.year if self.coverage_end else year
        return first <= year <= last

    def matches(self, text: str) -> bool:
        """Whether ``text`` occurs (case-insensitive) in the source, agency or its full name."""
        needle = text.strip().lower()
        return any(needle in v.lower() for v in (self.source_name, self.agency, self.agency_full))


@dataclass(frozen=True)
class BuiltinSource:
    """A mapping shipped with cswb."""

    name: str
    title: str
    agency: str
    time_zone: str
    file_format: str
    source_table_id: str | None = None


@dataclass(frozen=True)
class Catalogue:
    """The entries of one catalogue file."""

    path: Path
    entries: tuple[CatalogueEntry, ...]

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[CatalogueEntry]:
        return iter(self.entries)

    def filter(self, *, table_type: str | None = None, state: str | None = None,
               search: str | None = None, portal: str | PortalType | None = None,
               year: int | None = None) -> list[CatalogueEntry]:
        """Entries matching every criterion given (text criteria are case-insensitive)."""
        wanted = EntryFilter(table_type, state, search, _portal(portal), year)
        return [e for e in self.entries if wanted.keeps(e)]

    def get(self, source_table_id: str) -> CatalogueEntry:
        """The entry with this ``source_table_id``."""
        wanted = source_table_id.strip()
        for entry in self.entries:
            if entry.source_table_id == wanted:
                return entry
        raise NotFoundError(
            f"no catalogue entry {source_table_id!r} in {self.path.name}; list them with "
            "`cswb sources list`"
        )


@dataclass(frozen=True)
class EntryFilter:
    """Criteria on catalogue entries; None means any."""

    table_type: str | None = None
    state: str | None = None
    search: str | None = None
    portal: PortalType | None = None
    year: int | None = None

    def keeps(self, entry: CatalogueEntry) -> bool:
        """Whether ``entry`` meets every criterion."""
        return all((
            self.table_type is None or _same(entry.table_type, self.table_type),
            self.state is None or _same(entry.state, self.state),
            self.search is None or entry.matches(self.search),
            self.portal is None or entry.portal is self.portal,
            self.year is None or entry.covers_year(self.year),
        ))


def _same(a: str, b: str) -> bool:
    return a.strip().lower() == b.strip().lower()


def _portal(portal: str | PortalType | None) -> PortalType | None:
    if portal is None or isinstance(portal, PortalType):
        return portal
    parsed = PortalType.parse(portal)
    if parsed is PortalType.OTHER:
        known = ", ".join(p.value for p in PortalType if p is not PortalType.OTHER)
        raise NotFoundError(f"unknown portal type {portal!r}; known: {known}")
    return parsed


def read_catalogue(path: str | Path) -> Catalogue:
    """Read an OpenPoliceData source table; clear errors for a missing or unusable file."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            _check_columns(path, reader.fieldnames)
            rows = list(reader)
    except FileNotFoundError:
        raise SourceFileError(f"catalogue file {path} does not exist") from None
    except IsADirectoryError:
        raise SourceFileError(f"catalogue {path} is a folder, not a CSV file") from None
    except UnicodeDecodeError:
        raise SourceFileError(f"catalogue file {path} is not UTF-8 text") from None
    except (OSError, csv.Error) as exc:
        raise SourceFileError(f"catalogue file {path} cannot be read: {exc}") from None
    entries = tuple(_entry(row) for row in rows if (row.get("source_table_id") or "").strip())
    if not entries:
        raise SourceFileError(f"catalogue file {path} holds no entries")
    return Catalogue(path, entries)


def _check_columns(path: Path, header: Iterable[str] | None) -> None:
    present = {h.strip() for h in header or ()}
    missing = [c for c in REQUIRED_COLUMNS if c not in present]
    if missing:
        raise SourceFileError(
            f"catalogue file {path} lacks the columns {', '.join(missing)}; is it the "
            "OpenPoliceData source table (opd_source_table.csv)?"
        )


def _entry(row: dict[str, str | None]) -> CatalogueEntry:
    def text(column: str) -> str:
        return (row.get(column) or "").strip()

    year_label = text("Year")
    return CatalogueEntry(
        source_table_id=text("source_table_id"), state=text("State"),
        source_name=text("SourceName"), agency=text("Agency"), agency_full=text("AgencyFull"),
        table_type=text("TableType"), portal=PortalType.parse(text("DataType")),
        portal_label=text("DataType"), url=text("URL"),
        year=int(year_label) if year_label.isdigit() else None, year_label=year_label,
        coverage_start=parse_date(text("coverage_start")),
        coverage_end=parse_date(text("coverage_end")), description=text("Description"),
        source_url=text("source_url"), dataset_id=text("dataset_id") or None,
        date_field=text("date_field") or None, agency_field=text("agency_field") or None,
        query=parse_query(text("query")),
    )


def parse_date(text: str) -> date | None:
    """A catalogue date (``MM/DD/YYYY``, or ISO ``YYYY-MM-DD``); None when empty or invalid."""
    for fmt in ("%m/%d/%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
    return None


_SMART_QUOTES = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'"})


def parse_query(text: str) -> dict[str, str]:
    """The catalogue's ``query`` (a JSON object, often typed with curly quotes) as a dict.

    Anything that is not an object of scalar values gives an empty dict: a filter cswb cannot
    read is better shown to the user (``cswb sources list``) than half applied.
    """
    if not text.strip():
        return {}
    try:
        value = json.loads(text.translate(_SMART_QUOTES))
    except json.JSONDecodeError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items() if isinstance(v, str | int | float)}


def builtin_sources() -> list[BuiltinSource]:
    """The mappings shipped with cswb, with their title and agency."""
    by_mapping = {name: sid for sid, name in ENTRY_MAPPINGS.items()}
    sources = []
    for name in builtin_names():
        mapping = builtin_mapping(name)
        sources.append(BuiltinSource(name, mapping.title, mapping.agency, mapping.time_zone,
                                     mapping.file.format, by_mapping.get(name)))
    return sources


def catalogue_path(settings: Settings, override: Path | None = None) -> Path:
    """The catalogue to read: ``override``, else the ``catalogue_path`` setting."""
    path = override or settings.catalogue_path
    if path is None:
        raise ConfigError(
            "no source catalogue: pass --catalogue FILE or set CSWB_CATALOGUE_PATH "
            "(the OpenPoliceData opd_source_table.csv)"
        )
    return path
