"""The classifier's interface and how its layers combine: overrides > rules > model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cswb.classify import KEY_COLUMNS, OUTPUT_SCHEMA, Classifier, build_classifier, load_classifier
from cswb.classify.model import load_model, train_model
from cswb.classify.overrides import read_overrides, set_override
from cswb.classify.rules import load_rules
from cswb.classify.taxonomy import load_taxonomy, parse_taxonomy
from cswb.cli.main import app
from cswb.errors import ClassifyError
from cswb.settings import Settings


def keys(rows: list[dict[str, object]]) -> pa.Table:
    """A keys table; missing fields are null."""
    columns = {c: [r.get(c) for r in rows] for c in KEY_COLUMNS}
    return pa.table({c: pa.array(v, pa.int8() if c == "priority" else pa.string())
                     for c, v in columns.items()})


def test_output_contract(settings: Settings) -> None:
    clf = load_classifier(settings)
    out = clf.classify_keys(keys([
        {"source": "a", "final_call_type": "SHOPLIFT - THEFT"},
        {"source": "a", "initial_call_type": "TRBL W/SUBJ"},
        {"source": "a"},
        {"source": "b", "final_call_type": "PERSON IN CRISIS", "priority": 2},
    ]))
    assert out.schema.equals(OUTPUT_SCHEMA)
    rows = out.to_pylist()
    assert [r["category"] for r in rows] == ["property_crime", "complaint", "unknown",
                                             "behavioral_health"]
    assert rows[2]["unknown_reason"] == "empty call type" and rows[2]["review"]
    assert all(r["unknown_reason"] is None for i, r in enumerate(rows) if i != 2)
    assert all(r["taxonomy_version"] == "1" for r in rows)
    assert rows[0]["decided_by"].startswith("rule:")
    assert all(r["flags"] == sorted(set(r["flags"])) for r in rows)
    assert all(0 <= r["confidence"] <= 1 for r in rows)


def test_missing_key_column_is_a_clear_error(settings: Settings) -> None:
    with pytest.raises(ClassifyError, match="missing column"):
        load_classifier(settings).classify_keys(pa.table({"source": ["x"]}))


def test_final_type_wins_and_flags_of_both_are_kept(settings: Settings) -> None:
    clf = load_classifier(settings)
    out = clf.classify_keys(keys([
        {"initial_call_type": "PERSON IN CRISIS", "final_call_type": "DISTURBANCE"},
        {"initial_call_type": "SHOPLIFT", "final_call_type": None},
        {"initial_call_type": "BURGLARY", "final_call_type": "zzqx"},
    ])).to_pylist()
    assert out[0]["category"] == "complaint" and "mental_health" in out[0]["flags"]
    assert out[1]["category"] == "property_crime"
    assert out[2]["category"] == "property_crime"  # a final type nobody can read does not win


def test_disposition_adds_flags_only(settings: Settings) -> None:
    clf = load_classifier(settings)
    out = clf.classify_keys(keys([
        {"final_call_type": "WELFARE CHECK",
         "disposition_raw": "Transported for mental health evaluation"},
        {"final_call_type": "WELFARE CHECK", "disposition_raw": "Gone on arrival"},
    ])).to_pylist()
    assert out[0]["category"] == out[1]["category"] == "assist_public"
    assert "mental_health" in out[0]["flags"] and "mental_health" not in out[1]["flags"]


def test_priority_breaks_a_tie_towards_the_crime(settings: Settings) -> None:
    clf = load_classifier(settings)
    rows = [{"initial_call_type": "THEFT", "final_call_type": "SUSPICIOUS PERSON",
             "priority": p} for p in (1, 4)]
    rules = {r.id: r for r in clf.rules.category_rules}
    assert rules["property_crime.theft_burglary"].confidence == rules["suspicion"].confidence
    out = clf.classify_keys(keys(rows)).to_pylist()
    assert [r["category"] for r in out] == ["property_crime", "suspicion"]


def test_implied_flags(settings: Settings) -> None:
    out = load_classifier(settings).classify_types(["SUICIDE THREAT", "DV - ASSAULT"])
    flags = out.column("flags").to_pylist()
    assert {"suicide", "mental_health"} <= set(flags[0])
    assert "domestic" in flags[1]


def _tiny_model() -> object:
    return train_model(["zebra crossing", "zebra herd", "quokka sighting", "quokka escape"],
                       ["traffic", "traffic", "complaint", "complaint"], [1, 1, 1, 1],
                       {"trained_on": ["test"]})


def test_layer_precedence(settings: Settings, tmp_path: Path) -> None:
    """An override beats a rule, a rule beats the model, the model fills what rules miss."""
    taxonomy = load_taxonomy()
    model = _tiny_model()
    path = tmp_path / "overrides.csv"
    set_override(path, taxonomy, source="Riverton", call_type="THEFT", category="other_crime",
                 note="local fraud code")
    clf = Classifier(taxonomy, load_rules(taxonomy), model,  # type: ignore[arg-type]
                     read_overrides(path, taxonomy))
    out = clf.classify_types(["THEFT", "THEFT", "zebra crossing"],
                             ["Riverton", "Elsewhere", "Riverton"]).to_pylist()
    assert (out[0]["category"], out[0]["decided_by"], out[0]["confidence"]) == (
        "other_crime", "override", 1.0)
    assert (out[1]["category"], out[1]["decided_by"]) == (
        "property_crime", "rule:property_crime.theft_burglary")
    assert out[2]["category"] == "traffic" and out[2]["decided_by"].startswith("model:charlr@")


def test_unrecognised_type_without_model_is_unknown_with_reason(settings: Settings) -> None:
    clf = build_classifier(settings, use_shipped_model=False)
    row = clf.classify_types(["qqq zzz"]).to_pylist()[0]
    assert row["category"] == "unknown" and row["review"]
    assert "no rule matched" in row["unknown_reason"]


def test_the_model_does_not_place_text_it_knows_nothing_of(settings: Settings) -> None:
    """Keyboard mash or filler shares only short letter groups with real call types: with
    no known word or longer letter group the model's guess is the class priors, not evidence."""
    clf = build_classifier(settings)
    rows = clf.classify_types(["asdfghjkl", "lorem ipsum dolor", "12345", "PROWLER",
                               "WELFARE CHECK"]).to_pylist()
    for row in rows[:3]:
        assert row["category"] == "unknown", row
        assert "knows none of its words" in row["unknown_reason"]
    assert rows[3]["category"] != "unknown" and rows[4]["category"] != "unknown"


