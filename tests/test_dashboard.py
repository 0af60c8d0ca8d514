"""The dashboard's pages over a small synthetic city: status, filters, CSV, suppression."""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from cswb.api import create_app
from cswb.web.dashboard import PAGES, dashboard_engine
from cswb.web.panel import SUPPRESSED, Column, Panel, display
from cswb.web.suppression import suppress_grid, suppress_one_way
from tests.dashboard_fixtures import LoadedCity, classified_engine, load_city
from tests.helpers import one

THRESHOLD = 10


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> LoadedCity:
    return load_city(tmp_path_factory.mktemp("dashboard"))


@pytest.fixture(scope="module")
def client(city: LoadedCity) -> Iterator[TestClient]:
    """The app over the city's store, its calls carrying the truth's categories and flags."""
    engine = classified_engine(city)
    app = create_app(city.settings)
    app.dependency_overrides[dashboard_engine] = lambda: type(engine)(engine.con.cursor())
    with TestClient(app) as test_client:
        yield test_client


def section(page: str, panel_id: str) -> str:
    match = re.search(rf'<section class="panel card" id="{panel_id}".*?</section>', page, re.S)
    assert match, f"no panel {panel_id}"
    return match.group(0)


def table_rows(panel_html: str) -> list[list[str]]:
    body = re.search(r"<tbody>(.*?)</tbody>", panel_html, re.S)
    assert body
    return [[html.unescape(c.strip()) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)]


