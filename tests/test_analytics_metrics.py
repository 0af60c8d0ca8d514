"""Metrics against hand-computed answers on small fixtures and on a real file."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest

from cswb.analytics.metrics import (
    behavioural_health,
    crime_split,
    crosstab,
    durations,
    hour_of_week,
    rates_per_1000,
    repeat_locations,
    volumes,
)
from cswb.analytics.populations import load_populations
from cswb.analytics.query import AnalyticsError, CallFilter, DuckDBEngine, SparkDialect
from cswb.analytics.trends import Window, compare_windows, dispersion, recent_change
from cswb.settings import Settings
from cswb.storage import AnalyticStore
from tests.analytics_fixtures import call, calls_engine
from tests.helpers import ingest_builtin, rows

MON = date(2024, 1, 1)  # a Monday


@pytest.fixture
def small() -> DuckDBEngine:
    return calls_engine([
        call(MON, 0, "violent_crime", ["weapon"], "North", "1XX A ST", 10, 30),
        call(MON, 0, "behavioral_health", ["mental_health"], "North", "1XX A ST", 20, 60),
        call(MON + timedelta(days=1), 13, "complaint", ["substance_use"], "South", "1XX A ST", 5),
        call(MON + timedelta(days=6), 23, "property_crime", None, "South", "2XX B ST"),
        call(MON + timedelta(days=7), None, "unknown", [], "South", None, -3),
        call(date(2024, 2, 1), 8, None, None, "East", "1XX A ST", 40, 90),
    ])


def test_volumes_by_category_shares(small: DuckDBEngine) -> None:
    t = volumes(small, CallFilter(), "category")
    assert t.public and t.notes["total_calls"] == 6
    got = {r[0]: (r[1], r[2]) for r in t.rows}
    assert got["unclassified"] == (1, 1 / 6) and got["violent_crime"] == (1, 1 / 6)
    assert sum(n for n, _ in got.values()) == 6


def test_volumes_by_flag_lists_every_flag(small: DuckDBEngine) -> None:
    t = volumes(small, CallFilter(), "flag")
    got = dict(zip(t.column("flag"), t.column("calls"), strict=True))
    assert got["weapon"] == 1 and got["mental_health"] == 1 and got["substance_use"] == 1
    assert got["suicide"] == 0 and len(got) == 11


def test_volumes_by_period_and_filters(small: DuckDBEngine) -> None:
    weeks = volumes(small, CallFilter(), "period", "week")
    assert weeks.rows[0][:2] == (MON, 4) and weeks.rows[1][:2] == (MON + timedelta(days=7), 1)
    months = volumes(small, CallFilter(area="South"), "period", "month")
    assert [r[:2] for r in months.rows] == [(date(2024, 1, 1), 3)]
    flt = CallFilter(date_from=MON, date_to=MON + timedelta(days=1), flag="substance_use")
    assert volumes(small, flt, "area").rows == [("South", 1, 1.0)]
    assert volumes(small, CallFilter(category="complaint"), "category").rows[0][1] == 1


def test_crime_split_follows_taxonomy(small: DuckDBEngine) -> None:
    got = {r[0]: r[1] for r in crime_split(small, CallFilter()).rows}
    assert got == {"crime": 2, "non_crime": 2, "unknown": 1, "unclassified": 1}


def test_behavioural_health_counts_category_or_flag(small: DuckDBEngine) -> None:
    bh = behavioural_health(small, CallFilter())
    assert (bh.calls, bh.classified, bh.bh_calls) == (6, 5, 2)
    assert (bh.bh_by_category, bh.bh_by_flag_only) == (1, 1) and bh.share == 2 / 5
    with pytest.raises(AnalyticsError, match="classified"):
        behavioural_health(small, CallFilter(area="East"))


def test_hour_of_week_has_168_cells(small: DuckDBEngine) -> None:
    t = hour_of_week(small, CallFilter())
    cells = {(d, h): n for d, h, n in t.rows}
    assert len(cells) == 168 and cells[(0, 0)] == 2 and cells[(1, 13)] == 1
    assert cells[(6, 23)] == 1 and cells[(3, 8)] == 1  # 2024-02-01 is a Thursday
    assert sum(cells.values()) == 5 and t.notes["calls_without_hour"] == 1


def test_repeat_locations_in_window(small: DuckDBEngine) -> None:
    t = repeat_locations(small, CallFilter(date_to=MON + timedelta(days=6)), min_calls=3,
                         window_days=7)
    assert t.rows == [("1XX A ST", 3, MON, MON + timedelta(days=1))] and not t.public
    wider = repeat_locations(small, CallFilter(), min_calls=3, window_days=60)
    assert wider.rows[0][:2] == ("1XX A ST", 4)
    assert repeat_locations(small, CallFilter(), min_calls=3, window_days=7).rows == []


def test_response_and_on_scene_percentiles(small: DuckDBEngine) -> None:
    t = durations(small, CallFilter(), "response")
    (_, n, usable, p50, p75, p90), = t.rows
    # usable responses 10, 20, 5, 40 (the negative one is not a duration)
    assert (n, usable) == (6, 4)
    assert p50 == 15.0 and p75 == 25.0 and p90 == pytest.approx(34.0)
    scene = durations(small, CallFilter(), "on_scene", by="area")
    got = {r[0]: r[1:4] for r in scene.rows}
    assert got["North"] == (2, 2, 45.0) and got["South"][1] == 0


def test_rates_per_1000_show_mismatched_names(small: DuckDBEngine) -> None:
    t = rates_per_1000(small, CallFilter(), {"North": 2000, "South": 1500, "West": 100})
    got = {r[0]: r[1:] for r in t.rows}
    assert got["North"] == (2, 2000, 1.0) and got["South"] == (3, 1500, 2.0)
    assert got["West"] == (0, 100, 0.0) and got["East"] == (1, None, None)
    with pytest.raises(AnalyticsError):
        rates_per_1000(small, CallFilter(), {"North": 0})


def test_crosstab_rejects_flags_and_counts_pairs(small: DuckDBEngine) -> None:
    t = crosstab(small, CallFilter(), "crime_group", "area")
    assert ("crime", "South", 1) in t.rows and sum(t.column("calls")) == 6
    with pytest.raises(AnalyticsError, match="more than once"):
        crosstab(small, CallFilter(), "flag", "area")


def test_filter_rejects_bad_values() -> None:
    with pytest.raises(AnalyticsError, match="flag"):
        CallFilter(flag="nope")
    with pytest.raises(AnalyticsError, match="area level"):
        CallFilter(area_level="house")
    with pytest.raises(AnalyticsError, match="after"):
        CallFilter(date_from=date(2024, 2, 1), date_to=date(2024, 1, 1))
    with pytest.raises(AnalyticsError, match="tier"):
        CallFilter(tier="alternative")


def test_filter_sql_is_escaped_and_spark_spellings_differ() -> None:
    where = CallFilter(area="O'Hare").where(SparkDialect())
    assert "'O''Hare'" in where
    assert "dayofweek" in SparkDialect().day_of_week("d")
    assert "unix_timestamp" in SparkDialect().seconds_between("a", "b")


def test_rate_ratio_detects_a_real_change_not_noise() -> None:
    base = [call(MON + timedelta(days=i)) for i in range(28) for _ in range(20)]
    same = [call(MON + timedelta(days=28 + i)) for i in range(28) for _ in range(21)]
    more = [call(MON + timedelta(days=28 + i)) for i in range(28) for _ in range(30)]
    recent, baseline = (Window(MON + timedelta(days=28), MON + timedelta(days=55)),
                        Window(MON, MON + timedelta(days=27)))
    flat = compare_windows(calls_engine(base + same), CallFilter(), recent, baseline)
    assert flat.verdict == "no clear change" and flat.rate_ratio == pytest.approx(1.05)
    up = compare_windows(calls_engine(base + more), CallFilter(), recent, baseline)
    assert up.verdict == "increase" and up.rate_ratio == pytest.approx(1.5)
    assert up.ci95_low is not None and up.ci95_low > 1
    auto = recent_change(calls_engine(base + more), CallFilter(), days=28)
    assert auto.recent == recent and auto.baseline == baseline


def test_dispersion_is_variance_over_mean() -> None:
    assert dispersion([[10, 10, 10]]) == 1.0
    assert dispersion([[0, 20, 0, 20]]) == pytest.approx(400 / 3 / 10)


@pytest.mark.shared_data
def test_metrics_on_a_real_file(shared_data: Path, store: AnalyticStore,
                                settings: Settings) -> None:
    ingest_builtin(store, settings, "seattle_beat_c3",
                   shared_data / "calls/seattle_beat_c3/db_call_data_2018-2023.csv")
    raw = rows(store, "SELECT local_date, local_hour, received_at, arrived_at FROM calls")
    con = store.connect()
    engine = DuckDBEngine(con)
    try:
        years = volumes(engine, CallFilter(), "period", "month")
        assert sum(years.column("calls")) == len(raw) == 222
        by_month = Counter(d.replace(day=1) for d, *_ in raw)
        assert dict(zip(years.column("period"), years.column("calls"), strict=True)) == by_month
        how = hour_of_week(engine, CallFilter())
        expected = Counter((d.weekday(), h) for d, h, *_ in raw if h is not None)
        assert {(d, h): n for d, h, n in how.rows if n} == expected
        resp = durations(engine, CallFilter(), "response").rows[0]
        mins = sorted((a - r).total_seconds() / 60 for _, _, r, a in raw
                      if r and a and 0 <= (a - r).total_seconds() <= 86400)
        assert resp[2] == len(mins)
        assert resp[3] == pytest.approx(_median(mins), abs=0.01)
    finally:
        con.close()


def _median(values: list[float]) -> float:
    n = len(values)
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


def test_populations_file_is_checked(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("area,population\nNorth,2000\n", encoding="utf-8")
    assert load_populations(good) == {"North": 2000}
    for name, text, problem in [("cols.csv", "hood,people\nA,1\n", "needs columns"),
                                ("num.csv", "name,population\nA,many\n", "line 2"),
                                ("neg.csv", "name,population\nA,0\n", "positive"),
                                ("short.csv", "name,population\nA\n", "line 2"),
                                ("twice.csv", "area,population\nA,1\nA,2\n", "twice"),
                                ("quote.csv", 'area,population\n"A,1\n', "malformed"),
                                ("latin1.csv", "area,population\nMont\xe9al,1\n",
                                 "not UTF-8")]:
        path = tmp_path / name
        path.write_text(text, encoding="latin-1" if name == "latin1.csv" else "utf-8")
        with pytest.raises(AnalyticsError, match=problem):
            load_populations(path)
    with pytest.raises(AnalyticsError, match=r"cannot read .*absent\.csv: No such file"):
        load_populations(tmp_path / "absent.csv")
