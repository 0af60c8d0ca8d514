"""The docs are current and their examples work."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import yaml

from cswb.docs import PAGES
from cswb.ingest.mapping import parse_mapping
from cswb.ingest.pipeline import ingest_file
from cswb.settings import Settings
from cswb.storage import AnalyticStore
from tests.helpers import one, rows

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_generated_pages_are_current() -> None:
    stale = [relpath for relpath, build in PAGES.items()
             if not (DOCS / relpath).exists() or (DOCS / relpath).read_text("utf-8") != build()]
    assert not stale, f"run `make docs` (python -m cswb.docs): {stale} are out of date"


def _blocks(page: str, language: str) -> list[str]:
    text = (DOCS / page).read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def test_mapping_worked_example(tmp_path: Path, store: AnalyticStore,
                                settings: Settings) -> None:
    (csv_text,) = _blocks("mappings.md", "csv")
    (yaml_text,) = _blocks("mappings.md", "yaml")
    path = tmp_path / "riverton-week-10.csv"
    path.write_text(csv_text, encoding="utf-8")
    summary = ingest_file(path, parse_mapping(yaml.safe_load(yaml_text)), store, settings)
    assert summary.reconciles
    assert (summary.rows_read, summary.inserted, summary.duplicate, summary.quarantined) == \
        (5, 3, 1, 1)
    assert summary.reasons == {"no_usable_time": 1}
    first = rows(store, "SELECT received_at, arrived_at, location FROM calls "
                        "WHERE source_record_id = 'R-24-000101'")
    assert first == [(datetime(2024, 3, 10, 7, 58, tzinfo=UTC),
                      datetime(2024, 3, 10, 8, 20, tzinfo=UTC), "14XX CEDAR AVE")]
    second = rows(store, "SELECT location, received_at, dq_flags, disposition_group, origin "
                         "FROM calls WHERE source_record_id = 'R-24-000102'")
    assert second == [("0XX RIVER RD", datetime(2024, 3, 10, 8, 30, tzinfo=UTC),
                       ["received_at:nonexistent_local_time"], "transport", "911")]
    assert one(store, "SELECT origin FROM calls WHERE source_record_id = 'R-24-000103'") == \
        "officer_initiated"
    assert one(store, "SELECT count(*) FROM quarantine WHERE record['Caller Phone'] IS NOT NULL"
               ) == 0
