"""The REST API, the "What was loaded" page, ``cswb serve`` and ``cswb demo``.

A store is built by ingesting small hand-written CSV files (two sources, three batches) through
mappings given as dictionaries; every number the API returns is checked against that store.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cswb import __version__
from cswb.api import create_app
from cswb.errors import MappingError
from cswb.ingest.mapping import Mapping, parse_mapping
from cswb.ingest.pipeline import ingest_file
from cswb.settings import Settings, load_settings
from cswb.storage import AnalyticStore, open_analytic_store
from cswb.storage.sql import run, scalar

TESTVILLE_CSV = """\
id,time,nature,status,location,district,caller_name,caller_phone
1,2024-01-05 10:00:00,THEFT,Advised,123 MAIN ST,1,Jane Doe,555-123-4567
2,2024-01-06 11:30:00,WELFARE CHECK,Advised,45 ELM ST,2,John Roe,555-222-3333
3,2024-02-01 09:00:00,THEFT,Advised,9 OAK AV,1,Ann Poe,555-000-1111
4,not a time,THEFT,Advised,9 OAK AV,1,Ann Poe,555-000-1111
5,2024-02-03 20:00:00,NOISE,Mystery,77 PINE RD,3,Bob Loe,555-444-5555
3,2024-02-01 09:00:00,THEFT,Advised,9 OAK AV,1,Ann Poe,555-000-1111
6,2024-04-01 12:00:00,,Advised,12 BIRCH ST,2,Cy Moe,555-666-7777
7,2024-04-15 08:00:00,THEFT,Advised,300 MAIN ST,1,Di Hoe,555-888-9999
8,2024-04-20 14:00:00,MENTAL HEALTH,Advised,5 ELM ST,2,Ed Yoe,555-111-2222
"""

OTHERTON_CSV = """\
call_no;received;type;block
A1;30/12/2023 10:00;THEFT;100 KING ST
A2;02/01/2024 10:00;ASSAULT;200 QUEEN ST
A3;03/01/2024 10:00;THEFT;300 KING ST
"""

IDENTIFYING = ("Jane Doe", "555-123-4567", "123 MAIN ST", "Ann Poe", "caller_name", "Mystery")


def mapping_testville() -> Mapping:
    return parse_mapping({
        "name": "testville", "agency": "Testville Police", "time_zone": "America/Toronto",
        "file": {"format": "csv"}, "record_id": "id",
        "timestamps": {"received_at": {"column": "time", "formats": ["%Y-%m-%d %H:%M:%S"]}},
        "fields": {"initial_call_type": "nature", "disposition_raw": "status",
                   "location": "location", "district": "district"},
        "value_maps": {"disposition_group": {"values": {"Advised": "service_rendered"}}},
        "identifying": {"drop": ["caller_name", "caller_phone"]},
    })


def mapping_otherton() -> Mapping:
    return parse_mapping({
        "name": "otherton", "agency": "Otherton Police", "time_zone": "America/Winnipeg",
        "file": {"format": "csv", "delimiter": ";"}, "record_id": "call_no",
        "timestamps": {"received_at": {"column": "received", "formats": ["%d/%m/%Y %H:%M"]}},
        "fields": {"initial_call_type": "type", "location": "block"},
    })


def make_settings(root: Path) -> Settings:
    return load_settings(data_dir=root / "var", duckdb_memory_limit="1GB",
                         store_url=f"duckdb:///{(root / 'store').as_posix()}")


def load_three_batches(root: Path, settings: Settings, store: AnalyticStore) -> None:
    """testville, otherton, then testville's same file again (every row already stored)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "testville.csv").write_text(TESTVILLE_CSV, encoding="utf-8")
    (root / "otherton.csv").write_text(OTHERTON_CSV, encoding="utf-8")
    for name, mapping in (("testville.csv", mapping_testville()),
                          ("otherton.csv", mapping_otherton()),
                          ("testville.csv", mapping_testville())):
        assert ingest_file(root / name, mapping, store, settings).reconciles


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, AnalyticStore]:
    """A store holding three batches of two sources (read-only for the tests using it)."""
    root = tmp_path_factory.mktemp("api")
    settings = make_settings(root)
    store = open_analytic_store(settings.resolved_store_url, settings)
    load_three_batches(root / "files", settings, store)
    return settings, store


@pytest.fixture(scope="module")
def client(loaded: tuple[Settings, AnalyticStore]) -> Iterator[TestClient]:
    with TestClient(create_app(loaded[0]), raise_server_exceptions=False) as test_client:
        yield test_client


