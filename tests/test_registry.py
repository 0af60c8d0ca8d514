"""The source registry: the OpenPoliceData catalogue, its filters, and the built-in mappings."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from cswb.cli.main import app
from cswb.errors import ConfigError, NotFoundError, PortalError, SourceFileError
from cswb.ingest.portals import PortalClient, adapter_for, make_client
from cswb.ingest.registry import (
    CALLS_FOR_SERVICE,
    REQUIRED_COLUMNS,
    Catalogue,
    PortalType,
    Support,
    builtin_sources,
    catalogue_path,
    parse_date,
    parse_query,
    read_catalogue,
)
from cswb.settings import Settings

MESA_ID = "ost_bbc74c931ad806be"
GILBERT_ID = "ost_2c754ff4133530b4"


@pytest.fixture(scope="module")
def opd(shared_data: Path) -> Catalogue:
    return read_catalogue(shared_data / "sources" / "opd_source_table.csv")


def write_catalogue(path: Path, rows: list[dict[str, str]],
                    columns: tuple[str, ...] = REQUIRED_COLUMNS) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns))
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
    return path


def row(source_table_id: str, **values: str) -> dict[str, str]:
    base = {"source_table_id": source_table_id, "State": "Arizona", "SourceName": "Testville",
            "Agency": "Testville", "AgencyFull": "Testville Police Department",
            "TableType": CALLS_FOR_SERVICE, "DataType": "Socrata", "Year": "MULTIPLE"}
    return {**base, **values}


# -- the real catalogue ----------------------------------------------------------------------


def test_the_catalogue_reads_every_entry(opd: Catalogue) -> None:
    assert len(opd) == 1745
    calls = opd.filter(table_type="calls for service")
    assert len(calls) == 281
    by_portal = {p: len([e for e in calls if e.portal is p]) for p in PortalType}
    assert by_portal[PortalType.SOCRATA] == 45 and by_portal[PortalType.ARCGIS] == 100
    assert len({e.source_table_id for e in opd}) == 1745


def test_mesa_entry_is_parsed(opd: Catalogue) -> None:
    mesa = opd.get(MESA_ID)
    assert (mesa.state, mesa.source_name, mesa.agency_full) == (
        "Arizona", "Mesa", "Mesa Police Department")
    assert mesa.table_type == CALLS_FOR_SERVICE
    assert mesa.portal is PortalType.SOCRATA and mesa.adapter == "socrata"
    assert (mesa.url, mesa.dataset_id, mesa.date_field) == (
        "data.mesaaz.gov", "ex94-c5ad", "creation_datetime")
    assert (mesa.coverage_start, mesa.coverage_end) == (date(2017, 1, 1), date(2020, 12, 31))
    assert mesa.year is None and mesa.year_label == "MULTIPLE" and mesa.years == "2017-2020"
    assert mesa.support is Support.SUPPORTED and mesa.mapping == "mesa_socrata"


def test_gilbert_entry_is_parsed(opd: Catalogue) -> None:
    gilbert = opd.get(GILBERT_ID)
    assert gilbert.portal is PortalType.ARCGIS and gilbert.adapter == "arcgis"
    assert gilbert.url == ("https://maps.gilbertaz.gov/arcgis/rest/services/OD/"
                           "Community_Safety_Tables_1/MapServer/2")
    assert gilbert.date_field == "EventDate" and gilbert.dataset_id is None
    assert gilbert.mapping == "gilbert_arcgis"


def test_filters_combine(opd: Catalogue) -> None:
    arizona = opd.filter(table_type=CALLS_FOR_SERVICE, state="arizona")
    assert {e.source_table_id for e in opd.filter(table_type=CALLS_FOR_SERVICE, state="Arizona",
                                                  portal="arcgis", search="gilb")} == {GILBERT_ID}
    assert all(e.state == "Arizona" and e.table_type == CALLS_FOR_SERVICE for e in arizona)
    assert 0 < len(arizona) < 281
    socrata = opd.filter(portal=PortalType.SOCRATA)
    assert socrata and all(e.portal is PortalType.SOCRATA for e in socrata)
    mesa_calls = opd.filter(table_type=CALLS_FOR_SERVICE, search="MESA")
    assert {e.source_table_id for e in mesa_calls} >= {MESA_ID, "ost_ae909c81bb2d4449"}
    in_2018 = opd.filter(table_type=CALLS_FOR_SERVICE, search="mesa", year=2018)
    assert [e.source_table_id for e in in_2018] == [MESA_ID]  # the 2021-present one is out


def test_year_filter_matches_single_years_and_coverage(opd: Catalogue) -> None:
    entries = opd.filter(table_type=CALLS_FOR_SERVICE, year=2016)
    assert entries
    for entry in entries:
        if entry.year is not None:
            assert entry.year == 2016
        else:
            assert entry.coverage_start and entry.coverage_start.year <= 2016
            assert entry.coverage_end and entry.coverage_end.year >= 2016


def test_entries_say_whether_they_can_be_fetched(opd: Catalogue) -> None:
    calls = opd.filter(table_type=CALLS_FOR_SERVICE)
    support = {e.portal: e.support for e in calls}
    assert support[PortalType.SOCRATA] is Support.SUPPORTED
    assert support[PortalType.ARCGIS] is Support.SUPPORTED
    for portal in (PortalType.CKAN, PortalType.CSV, PortalType.EXCEL):
        assert support[portal] is Support.NOT_YET
    assert support[PortalType.HTML] is Support.NOT_PLANNED


@pytest.mark.parametrize("portal", ["CKAN", "CSV", "Excel", "HTML"])
def test_no_adapter_for_other_portals(opd: Catalogue, portal: str) -> None:
    entry = opd.filter(table_type=CALLS_FOR_SERVICE, portal=portal)[0]
    client = PortalClient(make_client(transport=httpx.MockTransport(_no_network)))
    with pytest.raises(PortalError, match=f"published as {portal}, which cswb cannot fetch"):
        adapter_for(entry, client)


def _no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request was expected, got {request.url}")


def test_unknown_ids_and_portals_are_clear_errors(opd: Catalogue) -> None:
    with pytest.raises(NotFoundError, match="no catalogue entry 'ost_nope'"):
        opd.get("ost_nope")
    with pytest.raises(NotFoundError, match="unknown portal type 'Socrates'"):
        opd.filter(portal="Socrates")


# -- reading rules, on small catalogues ------------------------------------------------------


def test_values_are_trimmed_and_queries_read_despite_curly_quotes(tmp_path: Path) -> None:
    path = write_catalogue(tmp_path / "c.csv", [
        row("ost_a", date_field="DateOccurred\xa0 ", DataType="ArcGIS",
            query="{“Department”: “POLICE DEPARTMENT”}", coverage_start="01/31/2019",
            coverage_end="bad", Year="2019"),
    ])
    entry = read_catalogue(path).get("ost_a")
    assert entry.date_field == "DateOccurred"
    assert entry.query == {"Department": "POLICE DEPARTMENT"}
    assert entry.coverage_start == date(2019, 1, 31) and entry.coverage_end is None
    assert entry.year == 2019 and entry.covers_year(2019) and not entry.covers_year(2018)


def test_rows_without_an_id_are_skipped(tmp_path: Path) -> None:
    path = write_catalogue(tmp_path / "c.csv", [row("ost_a"), row(""), row("ost_b")])
    assert [e.source_table_id for e in read_catalogue(path)] == ["ost_a", "ost_b"]


def test_multiple_years_without_coverage_match_no_year(tmp_path: Path) -> None:
    path = write_catalogue(tmp_path / "c.csv", [row("ost_a"), row("ost_b", coverage_start=
                                                                    "01/01/2015")])
    catalogue = read_catalogue(path)
    assert [e.source_table_id for e in catalogue.filter(year=2016)] == ["ost_b"]
    assert catalogue.filter(year=2014) == []


@pytest.mark.parametrize(("text", "expected"), [
    ("", {}), ("not json", {}), ("[1, 2]", {}), ('{"a": "b", "n": 3}', {"a": "b", "n": "3"}),
    ('{“officer_involved”:”Y”}', {"officer_involved": "Y"}), ('{"a": {"b": 1}}', {}),
])
def test_parse_query(text: str, expected: dict[str, str]) -> None:
    assert parse_query(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("04/11/2021", date(2021, 4, 11)), ("2021-04-11", date(2021, 4, 11)), ("", None),
    ("13/40/2021", None), ("MULTIPLE", None),
])
def test_parse_date(text: str, expected: date | None) -> None:
    assert parse_date(text) == expected


def test_a_missing_catalogue_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceFileError, match="does not exist"):
        read_catalogue(tmp_path / "nope.csv")
    with pytest.raises(SourceFileError, match="is a folder"):
        read_catalogue(tmp_path)


def test_a_catalogue_without_the_columns_is_a_clear_error(tmp_path: Path) -> None:
    columns = tuple(c for c in REQUIRED_COLUMNS if c not in {"DataType", "URL"})
    path = write_catalogue(tmp_path / "c.csv", [row("ost_a")], columns)
    with pytest.raises(SourceFileError, match="lacks the columns URL, DataType"):
        read_catalogue(path)


def test_unreadable_and_empty_catalogues_are_clear_errors(tmp_path: Path) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes(",".join(REQUIRED_COLUMNS).encode() + b"\n\xe9t\xe9\n")
    with pytest.raises(SourceFileError, match="not UTF-8"):
        read_catalogue(latin)
    empty = write_catalogue(tmp_path / "empty.csv", [])
    with pytest.raises(SourceFileError, match="holds no entries"):
        read_catalogue(empty)


def test_the_catalogue_path_comes_from_the_option_or_the_settings(tmp_path: Path,
                                                                  settings: Settings) -> None:
    with pytest.raises(ConfigError, match="--catalogue"):
        catalogue_path(settings)
    configured = settings.model_copy(update={"catalogue_path": tmp_path / "a.csv"})
    assert catalogue_path(configured) == tmp_path / "a.csv"
    assert catalogue_path(configured, tmp_path / "b.csv") == tmp_path / "b.csv"


# -- built-in mappings -----------------------------------------------------------------------


def test_builtin_sources_list_the_portal_mappings() -> None:
    sources = {s.name: s for s in builtin_sources()}
    mesa, gilbert = sources["mesa_socrata"], sources["gilbert_arcgis"]
    assert (mesa.agency, mesa.time_zone, mesa.file_format) == (
        "Mesa Police Department", "America/Phoenix", "jsonl")
    assert (gilbert.agency, gilbert.time_zone, gilbert.file_format) == (
        "Gilbert Police Department", "America/Phoenix", "jsonl")
    assert mesa.source_table_id == MESA_ID and gilbert.source_table_id == GILBERT_ID
    assert "milwaukee_2018" in sources and sources["milwaukee_2018"].source_table_id is None
    assert all(s.title for s in sources.values())


# -- cswb sources list -----------------------------------------------------------------------


def invoke(settings: Settings, *args: str) -> Any:
    env = {"CSWB_DATA_DIR": str(settings.data_dir), "CSWB_STORE_URL": settings.resolved_store_url,
           "COLUMNS": "200"}
    return CliRunner().invoke(app, list(args), env=env)


def test_cli_list_shows_builtins_first_then_matching_entries(shared_data: Path,
                                                            settings: Settings) -> None:
    catalogue = str(shared_data / "sources" / "opd_source_table.csv")
    result = invoke(settings, "sources", "list", "--catalogue", catalogue, "--state", "Arizona",
                    "--portal", "ArcGIS")
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.index("Built-in mappings") < out.index("mesa_socrata") < out.index(
        "Catalogue entries")
    assert GILBERT_ID in out and MESA_ID not in out.split("Catalogue entries")[1]


def test_cli_list_json_with_limit_and_all_table_types(shared_data: Path,
                                                      settings: Settings) -> None:
    catalogue = str(shared_data / "sources" / "opd_source_table.csv")
    result = invoke(settings, "sources", "list", "--catalogue", catalogue, "--table-type", "all",
                    "--search", "mesa", "--limit", "2", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [b["name"] for b in data["builtin"]] == ["mesa_socrata"]
    assert len(data["catalogue"]) == 2 and data["catalogue_matches"] > 2
    assert {e["source_name"] for e in data["catalogue"]} == {"Mesa"}
    every = json.loads(invoke(settings, "sources", "list", "--catalogue", catalogue,
                              "--table-type", "all", "--search", "mesa", "--limit", "0",
                              "--json").output)
    assert len(every["catalogue"]) == every["catalogue_matches"] == data["catalogue_matches"]
    assert {"CALLS FOR SERVICE", "INCIDENTS"} <= {e["table_type"] for e in every["catalogue"]}


def test_cli_list_without_a_catalogue_lists_the_builtins(settings: Settings) -> None:
    result = invoke(settings, "sources", "list", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"mesa_socrata", "gilbert_arcgis"} <= {b["name"] for b in data["builtin"]}
    assert data["catalogue"] == []


def test_cli_list_with_a_missing_catalogue_fails_clearly(tmp_path: Path,
                                                         settings: Settings) -> None:
    result = invoke(settings, "sources", "list", "--catalogue", str(tmp_path / "none.csv"))
    assert isinstance(result.exception, SourceFileError)
    assert "does not exist" in str(result.exception)
