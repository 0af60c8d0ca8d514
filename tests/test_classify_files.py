"""``cswb classify calltypes`` and ``cswb classify evaluate`` on small files."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cswb.classify import Classifier, load_taxonomy
from cswb.classify.calltypes import OUTPUT_COLUMNS, classify_calltypes_file
from cswb.classify.evaluate import Prediction, score, targets_met
from cswb.classify.labels import LabelledType, read_labels
from cswb.classify.rules import load_rules
from cswb.cli.main import app
from cswb.errors import ClassifyError, SourceFileError

runner = CliRunner()


def rules_only() -> Classifier:
    taxonomy = load_taxonomy()
    return Classifier(taxonomy, load_rules(taxonomy), None)


def test_calltypes_keeps_input_columns_and_order(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("city,call_type,count,extra\nRiverton,SHOPLIFT,10,a\n"
                      "Riverton,,3,b\nRiverton,SUICIDE THREAT,2,c\nRiverton,SHOPLIFT,1,d\n",
                      encoding="utf-8")
    out = tmp_path / "out.csv"
    assert classify_calltypes_file(rules_only(), source, out) == 4
    with open(out, encoding="utf-8", newline="") as f:
        header = next(csv.reader(f))
    with open(out, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert header == ["city", "call_type", "count", "extra", *OUTPUT_COLUMNS]
    assert [r["extra"] for r in rows] == ["a", "b", "c", "d"]
    assert [r["category"] for r in rows] == ["property_crime", "unknown", "behavioral_health",
                                             "property_crime"]
    assert rows[1]["reason"] == "empty call type" and rows[0]["reason"] == ""
    assert rows[2]["flags"] == "mental_health;suicide"
    assert rows[0]["decided_by"] == "rule:property_crime.theft_burglary"
    assert float(rows[0]["confidence"]) == pytest.approx(0.9)


def test_calltypes_with_only_a_call_type_column(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("call_type\nBURGLAR ALARM\n", encoding="utf-8")
    out = tmp_path / "sub" / "out.csv"
    result = runner.invoke(app, ["classify", "calltypes", str(source), "--output", str(out)],
                           env={"CSWB_DATA_DIR": str(tmp_path / "var")})
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8").splitlines()[1].startswith("BURGLAR ALARM,alarm,,")


@pytest.mark.parametrize(("content", "message"), [
    (b"city,type\nx,y\n", "no 'call_type' column"),
    (b"call_type\n\xff\xfeBAD\n", "is not UTF-8"),
    (b"", "is empty"),
    (b"call_type\n", "no rows"),
    (b'call_type\nA\n"unclosed\nB\n', "record starting at line 3 is malformed CSV"),
    (b'call_type\nA\n"ok"x\n', "record starting at line 3 is malformed CSV"),
    (b"call_type,count\nA,1,lost\n", "line 2: 3 fields where the header has 2"),
    (b"\xff\xfeB\x00\xd8", "is not UTF-16"),
    (b"call_type,call_type,city\nSHOOTING,NOISE,x\n", "repeats the column"),
    (b"call_type;city\nA;x\n", "delimited by ';'"),
])
def test_calltypes_bad_input_is_a_clear_error(tmp_path: Path, content: bytes,
                                              message: str) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(content)
    with pytest.raises(SourceFileError, match=message):
        classify_calltypes_file(rules_only(), source, tmp_path / "out.csv")


def test_calltypes_reads_utf16_as_spreadsheets_save_it(tmp_path: Path) -> None:
    source, out = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text("call_type,count\nBURGLAR ALARM,3\n", encoding="utf-16")
    assert classify_calltypes_file(rules_only(), source, out) == 1
    assert out.read_text(encoding="utf-8").splitlines()[1].startswith("BURGLAR ALARM,3,alarm,")


def test_calltypes_error_from_the_command_has_no_traceback(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("type\nx\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "cswb.cli.main", "classify", "calltypes",
                           str(source), "--output", str(tmp_path / "o.csv")],
                          capture_output=True, text=True, cwd=tmp_path, check=False)
    assert done.returncode == 3
    assert "no 'call_type' column" in done.stderr and "Traceback" not in done.stderr


# --- evaluation metrics on a tiny file computed by hand ------------------------------------

TINY = [  # city, call type, count, label -> predicted category, flags
    (LabelledType("T", "a", 60, "complaint"), Prediction("complaint", (), "rule:x", 0.9)),
    (LabelledType("T", "b", 20, "complaint"), Prediction("traffic", (), "rule:x", 0.9)),
    (LabelledType("T", "c", 10, "behavioral_health"),
     Prediction("complaint", ("mental_health",), "rule:x", 0.9)),
    (LabelledType("T", "d", 5, "behavioral_health"),
     Prediction("behavioral_health", (), "rule:x", 0.9)),
    (LabelledType("T", "e", 5, "behavioral_health"), Prediction("medical", (), "model:m@1", 0.4)),
]


def test_metrics_match_a_hand_computation() -> None:
    labels = [x for x, _ in TINY]
    predictions = [p for _, p in TINY]
    e = score("tiny", labels, predictions, load_taxonomy())
    assert e.volume == 100 and e.accuracy == pytest.approx(0.65)
    complaint = e.categories["complaint"]
    # complaint: labelled 80, predicted 70 of which 60 right -> P 60/70, R 60/80
    assert complaint.precision == pytest.approx(60 / 70)
    assert complaint.recall == pytest.approx(0.75)
    bh = e.categories["behavioral_health"]
    assert (bh.precision, bh.recall) == (pytest.approx(1.0), pytest.approx(0.25))
    f1_complaint = 2 * (60 / 70) * 0.75 / (60 / 70 + 0.75)
    f1_bh = 2 * 1.0 * 0.25 / 1.25
    assert e.macro_f1 == pytest.approx((f1_complaint + f1_bh) / 2)  # over labelled categories
    assert e.bh_recall == pytest.approx(15 / 20)  # category or a BH flag
    assert e.bh_share_pct == pytest.approx(15.0)  # c (flag) and d (category)
    assert complaint.share_gap_pp == pytest.approx(70 - 80)
    assert e.categories["traffic"].labelled_volume == 0
    assert e.confusion["complaint"] == {"complaint": 60, "traffic": 20}
    assert e.decided_by == {"rule": 95, "model": 5}
    met = targets_met(e)
    assert not met["accuracy>=0.93"] and not met["bh_recall>=0.90"]


def test_evaluate_command_json(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("city,call_type,count,category\nT,SHOPLIFT,30,property_crime\n"
                      "T,SUICIDE THREAT,10,behavioral_health\nT,NOISE,10,traffic\n",
                      encoding="utf-8")
    result = runner.invoke(app, ["classify", "evaluate", "--labels", str(labels), "--json"],
                           env={"CSWB_DATA_DIR": str(tmp_path / "var")})
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["accuracy"] == pytest.approx(0.8) and data["bh_recall"] == 1.0
    assert data["categories"]["traffic"]["recall"] == 0.0
    table = runner.invoke(app, ["classify", "evaluate", "--labels", str(labels)],
                          env={"CSWB_DATA_DIR": str(tmp_path / "var"), "COLUMNS": "150"})
    assert "accuracy 0.800" in table.output and "Confusion" in table.output


def test_cross_city_skips_clearly_without_labels(tmp_path: Path) -> None:
    result = runner.invoke(app, ["classify", "evaluate", "--cross-city", "--labels",
                                 str(tmp_path / "absent.csv")],
                           env={"CSWB_DATA_DIR": str(tmp_path / "var")})
    assert result.exit_code == 0 and "Skipped: no labelled call types" in result.output


def test_train_command_excludes_a_city(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("city,call_type,count,category\n"
                      "A,FOO ONE,5,traffic\nA,FOO TWO,5,traffic\nA,BAR ONE,5,complaint\n"
                      "B,BAR TWO,5,complaint\nB,QUX,5,alarm\n", encoding="utf-8")
    out = tmp_path / "model.npz"
    result = runner.invoke(app, ["classify", "train", "--labels", str(labels),
                                 "--exclude-city", "B", "--output", str(out)],
                           env={"CSWB_DATA_DIR": str(tmp_path / "var"), "COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    from cswb.classify.model import load_model

    model = load_model(out)
    assert model is not None and model.meta["trained_on"] == ["A"]
    assert set(model.classes) == {"traffic", "complaint"}
    assert model.predict_proba(["foo three"]).argmax() == model.classes.index("traffic")


def test_calltypes_output_paths_that_are_no_file(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("call_type\nSHOPLIFT\n" + "x" * 200_000 + "\n", encoding="utf-8")
    with pytest.raises(SourceFileError, match="is the input file"):
        classify_calltypes_file(rules_only(), source, source)
    with pytest.raises(SourceFileError, match="not a regular file"):
        classify_calltypes_file(rules_only(), source, tmp_path)  # a folder
    target = tmp_path / "real.csv"
    target.write_text("old", encoding="utf-8")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    assert classify_calltypes_file(rules_only(), source, link) == 2  # a long value is fine
    assert link.is_symlink() and target.read_text(encoding="utf-8").startswith("call_type,")


@pytest.mark.parametrize(("rows", "message"), [
    ("T,SHOPLIFT,inf,property_crime\n", "not a whole number"),
    ("T,SHOPLIFT,1.5,property_crime\n", "not a whole number"),
    ("T,SHOPLIFT,0,property_crime\nT,NOISE,0,complaint\n", "every count is 0"),
])
def test_evaluate_refuses_counts_it_would_change(tmp_path: Path, rows: str,
                                                 message: str) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("city,call_type,count,category\n" + rows, encoding="utf-8")
    result = runner.invoke(app, ["classify", "evaluate", "--labels", str(labels)],
                           env={"CSWB_DATA_DIR": str(tmp_path / "var")})
    # the command raises the project's error; the entry point prints it without a traceback
    assert result.exit_code != 0 and message in str(result.exception), result.output


def test_evaluate_prints_city_names_as_text_and_says_what_cannot_be_measured(
        tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("city,call_type,count,category\n[/a],SHOPLIFT,5,property_crime\n"
                      "[/a],NOISE,5,complaint\n", encoding="utf-8")
    result = runner.invoke(app, ["classify", "evaluate", "--labels", str(labels)],
                           env={"CSWB_DATA_DIR": str(tmp_path / "var"), "COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "bh_recall>=0.90 not measurable" in result.output


@pytest.mark.parametrize(("rows", "message"), [
    ("Seattle,TRBL W/SUBJ,3,complaint\nSeattle, trbl w/subj ,2,behavioral_health\n",
     "lines 2 and 3 label 'trbl w/subj' of Seattle differently (complaint; behavioral_health)"),
    ("T,NOISE,1,complaint\nT,NOISE,1,complaint,mental_health\n",
     "(complaint; complaint with mental_health)"),
])
def test_a_call_type_labelled_twice_differently_is_refused(tmp_path: Path, rows: str,
                                                           message: str) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("city,call_type,count,category,flags\n" + rows, encoding="utf-8")
    with pytest.raises(ClassifyError) as raised:
        read_labels(labels, load_taxonomy())
    assert message in str(raised.value)


def test_a_call_type_labelled_twice_alike_adds_its_counts(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("city,call_type,count,category\nT,NOISE,2,complaint\nU,NOISE,5,traffic\n"
                      "T,noise ,3,complaint\n", encoding="utf-8")
    rows = read_labels(labels, load_taxonomy())
    assert [(r.city, r.count, r.category) for r in rows] == [
        ("T", 2, "complaint"), ("U", 5, "traffic"), ("T", 3, "complaint")]
    result = runner.invoke(app, ["classify", "evaluate", "--labels", str(labels), "--json"],
                           env={"CSWB_DATA_DIR": str(tmp_path / "var")})
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["volume"] == 10 and data["categories"]["complaint"]["labelled_volume"] == 5
