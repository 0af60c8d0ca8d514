"""The metrics and forecast endpoints against a small store with classified calls."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cswb.api import create_app
from cswb.domain.cases import AgencyKind, Role
from cswb.security.accounts import create_agency, create_user, issue_token
from cswb.security.principal import SYSTEM, Actor
from cswb.settings import Settings, load_settings
from cswb.storage import AnalyticStore
from tests.analytics_fixtures import call, store_with_calls

DAY = date(2024, 3, 4)


def city_calls() -> list[dict[str, object]]:
    calls = []
    for i in range(60):
        day = DAY + timedelta(days=i % 30)
        calls.append(call(day, i % 24, "complaint", [], "North", "1XX A ST", 8 + i % 5, 20))
        calls.append(call(day, 3, "violent_crime", ["weapon"], "South", "2XX B ST", 6, 40))
    calls += [call(DAY, 14, "behavioral_health", ["mental_health"], "South", "3XX C ST", 12)
              for _ in range(3)]
    calls += [call(DAY, 15, "medical", ["substance_use"], "North") for _ in range(12)]
    return calls


def client_for(settings: Settings, **overrides: object) -> TestClient:
    merged = load_settings(**{**settings.model_dump(), **overrides})
    return TestClient(create_app(merged), raise_server_exceptions=False)


@pytest.fixture
def client(settings: Settings, store: AnalyticStore, tmp_path: Path) -> Iterator[TestClient]:
    store_with_calls(store, city_calls())
    pops = tmp_path / "pops.csv"
    pops.write_text("name,population\nNorth,12000\nSouth,3000\n", encoding="utf-8")
    with client_for(settings, populations_path=pops) as c:
        yield c


def test_volumes_are_suppressed_with_a_total(client: TestClient) -> None:
    body = client.get("/api/v1/metrics/volumes", params={"by": "category"}).json()
    rows = {r[0]: r[1] for r in body["rows"]}
    assert rows["complaint"] == 60 and rows["violent_crime"] == 60 and rows["total"] == 135
    assert rows["behavioral_health"] is None  # 3 calls: below 10
    assert rows["medical"] is None  # its complement: otherwise 135 - 60 - 60 - 12 = 3
    assert body["public"] and body["notes"]["hidden_primary"] == 1


def test_shared_filter_applies(client: TestClient) -> None:
    body = client.get("/api/v1/metrics/volumes", params={
        "by": "area", "from": DAY.isoformat(), "to": DAY.isoformat(), "flag": "weapon"}).json()
    # two calls with a weapon that day, both in the South: the total would reveal them too
    assert body["rows"] == [["South", None, None], ["total", None, None]]
    assert body["notes"]["hidden_primary"] == 2 and "total_calls" not in body["notes"]
    south = client.get("/api/v1/metrics/volumes", params={"by": "category", "area": "South"})
    assert {r[0]: r[1] for r in south.json()["rows"]}["violent_crime"] == 60


def test_pagination_and_period(client: TestClient) -> None:
    first = client.get("/api/v1/metrics/volumes",
                       params={"by": "period", "grain": "day", "limit": 5}).json()
    assert first["total_rows"] == 31 and len(first["rows"]) == 5  # 30 days and the total
    second = client.get("/api/v1/metrics/volumes",
                        params={"by": "period", "grain": "day", "limit": 5, "offset": 5}).json()
    assert first["rows"][0][0] == DAY.isoformat() and second["rows"][0][0] != first["rows"][0][0]


def test_crosstab_crime_split_bh_and_hour_of_week(client: TestClient) -> None:
    cross = client.get("/api/v1/metrics/crosstab", params={"rows": "crime_group",
                                                           "cols": "area"}).json()
    cells = {(a, b): n for a, b, n in cross["rows"]}
    assert cells[("total", "total")] == 135 and cells[("crime", "North")] == 0  # zeros shown
    # 3 non-crime calls in the South: hidden, with a complement in its row and in its column
    assert cells[("non_crime", "South")] is None and cells[("crime", "South")] is None
    split = {r[0]: r[1] for r in client.get("/api/v1/metrics/crime-split").json()["rows"]}
    assert split["crime"] == 60 and split["non_crime"] == 75
    bh = client.get("/api/v1/metrics/behavioural-health").json()
    parts = {r[0]: r[1] for r in bh["rows"]}
    assert parts["bh_by_category"] is None and parts["bh_by_flag_only"] is None
    assert bh["notes"]["bh_share"] is None
    how = client.get("/api/v1/metrics/hour-of-week").json()
    assert {(a, b): n for a, b, n in how["rows"]}[("total", "total")] == 135


def test_rates_and_change(client: TestClient) -> None:
    rates = {r[0]: r[1:] for r in client.get("/api/v1/metrics/rates").json()["rows"]}
    assert rates["North"] == [72, 12000, 6.0] and rates["South"] == [63, 3000, 21.0]
    change = client.get("/api/v1/metrics/change", params={"days": 14}).json()
    assert change["verdict"] in {"increase", "decrease", "no clear change"}
    assert change["recent"] == [(DAY + timedelta(days=16)).isoformat(),
                                (DAY + timedelta(days=29)).isoformat()]


def test_analyst_metrics_need_a_signed_in_analyst(client: TestClient,
                                                   settings: Settings) -> None:
    anonymous = client.get("/api/v1/metrics/repeat-locations")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthenticated"
    platform = client.app.state.platform  # type: ignore[attr-defined]
    tokens = {}
    with platform.store.session() as session:
        create_agency(session, "police", "Riverton Police Service", AgencyKind.POLICE)
        for role in (Role.ANALYST, Role.NAVIGATOR):
            user = create_user(session, Actor(SYSTEM, "test"), f"{role.value}.one",
                               agency_code="police", role=role)
            tokens[role] = issue_token(session, user, "bearer", platform.settings)
    other = client.get("/api/v1/metrics/repeat-locations",
                       headers={"Authorization": f"Bearer {tokens[Role.NAVIGATOR]}"})
    assert other.status_code == 403 and other.json()["error"]["code"] == "forbidden"
    analyst = {"Authorization": f"Bearer {tokens[Role.ANALYST]}"}
    rep = client.get("/api/v1/metrics/repeat-locations", headers=analyst,
                     params={"min_calls": 20, "window_days": 30}).json()
    assert [r[:2] for r in rep["rows"]] == [["1XX A ST", 60], ["2XX B ST", 60]]
    resp = client.get("/api/v1/metrics/response-times", headers=analyst,
                      params={"by": "category"}).json()
    got = {r[0]: r for r in resp["rows"]}
    assert got["violent_crime"][1:4] == [60, 60, 6.0]
    assert resp["public"] is False


def test_response_times_are_public_after_suppression(client: TestClient) -> None:
    """One rule with the dashboard: anyone gets the times, suppressed; an analyst gets them
    whole (test above); a bad token is refused, not taken as anonymous."""
    public = client.get("/api/v1/metrics/response-times", params={"by": "category"})
    assert public.status_code == 200
    body = public.json()
    assert body["public"] is True
    got = {r[0]: r for r in body["rows"]}
    assert got["violent_crime"][1:4] == [60, 60, 6.0]  # 60 calls: above the threshold
    # the small categories (and their complement) are hidden, times included
    assert got["medical"][1:] == got["behavioral_health"][1:] == [None] * 5
    for row in body["rows"]:
        if row[1] is not None and row[1] < 10:
            raise AssertionError(f"a small cell was published: {row}")
        if row[2] is not None and row[2] < 10:
            assert row[3:] == [None] * len(row[3:])
    bad = client.get("/api/v1/metrics/response-times",
                     headers={"Authorization": "Bearer cswb_000000000000_nope"})
    assert bad.status_code == 401


def test_bad_filters_answer_in_the_error_shape(client: TestClient) -> None:
    for params in ({"flag": "nope"}, {"by": "planet"}, {"tier": "x"},
                   {"from": "2024-03-05", "to": "2024-03-01"}, {"area_level": "house"}):
        r = client.get("/api/v1/metrics/volumes", params=params)
        assert r.status_code == 400, params
        assert r.json()["error"]["code"] == "analytics_error"
    assert client.get("/api/v1/metrics/volumes", params={"from": "x"}).status_code == 422


def test_forecast_endpoint(client: TestClient) -> None:
    body = client.get("/api/v1/forecast", params={"horizon": "7d", "limit": 3}).json()
    assert body["columns"] == ["series", "ds", "mean", "lo_80", "hi_80", "lo_95", "hi_95"]
    assert body["total_rows"] == 7 and len(body["rows"]) == 3
    assert body["reports"][0]["series"] == "total"
    by_cat = client.get("/api/v1/forecast", params={"horizon": "7d", "by": "category"}).json()
    assert {r["series"] for r in by_cat["reports"]} == {"total", "complaint", "violent_crime",
                                                        "behavioral_health", "medical"}


def test_rates_need_populations(settings: Settings, store: AnalyticStore) -> None:
    store_with_calls(store, city_calls())
    with client_for(settings) as plain:
        r = plain.get("/api/v1/metrics/rates")
        assert r.status_code == 400 and "populations_path" in r.json()["error"]["message"]


def test_scenario_endpoint_is_suppressed_and_adds_up(client: TestClient) -> None:
    body = client.get("/api/v1/scenario").json()
    assert body["public"] and body["columns"] == ["tier", "calls", "share", "unit_hours"]
    rows = {r[0]: r[1:] for r in body["rows"]}
    assert rows["total"][0] == 135
    assert rows["civilian_crisis"] == [None, None, None]  # 3 calls: below 10, hidden whole
    shown = [r[1] for r in body["rows"] if r[0] != "total" and r[1] is not None]
    hidden = [r[0] for r in body["rows"] if r[0] != "total" and r[1] is None]
    assert sum(shown) < 135 and len(hidden) >= 2  # a complement hides the 3 with another
    assert body["notes"]["policy"] == "cswb-default"
    narrowed = client.get("/api/v1/scenario", params={"area": "North"}).json()
    assert {r[0]: r[1] for r in narrowed["rows"]}["total"] == 72
    assert client.get("/api/v1/scenario", params={"tier": "police"}).status_code == 400
