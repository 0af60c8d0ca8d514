"""The synthetic city: determinism, seasonality, repeat addresses, truth, geography, clock."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from cswb.ingest.timezones import to_utc
from cswb.synth import build_city, write_export
from cswb.synth.calls import ONVIEW, CallBatch
from cswb.synth.city import City
from cswb.synth.clock import DAY, LocalClock
from cswb.synth.geography import inside_polygon, neighbourhood_geojson
from cswb.synth.vocab import TAXONOMY_CATEGORIES, TAXONOMY_FLAGS, load_vocabulary


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _concat(batches: list[CallBatch]) -> dict[str, np.ndarray]:
    return {name: np.concatenate([getattr(b, name) for b in batches])
            for name in CallBatch.__dataclass_fields__}


@pytest.fixture(scope="module")
def city() -> City:
    return build_city(7)


@pytest.fixture(scope="module")
def calls(city: City) -> dict[str, np.ndarray]:
    """300,000 calls over three years, as arrays."""
    return _concat(list(city.calls(300_000, years=3, chunk_calls=100_000)))


@pytest.fixture(scope="module")
def local(city: City, calls: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Local hour, weekday (Monday 0) and month of every call's received time."""
    wall = city.clock(3).wall(calls["received"])
    dates = np.datetime64("1970-01-01", "D") + (wall // DAY).astype("timedelta64[D]")
    return {"hour": (wall % DAY) // 3600, "weekday": ((wall // DAY) + 3) % 7,
            "month": dates.astype("datetime64[M]").astype(np.int64) % 12 + 1}


# -- determinism ----------------------------------------------------------------------------


def test_same_seed_writes_the_same_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    paths = {}
    for name, seed in (("a", 11), ("b", 11), ("c", 12)):
        paths[name] = tmp_path / f"{name}.csv"
        write_export(build_city(seed), paths[name], 20_000, years=2, chunk_calls=7_000,
                     truth_path=tmp_path / f"{name}.parquet")
    assert _sha256(paths["a"]) == _sha256(paths["b"])
    assert _sha256(paths["a"]) != _sha256(paths["c"])
    assert (tmp_path / "a.faults.json").read_text() == (tmp_path / "b.faults.json").read_text()
    assert _sha256(tmp_path / "a.parquet") == _sha256(tmp_path / "b.parquet")


def test_chunking_does_not_change_the_total_or_the_numbering(city: City) -> None:
    one = _concat(list(city.calls(30_000, years=1, chunk_calls=1_000_000)))
    many = _concat(list(city.calls(30_000, years=1, chunk_calls=2_000)))
    assert len(one["received"]) == len(many["received"]) == 30_000
    for calls in (one, many):
        assert np.all(np.diff(calls["received"]) >= 0)
        assert np.array_equal(calls["sequence"], np.arange(1, 30_001))


# -- seasonality ----------------------------------------------------------------------------


def test_hours_have_a_night_trough_and_an_afternoon_peak(local: dict[str, np.ndarray]) -> None:
    by_hour = np.bincount(local["hour"], minlength=24)
    assert by_hour.argmin() in (3, 4, 5, 6)
    assert 14 <= by_hour.argmax() <= 19
    assert by_hour[17] > 2.0 * by_hour[5]


def test_fridays_are_busier_than_sundays_and_tuesdays(local: dict[str, np.ndarray]) -> None:
    by_day = np.bincount(local["weekday"], minlength=7)
    assert by_day[4] > 1.06 * by_day[6]
    assert by_day[4] > 1.06 * by_day[1]


def test_summer_is_busier_than_late_winter(local: dict[str, np.ndarray]) -> None:
    by_month = np.bincount(local["month"], minlength=13)
    per_day = {m: by_month[m] / days for m, days in ((2, 28.33), (7, 31))}
    assert per_day[7] > 1.15 * per_day[2]


def test_volume_grows_mildly_from_year_to_year(city: City, calls: dict[str, np.ndarray]) -> None:
    by_year = np.bincount(calls["year"] - calls["year"].min())
    assert by_year[0] < by_year[1] < by_year[2] < 1.12 * by_year[0]


def test_weekend_nights_are_busier_than_weekday_nights(local: dict[str, np.ndarray]) -> None:
    night = local["hour"] <= 2
    weekend = local["weekday"] >= 5
    assert (night & weekend).sum() / 2 > 1.2 * (night & ~weekend).sum() / 5


# -- places ---------------------------------------------------------------------------------


def test_a_few_addresses_make_many_calls(city: City, calls: dict[str, np.ndarray]) -> None:
    per_site = np.sort(np.bincount(calls["site"], minlength=len(city.sites)))[::-1]
    top_one_percent = per_site[: len(per_site) // 100].sum() / per_site.sum()
    assert 0.15 < top_one_percent < 0.45
    assert per_site[0] > 500
    assert (per_site == 0).sum() > 0.1 * len(per_site), "many addresses never call"


def test_neighbourhoods_tile_the_city(city: City) -> None:
    hoods, frame = city.neighbourhoods, city.frame
    assert 20 <= len(hoods) <= 30
    assert len(set(hoods.names)) == len(hoods)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, frame.width_m, 50_000), rng.uniform(0, frame.height_m, 50_000)
    hits = sum(inside_polygon(x, y, ring).astype(int) for ring in hoods.polygons)
    assert np.all(hits == 1), "every point of the city lies in exactly one neighbourhood"
    site_x = (city.sites.longitude - frame.west) * frame.metres_per_degree_lon
    assert np.all(city.sites.neighbourhood >= 0)
    assert np.all((site_x > 0) & (site_x < frame.width_m))


def test_neighbourhood_geojson_is_closed_counterclockwise_lon_lat(city: City) -> None:
    collection = neighbourhood_geojson(city.frame, city.neighbourhoods)
    bounds = city.frame.bounds(margin_m=0.0)
    for feature in collection["features"]:  # type: ignore[union-attr]
        ring = np.array(feature["geometry"]["coordinates"][0])
        assert np.array_equal(ring[0], ring[-1])
        area = 0.5 * np.sum(ring[:-1, 0] * ring[1:, 1] - ring[1:, 0] * ring[:-1, 1])
        assert area > 0
        assert ring[:, 0].min() >= bounds["min_longitude"] - 1e-3
        assert ring[:, 1].max() <= bounds["max_latitude"] + 1e-3
        assert feature["properties"]["population"] > 0


def test_addresses_read_like_a_grid_city(city: City) -> None:
    pattern = r"^[0-9]+ [NSEW] ([0-9]+(ST|ND|RD|TH) ST|[A-Z ]+ AVE)$"
    assert all(np.char.str_len(city.sites.address) < 40)
    import re

    assert all(re.match(pattern, a) for a in city.sites.address[:2_000])
    assert all(" / " in i for i in city.sites.intersection[:2_000])


# -- truth ----------------------------------------------------------------------------------


def test_vocabulary_uses_taxonomy_codes_and_mixes_cad_styles() -> None:
    types = load_vocabulary().call_types
    assert len(types) >= 120
    assert set(types.category) <= set(TAXONOMY_CATEGORIES)
    assert {f for flags in types.flags for f in flags} <= set(TAXONOMY_FLAGS)
    for name in ("TRBL W/SUBJ", "121C_Mental Disordr NonViolent",
                 "--CRISIS COMPLAINT - GENERAL", "PERSON IN BEHAVIORAL/EMOTIONAL CRISIS",
                 "DISTURBANCE-NOISE", "MVA W/INJ", "WELFARE CHECK"):
        assert name in types.names
    assert all("suicide" not in f or "mental_health" in f for f in types.flags)


def test_call_mix_is_realistic(city: City, calls: dict[str, np.ndarray]) -> None:
    category = np.array(city.vocabulary.call_types.category)[calls["final_type"]]
    share = {c: float(np.mean(category == c)) for c in set(category)}
    for big in ("traffic", "officer_status", "complaint", "suspicion"):
        assert share[big] > 0.07, big
    assert share["violent_crime"] < 0.02
    assert 0.005 < share["behavioral_health"] < 0.025
    assert np.mean(calls["origin"] == ONVIEW) > 0.2


def test_mental_health_and_substance_use_are_mostly_filed_elsewhere(
        city: City, calls: dict[str, np.ndarray]) -> None:
    """Most MH/SU calls are welfare checks, disturbances, suspicious or intoxicated persons,
    person down or medical; a minority is filed under explicit crisis types."""
    types = city.vocabulary.call_types
    category = np.array(types.category)[calls["final_type"]]
    behavioural = calls["need"] > 0
    assert 0.05 < behavioural.mean() < 0.12
    filed = {c: int(n) for c, n in zip(*np.unique(category[behavioural], return_counts=True),
                                       strict=True)}
    explicit = filed.get("behavioral_health", 0) / behavioural.sum()
    assert 0.05 < explicit < 0.35
    assert sum(1 for n in filed.values() if n / behavioural.sum() > 0.03) >= 5
    for usual in ("assist_public", "complaint", "suspicion", "liquor", "medical"):
        assert filed[usual] / behavioural.sum() > 0.03, usual


def test_times_follow_the_call(city: City, calls: dict[str, np.ndarray]) -> None:
    from cswb.synth.calls import NO_TIME

    dispatched, arrived, cleared = calls["dispatched"], calls["arrived"], calls["cleared"]
    sent = dispatched != NO_TIME
    assert np.all(dispatched[sent] >= calls["received"][sent])
    came = arrived != NO_TIME
    assert np.all(arrived[came] >= dispatched[came])
    assert np.all(cleared > calls["received"])
    p1, p4 = calls["priority"] == 1, calls["priority"] == 4
    queue = dispatched - calls["received"]
    public = sent & (calls["origin"] != ONVIEW)
    assert np.median(queue[public & p1]) * 4 < np.median(queue[public & p4])
    travel = arrived[came & public] - dispatched[came & public]
    assert np.mean(travel) > 1.15 * np.median(travel), "travel times are right-skewed"


# -- clock ----------------------------------------------------------------------------------


def test_clock_renders_and_reads_wall_time_like_zoneinfo() -> None:
    clock = LocalClock("America/Chicago", date(2023, 1, 1), date(2023, 12, 31))
    tz = ZoneInfo("America/Chicago")
    instants = np.concatenate([np.arange(1678608000 - 7200, 1678608000 + 7200, 600),
                               np.arange(1699167600 - 7200, 1699167600 + 7200, 600)])
    walls = clock.wall(instants)
    for instant, wall in zip(instants, walls, strict=True):
        local = datetime.fromtimestamp(int(instant), UTC).astimezone(tz).replace(tzinfo=None)
        assert local == datetime.fromtimestamp(int(wall), UTC).replace(tzinfo=None)
    read = clock.read_wall(walls)
    for wall, utc in zip(walls, read, strict=True):
        expected, _ = to_utc("America/Chicago",
                             datetime.fromtimestamp(int(wall), UTC).replace(tzinfo=None))
        assert int(expected.timestamp()) == utc
    assert not clock.skipped(walls).any()
    assert clock.repeated(walls).sum() == 12
