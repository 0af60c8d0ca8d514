"""Every real file in ../shared/data/calls and the crisis-team file, through its built-in mapping.

Counts reconcile; timestamps land in the right zone (daylight-saving edges included);
placeholders become nulls; duplicates are recognised; locations are generalised; sample rows map
as a person reading the file would map them.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from cswb.settings import Settings
from cswb.storage import AnalyticStore
from tests.helpers import ingest_builtin, one, rows

pytestmark = pytest.mark.shared_data

HOUSE_NUMBER = re.compile(r"^\d*[0-9](?!X)\d* ")


def call(store: AnalyticStore, source: str, record_id: str) -> dict[str, object]:
    con = store.connect()
    cur = con.execute("SELECT * FROM calls WHERE source = ? AND source_record_id = ?",
                      [source, record_id])
    names = [d[0] for d in cur.description]
    found = cur.fetchall()
    con.close()
    assert len(found) == 1, (source, record_id, found)
    return dict(zip(names, found[0], strict=True))


def assert_generalised(store: AnalyticStore, source: str) -> None:
    locations = [r[0] for r in rows(store, "SELECT DISTINCT location FROM calls WHERE source = ? "
                                           "AND location IS NOT NULL", [source])]
    exact = [loc for loc in locations if HOUSE_NUMBER.match(loc)]
    assert not exact, exact[:5]
    coords = rows(store, "SELECT latitude, longitude FROM calls WHERE source = ? AND latitude IS "
                         "NOT NULL", [source])
    assert all(round(lat, 3) == lat and round(lon, 3) == lon for lat, lon in coords)


def test_milwaukee(shared_data: Path, store: AnalyticStore, settings: Settings) -> None:
    path = shared_data / "calls/milwaukee_2018/data.csv"
    s = ingest_builtin(store, settings, "milwaukee_2018", path)
    assert s.reconciles and s.rows_read == 33_968 and s.inserted == 33_968
    assert s.quarantined == 0 and s.duplicate == 0
    first = call(store, "milwaukee_2018", "1211372")
    # 2018-05-01 00:10:28 Central Daylight Time is 05:10:28 UTC
    assert first["received_at"] == datetime(2018, 5, 1, 5, 10, 28, tzinfo=UTC)
    assert first["local_date"] == date(2018, 5, 1) and first["local_hour"] == 0
    assert first["location"] == "52XX N 35TH ST"
    assert (first["latitude"], first["longitude"]) == (43.113, -87.957)
    assert first["call_type"] == "TRBL W/SUBJ" and first["district"] == "4"
    assert first["disposition_group"] == "unable_to_locate"
    assert first["source_row"] == 1 and first["received_precision"] == "second"
    assert call(store, "milwaukee_2018", "1211384")["location"] == "30XX N 28TH ST"  # 3017-A
    # geocodes with a positive longitude are outside any bound: nulled and flagged
    positive = one(store, "SELECT count(*) FROM call_quality WHERE source = 'milwaukee_2018' "
                          "AND field = 'longitude' AND TRY_CAST(original AS DOUBLE) > 0")
    assert positive == 10
    assert one(store, "SELECT count(*) FROM calls WHERE longitude > 0") == 0
    assert not rows(store, "SELECT location FROM calls WHERE location LIKE '**%' "
                           "OR location LIKE '%,MKE'")
    assert_generalised(store, "milwaukee_2018")


def test_seattle_beat_c3(shared_data: Path, store: AnalyticStore, settings: Settings) -> None:
    s = ingest_builtin(store, settings, "seattle_beat_c3",
                       shared_data / "calls/seattle_beat_c3/db_call_data_2018-2023.csv")
    assert s.reconciles and s.rows_read == 222 and s.inserted == 222  # no newline after last row
    c = call(store, "seattle_beat_c3", "2023000319821")
    # 11/04/2023 6:08:26 PM Pacific Daylight Time
    assert c["received_at"] == datetime(2023, 11, 5, 1, 8, 26, tzinfo=UTC)
    assert c["arrived_at"] == datetime(2023, 11, 5, 1, 51, 6, tzinfo=UTC)
    assert c["local_date"] == date(2023, 11, 4) and c["local_hour"] == 18
    assert c["origin"] == "911" and c["priority"] == 2 and c["priority_raw"] == "2"
    assert c["initial_call_type"] == "BURN - RECKLESS BURNING"
    assert c["call_type"] == "--SUSPICIOUS CIRCUM. - SUSPICIOUS PERSON"
    assert c["disposition_group"] == "unable_to_locate"
    assert (c["district"], c["sector"], c["beat"]) == ("EAST", "CHARLIE", "C3")
    onview = call(store, "seattle_beat_c3", "2023000154966")
    assert onview["origin"] == "officer_initiated" and onview["priority"] == 4
    assert one(store, "SELECT count(*) FROM calls WHERE source = 'seattle_beat_c3' "
                      "AND arrived_at IS NULL") == 36
    assert one(store, "SELECT count(*) FROM calls WHERE source = 'seattle_beat_c3' "
                      "AND arrived_at < received_at") == 0


def test_seattle_mad_beach_is_date_only(shared_data: Path, store: AnalyticStore,
                                        settings: Settings) -> None:
    path = shared_data / "calls/seattle_beat_c3/potential_mad_beach_calls_2010-2023.csv"
    s = ingest_builtin(store, settings, "seattle_mad_beach", path)
    assert s.reconciles and s.inserted == 2_706 and s.flagged == 0
    c = call(store, "seattle_mad_beach", "2024000130659")
    assert c["received_precision"] == "day" and c["local_hour"] is None
    assert c["local_date"] == date(2024, 5, 14)
    assert c["attributes"] == {"broad_category": "theft"}
    assert one(store, "SELECT count(*) FROM calls WHERE source = 'seattle_mad_beach' "
                      "AND local_hour IS NOT NULL") == 0


def test_seattle_2015_duplicates_and_fall_back(shared_data: Path, store: AnalyticStore,
                                               settings: Settings) -> None:
    path = shared_data / "calls/seattle_2015/seattle_2015_911_incident_response.csv"
    s = ingest_builtin(store, settings, "seattle_2015", path)
    assert s.reconciles and s.rows_read == 91_067
    assert s.duplicate == 782 and s.inserted == 91_067 - 782
    # 1 November 2015: 01:00-01:59 happened twice; the first (PDT, UTC-7) is taken and flagged
    ambiguous = rows(store, "SELECT DISTINCT q.original, c.arrived_at FROM call_quality q "
                            "JOIN calls c USING (call_id) WHERE q.problem = "
                            "'ambiguous_local_time'")
    assert len(ambiguous) > 0
    for original, arrived in ambiguous:
        assert original.startswith("11/1/15 1:")
        minute = int(original.split(":")[1])
        assert arrived == datetime(2015, 11, 1, 8, minute, tzinfo=UTC)
    assert one(store, "SELECT count(*) FROM calls WHERE arrived_precision <> 'minute'") == 0
    assert one(store, "SELECT min(local_date) FROM calls") == date(2015, 1, 1)
    # the file is valid UTF-8 holding old mojibake: it must not be decoded again
    assert s.encoding == "utf-8"
    assert one(store, "SELECT count(*) FROM calls WHERE location LIKE '%BLOCK OF%'") == 0
    assert one(store, "SELECT count(*) FROM calls WHERE origin = 'officer_initiated'") > 0
    assert_generalised(store, "seattle_2015")


def test_stlouis(shared_data: Path, store: AnalyticStore, settings: Settings) -> None:
    path = shared_data / "calls/stlouis_2021/cfsraw.csv"
    s = ingest_builtin(store, settings, "stlouis_2021", path)
    assert s.reconciles and s.inserted == 56
    c = call(store, "stlouis_2021", "P2007280856")
    assert c["received_at"] == datetime(2021, 1, 29, 2, 24, 14, tzinfo=UTC)  # CST, UTC-6
    assert c["location"] == "11XX BATES ST" and c["call_type"] == "Suspicious Person (Specify)"
    assert call(store, "stlouis_2021", "P2007280848")["location"] == \
        "WINNEBAGO ST / NEBRASKA AVE"
    assert call(store, "stlouis_2021", "P2007290301")["location"] == "XX S EUCLID AVE"


@pytest.mark.parametrize("file_name", ["MCSLC.xlsx", "dispatches.csv"])
def test_crisis_team(file_name: str, shared_data: Path, store: AnalyticStore,
                     settings: Settings) -> None:
    path = shared_data / "crisis_teams/lane_county_mcslc" / file_name
    s = ingest_builtin(store, settings, "lane_county_mcslc", path)
    assert s.reconciles and s.rows_read == 4_682
    assert s.file_format == ("excel" if file_name.endswith("xlsx") else "csv")
    assert s.quarantined == s.reasons.get("no_call_type", 0) + s.reasons.get("no_usable_time", 0)
    first = call(store, "lane_county_mcslc", "12236")
    # arrival and engagement at exactly 00:00:00 mean "not recorded"
    assert first["arrived_at"] is None
    assert "arrived_at:placeholder" in first["dq_flags"]
    assert first["received_at"] == datetime(2025, 5, 12, 20, 29, tzinfo=UTC)  # PDT
    assert first["cleared_at"] == datetime(2025, 5, 12, 21, 3, tzinfo=UTC)
    assert first["initial_call_type"] == ("Harm/risk of harm to self/others/property; "
                                          "Disorganized behavior; Agitation or disruptive behavior")
    assert first["received_precision"] == "minute" and first["district"] == "Eugene"
    # the departure dated 2005 is out of order: nulled, flagged, its original value kept
    kept = rows(store, "SELECT original FROM call_quality WHERE field = 'cleared_at' "
                       "AND problem = 'out_of_order' AND original LIKE '2005-%'")
    assert kept == [("2005-05-23 01:01:00",)]
    # no stored call has a later step before an earlier one (at the declared minute precision)
    assert one(store, """
        SELECT count(*) FROM (SELECT date_trunc('minute', received_at) AS r,
            date_trunc('minute', dispatched_at) AS d, date_trunc('minute', arrived_at) AS a,
            date_trunc('minute', cleared_at) AS c FROM calls)
        WHERE d < r OR a < greatest(r, d) OR c < greatest(r, d, a)""") == 0
    # placeholders counted in stored and quarantined rows equal the file's 00:00:00 times
    placeholders = one(store, "SELECT count(*) FROM call_quality WHERE problem = 'placeholder'")
    in_quarantine = one(store, """
        SELECT count(*) FROM (SELECT unnest(map_entries(record)) AS e FROM quarantine)
        WHERE e.key IN ('Dispatch Request Date & Time', 'Dispatch Date & Time',
                        'Arrival on Scene Date & Time', 'MCIT Departure Date & Time')
          AND e.value LIKE '% 00:00:00'""")
    assert placeholders + in_quarantine == _midnights(path)


def _midnights(path: Path) -> int:
    """00:00:00 times in the four timestamp columns of the CSV export (read independently)."""
    import csv

    csv_path = path.with_name("dispatches.csv")
    columns = ("Dispatch Request Date & Time", "Dispatch Date & Time",
               "Arrival on Scene Date & Time", "MCIT Departure Date & Time")
    with open(csv_path, encoding="utf-8", newline="") as handle:
        return sum(1 for row in csv.DictReader(handle) for c in columns
                   if (row[c] or "").endswith(" 00:00:00"))


def test_crisis_team_xlsx_and_csv_agree(shared_data: Path, store: AnalyticStore,
                                        settings: Settings) -> None:
    folder = shared_data / "crisis_teams/lane_county_mcslc"
    ingest_builtin(store, settings, "lane_county_mcslc", folder / "MCSLC.xlsx")
    again = ingest_builtin(store, settings, "lane_county_mcslc", folder / "dispatches.csv")
    # the same records in another format: every one recognised as already stored, unchanged
    assert again.unchanged == again.rows_read - again.quarantined and again.updated == 0