def store_rows(store: AnalyticStore, sql: str, params: list[object] | None = None
               ) -> list[tuple[object, ...]]:
    con = store.connect()
    try:
        return run(con, sql, params)
    finally:
        con.close()


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["status"] == status and error["code"] == code and error["message"]
    assert "Traceback" not in response.text
    return error


# -- service endpoints ----------------------------------------------------------------------


def test_health_answers_without_touching_the_store(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "_manifest.json").write_text("{ not json", encoding="utf-8")
    with TestClient(create_app(settings)) as test_client:
        response = test_client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": __version__}


def test_ready_reports_the_store_version(client: TestClient, loaded: tuple[Settings, AnalyticStore]
                                         ) -> None:
    response = client.get("/api/v1/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "batches": 3,
                               "store_version": loaded[1].read_manifest().version}


def test_ready_is_503_in_the_error_shape_when_the_manifest_is_corrupt(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    store = open_analytic_store(settings.resolved_store_url, settings)
    load_three_batches(tmp_path / "files", settings, store)
    store.manifest_path.write_text('{"format": 1, "version": ', encoding="utf-8")
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        error = assert_error(test_client.get("/api/v1/ready"), 503, "store_error")
        assert "manifest" in str(error["message"])
        assert_error(test_client.get("/api/v1/sources"), 503, "store_error")
        assert test_client.get("/api/v1/health").status_code == 200


def test_a_missing_store_file_is_a_503_not_a_crash(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    store = open_analytic_store(settings.resolved_store_url, settings)
    load_three_batches(tmp_path / "files", settings, store)
    first = store.read_manifest().files("calls")[0]["path"]
    (store.root / first).unlink()
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        error = assert_error(test_client.get("/api/v1/sources"), 503, "store_error")
    assert str(store.root) not in str(error["message"])


# -- batches ------------------------------------------------------------------------------


def test_batches_match_the_store_newest_first(client: TestClient,
                                              loaded: tuple[Settings, AnalyticStore]) -> None:
    body = client.get("/api/v1/batches").json()
    expected = store_rows(loaded[1], """
        SELECT batch_id, source, file_name, rows_read, rows_inserted, rows_updated,
               rows_unchanged, rows_duplicate, rows_quarantined, rows_flagged
        FROM batches ORDER BY started_at DESC""")
    assert body["total"] == 3 and body["limit"] == 50 and body["offset"] == 0
    assert [i["source"] for i in body["items"]] == ["testville", "otherton", "testville"]
    for item, row in zip(body["items"], expected, strict=True):
        rows = item["rows"]
        assert (item["batch_id"], item["source"], item["file_name"]) == row[:3]
        assert (rows["read"], rows["inserted"], rows["updated"], rows["unchanged"],
                rows["duplicate"], rows["quarantined"], rows["flagged"]) == row[3:]
        assert rows["stored"] == rows["inserted"] + rows["updated"]
        assert rows["duplicates"] == rows["unchanged"] + rows["duplicate"]
        assert rows["read"] == rows["stored"] + rows["duplicates"] + rows["quarantined"]
        assert item["reconciles"] is True
    first_load = body["items"][2]["rows"]
    assert first_load == {"read": 9, "inserted": 6, "updated": 0, "unchanged": 0, "duplicate": 1,
                          "quarantined": 2, "flagged": 1, "stored": 6, "duplicates": 1}
    assert body["items"][0]["rows"]["stored"] == 0


def test_batch_items_are_an_allow_list(client: TestClient) -> None:
    item = client.get("/api/v1/batches").json()["items"][0]
    assert set(item) == {"batch_id", "source", "agency", "file_name", "file_format", "file_bytes",
                         "file_sha256", "started_at", "finished_at", "cswb_version", "rows",
                         "reconciles"}


def test_batches_paginate(client: TestClient) -> None:
    everything = [i["batch_id"] for i in client.get("/api/v1/batches").json()["items"]]
    pages = [client.get("/api/v1/batches", params={"limit": 2, "offset": offset}).json()
             for offset in (0, 2, 4)]
    assert [p["total"] for p in pages] == [3, 3, 3]
    assert [len(p["items"]) for p in pages] == [2, 1, 0]
    assert [i["batch_id"] for p in pages for i in p["items"]] == everything
    assert pages[1]["limit"] == 2 and pages[1]["offset"] == 2


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 501}, {"offset": -1},
                                    {"limit": "many"}])