def test_override_round_trip_through_the_cli(settings: Settings, tmp_path: Path) -> None:
    env = {"CSWB_DATA_DIR": str(tmp_path / "var")}
    runner = CliRunner()
    before = load_classifier(Settings(data_dir=tmp_path / "var")).version
    result = runner.invoke(app, ["classify", "override", "Riverton", "WEIRD CODE 7",
                                 "behavioral_health", "--flags", "mental_health;welfare",
                                 "--note", "reviewed by the analyst"], env=env)
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["classify", "override", "Riverton", "weird code 7 ",
                                 "medical"], env=env)
    assert result.exit_code == 0, result.output
    rows = read_overrides(tmp_path / "var" / "overrides.csv", load_taxonomy())
    assert len(rows) == 1 and rows[0].category == "medical"  # updated, not appended
    clf = load_classifier(Settings(data_dir=tmp_path / "var"))
    assert clf.version != before
    out = clf.classify_types(["WEIRD CODE 7"], ["riverton"]).to_pylist()[0]
    assert (out["category"], out["decided_by"]) == ("medical", "override")
    bad = runner.invoke(app, ["classify", "override", "Riverton", "X", "nonsense"], env=env)
    assert isinstance(bad.exception, ClassifyError) and bad.exception.exit_code == 7
    assert "unknown category 'nonsense'" in str(bad.exception)


def test_version_changes_with_the_model(settings: Settings) -> None:
    with_model = build_classifier(settings)
    without = build_classifier(settings, use_shipped_model=False)
    assert with_model.version != without.version
    assert build_classifier(settings).version == with_model.version


def test_shipped_model_loads_from_package_data_alone(tmp_path: Path) -> None:
    """A fresh install has no store and no ../shared: the model is package data."""
    code = ("import numpy; from cswb.classify.model import load_model; m = load_model(); "
            "print(m.label, len(m.classes)); "
            "print(m.predict_proba(['burglary residential']).shape)")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, env={"PATH": "", "CSWB_SHARED_DATA": str(tmp_path / "none")},
                          check=True)
    assert done.stdout.startswith("model:charlr@")
    model = load_model()
    assert model is not None
    assert set(model.classes) <= set(load_taxonomy().category_codes)
    proba = model.predict_proba(["burglary residential", ""])
    assert np.allclose(proba.sum(axis=1), 1.0)


def test_model_file_is_never_unpickled(tmp_path: Path) -> None:
    bad = tmp_path / "model.npz"
    np.savez(bad, classes=np.array([object()], dtype=object))
    with pytest.raises(ClassifyError, match="cannot be read"):
        load_model(bad)


def test_taxonomy_validation() -> None:
    good = {"version": "1", "categories": [
        {"code": "unknown", "label": "U", "group": "unknown", "definition": "d"}],
        "flags": [{"code": "a", "definition": "d", "implies": ["b"]}],
        "behavioral_health": {"categories": [], "flags": [], "definition": "d"}}
    with pytest.raises(ClassifyError, match="implies unknown flag"):
        parse_taxonomy(good)
    good["flags"] = []
    good["categories"].append(dict(good["categories"][0]))  # type: ignore[attr-defined]
    with pytest.raises(ClassifyError, match="defined twice"):
        parse_taxonomy(good)


