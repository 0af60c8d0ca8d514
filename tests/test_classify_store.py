"""Classification in the store: once per class at ingest, re-classified by ``classify apply``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cswb.classify import load_classifier
from cswb.classify.overrides import set_override
from cswb.classify.store import apply_classifier, review_list
from cswb.classify.taxonomy import load_taxonomy
from cswb.errors import StoreError
from cswb.settings import Settings
from cswb.storage import AnalyticStore
from tests.helpers import ingest_with, one, rewrite_parquet, rows
from tests.test_ingest_batches import MAPPING

TYPES = ["DOMESTIC DISTURBANCE", "SUICIDAL PERSON", "THEFT FROM AUTO", "TRAFFIC STOP",
         "NOISE COMPLAINT", "OVERDOSE", "ZZQX 77"]


def export(path: Path, first: int, last: int) -> Path:
    """Events ``first..last`` cycling through :data:`TYPES` and two dispositions."""
    lines = ["event,received,type,dispo,address"]
    for i in range(first, last + 1):
        dispo = "REPORT WRITTEN" if i % 2 else "ASSISTANCE RENDERED"
        lines.append(f"E{i:06d},03/{1 + i % 28:02d}/2022 {1 + i % 12}:{i % 60:02d}:00 AM,"
                     f"{TYPES[i % len(TYPES)]},{dispo},{i % 900 + 100} ELM ST")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_ingest_classifies_each_class_once_and_every_call_reads_its_class(
        tmp_path: Path, store: AnalyticStore, settings: Settings) -> None:
    first = ingest_with(store, settings, MAPPING, export(tmp_path / "a.csv", 1, 700))
    assert first.classes_added == len(TYPES) * 2
    assert one(store, "SELECT count(*) FROM call_classes") == len(TYPES) * 2
    assert one(store, "SELECT count(*) FROM calls WHERE category IS NULL") == 0
    by_type = dict(rows(store, "SELECT DISTINCT initial_call_type, category FROM calls"))
    assert by_type["SUICIDAL PERSON"] == "behavioral_health"
    assert by_type["THEFT FROM AUTO"] == "property_crime"
    assert by_type["TRAFFIC STOP"] == "traffic"
    flags = dict(rows(store, "SELECT DISTINCT initial_call_type, flags FROM calls"))
    assert "suicide" in flags["SUICIDAL PERSON"] and "mental_health" in flags["SUICIDAL PERSON"]
    assert "substance_use" in flags["OVERDOSE"]
    assert "domestic" in flags["DOMESTIC DISTURBANCE"]
    # an overlapping export brings no class the store has not seen
    second = ingest_with(store, settings, MAPPING, export(tmp_path / "b.csv", 500, 900))
    assert second.classes_added == 0
    assert one(store, "SELECT count(*) FROM call_classes") == len(TYPES) * 2


def test_officer_initiated_calls_carry_the_flag(tmp_path: Path, store: AnalyticStore,
                                                settings: Settings) -> None:
    mapping = {**MAPPING, "fields": {**MAPPING["fields"], "origin_raw": "how"},
               "value_maps": {"origin": {"values": {"ONVIEW": "officer_initiated",
                                                    "911": "911"}}}}
    path = tmp_path / "o.csv"
    path.write_text("event,received,type,dispo,address,how\n"
                    "E1,03/01/2022 1:00:00 AM,TRAFFIC STOP,CITED,100 ELM ST,ONVIEW\n"
                    "E2,03/01/2022 2:00:00 AM,TRAFFIC STOP,CITED,100 ELM ST,911\n",
                    encoding="utf-8")
    ingest_with(store, settings, mapping, path)
    flags = dict(rows(store, "SELECT source_record_id, flags FROM calls"))
    assert "officer_initiated" in flags["E1"]
    assert "officer_initiated" not in (flags["E2"] or [])
    assert one(store, "SELECT count(*) FROM call_classes") == 1


def test_an_override_then_apply_changes_only_its_classes_and_no_call_file(
        tmp_path: Path, store: AnalyticStore, settings: Settings) -> None:
    ingest_with(store, settings, MAPPING, export(tmp_path / "a.csv", 1, 700))
    call_files = store.read_manifest().files("calls")
    before = dict(rows(store, "SELECT class_key, category FROM call_classes"))
    set_override(settings.resolved_overrides_path, load_taxonomy(), source="overlap",
                 call_type="ZZQX 77", category="assist_public", flags="welfare")
    summary = apply_classifier(store, load_classifier(settings))
    assert summary.classes == summary.reclassified == len(TYPES) * 2
    assert summary.changed == 2  # ZZQX 77 with its two dispositions
    assert summary.calls_changed == one(
        store, "SELECT count(*) FROM calls WHERE initial_call_type = 'ZZQX 77'")
    assert store.read_manifest().files("calls") == call_files
    after = dict(rows(store, "SELECT class_key, category FROM call_classes"))
    assert {k for k in after if after[k] != before[k]} == set(
        k for (k,) in rows(store, "SELECT DISTINCT class_key FROM calls "
                                  "WHERE initial_call_type = 'ZZQX 77'"))
    assert rows(store, "SELECT DISTINCT category, flags, decided_by FROM calls "
                       "WHERE initial_call_type = 'ZZQX 77'") == [
        ("assist_public", ["welfare"], "override")]
    version = store.read_manifest().version
    again = apply_classifier(store, load_classifier(settings))
    assert (again.reclassified, again.changed, again.added) == (0, 0, 0)
    assert store.read_manifest().version == version  # nothing to do: nothing written


def test_apply_classifies_calls_ingested_without_classification(
        tmp_path: Path, store: AnalyticStore, settings: Settings) -> None:
    quiet = settings.model_copy(update={"classify_at_ingest": False})
    ingest_with(store, quiet, MAPPING, export(tmp_path / "a.csv", 1, 100))
    assert one(store, "SELECT count(*) FROM calls WHERE category IS NULL") == 100
    summary = apply_classifier(store, load_classifier(settings))
    assert summary.added == len(TYPES) * 2
    assert one(store, "SELECT count(*) FROM calls WHERE category IS NULL") == 0


def test_review_lists_unknown_classes_with_their_calls(tmp_path: Path, store: AnalyticStore,
                                                        settings: Settings) -> None:
    ingest_with(store, settings, MAPPING, export(tmp_path / "a.csv", 1, 700))
    listed = review_list(store).to_pylist()
    assert listed, "ZZQX 77 means nothing: it must be listed for review"
    assert all(r["calls"] >= 1 for r in listed)
    assert [r["calls"] for r in listed] == sorted((r["calls"] for r in listed), reverse=True)
    assert {r["call_type"] for r in listed} >= {"ZZQX 77"}
    everything = review_list(store, include_all=True, limit=0).to_pylist()
    assert len(review_list(store, include_all=True, limit=1)) == 1
    assert sum(r["calls"] for r in everything) == 700


def test_a_class_key_collision_is_refused(tmp_path: Path, store: AnalyticStore,
                                          settings: Settings) -> None:
    """Two different classes under one 64-bit key would mix them: the batch is refused."""
    ingest_with(store, settings, MAPPING, export(tmp_path / "a.csv", 1, 14))
    classes = store.read_manifest().files("call_classes")
    rewrite_parquet(store.root / classes[0]["path"],
                    "* REPLACE ('SOMETHING ELSE' AS initial_call_type)")
    digest = rows(store, "SELECT count(*) FROM calls")
    with pytest.raises(StoreError, match="collision"):
        ingest_with(store, settings, MAPPING, export(tmp_path / "b.csv", 15, 28))
    assert rows(store, "SELECT count(*) FROM calls") == digest


NARRATIVE_MAPPING = {**MAPPING, "fields": {**MAPPING["fields"], "narrative": "notes"}}


def write_narratives(path: Path) -> Path:
    path.write_text(
        "event,received,type,dispo,address,notes\n"
        "E1,03/01/2022 1:00:00 AM,NOISE COMPLAINT,ADVISED,100 ELM ST,"
        "\"caller says neighbour is suicidal, has a knife\"\n"
        "E2,03/01/2022 2:00:00 AM,NOISE COMPLAINT,ADVISED,100 ELM ST,loud music\n"
        "E3,03/01/2022 3:00:00 AM,NOISE COMPLAINT,ADVISED,100 ELM ST,\n",
        encoding="utf-8")
    return path


def test_narratives_add_their_flags_to_the_calls_that_have_them(
        tmp_path: Path, store: AnalyticStore, settings: Settings) -> None:
    ingest_with(store, settings, NARRATIVE_MAPPING, write_narratives(tmp_path / "n.csv"))
    got = {r: (nf, f) for r, nf, f in rows(
        store, "SELECT source_record_id, narrative_flags, flags FROM calls")}
    assert set(got["E1"][0]) == {"suicide", "mental_health", "weapon"}
    assert set(got["E1"][1]) >= {"suicide", "mental_health", "weapon"}
    assert got["E2"][0] == [] and got["E3"][0] is None
    # one class for the three calls: the narrative's flags are the call's own
    assert one(store, "SELECT count(*) FROM call_classes") == 1
    assert got["E2"][1] == got["E3"][1]
    assert "suicide" not in (got["E2"][1] or [])


def _age_narrative_files(store: AnalyticStore, flags: str | None) -> None:
    """Make the call files look written by a cswb whose flag rules differed (and, if ``flags``
    is given, gave those narrative flags)."""
    manifest = json.loads(store.manifest_path.read_text(encoding="utf-8"))
    for entry in manifest["tables"]["calls"]:
        if flags is not None:
            rewrite_parquet(store.root / entry["path"],
                            f"* REPLACE (CASE WHEN narrative_flags IS NOT NULL THEN {flags} "
                            "END AS narrative_flags)")
        entry["narrative_rules"] = "older-rules"
    store.manifest_path.write_text(json.dumps(manifest), encoding="utf-8")


def test_apply_refreshes_narrative_flags_written_under_other_rules(
        tmp_path: Path, store: AnalyticStore, settings: Settings) -> None:
    ingest_with(store, settings, NARRATIVE_MAPPING, write_narratives(tmp_path / "n.csv"))
    current = rows(store, "SELECT source_record_id, narrative_flags, flags FROM calls ORDER BY 1")
    _age_narrative_files(store, "['substance_use']")
    assert "substance_use" in one(store, "SELECT flags FROM calls WHERE source_record_id = 'E2'")
    classifier = load_classifier(settings)
    summary = apply_classifier(store, classifier)
    assert (summary.narrative_files, summary.narrative_calls_changed) == (1, 2)
    assert rows(store, "SELECT source_record_id, narrative_flags, flags FROM calls "
                       "ORDER BY 1") == current
    assert rows(store, "SELECT source_row FROM calls ORDER BY 1") == [(1,), (2,), (3,)]
    again = apply_classifier(store, classifier)
    assert (again.narrative_files, again.narrative_calls_changed) == (0, 0)


def test_apply_only_retags_narrative_files_whose_flags_stay_the_same(
        tmp_path: Path, store: AnalyticStore, settings: Settings) -> None:
    ingest_with(store, settings, NARRATIVE_MAPPING, write_narratives(tmp_path / "n.csv"))
    _age_narrative_files(store, None)
    files = [e["path"] for e in store.read_manifest().files("calls")]
    summary = apply_classifier(store, load_classifier(settings))
    assert (summary.narrative_files, summary.narrative_calls_changed) == (1, 0)
    entries = store.read_manifest().files("calls")
    assert [e["path"] for e in entries] == files  # no file rewritten
    assert all(e["narrative_rules"] != "older-rules" for e in entries)