def test_bad_pagination_is_a_422(client: TestClient, params: dict[str, object]) -> None:
    error = assert_error(client.get("/api/v1/batches", params=params), 422, "invalid_request")
    assert [d["parameter"] for d in error["details"]] == list(params)  # type: ignore[union-attr]


# -- sources ------------------------------------------------------------------------------


def test_sources_match_the_store(client: TestClient,
                                 loaded: tuple[Settings, AnalyticStore]) -> None:
    items = {s["source"]: s for s in client.get("/api/v1/sources").json()["items"]}
    assert list(items) == ["otherton", "testville"]
    for name, item in items.items():
        calls, first, last, flagged = store_rows(loaded[1], """
            SELECT count(*), min(local_date)::VARCHAR, max(local_date)::VARCHAR,
                   count(*) FILTER (WHERE len(dq_flags) > 0)
            FROM calls WHERE source = ?""", [name])[0]
        quarantined = store_rows(loaded[1], "SELECT count(*) FROM quarantine WHERE source = ?",
                                 [name])[0][0]
        batches = store_rows(loaded[1], "SELECT count(*), sum(rows_quarantined) FROM batches "
                                        "WHERE source = ?", [name])[0]
        assert (item["calls"], item["first_date"], item["last_date"]) == (calls, first, last)
        assert (item["quarantined"], item["flagged"]) == (quarantined, flagged)
        assert (item["batches"], item["quarantined"]) == batches
    assert items["testville"] | {"last_loaded_at": None} == {
        "source": "testville", "agency": "Testville Police", "calls": 6,
        "first_date": "2024-01-05", "last_date": "2024-04-20", "quarantined": 4, "flagged": 1,
        "batches": 2, "last_loaded_at": None}
    assert (items["otherton"]["calls"], items["otherton"]["first_date"]) == (3, "2023-12-30")


# -- calls summary ------------------------------------------------------------------------


def test_calls_summary_of_everything(client: TestClient,
                                     loaded: tuple[Settings, AnalyticStore]) -> None:
    body = client.get("/api/v1/calls/summary").json()
    by_month = dict(store_rows(loaded[1], "SELECT strftime(local_date, '%Y-%m'), count(*) "
                                          "FROM calls GROUP BY 1"))
    assert body["filter"] == {"source": None, "from": None, "to": None}
    assert body["total"] == scalar(loaded[1].connect(), "SELECT count(*) FROM calls") == 9
    assert body["months"] == [{"month": m, "calls": by_month.get(m, 0)}
                              for m in ("2023-12", "2024-01", "2024-02", "2024-03", "2024-04")]
    assert body["months"][3] == {"month": "2024-03", "calls": 0}
    assert body["call_types"][0] == {"call_type": "THEFT", "calls": 5}
    assert sum(t["calls"] for t in body["call_types"]) + body["other_call_types"] == 9
    assert body["other_call_types"] == 0


def test_calls_summary_filters(client: TestClient) -> None:
    body = client.get("/api/v1/calls/summary", params={
        "source": "testville", "from": "2024-02-01", "to": "2024-04-15", "top": 1}).json()
    assert body["filter"] == {"source": "testville", "from": "2024-02-01", "to": "2024-04-15"}
    assert body["total"] == 3
    assert [m["calls"] for m in body["months"]] == [2, 0, 1]
    assert body["call_types"] == [{"call_type": "THEFT", "calls": 2}]
    assert body["other_call_types"] == 1
    only = client.get("/api/v1/calls/summary", params={"source": "otherton"}).json()
    assert only["total"] == 3 and [m["month"] for m in only["months"]] == ["2023-12", "2024-01"]
    empty = client.get("/api/v1/calls/summary", params={"from": "2030-01-01"}).json()
    assert (empty["total"], empty["months"], empty["call_types"]) == (0, [], [])


def test_calls_summary_unknown_source_is_a_404_without_the_value(client: TestClient) -> None:
    response = client.get("/api/v1/calls/summary", params={"source": "nowhere-xyz"})
    assert_error(response, 404, "not_found")
    assert "nowhere-xyz" not in response.text