def test_many_distinct_keys_in_one_call(settings: Settings) -> None:
    """100,000 rows over a few thousand distinct strings come back in order."""
    clf = load_classifier(settings)
    vocab = [f"THEFT {i}" for i in range(2000)] + [f"SUSP PERS {i}" for i in range(2000)]
    n = 100_000
    table = keys([{"source": "s", "final_call_type": vocab[i % len(vocab)],
                   "priority": 1 + i % 4} for i in range(n)])
    out = clf.classify_keys(table)
    assert out.num_rows == n
    categories = out.column("category").to_pylist()
    assert categories[0] == "property_crime" and categories[2000] == "suspicion"
    assert categories[n - 1] == ("property_crime" if (n - 1) % 4000 < 2000 else "suspicion")


def test_agrees_with_the_synthetic_citys_truth_table(settings: Settings) -> None:
    """The synthetic city's call types carry a category and flags written from the taxonomy by
    another hand: a fourth vocabulary. Volume-weighted agreement and BH flags are checked."""
    import csv
    from importlib import resources

    text = resources.files("cswb.synth").joinpath("vocab/call_types.csv").read_text("utf-8")
    truth = list(csv.DictReader(text.splitlines()))
    out = load_classifier(settings).classify_types([t["call_type"] for t in truth])
    weights = [float(t["weight"]) for t in truth]
    agree = sum(w for w, t, c in zip(weights, truth, out.column("category").to_pylist(),
                                     strict=True) if c == t["category"])
    assert agree / sum(weights) > 0.93
    taxonomy = load_taxonomy()
    bh_truth = [i for i, t in enumerate(truth)
                if taxonomy.is_bh(t["category"], t["flags"].split(";") if t["flags"] else [])]
    flags = out.column("flags").to_pylist()
    categories = out.column("category").to_pylist()
    found = [i for i in bh_truth if taxonomy.is_bh(categories[i], flags[i])]
    assert len(found) / len(bh_truth) > 0.9


def test_narrative_flags(settings: Settings) -> None:
    clf = load_classifier(settings)
    out = clf.narrative_flags(pa.array([
        "Caller says her son is suicidal and has a knife; he is homeless", None,
        "Neighbour reports loud party"])).to_pylist()
    assert out[0] == ["domestic", "homelessness", "mental_health", "suicide", "weapon"]
    assert out[1] == [] and out[2] == []


def test_override_flags_replace_and_unknown_keeps_the_note(tmp_path: Path) -> None:
    taxonomy = load_taxonomy()
    path = tmp_path / "o.csv"
    set_override(path, taxonomy, source="", call_type="SUICIDE THREAT", category="medical",
                 flags="welfare")
    set_override(path, taxonomy, source="X", call_type="CODE 9", category="unknown",
                 note="code retired in 2019")
    clf = Classifier(taxonomy, load_rules(taxonomy), None, read_overrides(path, taxonomy))
    out = clf.classify_types(["SUICIDE THREAT", "CODE 9"], ["anywhere", "X"]).to_pylist()
    assert (out[0]["category"], out[0]["flags"]) == ("medical", ["welfare"])
    assert (out[1]["category"], out[1]["unknown_reason"]) == ("unknown", "code retired in 2019")


@pytest.fixture(scope="module")
def module_classifier(tmp_path_factory: pytest.TempPathFactory) -> Classifier:
    return build_classifier(Settings(data_dir=tmp_path_factory.mktemp("classify")))


_ANY_TEXT = st.one_of(st.none(), st.text(max_size=80),
                      st.text(alphabet="IPJOW/-*_&0123456789 abcDV", max_size=30))


@given(types=st.lists(_ANY_TEXT, min_size=1, max_size=30),
       dispositions=st.lists(_ANY_TEXT, min_size=30, max_size=30))
@hypothesis_settings(max_examples=60, deadline=None)
def test_any_text_gets_a_valid_classification(module_classifier: Classifier,
                                              types: list[str | None],
                                              dispositions: list[str | None]) -> None:
    clf = module_classifier
    n = len(types)
    table = keys([{"source": "s", "initial_call_type": types[(i + 1) % n],
                   "final_call_type": types[i], "disposition_raw": dispositions[i]}
                  for i in range(n)])
    out = clf.classify_keys(table)
    assert out.num_rows == n
    taxonomy = load_taxonomy()
    for row in out.to_pylist():
        assert row["category"] in taxonomy.category_codes
        assert set(row["flags"]) <= set(taxonomy.flag_codes)
        assert (row["unknown_reason"] is None) == (row["category"] != "unknown")
        assert 0.0 <= row["confidence"] <= 1.0


def test_priority_out_of_range_is_ignored_and_text_priority_is_an_error(
        settings: Settings) -> None:
    clf = load_classifier(settings)
    table = keys([{"initial_call_type": "THEFT", "final_call_type": "SUSPICIOUS PERSON"}] * 2)
    table = table.set_column(5, "priority", pa.array([1, 500], pa.int64()))
    assert clf.classify_keys(table).column("category").to_pylist() == [
        "property_crime", "suspicion"]
    with pytest.raises(ClassifyError, match="priority must be a number"):
        clf.classify_keys(table.set_column(5, "priority", pa.array(["x", "y"])))
