"""Roll-ups answer every counting metric exactly as the calls view does, for any filter."""

from __future__ import annotations

import random
from datetime import date, timedelta
from functools import cache
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cswb.analytics import disclosure, metrics
from cswb.analytics.forecast import ForecastSpec, call_counts
from cswb.analytics.query import AREA_LEVELS, FLAGS, AnalyticsError, CallFilter, DuckDBEngine
from cswb.analytics.rollup import (
    CALLS,
    Rollups,
    hour_column,
    rollup_name,
    source_for,
    whole_months,
)
from cswb.analytics.tables import MetricTable
from cswb.analytics.trends import recent_change
from cswb.api import create_app
from cswb.api.reader import StoreReader
from cswb.settings import Settings, load_settings
from cswb.storage import AnalyticStore
from cswb.storage.sql import run
from tests.analytics_fixtures import call, calls_engine, store_with_calls

FIRST = date(2024, 1, 1)
DAYS = 70
CATEGORIES = ("behavioral_health", "violent_crime", "traffic", "medical", "unknown", None)
HOODS = ("North", "South", "East", None)
SOURCES = ("cad_a", "cad_b")


def random_calls(count: int, seed: int) -> list[dict[str, Any]]:
    """Calls spread over days, hours (some missing), categories (some unclassified), flag
    lists (none, empty, several), four area levels (some missing) and two sources."""
    rng = random.Random(seed)
    calls = []
    for _ in range(count):
        row = call(FIRST + timedelta(days=rng.randrange(DAYS)),
                   rng.choice([*range(24), None]), rng.choice(CATEGORIES),
                   rng.choice([None, [], [rng.choice(FLAGS)], rng.sample(FLAGS, 2)]),
                   rng.choice(HOODS))
        hood = row["neighbourhood"] or "x"
        row.update(district=rng.choice([f"D-{hood}", None]), sector=rng.choice(["S1", "S2"]),
                   beat=rng.choice(["B1", "B2", "B3", None]), source=rng.choice(SOURCES))
        calls.append(row)
    return calls


@cache
def engines() -> tuple[DuckDBEngine, DuckDBEngine]:
    """The same ``calls`` table read raw, and through roll-ups built in its database."""
    raw = calls_engine(random_calls(1500, seed=4))

    def execute(sql: str) -> None:
        run(raw.con, sql)

    return raw, DuckDBEngine(raw.con, Rollups(execute, version=1))


any_day = st.dates(FIRST - timedelta(days=40), FIRST + timedelta(days=DAYS + 40))
dates = st.one_of(st.none(), any_day,
                  any_day.map(lambda d: d.replace(day=1)),  # whole months: the monthly roll-up
                  any_day.map(lambda d: d.replace(day=1) - timedelta(days=1)))


@st.composite
def filters(draw: st.DrawFn) -> CallFilter:
    first, last = draw(dates), draw(dates)
    if first and last and first > last:
        first, last = last, first
    return CallFilter(
        date_from=first, date_to=last,
        area=draw(st.sampled_from([None, None, "North", "South", "D-East", "S2", "B1", "nowhere"])),
        area_level=draw(st.sampled_from(AREA_LEVELS)),
        category=draw(st.sampled_from([None, None, *CATEGORIES[:-1], "no_such"])),
        flag=draw(st.sampled_from([None, None, *FLAGS])),
        source=draw(st.sampled_from([None, None, *SOURCES])))


def answers(engine: DuckDBEngine, flt: CallFilter) -> list[Any]:
    """Every counting metric under ``flt`` (an error counts as an answer: its message)."""
    out: list[Any] = [metrics.total_calls(engine, flt)]
    calls: list[Any] = [
        *(lambda by=by: metrics.volumes(engine, flt, by) for by in metrics.DIMENSIONS),
        *(lambda g=g: metrics.volumes(engine, flt, "period", g) for g in ("day", "week")),
        lambda: metrics.crosstab(engine, flt, "category", "area"),
        lambda: metrics.crosstab(engine, flt, "period", "crime_group", "week"),
        lambda: metrics.behavioural_health(engine, flt),
        lambda: metrics.hour_of_week(engine, flt),
        lambda: metrics.rates_per_1000(engine, flt, {"North": 900, "B1": 40, "S1": 7}),
        lambda: recent_change(engine, flt, 14),
        lambda: recent_change(engine, flt, 7, "year_before"),
        lambda: call_counts(engine, ForecastSpec("category", "day", 7,
                                                 area_level=flt.area_level), flt).to_dict("list"),
    ]
    for compute in calls:
        try:
            out.append(compute())
        except AnalyticsError as exc:
            out.append(f"error: {exc}")
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flt=filters())
def test_rollups_give_the_calls_view_answers(flt: CallFilter) -> None:
    raw, rolled = engines()
    assert source_for(raw, flt) == CALLS
    assert source_for(rolled, flt).relation == rollup_name(flt.area_level,
                                                           flags=flt.flag is not None)
    assert source_for(rolled, flt, months=True).monthly == whole_months(flt)
    expected, got = answers(raw, flt), answers(rolled, flt)
    assert got == expected
    for want, have in zip(expected, got, strict=True):
        if isinstance(want, MetricTable) and want.public:
            for threshold in (3, 10):
                assert disclosure.publish(have, threshold) == disclosure.publish(want, threshold)


