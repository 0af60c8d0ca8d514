"""Class keys: one hash of a call's classification inputs, the same at ingest and at read."""

from __future__ import annotations

from pathlib import Path

from cswb.settings import Settings
from cswb.storage import AnalyticStore
from tests.helpers import ingest_with, rewrite_parquet, rows
from tests.test_ingest_batches import MAPPING, export


def test_calls_sharing_inputs_share_a_class_key(tmp_path: Path, store: AnalyticStore,
                                                settings: Settings) -> None:
    ingest_with(store, settings, MAPPING, export(tmp_path / "a.csv", 1, 400))
    keys = rows(store, "SELECT initial_call_type, disposition_raw, count(DISTINCT class_key) "
                       "FROM calls GROUP BY ALL")
    assert len(keys) == 37  # TYPE 0..36, one disposition
    assert all(n == 1 for *_, n in keys)
    assert rows(store, "SELECT count(DISTINCT class_key) FROM calls") == [(37,)]


def test_a_file_without_stored_keys_reads_the_same_keys(tmp_path: Path, store: AnalyticStore,
                                                        settings: Settings) -> None:
    """Call files written before class keys were stored get the same keys computed on read."""
    ingest_with(store, settings, MAPPING, export(tmp_path / "a.csv", 1, 300))
    before = rows(store, "SELECT call_id, class_key FROM calls ORDER BY call_id")
    assert all(key is not None for _, key in before)
    manifest = store.read_manifest()
    for entry in manifest.files("calls"):
        rewrite_parquet(store.root / entry["path"], "* EXCLUDE (class_key)")
        entry["columns"] = [c for c in entry["columns"] if c != "class_key"]
    store.manifest_path.write_text(manifest.to_json(), encoding="utf-8")
    assert rows(store, "SELECT call_id, class_key FROM calls ORDER BY call_id") == before