def csv_rows(client: TestClient, panel_id: str, query: str = "") -> list[list[str]]:
    response = client.get(f"/dashboard/data/{panel_id}.csv{query}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    return list(csv.reader(io.StringIO(response.text)))


@pytest.mark.parametrize("page", PAGES, ids=[p.slug for p in PAGES])
def test_every_page_renders_with_landmarks_and_the_suppression_statement(
        client: TestClient, page) -> None:  # type: ignore[no-untyped-def]
    response = client.get(page.path)
    assert response.status_code == 200, response.text
    text = response.text
    assert f"<h1>{page.title}</h1>" in text
    for landmark in ("<main", 'aria-label="Main"', 'aria-label="Dashboard pages"',
                     '<label for="f-area">', '<label for="f-from">', 'id="suppression"'):
        assert landmark in text, landmark
    assert f"Counts from 1 to\n  {THRESHOLD - 1} are suppressed" in text
    assert 'href="/loaded"' in text


def test_home_page_has_at_least_three_charts_with_tables_and_csv(client: TestClient) -> None:
    text = client.get("/").text
    figures = re.findall(r'data-figure="plot-(\w+)"', text)
    assert len(figures) >= 3
    for panel_id in figures:
        part = section(text, panel_id)
        assert 'role="img"' in part and "Table view" in part
        assert f'href="/dashboard/data/{panel_id}.csv"' in part
    assert "Behavioural-health share" in text and "Median response time" in text
    assert '<script src="/static/vendor/plotly.min.js"' in text
    assert "cdn" not in text.lower()


def test_filters_are_carried_in_every_page_link_and_download(client: TestClient) -> None:
    query = ("?from=2024-03-01&to=2024-08-31&area=Old+Town&flag=mental_health"
             "&tier=civilian_crisis")
    text = client.get("/time" + query).text
    for page in PAGES:
        assert f'href="{page.path}{html.escape(query)}"' in text, page.path
    for panel_id in ("hour_of_week", "weekly", "change"):
        assert f'href="/dashboard/data/{panel_id}.csv{html.escape(query)}"' in text
    assert '<option value="Old Town" selected>' in text
    assert '<option value="mental_health" selected>' in text
    assert 'value="2024-03-01"' in text and 'value="2024-08-31"' in text
    assert '<option value="civilian_crisis" selected>' in text


def test_tier_filter_keeps_the_calls_the_policy_gives_that_tier(client: TestClient) -> None:
    def categories(query: str) -> dict[str, str]:
        return {r[0]: r[1] for r in csv_rows(client, "categories", query)[1:]}

    every, crisis = categories(""), categories("?tier=civilian_crisis")
    assert set(crisis) < set(every) and "Behavioral health" in crisis
    assert "Property crime" not in crisis and "Traffic" not in crisis
    tiers = {r[0]: r[1] for r in csv_rows(client, "scenario", "?tier=police")[1:]}
    assert all(n in ("0", SUPPRESSED) for t, n in tiers.items() if t != "Police")


@pytest.mark.parametrize(("path", "panel_id"), [("/categories", "categories"),
                                                ("/", "monthly"), ("/areas", "areas"),
                                                ("/response", "response_times"),
                                                ("/time", "hour_of_week")])
def test_csv_equals_the_table_view(client: TestClient, path: str, panel_id: str) -> None:
    query = "?area=Old+Town&from=2024-02-01&to=2024-05-31"
    shown = table_rows(section(client.get(path + query).text, panel_id))
    header, *rows = csv_rows(client, panel_id, query)
    assert len(rows) == len(shown) > 0
    for table_row, csv_row in zip(shown, rows, strict=True):
        assert [c.replace(",", "").removesuffix("%").replace("-", "")
                for c in table_row] == [c.replace("-", "") for c in csv_row]
    assert header[0] in {"category", "month", "area", "day"}


def test_a_filter_changes_the_numbers(client: TestClient) -> None:
    def calls(query: str) -> int:
        return sum(int(n) for _, n in csv_rows(client, "monthly", query)[1:] if n != SUPPRESSED)

    everything, old_town = calls(""), calls("?area=Old+Town")
    assert 0 < old_town < everything
    spring = csv_rows(client, "monthly", "?from=2024-03-01&to=2024-05-31")[1:]
    assert [m for m, _ in spring] == ["2024-03", "2024-04", "2024-05"]


def _published_counts(rows: list[list[str]], column: int) -> list[str]:
    return [r[column] for r in rows]


def test_small_counts_never_leave_the_server(client: TestClient) -> None:
    query = "?area=Old+Town&flag=mental_health"
    for panel_id, column in (("categories", 1), ("monthly", 1), ("areas", 1), ("flags", 1),
                             ("hour_of_week", 2), ("bh_monthly", 1)):
        _, *rows = csv_rows(client, panel_id, query)
        values = _published_counts(rows, column)
        numbers = [int(v) for v in values if v not in (SUPPRESSED, "")]
        assert all(n == 0 or n >= THRESHOLD for n in numbers), (panel_id, numbers)
        assert SUPPRESSED in values or not any(0 < n < THRESHOLD for n in numbers)
    _, *rows = csv_rows(client, "categories", query)
    hidden = [r for r in rows if r[1] == SUPPRESSED]
    assert len(hidden) != 1, "a lone suppressed cell could be derived from the total"
    assert all(r[2] == SUPPRESSED for r in hidden), "a share would reveal a suppressed count"
    page = client.get("/categories" + query).text
    assert "suppressed" in section(page, "categories")


def test_map_is_drawn_from_the_boundaries_without_tiles(client: TestClient,
                                                        city: LoadedCity) -> None:
    text = client.get("/areas").text
    part = section(text, "areas")
    assert '<svg class="map"' in part and 'aria-label="Map of calls per 1,000 residents' in part
    assert part.count('<path d="M') == 24
    assert "Old Town" in part and "tile" not in part.lower()
    rows = csv_rows(client, "areas")[1:]
    assert all(float(r[3]) > 0 for r in rows if r[3] not in (SUPPRESSED, ""))


def test_bad_filters_get_a_clear_page_not_a_traceback(client: TestClient) -> None:
    for query, words in (("?from=2024-13-01", "'from' filter"), ("?flag=bogus", "'flag'"),
                         ("?category=crime", "'category'"), ("?tier=swat", "'tier'"),
                         ("?from=2024-05-01&to=2024-01-01", "after the 'to' date")):
        response = client.get("/categories" + query)
        assert response.status_code == 400
        assert words in html.unescape(response.text) and "Traceback" not in response.text
    response = client.get("/dashboard/data/monthly.csv?flag=bogus")
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_filter"
    assert client.get("/dashboard/data/nothing.csv").status_code == 404


def test_forecast_page_draws_intervals_and_the_backtest(client: TestClient) -> None:
    text = client.get("/forecasts").text
    part = section(text, "forecast")
    assert 'data-figure="plot-forecast"' in part and "80% interval" in part
    header, *rows = csv_rows(client, "forecast")
    assert header == ["date", "mean", "lo_80", "hi_80", "lo_95", "hi_95"] and len(rows) == 84
    for row in rows:
        mean, lo80, hi80, lo95, hi95 = map(float, row[1:])
        assert lo95 <= lo80 <= mean <= hi80 <= hi95
    backtest = csv_rows(client, "backtest")[1:]
    assert {r[0] for r in backtest} >= {"SeasonalNaive", "AutoETS"}
    assert sum(r[2] == "yes" for r in backtest) == 1
    narrow = client.get("/forecasts?area=Old+Town&flag=suicide").text
    assert "Too few calls per day to forecast publicly" in narrow


def test_response_page_shows_the_policy_scenario_and_staffing(client: TestClient) -> None:
    text = client.get("/response").text
    assert "would go to a response other than police" in section(text, "scenario")
    header, *tiers = csv_rows(client, "scenario")
    assert header == ["tier", "calls", "share_percent", "unit_hours"]
    assert {t[0] for t in tiers} >= {"Police", "Civilian crisis", "Community service"}
    published = [int(t[1]) for t in tiers if t[1] != SUPPRESSED]
    assert all(n == 0 or n >= THRESHOLD for n in published)
    _, *hours = csv_rows(client, "staffing")
    assert len(hours) == 168 and all(int(h[2]) >= 0 for h in hours)
    assert "team-hours a week" in section(text, "staffing")


def test_plotly_is_served_by_cswb(client: TestClient) -> None:
    response = client.get("/static/vendor/plotly.min.js")
    assert response.status_code == 200 and "plotly" in response.text[:2000].lower()


def test_unclassified_store_explains_instead_of_failing(tmp_path: Path) -> None:
    unclassified = load_city(tmp_path, calls=3000, classify=False)
    with TestClient(create_app(unclassified.settings)) as plain:
        text = plain.get("/behavioural-health").text
        overview = plain.get("/").text
        plain_response = plain.get("/response").text
    assert "classify them first" in text
    assert "classify the calls first" in plain_response
    assert "not yet" in overview and "Not classified yet" in overview


def test_empty_store_shows_a_helpful_page(tmp_path: Path, city: LoadedCity) -> None:
    settings = city.settings.model_copy(update={
        "store_url": f"duckdb:///{(tmp_path / 'empty').as_posix()}"})
    with TestClient(create_app(settings)) as empty:
        for page in PAGES:
            response = empty.get(page.path)
            assert response.status_code == 200
            assert "Nothing loaded yet" in response.text


# -- the suppression rules ------------------------------------------------------------------

counts = st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=12)


