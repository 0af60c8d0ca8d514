"""``cswb classify``: evaluate, train and correct the call classifier; classify bare call types."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from cswb.classify import build_classifier, load_taxonomy
from cswb.classify.calltypes import classify_calltypes_file
from cswb.classify.evaluate import Evaluation, predict, score, targets_met
from cswb.classify.labels import read_labels, require_volume
from cswb.classify.overrides import read_overrides, set_override
from cswb.cli.common import console, settings_of
from cswb.errors import ClassifyError
from cswb.settings import Settings

classify_app = typer.Typer(help="Classify calls into the taxonomy; evaluate, train, override.",
                           no_args_is_help=True)

DEFAULT_SHARED_LABELS = Path("../shared/data/calltypes/vera_seattle_neworleans_charleston.csv")


def _labels_path(settings: Settings, given: Path | None) -> Path:
    path = given or settings.classify_labels_path or DEFAULT_SHARED_LABELS
    return path


@classify_app.command("evaluate")
def evaluate_command(
    ctx: typer.Context,
    labels: Annotated[Path | None, typer.Option(
        help="Labelled call types (city,call_type,count,category). Default for --cross-city: "
        "the classify_labels_path setting, else ../shared/data/calltypes/.")] = None,
    cross_city: Annotated[bool, typer.Option(
        "--cross-city", help="Leave-one-city-out: retrain the model without each city in turn "
        "and score that city; print the baseline and the label/taxonomy disagreements.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    top: Annotated[int, typer.Option(help="Disagreements listed per city.")] = 15,
) -> None:
    """Score the classifier against labelled call types (volume-weighted)."""
    settings = settings_of(ctx)
    taxonomy = load_taxonomy()
    if cross_city:
        _cross_city(settings, _labels_path(settings, labels), as_json, top)
        return
    if labels is None:
        raise ClassifyError("give --labels FILE.csv, or --cross-city")
    rows = require_volume(read_labels(labels, taxonomy), labels)
    evaluation = score(labels.name, rows, predict(build_classifier(settings), rows), taxonomy)
    if as_json:
        typer.echo(json.dumps(evaluation.as_dict(), indent=2, default=str))
    else:
        _print_evaluation(evaluation)


def _cross_city(settings: Settings, path: Path, as_json: bool, top: int) -> None:
    from cswb.classify.crosscity import cross_city, result_dict

    if not path.is_file():
        console.print(f"Skipped: no labelled call types at {path} (set classify_labels_path or "
                      "pass --labels).")
        return
    taxonomy = load_taxonomy()
    results = cross_city(require_volume(read_labels(path, taxonomy), path),
                         read_overrides(settings.resolved_overrides_path, taxonomy),
                         settings.classify_review_below, settings.classify_model_min_confidence,
                         top)
    if as_json:
        typer.echo(json.dumps([result_dict(r) for r in results], indent=2, default=str))
        return
    for result in results:
        console.rule(f"Held-out city: {result.city}")
        _print_evaluation(result.evaluation)
        console.print(f"Baseline (plain char n-gram logistic regression, same training cities): "
                      f"accuracy {result.baseline['accuracy']:.3f}, macro-F1 "
                      f"{result.baseline['macro_f1']:.3f}; rules alone (no model): accuracy "
                      f"{result.rules_only['accuracy']:.3f}, macro-F1 "
                      f"{result.rules_only['macro_f1']:.3f}")
        if result.without_habits is not None:
            console.print(f"\nWithout the city's {result.habit_types} documented labelling-habit "
                          f"types ({result.habit_volume:,} calls, see label_habits.yaml):")
            _print_headline(result.without_habits)
        _print_disagreements(result)
    _print_summary(results)


def _print_headline(e: Evaluation) -> None:
    bh = e.categories.get("behavioral_health")
    bh_gap = f"{bh.share_gap_pp:+.2f} pp" if bh else "n/a"
    worst = max((s for c, s in e.categories.items() if c != "behavioral_health"),
                key=lambda s: abs(s.share_gap_pp), default=None)
    worst_code = next((c for c, s in e.categories.items() if s is worst), "-")
    worst_gap = f"{worst.share_gap_pp:+.2f} pp ({worst_code})" if worst else "n/a"
    bh_recall = f"{e.bh_recall:.3f}" if e.bh_recall is not None else "n/a"
    console.print(f"accuracy {e.accuracy:.3f} | macro-F1 {e.macro_f1:.3f} | BH recall "
                  f"{bh_recall} | behavioral_health share gap {bh_gap} | largest other share "
                  f"gap {worst_gap}")
    category_share = bh.predicted_share_pct if bh else 0.0
    console.print(f"behavioural health (category or mental_health/suicide/substance_use flag): "
                  f"{e.bh_share_pct:.2f}% of calls; the behavioral_health category alone: "
                  f"{category_share:.2f}%")
    met = targets_met(e)
    verdicts = {True: "met", False: "MISSED", None: "not measurable"}
    console.print("targets: " + ", ".join(f"{k} {verdicts[v]}" for k, v in met.items()))


def _print_evaluation(e: Evaluation) -> None:
    console.print(f"[b]{escape(e.name)}[/b]: {e.call_types:,} call types, {e.volume:,} calls; "
                  "decided by " + ", ".join(f"{k} {100 * v / e.volume:.1f}%" for k, v in
                              sorted(e.decided_by.items(), key=lambda kv: -kv[1])))
    _print_headline(e)
    table = Table("category", "precision", "recall", "F1", "labelled %", "predicted %", "gap pp",
                  title="Per category (volume-weighted)")
    for code, s in sorted(e.categories.items(), key=lambda kv: -kv[1].labelled_volume):
        if not (s.labelled_volume or s.predicted_volume):
            continue
        table.add_row(code, _fmt(s.precision), _fmt(s.recall), _fmt(s.f1),
                      f"{s.labelled_share_pct:.2f}", f"{s.predicted_share_pct:.2f}",
                      f"{s.share_gap_pp:+.2f}")
    console.print(table)
    _print_confusion(e)


def _print_confusion(e: Evaluation) -> None:
    codes = [c for c, s in sorted(e.categories.items(), key=lambda kv: -kv[1].labelled_volume)
             if s.labelled_volume or s.predicted_volume]
    table = Table(title="Confusion (% of calls; rows = labels, columns numbered as the rows)",
                  padding=(0, 0), box=box.SIMPLE)
    table.add_column("label \\ predicted", no_wrap=True)
    for i in range(1, len(codes) + 1):
        table.add_column(str(i), justify="right", no_wrap=True, min_width=4)
    for i, label in enumerate(codes, start=1):
        row = e.confusion.get(label, {})
        if row:
            table.add_row(f"{i} {label}", *[_pct(row.get(p, 0), e.volume) for p in codes])
    console.print(table)


def _print_disagreements(result: object) -> None:
    from cswb.classify.crosscity import CityResult

    assert isinstance(result, CityResult)
    if not result.disagreements:
        return
    table = Table("call type", "calls", "label", "cswb", "decided by", "known habit",
                  title=f"{result.city}: labels that disagree with the taxonomy rules")
    for d in result.disagreements:
        table.add_row(escape(d.call_type), f"{d.count:,}", d.label, d.predicted, d.decided_by,
                      d.habit or "")
    console.print(table)


def _print_summary(results: list[Any]) -> None:
    table = Table("held-out city", "accuracy", "macro-F1", "BH recall", "BH share gap",
                  "max other gap", "baseline acc", "baseline F1", "rules-only acc",
                  "acc w/o habits", "F1 w/o habits", title="Cross-city summary")
    for r in results:
        e = r.evaluation
        bh = e.categories.get("behavioral_health")
        other = max((abs(s.share_gap_pp) for c, s in e.categories.items()
                     if c != "behavioral_health"), default=0.0)
        w = r.without_habits
        table.add_row(escape(r.city), f"{e.accuracy:.3f}", f"{e.macro_f1:.3f}", _fmt(e.bh_recall),
                      f"{bh.share_gap_pp:+.2f}" if bh else "-", f"{other:.2f}",
                      f"{r.baseline['accuracy']:.3f}", f"{r.baseline['macro_f1']:.3f}",
                      f"{r.rules_only['accuracy']:.3f}", f"{w.accuracy:.3f}" if w else "-",
                      f"{w.macro_f1:.3f}" if w else "-")
    console.print(table)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _pct(count: int, volume: int) -> str:
    return "" if not count else f"{100 * count / volume:.1f}"


@classify_app.command("train")
def train_command(
    ctx: typer.Context,
    labels: Annotated[Path | None, typer.Option(
        help="Labelled call types; default: the classify_labels_path setting, else "
        "../shared/data/calltypes/.")] = None,
    exclude_city: Annotated[list[str] | None, typer.Option(
        "--exclude-city", help="Leave this city out of training (repeatable).")] = None,
    output: Annotated[Path | None, typer.Option(
        help="Model file to write (.npz). Default: the classify_model_path setting, else "
        "<data_dir>/classify_model.npz. The shipped model is src/cswb/classify/model.npz.")
    ] = None,
) -> None:
    """Retrain the learned layer from labelled call types and write the model file."""
    from cswb.classify.training import train_from_labels

    settings = settings_of(ctx)
    path = _labels_path(settings, labels)
    rows = read_labels(path, load_taxonomy())
    model = train_from_labels(rows, exclude_cities=exclude_city or [])
    target = output or settings.classify_model_path or settings.data_dir / "classify_model.npz"
    model.save(target)
    console.print(f"Trained {model.label} on {model.meta['call_types']:,} call types of "
                  f"{', '.join(model.meta['trained_on'])}; wrote {target} "
                  f"({target.stat().st_size / 1e6:.2f} MB).")


@classify_app.command("override")
def override_command(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="Source (city) the call type comes from; "
                                          "'' for every source.")],
    call_type: Annotated[str, typer.Argument(help="The raw call type, as the source writes it.")],
    category: Annotated[str, typer.Argument(help="Category code of the taxonomy.")],
    flags: Annotated[str | None, typer.Option(help="Flags joined by ';'.")] = None,
    note: Annotated[str | None, typer.Option(help="Why (kept in the file).")] = None,
) -> None:
    """Set an analyst's override for (source, call type); it wins over rules and model."""
    settings = settings_of(ctx)
    path = settings.resolved_overrides_path
    entry = set_override(path, load_taxonomy(), source=source, call_type=call_type,
                         category=category, flags=flags, note=note)
    console.print(f"Override saved in {path}: ({entry.city or 'any source'}, "
                  f"{entry.call_type!r}) -> {entry.category}"
                  + (f" [{';'.join(entry.flags)}]" if entry.flags else ""))
    console.print(f"Classifier version is now {build_classifier(settings).version}.")


@classify_app.command("calltypes")
def calltypes_command(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(help="CSV with a call_type column (and optionally "
                                           "city, count).", dir_okay=False)],
    output: Annotated[Path, typer.Option(help="CSV to write.", dir_okay=False)],
) -> None:
    """Classify bare call types: one output row per input row, in order."""
    n = classify_calltypes_file(build_classifier(settings_of(ctx)), source, output)
    console.print(f"Classified {n:,} call types into {output}.")


def register(app: typer.Typer) -> None:
    app.add_typer(classify_app, name="classify")