@pytest.mark.parametrize("params, names", [
    ({"from": "2024-13-45"}, ["from"]),
    ({"from": "2024-05-01", "to": "2024-01-01"}, ["from"]),
    ({"top": "0", "to": "yesterday-secret"}, ["to", "top"]),
    ({"source": "x" * 201}, ["source"]),
])
def test_calls_summary_bad_parameters_are_listed_never_echoed(
        client: TestClient, params: dict[str, str], names: list[str]) -> None:
    response = client.get("/api/v1/calls/summary", params=params)
    error = assert_error(response, 422, "invalid_request")
    assert sorted(d["parameter"] for d in error["details"]) == names  # type: ignore[union-attr]
    assert all(d["location"] == "query" for d in error["details"])  # type: ignore[union-attr]
    for value in params.values():
        assert value not in response.text


# -- privacy ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/batches", "/api/v1/sources", "/api/v1/calls/summary",
                                  "/", "/loaded", "/loaded?source=testville",
                                  "/categories", "/areas", "/response"])
def test_no_identifying_or_call_level_value_leaves_the_server(client: TestClient,
                                                              path: str) -> None:
    text = client.get(path).text
    for value in (*IDENTIFYING, "1XX MAIN ST", "0XX OAK AV", "latitude"):
        assert value not in text


# -- errors and headers -------------------------------------------------------------------


def test_unknown_path_and_method_use_the_error_shape(client: TestClient) -> None:
    assert_error(client.get("/api/v1/nothing-here"), 404, "not_found")
    assert_error(client.get("/static/missing.css"), 404, "not_found")
    response = client.delete("/api/v1/batches")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET"


def _app_with_failing_routes(settings: Settings) -> FastAPI:
    app = create_app(settings)

    def mapping_problem() -> None:
        raise MappingError("the mapping names a column the file lacks")

    def bug() -> None:
        raise RuntimeError("secret detail 555-123-4567 at 123 MAIN ST")

    app.add_api_route("/api/v1/test-mapping-error", mapping_problem)
    app.add_api_route("/api/v1/test-bug", bug)
    return app


def test_a_cswb_error_answers_with_its_code(loaded: tuple[Settings, AnalyticStore]) -> None:
    with TestClient(_app_with_failing_routes(loaded[0])) as test_client:
        error = assert_error(test_client.get("/api/v1/test-mapping-error"), 400, "mapping_error")
    assert error["message"] == "the mapping names a column the file lacks"


def test_an_unexpected_error_is_a_generic_500_and_logged(
        loaded: tuple[Settings, AnalyticStore], caplog: pytest.LogCaptureFixture) -> None:
    with TestClient(_app_with_failing_routes(loaded[0]),
                    raise_server_exceptions=False) as test_client:
        response = test_client.get("/api/v1/test-bug", params={"q": "Jane Doe"})
    error = assert_error(response, 500, "internal_error")
    assert "logged" in str(error["message"])
    for leaked in ("secret", "555-123-4567", "RuntimeError", "Jane", "File \""):
        assert leaked not in response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    logged = [r.getMessage() for r in caplog.records if "unexpected error" in r.getMessage()]
    assert len(logged) == 1 and "RuntimeError: secret detail [phone]" in logged[0]
    assert "555-123-4567" not in logged[0] and "Traceback" in logged[0]


@pytest.mark.parametrize("path", ["/", "/api/v1/health", "/api/v1/sources", "/static/cswb.css",
                                  "/api/v1/nothing", "/api/v1/docs"])
def test_security_headers_on_every_response(client: TestClient, path: str) -> None:
    headers = client.get(path).headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-eval" not in csp and "http" not in csp
    if path == "/":
        assert "script-src 'self';" in csp, "dashboard pages run plotly.js from this server only"
    elif path != "/api/v1/docs":
        assert "script-src" not in csp and "unsafe-inline" not in csp


# -- documentation ------------------------------------------------------------------------


