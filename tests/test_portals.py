"""Portal adapters against recorded responses: paging, resuming, retries, errors, ingest.

The network is replaced by :class:`RecordedPortal`, an ``httpx.MockTransport`` handler that
answers only the exact requests recorded in ``tests/fixtures/portals/*/exchanges.json`` (host,
path and every query parameter) and fails the test on anything else, so an adapter that pages
wrongly, forgets a parameter or calls a live portal fails. Nothing of cswb's own is mocked.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from cswb.cli import sources as sources_cli
from cswb.cli.main import app
from cswb.errors import PortalError, SourceFileError
from cswb.ingest.mapping import builtin_mapping
from cswb.ingest.pipeline import ingest_file
from cswb.ingest.portals import (
    ArcGISAdapter,
    PortalClient,
    RetryPolicy,
    SocrataAdapter,
    checkpoint_path,
    download,
    make_client,
)
from cswb.ingest.portals.base import Checkpoint, encode_records
from cswb.settings import Settings
from cswb.storage import AnalyticStore
from tests.helpers import ingest_with, one, rows

FIXTURES = Path(__file__).parent / "fixtures" / "portals"
MESA = FIXTURES / "mesa_socrata"
GILBERT = FIXTURES / "gilbert_arcgis"
GILBERT_LAYER = ("https://maps.gilbertaz.gov/arcgis/rest/services/OD/Community_Safety_Tables_1/"
                 "MapServer/2")
MESA_IDS = [f"PD19008451{n}" for n in ("23", "31", "40", "52", "70", "88")] + [
    "PD1900845201", "PD1900845215", "PD1900845230", "PD1900845247"]
GILBERT_OIDS = list(range(190051, 190059))


class UnrecordedRequestError(AssertionError):
    """A request no recording answers: the adapter asked for something it should not."""


class CrashError(Exception):
    """Stands for the process dying in the middle of a download."""


class RecordedPortal:
    """Answers exactly the recorded requests of some fixture folders; logs every request."""

    def __init__(self, *folders: Path) -> None:
        self.exchanges: list[tuple[str, dict[str, Any], Path]] = []
        for folder in folders:
            index = json.loads((folder / "exchanges.json").read_text(encoding="utf-8"))
            for ex in index["exchanges"]:
                self.exchanges.append((index["host"], ex, folder))
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        params = params_of(request)
        for host, ex, folder in self.exchanges:
            if (request.method == "GET" and request.url.scheme == "https"
                    and request.url.host == host and request.url.path == ex["path"]
                    and params == ex["params"]):
                body = (folder / ex["body"]).read_bytes()
                return httpx.Response(ex["status"], content=body,
                                      headers={"Content-Type": "application/json"})
        raise UnrecordedRequestError(f"unrecorded request: {request.method} {request.url}")


def params_of(request: httpx.Request) -> dict[str, str]:
    items = request.url.params.multi_items()
    assert len(items) == len(dict(items)), f"repeated query parameters in {request.url}"
    return dict(items)


class Scripted:
    """A recorded portal whose chosen requests get scripted outcomes first (errors, crashes)."""

    def __init__(self, portal: RecordedPortal, when: Callable[[httpx.Request], bool],
                 outcomes: list[httpx.Response | Exception]) -> None:
        self.portal, self.when, self.outcomes = portal, when, list(outcomes)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.outcomes and self.when(request):
            self.portal.requests.append(request)
            outcome = self.outcomes.pop(0)
            if isinstance(outcome, Exception):
                raise outcome
            return outcome
        return self.portal(request)


def no_network(request: httpx.Request) -> httpx.Response:
    raise UnrecordedRequestError(f"no request was expected, got {request.url}")


class Sleeps(list[float]):
    """An injectable ``sleep`` that records the delays instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def http(handler: Callable[[httpx.Request], httpx.Response], sleeps: Sleeps | None = None,
         attempts: int = 4) -> PortalClient:
    client = make_client(transport=httpx.MockTransport(handler))
    return PortalClient(client, RetryPolicy(attempts=attempts, base_delay=1.0, max_delay=30.0),
                        sleep=sleeps if sleeps is not None else Sleeps())


