"""``cswb classify review`` and ``cswb classify apply``: the classifier and the stored calls."""

from __future__ import annotations

import csv
from io import StringIO
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cswb.api.reader import prepare_rollups
from cswb.classify import load_classifier
from cswb.classify.store import REVIEW_COLUMNS, apply_classifier, review_list
from cswb.cli.classify import classify_app
from cswb.cli.common import console, settings_of, store_of
from cswb.files import atomic_write


def review_command(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    limit: Annotated[int | None, typer.Option(
        min=0, help="Classes listed, 0 for all [default: 50 on screen, all with --output]."
    )] = None,
    all_classes: Annotated[bool, typer.Option(
        "--all", help="Every class, not only those marked for review.")] = False,
    output: Annotated[Path | None, typer.Option(
        help="Write the list as CSV (to edit, then set overrides).", dir_okay=False)] = None,
) -> None:
    """Call classes to review (low confidence or unknown), those with the most calls first."""
    if limit is None:
        limit = 0 if output is not None else 50
    table = review_list(store_of(ctx), source=source, limit=limit, include_all=all_classes)
    rows = table.to_pylist()
    if output is not None:
        _write_csv(output, rows)
        console.print(f"Wrote {len(rows):,} classes to {output}.")
        return
    if not rows:
        console.print("Nothing to review." if not all_classes else "No classified calls.")
        return
    listing = Table("source", "call type", "disposition", "priority", "category", "flags",
                    "conf.", "decided by", "calls", title="Call classes to review")
    for r in rows:
        listing.add_row(r["source"], r["call_type"] or "", r["disposition_raw"] or "",
                        r["priority_raw"] or "", r["category"], ";".join(r["flags"] or []),
                        f"{r['confidence']:.2f}", r["decided_by"]
                        + (f" ({r['unknown_reason']})" if r["unknown_reason"] else ""),
                        f"{r['calls']:,}")
    console.print(listing)
    console.print('Decide one with: cswb classify override SOURCE "CALL TYPE" CATEGORY '
                  "[--flags a;b], then: cswb classify apply")


def _write_csv(path: Path, rows: list[dict[str, object]]) -> None:
    buffer = StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(REVIEW_COLUMNS)
    for r in rows:
        writer.writerow([";".join(v) if isinstance(v := r[c], list) else
                         ("" if v is None else v) for c in REVIEW_COLUMNS])
    atomic_write(path, buffer.getvalue())


def apply_command(
    ctx: typer.Context,
    everything: Annotated[bool, typer.Option(
        "--all", help="Classify every class again, not only those another version decided.")]
        = False,
) -> None:
    """Bring the stored calls up to the current rules, model and overrides.

    Only the classes decided by another classifier version are classified again (all with
    --all); the small call_classes table is rewritten only when a result changed. Calls with a
    narrative written under other flag rules get their narrative flags recomputed (a call file
    is rewritten only where a call's flags change).
    """
    settings = settings_of(ctx)
    classifier = load_classifier(settings)
    store = store_of(ctx)
    summary = apply_classifier(store, classifier, everything=everything)
    if (summary.changed or summary.added or summary.reclassified
            or summary.narrative_calls_changed):
        prepare_rollups(store)
    console.print(
        f"Classifier {classifier.version}: {summary.classes:,} classes stored, "
        f"{summary.reclassified:,} classified again, {summary.changed:,} changed "
        f"({summary.calls_changed:,} calls), {summary.added:,} added.")
    if summary.narrative_files:
        console.print(f"Narrative flags under the current rules: {summary.narrative_files:,} "
                      f"call files checked, {summary.narrative_calls_changed:,} calls changed.")


def register(app: typer.Typer) -> None:
    """Add the store-facing commands to the ``cswb classify`` group."""
    del app  # the group is registered by cswb.cli.classify
    classify_app.command("review")(review_command)
    classify_app.command("apply")(apply_command)