@settings(deadline=None)  # linear programmes: no timing in tests
@given(counts)
def test_one_way_suppression_hides_small_cells_and_never_leaves_one_derivable(
        values: list[int]) -> None:
    result = suppress_one_way(values, THRESHOLD)
    assert all(h for v, h in zip(values, result.hidden, strict=True) if 0 < v < THRESHOLD)
    hidden_nonzero = [v for v, h in zip(values, result.hidden, strict=True) if h]
    if not result.total_hidden:
        assert len(hidden_nonzero) != 1


@settings(deadline=None)
@given(st.lists(st.lists(st.integers(min_value=0, max_value=30), min_size=4, max_size=4),
                min_size=2, max_size=6))
def test_grid_suppression_protects_every_row_and_column(grid: list[list[int]]) -> None:
    result = suppress_grid(grid, THRESHOLD)
    for r, row in enumerate(grid):
        assert all(result.hidden[r][c] for c, v in enumerate(row) if 0 < v < THRESHOLD)
        if not result.row_total_hidden[r]:
            assert sum(result.hidden[r]) != 1
    for c in range(4):
        if not result.column_total_hidden[c]:
            assert sum(result.hidden[r][c] for r in range(len(grid))) != 1


def test_the_served_dashboard_uses_roll_ups_and_the_tier_filter_still_restricts(
        city: LoadedCity) -> None:
    """No engine override: the app's own engine (cursor + the version's roll-ups) is used."""
    with TestClient(create_app(city.settings)) as served:
        def total(query: str) -> int:
            """Calls shown (suppressed cells, and their complements, are left out)."""
            rows = csv_rows(served, "categories", query)[1:]
            return sum(int(r[1]) for r in rows if r[1] not in ("", SUPPRESSED))

        every, crisis = total(""), total("?tier=civilian_crisis")
        stored = one(city.store, "SELECT count(*) FROM calls")
        assert 0.99 * stored <= every <= stored
        assert 0 < crisis < every
        assert crisis <= one(city.store, "SELECT count(*) FROM calls WHERE category = "
                                         "'behavioral_health' OR list_has_any(flags, "
                                         "['mental_health', 'suicide', 'substance_use', "
                                         "'welfare', 'homelessness'])")


def test_text_cells_from_an_export_cannot_run_as_spreadsheet_formulas() -> None:
    text, count = Column("call_type", "Call type", "text"), Column("calls", "Calls")
    rows = [("=HYPERLINK(\"http://x\",\"y\")", 12), ("--CRISIS COMPLAINT - GENERAL", 7),
            ("@SUM(A1)", 5), ("+1", 3), ("THEFT", 40)]
    panel = Panel("t", "T", "", (text, count), rows)
    written = [r[0] for r in csv.reader(io.StringIO(panel.csv_text()))][1:]
    assert written == ["'=HYPERLINK(\"http://x\",\"y\")", "'--CRISIS COMPLAINT - GENERAL",
                       "'@SUM(A1)", "'+1", "THEFT"]
    # the page shows the text itself (escaped by the template), without the apostrophe
    assert [display(text, r[0]) for r in rows] == [r[0] for r in rows]