def test_rollups_are_smaller_than_calls_and_count_every_call() -> None:
    raw, rolled = engines()
    assert rolled.rollups is not None
    metrics.hour_of_week(rolled, CallFilter(area_level="beat"))
    assert rollup_name("beat", flags=False) in rolled.rollups.built()
    hours = " + ".join(hour_column(h) for h in range(24))
    for name in [n for n in rolled.rollups.built() if n.startswith("rollup_beat")]:
        rows, calls, by_hour = run(raw.con, f"SELECT count(*), sum(n_calls), "
                                            f"sum({hours} + n_no_hour) FROM {name}")[0]
        assert calls == by_hour == 1500 and rows < 1500
    assert run(raw.con, f"SELECT count(*) FROM {rollup_name('beat', flags=False)}")[0][0] < \
        run(raw.con, f"SELECT count(*) FROM {rollup_name('beat')}")[0][0]


def test_an_unknown_level_has_no_rollup() -> None:
    with pytest.raises(AnalyticsError, match="no roll-up"):
        rollup_name("postcode")


def _reader(store: AnalyticStore, settings: Settings, **overrides: Any) -> StoreReader:
    merged = load_settings(**{**settings.model_dump(), **overrides})
    return StoreReader(AnalyticStore(store.root, merged))


def test_reader_rollups_follow_the_store_version(settings: Settings,
                                                 store: AnalyticStore) -> None:
    store_with_calls(store, random_calls(200, seed=1))
    reader = _reader(store, settings)
    with reader.cursor_and_rollups() as (cur, rollups):
        assert rollups is not None and rollups.version == 1
        engine = DuckDBEngine(cur, rollups)
        assert metrics.total_calls(engine, CallFilter()) == 200
        assert rollups.built() == [rollup_name("neighbourhood", flags=False),
                                   rollup_name("neighbourhood"),
                                   rollup_name("neighbourhood", flags=False, monthly=True)]
    store_with_calls(store, random_calls(50, seed=2))  # a new batch: a new version
    with reader.cursor_and_rollups() as (cur, rollups):
        assert rollups is not None and rollups.version == 2 and rollups.built() == []
        assert metrics.total_calls(DuckDBEngine(cur, rollups), CallFilter()) == 250
    restarted = _reader(store, settings)  # a new server: loads the version's cached roll-ups
    with restarted.cursor_and_rollups() as (cur, rollups):
        assert rollups is not None and rollups.cache is not None
        monthly = rollup_name("neighbourhood", flags=False, monthly=True)
        assert sorted(p.name for p in rollups.cache.iterdir()) == [
            f"{rollup_name('neighbourhood', flags=False)}.parquet",
            f"{rollup_name('neighbourhood')}.parquet", f"{monthly}.parquet"]
        assert metrics.total_calls(DuckDBEngine(cur, rollups), CallFilter()) == 250
        assert rollups.built() == [monthly]  # loaded alone: nothing rebuilt from the calls
        assert len(list(rollups.cache.parent.iterdir())) == 1  # version 1's folder is gone
    uncached = _reader(store, settings, api_rollup_cache=False)
    with uncached.cursor_and_rollups() as (cur, rollups):
        assert rollups is not None and rollups.cache is None
    off = _reader(store, settings, api_rollups=False)
    with off.cursor_and_rollups() as (cur, rollups):
        assert rollups is None
        assert metrics.total_calls(DuckDBEngine(cur, rollups), CallFilter()) == 250


def test_api_answers_the_same_with_and_without_rollups(settings: Settings,
                                                      store: AnalyticStore) -> None:
    store_with_calls(store, random_calls(400, seed=3))
    bodies = []
    for on in (True, False):
        merged = load_settings(**{**settings.model_dump(), "api_rollups": on})
        with TestClient(create_app(merged)) as client:
            bodies.append([client.get(path, params=params).json() for path, params in [
                ("/api/v1/metrics/volumes", {"by": "category", "from": "2024-01-10"}),
                ("/api/v1/metrics/volumes", {"by": "flag", "area": "North"}),
                ("/api/v1/metrics/hour-of-week", {"category": "medical"}),
                ("/api/v1/metrics/behavioural-health", {}),
                ("/api/v1/metrics/crime-split", {"to": "2024-02-01"}),
            ]])
    assert bodies[0] == bodies[1]
    assert all("error" not in body for body in bodies[0])


def test_commands_that_commit_prepare_the_new_versions_rollups(
        tmp_path: Any, settings: Settings, store: AnalyticStore) -> None:
    """After `cswb ingest` (and `classify apply`) the next server loads roll-ups, not builds."""
    from typer.testing import CliRunner

    from cswb.cli.main import app
    from tests.test_classify_store import export

    env = {"CSWB_DATA_DIR": str(settings.data_dir), "CSWB_STORE_URL": settings.resolved_store_url}
    path = export(tmp_path / "a.csv", 1, 300)
    mapping = tmp_path / "m.yaml"
    mapping.write_text(_MAPPING_YAML, encoding="utf-8")
    done = CliRunner().invoke(app, ["ingest", str(path), "--mapping", str(mapping), "--quiet"],
                              env=env)
    assert done.exit_code == 0, done.output
    reader = StoreReader(store)
    with reader.cursor_and_rollups() as (cur, rollups):
        assert rollups is not None and rollups.cache is not None
        prepared = sorted(p.name for p in rollups.cache.iterdir())
        assert f"{rollup_name('neighbourhood')}.parquet" in prepared
        assert metrics.total_calls(DuckDBEngine(cur, rollups), CallFilter()) == 300
        assert rollups.built() == [rollup_name("neighbourhood", flags=False, monthly=True)]


_MAPPING_YAML = """
name: overlap
agency: Test Police
time_zone: America/New_York
file: {format: csv, delimiter: ","}
record_id: event
timestamps:
  received_at: {column: received, formats: ["%m/%d/%Y %I:%M:%S %p"]}
fields: {initial_call_type: type, disposition_raw: dispo, location: address}
"""