def mesa(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> SocrataAdapter:
    sleeps = kwargs.pop("sleeps", None)
    return SocrataAdapter(http(handler, sleeps), "data.mesaaz.gov", "ex94-c5ad", **kwargs)


def gilbert(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> ArcGISAdapter:
    sleeps = kwargs.pop("sleeps", None)
    return ArcGISAdapter(http(handler, sleeps), GILBERT_LAYER, date_field="EventDate", **kwargs)


def offsets(portal: RecordedPortal, key: str) -> list[int]:
    """The paging offsets requested, in order (``$offset`` or ``resultOffset``)."""
    return [int(r.url.params[key]) for r in portal.requests if key in r.url.params]


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def mesa_page_request(offset: int) -> Callable[[httpx.Request], bool]:
    return lambda r: r.url.params.get("$offset") == str(offset)


def gilbert_page_request(offset: int) -> Callable[[httpx.Request], bool]:
    return lambda r: r.url.params.get("resultOffset") == str(offset)


# -- paging ----------------------------------------------------------------------------------


def test_socrata_pages_by_offset_until_a_short_page(tmp_path: Path) -> None:
    portal = RecordedPortal(MESA)
    out = tmp_path / "mesa.jsonl"
    result = download(mesa(portal), out, page_size=4)
    assert offsets(portal, "$offset") == [0, 4, 8]
    assert all(r.url.params["$limit"] == "4" and r.url.params["$order"] == ":id"
               for r in portal.requests if "$offset" in r.url.params)
    records = lines(out)
    assert [r["event_number"] for r in records] == MESA_IDS
    assert result.finished and result.rows_written == 10 and result.pages_this_run == 3
    state = Checkpoint.load(checkpoint_path(out))
    assert state is not None and state.finished and state.next_offset == 10
    assert state.bytes_written == out.stat().st_size


def test_socrata_records_all_have_the_dataset_columns(tmp_path: Path) -> None:
    out = tmp_path / "mesa.jsonl"
    download(mesa(RecordedPortal(MESA)), out, page_size=4)
    records = lines(out)
    view = json.loads((MESA / "view.json").read_text(encoding="utf-8"))
    expected = {c["fieldName"] for c in view["columns"] if not c["fieldName"].startswith(":")}
    expected |= {"location.longitude", "location.latitude"}
    assert all({k for k in r if not k.startswith(":")} == expected for r in records)
    welfare = records[3]
    assert welfare["event_type_description"] == "WELFARE CHECK"
    assert welfare["latitude"] is None and welfare["location.longitude"] is None
    assert records[0]["location.longitude"] == -111.8361
    assert records[0]["location.latitude"] == 33.4149
    assert records[0][":@computed_region_mesa_dist"] == "7"  # system columns pass through
    assert isinstance(records[0]["creation_datetime"], str)


def test_socrata_without_column_description_writes_records_as_they_come(tmp_path: Path) -> None:
    portal = RecordedPortal(MESA)
    not_found = httpx.Response(404, json={"error": True, "message": "Not found"})
    handler = Scripted(portal, lambda r: r.url.path.startswith("/api/views/"), [not_found])
    out = tmp_path / "mesa.jsonl"
    download(mesa(handler), out, page_size=4)
    records = lines(out)
    assert len(records) == 10
    assert "latitude" not in records[3]  # Socrata leaves null fields out
    assert Checkpoint.load(checkpoint_path(out)).schema is None  # type: ignore[union-attr]


def test_arcgis_pages_while_the_transfer_limit_is_exceeded(tmp_path: Path) -> None:
    portal = RecordedPortal(GILBERT)
    out = tmp_path / "gilbert.jsonl"
    result = download(gilbert(portal), out, page_size=3)
    assert [r.url.path.rsplit("/", 1)[-1] for r in portal.requests] == ["2", "query", "query",
                                                                          "query"]
    assert offsets(portal, "resultOffset") == [0, 3, 6]
    for request in portal.requests[1:]:
        params = request.url.params
        assert params["f"] == "json" and params["outSR"] == "4326"
        assert params["orderByFields"] == "OBJECTID" and params["resultRecordCount"] == "3"
    records = lines(out)
    assert [r["OBJECTID"] for r in records] == GILBERT_OIDS
    assert result.finished and result.rows_written == 8


def test_arcgis_writes_attributes_with_epoch_ms_and_point_coordinates(tmp_path: Path) -> None:
    out = tmp_path / "gilbert.jsonl"
    download(gilbert(RecordedPortal(GILBERT)), out, page_size=3)
    by_oid = {r["OBJECTID"]: r for r in lines(out)}
    first = by_oid[190051]
    assert first["EventDate"] == 1552210200000  # epoch milliseconds, as the portal sent them
    assert (first["longitude"], first["latitude"]) == (-111.7894, 33.3536)
    assert (by_oid[190054]["longitude"], by_oid[190054]["latitude"]) == (None, None)  # none
    assert (by_oid[190055]["longitude"], by_oid[190055]["latitude"]) == (None, None)  # NaN
    assert by_oid[190056]["EventDate"] is None


def test_arcgis_stops_when_the_transfer_limit_flag_is_absent(tmp_path: Path) -> None:
    portal = RecordedPortal(GILBERT)
    last = json.loads((GILBERT / "query-offset-6.json").read_text())
    del last["exceededTransferLimit"]
    handler = Scripted(portal, gilbert_page_request(6), [httpx.Response(200, json=last)])
    result = download(gilbert(handler), tmp_path / "g.jsonl", page_size=3)
    assert offsets(portal, "resultOffset") == [0, 3, 6]
    assert result.finished and result.rows_written == 8


def test_arcgis_advances_by_the_features_received(tmp_path: Path) -> None:
    """A server capping pages below the size asked must not make the adapter skip records."""
    portal = RecordedPortal(GILBERT)
    first = json.loads((GILBERT / "query-offset-0.json").read_text())
    first["features"] = first["features"][:2]  # the server sent 2 of the 3 asked for
    handler = Scripted(portal, gilbert_page_request(0), [httpx.Response(200, json=first)])
    with pytest.raises(UnrecordedRequestError):  # nothing is recorded at offset 2
        download(gilbert(handler), tmp_path / "g.jsonl", page_size=3)
    assert offsets(portal, "resultOffset") == [0, 2]


def test_arcgis_more_records_promised_but_none_sent_is_an_error(tmp_path: Path) -> None:
    portal = RecordedPortal(GILBERT)
    empty = json.loads((GILBERT / "query-offset-0.json").read_text())
    empty["features"] = []
    handler = Scripted(portal, gilbert_page_request(0), [httpx.Response(200, json=empty)])
    with pytest.raises(PortalError, match="more records remain but sent none"):
        download(gilbert(handler), tmp_path / "g.jsonl", page_size=3)


def test_date_ranges_become_where_clauses(tmp_path: Path) -> None:
    day = date(2019, 3, 10)
    socrata = RecordedPortal(MESA)
    result = download(mesa(socrata, date_field="creation_datetime", since=day, until=day),
                      tmp_path / "m.jsonl")
    assert result.rows_written == 9 and result.finished
    arcgis = RecordedPortal(GILBERT)
    result = download(gilbert(arcgis, since=day, until=day), tmp_path / "g.jsonl")
    assert result.rows_written == 6 and result.finished
    assert arcgis.requests[-1].url.params["where"] == (
        "EventDate >= TIMESTAMP '2019-03-10 00:00:00' AND EventDate < TIMESTAMP "
        "'2019-03-11 00:00:00'")


def test_max_pages_stops_and_the_next_run_continues(tmp_path: Path) -> None:
    portal = RecordedPortal(MESA)
    out = tmp_path / "mesa.jsonl"
    first = download(mesa(portal), out, page_size=4, max_pages=1)
    assert not first.finished and first.rows_written == 4
    second = download(mesa(portal), out, page_size=4, max_pages=1)
    assert second.resumed_from == 4 and second.rows_written == 8
    third = download(mesa(portal), out, page_size=4)
    assert third.finished and third.resumed_from == 8
    assert offsets(portal, "$offset") == [0, 4, 8]
    assert [r["event_number"] for r in lines(out)] == MESA_IDS


# -- resuming --------------------------------------------------------------------------------


def test_socrata_resumes_after_a_hard_failure_without_duplicates(tmp_path: Path) -> None:
    out = tmp_path / "mesa.jsonl"
    broken = RecordedPortal(MESA)
    crash = Scripted(broken, mesa_page_request(8), [CrashError("killed")])
    with pytest.raises(CrashError):
        download(mesa(crash), out, page_size=4)
    state = Checkpoint.load(checkpoint_path(out))
    assert state is not None and not state.finished
    assert (state.next_offset, state.rows_written, state.pages) == (8, 8, 2)
    assert state.adapter == "socrata" and state.url.endswith("/resource/ex94-c5ad.json")
    assert state.params == {"$order": ":id"}

    rerun = RecordedPortal(MESA)
    result = download(mesa(rerun), out, page_size=4)
    assert [str(r.url.params) for r in rerun.requests] == [
        "%24order=%3Aid&%24limit=4&%24offset=8"]  # no column lookup, no page fetched twice
    assert result.resumed_from == 8 and result.rows_this_run == 2 and result.finished
    assert [r["event_number"] for r in lines(out)] == MESA_IDS


def test_arcgis_resumes_after_a_hard_failure_without_duplicates(tmp_path: Path) -> None:
    out = tmp_path / "gilbert.jsonl"
    crash = Scripted(RecordedPortal(GILBERT), gilbert_page_request(6), [CrashError("killed")])
    with pytest.raises(CrashError):
        download(gilbert(crash), out, page_size=3)
    rerun = RecordedPortal(GILBERT)
    result = download(gilbert(rerun), out, page_size=3)
    assert offsets(rerun, "resultOffset") == [6]
    assert len(rerun.requests) == 1  # the object id field came from the checkpoint
    assert result.resumed_from == 6 and result.finished
    assert [r["OBJECTID"] for r in lines(out)] == GILBERT_OIDS


def crashed_mesa_download(out: Path) -> None:
    crash = Scripted(RecordedPortal(MESA), mesa_page_request(8), [CrashError("killed")])
    with pytest.raises(CrashError):
        download(mesa(crash), out, page_size=4)


def test_a_torn_last_line_is_cut_away_on_resume(tmp_path: Path) -> None:
    out = tmp_path / "mesa.jsonl"
    crashed_mesa_download(out)
    torn = b'{"event_number":"PD1900845230","creation_datetime":"2019-03-'
    with open(out, "ab") as handle:
        handle.write(torn)
    result = download(mesa(RecordedPortal(MESA)), out, page_size=4)
    assert result.truncated_bytes == len(torn)
    assert [r["event_number"] for r in lines(out)] == MESA_IDS


def test_records_written_after_the_last_checkpoint_are_not_duplicated(tmp_path: Path) -> None:
    """Killed after appending a page but before its checkpoint: the page is fetched again."""
    out = tmp_path / "mesa.jsonl"
    crashed_mesa_download(out)
    page = json.loads((MESA / "page-offset-8.json").read_text())
    with open(out, "ab") as handle:
        handle.write(encode_records(page))
    result = download(mesa(RecordedPortal(MESA)), out, page_size=4)
    assert result.truncated_bytes > 0
    assert [r["event_number"] for r in lines(out)] == MESA_IDS


def test_a_finished_download_is_not_fetched_again_unless_asked(tmp_path: Path) -> None:
    out = tmp_path / "mesa.jsonl"
    download(mesa(RecordedPortal(MESA)), out, page_size=4)
    again = download(mesa(no_network), out, page_size=4)
    assert again.already_complete and again.rows_this_run == 0
    portal = RecordedPortal(MESA)
    restarted = download(mesa(portal), out, page_size=4, restart=True)
    assert offsets(portal, "$offset") == [0, 4, 8]
    assert restarted.rows_written == 10
    assert [r["event_number"] for r in lines(out)] == MESA_IDS


def test_an_output_changed_behind_the_checkpoint_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "mesa.jsonl"
    crashed_mesa_download(out)
    out.write_bytes(out.read_bytes()[:100])
    with pytest.raises(SourceFileError, match="--restart"):
        download(mesa(no_network), out, page_size=4)


def test_an_unreadable_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    out = tmp_path / "mesa.jsonl"
    crashed_mesa_download(out)
    checkpoint_path(out).write_text('{"adapter": "socrata", "next_', encoding="utf-8")
    with pytest.raises(SourceFileError, match=r"is unreadable.*--restart"):
        download(mesa(no_network), out, page_size=4)


def test_a_checkpoint_of_another_query_is_not_resumed(tmp_path: Path) -> None:
    out = tmp_path / "mesa.jsonl"
    crashed_mesa_download(out)
    day = date(2019, 3, 10)
    with pytest.raises(SourceFileError, match="belongs to another download"):
        download(mesa(no_network, date_field="creation_datetime", since=day), out)


def test_an_existing_file_without_checkpoint_is_not_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "mesa.jsonl"
    out.write_text('{"mine": 1}\n', encoding="utf-8")
    with pytest.raises(SourceFileError, match="no checkpoint"):
        download(mesa(no_network), out)
    assert out.read_text(encoding="utf-8") == '{"mine": 1}\n'
    download(mesa(RecordedPortal(MESA)), out, page_size=4, restart=True)
    assert len(lines(out)) == 10


def test_a_start_that_fetched_nothing_can_be_corrected_without_restart(tmp_path: Path) -> None:
    out = tmp_path / "mesa.jsonl"
    day = date(2019, 3, 10)
    with pytest.raises(PortalError):
        download(mesa(RecordedPortal(MESA), date_field="creation_date", since=day, until=day),
                 out, page_size=1000)
    result = download(mesa(RecordedPortal(MESA), date_field="creation_datetime", since=day,
                           until=day), out, page_size=1000)
    assert result.rows_written == 9


# -- retries and errors ----------------------------------------------------------------------


def test_503_is_retried_with_exponential_backoff(tmp_path: Path) -> None:
    portal = RecordedPortal(MESA)
    busy = [httpx.Response(503, text="<html>Service Unavailable</html>"),
            httpx.Response(503, text="<html>Service Unavailable</html>")]
    sleeps = Sleeps()
    result = download(mesa(Scripted(portal, mesa_page_request(4), busy), sleeps=sleeps),
                      tmp_path / "m.jsonl", page_size=4)
    assert sleeps == [1.0, 2.0]
    assert offsets(portal, "$offset") == [0, 4, 4, 4, 8]
    assert result.rows_written == 10


def test_429_waits_as_long_as_retry_after_says(tmp_path: Path) -> None:
    portal = RecordedPortal(MESA)
    slow_down = httpx.Response(429, headers={"Retry-After": "7"},
                               json={"code": "throttled", "message": "Too many requests"})
    sleeps = Sleeps()
    download(mesa(Scripted(portal, mesa_page_request(0), [slow_down]), sleeps=sleeps),
             tmp_path / "m.jsonl", page_size=4)
    assert sleeps == [7.0]


def test_timeouts_and_arcgis_transient_error_payloads_are_retried(tmp_path: Path) -> None:
    portal = RecordedPortal(GILBERT)
    busy = json.loads((GILBERT / "error-busy.json").read_text())
    outcomes: list[httpx.Response | Exception] = [httpx.ReadTimeout("slow"),
                                                  httpx.Response(200, json=busy)]
    sleeps = Sleeps()
    result = download(gilbert(Scripted(portal, gilbert_page_request(3), outcomes),
                              sleeps=sleeps), tmp_path / "g.jsonl", page_size=3)
    assert sleeps == [1.0, 2.0]
    assert offsets(portal, "resultOffset") == [0, 3, 3, 3, 6]
    assert result.rows_written == 8


def test_retries_are_bounded(tmp_path: Path) -> None:
    portal = RecordedPortal(MESA)
    always = Scripted(portal, mesa_page_request(0), [httpx.Response(502)] * 10)
    sleeps = Sleeps()
    with pytest.raises(PortalError, match="failed 4 times; last: HTTP 502"):
        download(mesa(always, sleeps=sleeps), tmp_path / "m.jsonl", page_size=4)
    assert offsets(portal, "$offset") == [0, 0, 0, 0]
    assert sleeps == [1.0, 2.0, 4.0]


def test_socrata_error_payloads_carry_the_portal_message(tmp_path: Path) -> None:
    day = date(2019, 3, 10)
    portal = RecordedPortal(MESA)
    with pytest.raises(PortalError, match=r"HTTP 400: No such column: creation_date.*"
                                          r"query\.soql\.no-such-column"):
        download(mesa(portal, date_field="creation_date", since=day, until=day),
                 tmp_path / "m.jsonl")
    assert offsets(portal, "$offset") == [0]  # a 4xx is not retried
    missing = SocrataAdapter(http(RecordedPortal(MESA)), "data.mesaaz.gov", "zz99-zz99")
    with pytest.raises(PortalError, match="HTTP 404: Not found"):
        download(missing, tmp_path / "z.jsonl")


def test_arcgis_error_payloads_carry_the_portal_message(tmp_path: Path) -> None:
    portal = RecordedPortal(GILBERT)
    adapter = gilbert(portal, filters={"Department": "POLICE DEPARTMENT"})
    with pytest.raises(PortalError, match=r"error 400: Cannot perform query\. Invalid query "
                                          r"parameters\. \('where' parameter is invalid\)"):
        download(adapter, tmp_path / "g.jsonl")
    assert offsets(portal, "resultOffset") == [0]


def test_answers_that_are_not_json_or_not_records_are_errors(tmp_path: Path) -> None:
    html = httpx.Response(200, html="<html><body>Scheduled maintenance</body></html>")
    handler = Scripted(RecordedPortal(MESA), mesa_page_request(0), [html])
    with pytest.raises(PortalError, match="with text/html, not JSON"):
        download(mesa(handler), tmp_path / "m.jsonl", page_size=4)
    odd = httpx.Response(200, json={"rows": []})
    handler = Scripted(RecordedPortal(MESA), mesa_page_request(0), [odd])
    with pytest.raises(PortalError, match="where a list of records was expected"):
        download(mesa(handler), tmp_path / "n.jsonl", page_size=4)


def test_bad_identifiers_are_refused_before_any_request() -> None:
    client = http(no_network)
    with pytest.raises(PortalError, match="not a Socrata dataset id"):
        SocrataAdapter(client, "data.mesaaz.gov", "Police Events")
    with pytest.raises(PortalError, match="not an ArcGIS layer URL"):
        ArcGISAdapter(client, "https://data.gilbertaz.gov/maps/2dcb4c20c9a444f2a5d3dca180b651c9")
    with pytest.raises(PortalError, match="not a column name"):
        SocrataAdapter(client, "data.mesaaz.gov", "ex94-c5ad", filters={"x = 1 OR y": "z"})
    with pytest.raises(PortalError, match="no date field"):
        ArcGISAdapter(client, GILBERT_LAYER, since=date(2019, 1, 1))


def test_non_finite_numbers_become_null_in_the_output() -> None:
    data = encode_records([{"x": float("nan"), "y": [float("inf")], "z": 1.5}])
    assert json.loads(data) == {"x": None, "y": [None], "z": 1.5}


# -- into the analytic store -----------------------------------------------------------------


def test_gilbert_download_ingests_epoch_ms_to_the_right_utc_instant(
        tmp_path: Path, store: AnalyticStore, settings: Settings) -> None:
    out = tmp_path / "gilbert.jsonl"
    download(gilbert(RecordedPortal(GILBERT)), out, page_size=3)
    summary = ingest_file(out, builtin_mapping("gilbert_arcgis"), store, settings)
    assert summary.reconciles
    assert (summary.rows_read, summary.inserted, summary.quarantined) == (8, 7, 1)
    assert summary.reasons == {"no_usable_time": 1}
    call_at = one(store, "SELECT call_at FROM calls WHERE source_record_id = 'GPD19-0301544'")
    assert call_at == datetime(2019, 3, 10, 9, 30, tzinfo=UTC)  # 02:30 in Phoenix (UTC-7)
    autumn = one(store, "SELECT call_at FROM calls WHERE source_record_id = 'GPD19-1103207'")
    assert autumn == datetime(2019, 11, 3, 8, 30, tzinfo=UTC)
    coords = dict(rows(store, "SELECT source_record_id, [latitude, longitude] FROM calls"))
    assert coords["GPD19-0301544"] == [33.354, -111.789]
    assert coords["GPD19-0301577"] == [None, None] and coords["GPD19-0301580"] == [None, None]
    assert coords["GPD19-0301604"] == [None, None]  # (0, 0) is nulled and flagged
    flags = one(store, "SELECT dq_flags FROM calls WHERE source_record_id = 'GPD19-0301604'")
    assert "latitude:out_of_bounds" in flags


def test_gilbert_local_hour_is_phoenix_time(tmp_path: Path, store: AnalyticStore,
                                           settings: Settings) -> None:
    out = tmp_path / "gilbert.jsonl"
    download(gilbert(RecordedPortal(GILBERT)), out, page_size=3)
    ingest_file(out, builtin_mapping("gilbert_arcgis"), store, settings)
    local = rows(store, "SELECT local_date, local_hour FROM calls "
                        "WHERE source_record_id = 'GPD19-0301544'")
    assert local == [(date(2019, 3, 10), 2)]


def test_mesa_download_ingests_floating_times_in_phoenix_time(
        tmp_path: Path, store: AnalyticStore, settings: Settings) -> None:
    out = tmp_path / "mesa.jsonl"
    download(mesa(RecordedPortal(MESA)), out, page_size=4)
    summary = ingest_file(out, builtin_mapping("mesa_socrata"), store, settings)
    assert summary.reconciles and summary.inserted == 10 and summary.quarantined == 0
    got = rows(store, "SELECT call_at, local_hour, dq_flags FROM calls "
                      "WHERE source_record_id IN ('PD1900845131', 'PD1900845247') ORDER BY 1")
    # 02:30 on 10 March and 01:30 on 3 November do not exist / occur twice where clocks change,
    # but Phoenix keeps UTC-7 all year: neither is moved nor flagged.
    assert got == [(datetime(2019, 3, 10, 9, 30, tzinfo=UTC), 2, None),
                   (datetime(2019, 11, 3, 8, 30, tzinfo=UTC), 1, None)]
    transport = one(store, "SELECT disposition_group FROM calls "
                           "WHERE source_record_id = 'PD1900845131'")
    assert transport == "transport"
    assert one(store, "SELECT count(*) FROM calls WHERE latitude IS NULL") == 1


def test_an_interrupted_download_ingests_with_its_torn_line_quarantined(
        tmp_path: Path, store: AnalyticStore, settings: Settings) -> None:
    out = tmp_path / "mesa.jsonl"
    crashed_mesa_download(out)
    with open(out, "ab") as handle:  # a torn line, and a CRLF line from another tool
        handle.write(b'{"event_number":"PD1900845230","creation_datetime":"2019-03-')
    text = out.read_bytes().replace(b"\n", b"\r\n", 1)
    out.write_bytes(text)
    summary = ingest_file(out, builtin_mapping("mesa_socrata"), store, settings)
    assert summary.reconciles
    assert (summary.rows_read, summary.inserted, summary.quarantined) == (9, 8, 1)
    assert summary.reasons == {"malformed_record": 1}


def test_json_keys_differing_only_in_case_stay_apart(tmp_path: Path, store: AnalyticStore,
                                                     settings: Settings) -> None:
    path = tmp_path / "cased.jsonl"
    path.write_text('{"id": "1", "t": "2019-03-10T02:30:00", "CallType": "A", "calltype": "x"}\n'
                    '{"id": "2", "t": "2019-03-10T03:30:00", "CallType": "B"}\n',
                    encoding="utf-8")
    mapping = {"name": "cased", "agency": "Test", "time_zone": "America/Phoenix",
               "file": {"format": "jsonl"}, "record_id": "id",
               "timestamps": {"received_at": {"column": "t", "formats": ["iso"]}},
               "fields": {"initial_call_type": "CallType"}, "attributes": ["calltype_2"]}
    summary = ingest_with(store, settings, mapping, path)
    assert summary.inserted == 2 and summary.reconciles
    got = rows(store, "SELECT call_type, attributes['calltype_2'] FROM calls ORDER BY 1")
    assert got == [("A", "x"), ("B", None)]


# -- the command line ------------------------------------------------------------------------


@pytest.fixture
def recorded_cli(monkeypatch: pytest.MonkeyPatch) -> RecordedPortal:
    """``cswb sources fetch`` talks to the recorded portals instead of the network."""
    portal = RecordedPortal(MESA, GILBERT)
    monkeypatch.setattr(sources_cli, "make_client",
                        lambda: make_client(transport=httpx.MockTransport(portal)))
    return portal


def run_cli(settings: Settings, *args: str) -> Any:
    env = {"CSWB_DATA_DIR": str(settings.data_dir), "CSWB_STORE_URL": settings.resolved_store_url}
    return CliRunner().invoke(app, list(args), env=env)


def test_cli_fetch_then_ingest(shared_data: Path, tmp_path: Path, settings: Settings,
                               recorded_cli: RecordedPortal) -> None:
    catalogue = str(shared_data / "sources" / "opd_source_table.csv")
    out = tmp_path / "gilbert.jsonl"
    result = run_cli(settings, "sources", "fetch", "ost_2c754ff4133530b4", "--out", str(out),
                     "--catalogue", catalogue, "--page-size", "3")
    assert result.exit_code == 0, result.output
    assert "Fetched 8 records in 3 pages" in result.output
    assert "cswb ingest" in result.output and "--source gilbert_arcgis" in result.output
    assert "returnCountOnly" in str(recorded_cli.requests[1].url)  # the progress bar's total
    again = run_cli(settings, "sources", "fetch", "ost_2c754ff4133530b4", "--out", str(out),
                    "--catalogue", catalogue, "--quiet")
    assert again.exit_code == 0 and again.output == ""
    ingested = run_cli(settings, "ingest", str(out), "--source", "gilbert_arcgis", "--json")
    assert ingested.exit_code == 0, ingested.output
    summary = json.loads(ingested.output)[0]
    assert (summary["rows_read"], summary["stored"], summary["reconciles"]) == (8, 7, True)


def test_cli_fetch_in_pieces_with_a_date_range(shared_data: Path, tmp_path: Path,
                                               settings: Settings,
                                               recorded_cli: RecordedPortal) -> None:
    catalogue = str(shared_data / "sources" / "opd_source_table.csv")
    result = run_cli(settings, "sources", "fetch", "ost_bbc74c931ad806be", "--catalogue",
                     catalogue, "--since", "2019-03-10", "--until", "2019-03-10", "--quiet")
    assert result.exit_code == 0, result.output
    default_out = settings.downloads_dir / "ost_bbc74c931ad806be.jsonl"
    assert len(lines(default_out)) == 9
    partial = run_cli(settings, "sources", "fetch", "ost_bbc74c931ad806be", "--catalogue",
                      catalogue, "--out", str(tmp_path / "m.jsonl"), "--page-size", "4",
                      "--max-pages", "2")
    assert partial.exit_code == 0, partial.output
    assert "Not finished: run the same command again" in partial.output


def test_cli_fetch_of_an_unsupported_portal_says_so(shared_data: Path, settings: Settings,
                                                    recorded_cli: RecordedPortal) -> None:
    catalogue = str(shared_data / "sources" / "opd_source_table.csv")
    result = run_cli(settings, "sources", "fetch", "ost_f8da6a6590c848c9", "--catalogue",
                     catalogue)
    assert isinstance(result.exception, PortalError)
    assert "published as CSV" in str(result.exception)
    assert "not yet supported" in str(result.exception)
    assert recorded_cli.requests == []