def test_openapi_document_lists_the_endpoints_and_error_shape(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    assert spec["info"]["version"] == __version__
    assert {"/api/v1/health", "/api/v1/ready", "/api/v1/batches", "/api/v1/sources",
            "/api/v1/calls/summary"} <= set(spec["paths"])
    assert "/" not in spec["paths"]
    summary = spec["paths"]["/api/v1/calls/summary"]["get"]
    assert {p["name"] for p in summary["parameters"]} == {"source", "from", "to", "top"}
    assert summary["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ErrorResponse")


def test_docs_page_is_served_locally(client: TestClient) -> None:
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    assert "/api/v1/openapi.json" in response.text
    assert "cdn" not in response.text.lower() and "https://" not in response.text
    if client.app.state.swagger_assets is not None:  # type: ignore[attr-defined]
        assert client.get("/static/swagger-ui/swagger-ui-bundle.js").status_code == 200
        assert client.get("/static/swagger-init.js").status_code == 200


def test_docs_page_without_swagger_ui_lists_the_operations(
        loaded: tuple[Settings, AnalyticStore]) -> None:
    app = create_app(loaded[0])
    app.state.swagger_assets = None
    with TestClient(app) as test_client:
        text = test_client.get("/api/v1/docs").text
    assert "GET /api/v1/calls/summary" in text and "<th scope=\"row\"><code>from</code>" in text


# -- the page -----------------------------------------------------------------------------


def test_page_shows_sources_batches_chart_and_types(client: TestClient) -> None:
    response = client.get("/loaded")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    for expected in ("<h1>What was loaded</h1>", "testville", "otherton", "Testville Police",
                     "2024-01-05", "2024-04-20", "testville.csv", "otherton.csv",
                     "read = stored + duplicates + quarantined", "<svg", 'role="img"',
                     "<caption", '<th scope="col"', '<th scope="row"', "<main", "<nav",
                     'href="/api/v1/docs"', "THEFT", "MENTAL HEALTH", "Mar 2024",
                     '<label for="source">'):
        assert expected in html, expected
    assert 'data-month="2024-03" data-calls="0"' in html
    assert 'data-month="2024-01" data-calls="4"' in html
    assert "9 calls stored from 2 sources in 3 batches" in " ".join(html.split())


def test_page_filters_by_source(client: TestClient) -> None:
    html = client.get("/loaded", params={"source": "otherton"}).text
    assert '<option value="otherton" selected>' in html
    assert 'data-month="2023-12" data-calls="1"' in html
    assert "data-month=\"2024-04\"" not in html
    assert_error(client.get("/loaded", params={"source": "nowhere"}), 404, "not_found")


def test_page_escapes_what_it_shows(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    store = open_analytic_store(settings.resolved_store_url, settings)
    path = tmp_path / "<b>odd&.csv"
    path.write_text("id,time,nature\n1,2024-01-01 10:00:00,<script>alert(1)</script>\n",
                    encoding="utf-8")
    mapping = parse_mapping({
        "name": "oddtown", "agency": "Odd & Sons <PD>", "time_zone": "UTC", "record_id": "id",
        "timestamps": {"received_at": {"column": "time", "formats": ["%Y-%m-%d %H:%M:%S"]}},
        "fields": {"initial_call_type": "nature"}})
    ingest_file(path, mapping, store, settings)
    with TestClient(create_app(settings)) as test_client:
        html = test_client.get("/loaded").text
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;odd&amp;.csv" in html and "Odd &amp; Sons &lt;PD&gt;" in html


def test_empty_store_shows_a_friendly_page(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path))) as test_client:
        response = test_client.get("/")
        assert test_client.get("/api/v1/sources").json() == {"items": []}
        assert test_client.get("/api/v1/batches").json()["total"] == 0
        assert test_client.get("/api/v1/ready").json()["batches"] == 0
    assert response.status_code == 200
    assert "Nothing loaded yet" in response.text and "cswb ingest" in response.text


# -- the reader follows the store and serves threads ----------------------------------------


def test_new_batches_are_seen_and_concurrent_requests_work(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    store = open_analytic_store(settings.resolved_store_url, settings)
    (tmp_path / "otherton.csv").write_text(OTHERTON_CSV, encoding="utf-8")
    with TestClient(create_app(settings)) as test_client:
        assert test_client.get("/api/v1/batches").json()["total"] == 0
        ingest_file(tmp_path / "otherton.csv", mapping_otherton(), store, settings)
        assert test_client.get("/api/v1/batches").json()["total"] == 1
        statuses: list[int] = []

        def hit() -> None:
            for path in ("/api/v1/sources", "/api/v1/calls/summary", "/"):
                statuses.append(test_client.get(path).status_code)

        threads = [threading.Thread(target=hit) for _ in range(8)]
        for thread in threads:
            thread.start()
        ingest_file(tmp_path / "otherton.csv", mapping_otherton(), store, settings)
        for thread in threads:
            thread.join()
        assert statuses == [200] * 24
        assert test_client.get("/api/v1/batches").json()["total"] == 2


# -- cswb serve and cswb demo -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_cswb_serve_answers_health_as_a_real_process(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "CSWB_DATA_DIR": str(tmp_path / "var"),
           "CSWB_STORE_URL": f"duckdb:///{(tmp_path / 'store').as_posix()}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "cswb.cli.main", "serve", "--host", "127.0.0.1", "--port",
         str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline, answer = time.monotonic() + 30, None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert answer is not None, f"no answer in 30 s (exit {process.poll()})"
        assert answer.status_code == 200 and answer.json()["status"] == "ok"
        assert answer.headers["x-frame-options"] == "DENY"
        assert "server" not in answer.headers
    finally:
        process.terminate()
        try:
            output = process.communicate(timeout=15)[0].decode()
        except subprocess.TimeoutExpired:
            process.kill()
            output = process.communicate()[0].decode()
    assert f"http://127.0.0.1:{port}/" in output


MILWAUKEE_CSV = """\
id,time,nature,status,location,latitude,longitude,district
m1,2018-05-01 10:00:00,THEFT,Advised,100 N WATER ST,43.04,-87.91,1
m2,2018-05-02 11:00:00,WELFARE CITIZEN,Advised,200 N WATER ST,43.05,-87.92,1
m3,2018-05-03 12:00:00,THEFT,Referral,300 N WATER ST,43.06,-87.93,2
m4,bad time,THEFT,Advised,300 N WATER ST,43.06,-87.93,2
"""


def fake_city_writer(calls: list[dict[str, object]]) -> object:
    """Stands in for cswb.synth.write_demo_city: a small export in a built-in mapping's format."""

    def write(directory: Path, *, seed: int, years: int) -> SimpleNamespace:
        calls.append({"directory": directory, "seed": seed, "years": years})
        export = directory / "calls.csv"
        export.write_text(MILWAUKEE_CSV, encoding="utf-8")
        return SimpleNamespace(export_csv=export, mapping_name="milwaukee_2018")

    return write


def test_cswb_demo_builds_loads_and_then_reuses(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from cswb.cli import serve as serve_module
    from cswb.cli.main import app

    monkeypatch.setenv("CSWB_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CSWB_STORE_URL", f"duckdb:///{(tmp_path / 'store').as_posix()}")
    calls: list[dict[str, object]] = []
    monkeypatch.setattr(serve_module, "city_writer", lambda: fake_city_writer(calls))
    runner = CliRunner()

    first = runner.invoke(app, ["demo", "--no-serve", "--seed", "3", "--years", "1"])
    assert first.exit_code == 0, first.output
    assert calls == [{"directory": tmp_path / "var" / "demo", "seed": 3, "years": 1}]
    assert "milwaukee_2018" in first.output and "cswb serve" in first.output
    marker = json.loads((tmp_path / "var" / "demo" / serve_module.DEMO_MARKER).read_text())
    assert marker["seed"] == 3 and marker["mapping_name"] == "milwaukee_2018"

    again = runner.invoke(app, ["demo", "--no-serve", "--seed", "3", "--years", "1"])
    assert again.exit_code == 0, again.output
    assert len(calls) == 1 and "already holds the demo city" in again.output

    fresh = runner.invoke(app, ["demo", "--no-serve", "--seed", "3", "--years", "1", "--fresh"])
    assert fresh.exit_code == 0, fresh.output
    other = runner.invoke(app, ["demo", "--no-serve", "--seed", "4", "--years", "1"])
    assert other.exit_code == 0, other.output
    assert [c["seed"] for c in calls] == [3, 3, 4]

    settings = make_settings(tmp_path)
    store = open_analytic_store(settings.resolved_store_url, settings)
    assert store_rows(store, "SELECT count(*), sum(rows_read), sum(rows_inserted) "
                             "FROM batches WHERE source = 'milwaukee_2018'")[0] == (3, 12, 3)


def test_demo_loads_the_real_synthetic_city(tmp_path: Path) -> None:
    from functools import partial

    from cswb.cli.serve import city_writer, prepare_demo

    settings = make_settings(tmp_path)
    store = open_analytic_store(settings.resolved_store_url, settings)
    small_city = partial(city_writer(), calls_per_year=1500)
    first = prepare_demo(settings, store, seed=7, years=1, writer=small_city)
    assert first.batch is not None and first.batch.reconciles
    assert first.mapping_name == "synthetic_cad" and first.export_csv.is_file()
    again = prepare_demo(settings, store, seed=7, years=1, writer=small_city)
    assert again.reused
    with TestClient(create_app(settings)) as test_client:
        (source,) = test_client.get("/api/v1/sources").json()["items"]
        assert source["source"] == "synthetic_cad" and source["calls"] == first.batch.stored
        assert "synthetic_cad" in test_client.get("/loaded").text
