"""The dashboard's panels: each calls the analytics functions, suppresses, and draws.

A builder takes a :class:`Context` (engine, filter, threshold, areas) and returns a
:class:`~cswb.web.panel.Panel` whose every published count has passed small-cell suppression.
:data:`PANELS` names them; pages list panel ids, and ``/dashboard/data/<id>.csv`` serves any of
them as CSV with the same filter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cswb.analytics import metrics, trends
from cswb.analytics.disclosure import publish_durations
from cswb.analytics.query import AnalyticsError, Engine
from cswb.web import figures
from cswb.web.filters import DashboardFilter, label
from cswb.web.geo import Area, choropleth_svg
from cswb.web.measures import bh_by_period, first_date
from cswb.web.panel import SUPPRESSED, Column, Panel, chartable, published
from cswb.web.suppression import hide_small, suppress_grid, suppress_one_way

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
NOT_CLASSIFIED = "Not classified yet"


@dataclass(frozen=True)
class Context:
    """What every panel needs: the engine, the filter, the threshold and the areas."""

    engine: Engine
    filter: DashboardFilter
    threshold: int
    boundaries: list[Area] | None = None
    populations: dict[str, int] | None = None
    policy_path: Path | None = None
    """Response policy of the response panels (None: the one shipped with cswb)."""
    service_times_path: Path | None = None
    """Fitted travel and on-scene times for staffing (None: those shipped with cswb)."""

    @property
    def calls(self) -> metrics.CallFilter:
        return self.filter.call_filter()


def _name(code: str) -> str:
    return NOT_CLASSIFIED if code == metrics.UNCLASSIFIED else label(code)


def _shares(counts: list[int], shown: list[object], total: int) -> list[object]:
    return [SUPPRESSED if s == SUPPRESSED else (c / total if total else None)
            for c, s in zip(counts, shown, strict=True)]


def monthly(ctx: Context) -> Panel:
    """Calls per month: the trend line."""
    table = metrics.volumes(ctx.engine, ctx.calls, "period", "month")
    months = [str(m)[:7] for m in table.column("period")]
    counts = table.column("calls")
    sup = suppress_one_way(counts, ctx.threshold)
    shown = published(counts, sup.hidden)
    rows = list(zip(months, shown, strict=True))
    summary = "No calls match the filter."
    if counts:
        peak = max(range(len(counts)), key=lambda i: counts[i])
        summary = (f"Calls per month, {len(months)} months from {months[0]} to {months[-1]}; "
                   f"the busiest month was {months[peak]}"
                   + ("" if shown[peak] == SUPPRESSED else f" with {counts[peak]:,} calls") + ".")
    return Panel("monthly", "Calls per month", summary,
                 (Column("month", "Month", "text"), Column("calls", "Calls")), rows,
                 figure=figures.line(months, chartable(shown)) if rows else None,
                 suppressed=sum(sup.hidden))


def weekly(ctx: Context) -> Panel:
    """Calls per ISO week (weeks start on Monday)."""
    table = metrics.volumes(ctx.engine, ctx.calls, "period", "week")
    weeks = [str(w) for w in table.column("period")]
    counts = table.column("calls")
    sup = suppress_one_way(counts, ctx.threshold)
    shown = published(counts, sup.hidden)
    summary = (f"Calls per week, {len(weeks)} weeks from {weeks[0]} to {weeks[-1]}."
               if weeks else "No calls match the filter.")
    notes = ["The first and last weeks may be partial."] if weeks else []
    return Panel("weekly", "Calls per week", summary,
                 (Column("week_starting", "Week starting", "text"), Column("calls", "Calls")),
                 list(zip(weeks, shown, strict=True)),
                 figure=figures.line(weeks, chartable(shown)) if weeks else None,
                 notes=notes, suppressed=sum(sup.hidden))


def _one_way(ctx: Context, by: str, panel_id: str, title: str, limit: int | None = None
             ) -> Panel:
    table = metrics.volumes(ctx.engine, ctx.calls, by)
    total = int(table.notes["total_calls"])
    names = [_name(str(k)) for k in table.column(by)]
    counts = table.column("calls")
    sup = suppress_one_way(counts, ctx.threshold)
    shown = published(counts, sup.hidden)
    rows = list(zip(names, shown, _shares(counts, shown, total), strict=True))[:limit]
    notes = []
    if limit and len(names) > limit:
        rest = sum(counts[limit:])
        notes.append(f"{len(names) - limit} more categories hold the other "
                     f"{'calls' if any(sup.hidden[limit:]) else f'{rest:,} calls'}.")
    if names == [NOT_CLASSIFIED]:
        notes.append("No call is classified yet: categories appear once the classifier has "
                     "run on the store.")
    top = next((r for r in rows if r[1] != SUPPRESSED), None)
    summary = (f"{title}: {len(rows)} groups; the largest is {top[0]} with {top[1]:,} calls "
               f"({100 * top[1] / total:.1f}%)." if top and total else
               "Every group has too few calls to publish." if rows else "No calls to show.")
    fig = figures.bars([r[0] for r in rows], chartable([r[1] for r in rows])) if rows else None
    return Panel(panel_id, title, summary,
                 (Column(by, label(by), "text"), Column("calls", "Calls"),
                  Column("share_percent", "Share", "share")), rows, figure=fig, notes=notes,
                 suppressed=sum(sup.hidden))


def top_categories(ctx: Context) -> Panel:
    return _one_way(ctx, "category", "top_categories", "Top categories", limit=10)


def categories(ctx: Context) -> Panel:
    return _one_way(ctx, "category", "categories", "Calls by category")


def crime_split(ctx: Context) -> Panel:
    panel = _one_way(ctx, "crime_group", "crime_split", "Crime and non-crime calls")
    panel.notes.append("Crime is the group of nine categories of CALL_TAXONOMY.md; "
                       "unknown calls are counted on their own.")
    return panel


def flags(ctx: Context) -> Panel:
    """Calls carrying each flag (a call counts under each of its flags)."""
    table = metrics.volumes(ctx.engine, ctx.calls, "flag")
    total = int(table.notes["total_calls"])
    names = [label(str(k)) for k in table.column("flag")]
    counts = table.column("calls")
    hidden = hide_small(counts, ctx.threshold)
    shown = published(counts, hidden)
    rows = list(zip(names, shown, _shares(counts, shown, total), strict=True))
    summary = (f"Calls carrying each of the {len(rows)} flags; the most frequent is "
               f"{rows[0][0]} ({rows[0][1]} calls)." if rows and counts[0] and not hidden[0]
               else "No call carries a flag yet (flags come with the classification).")
    return Panel("flags", "Calls by flag", summary,
                 (Column("flag", "Flag", "text"), Column("calls", "Calls"),
                  Column("share_percent", "Share of calls", "share")), rows,
                 figure=figures.bars(names, chartable(shown)),
                 notes=["A call counts once under each flag it carries, so the shares do not "
                        "add up to 100%."], suppressed=sum(hidden))


def bh_summary(ctx: Context) -> Panel:
    """Behavioural-health calls, how they are found, and their share."""
    columns = (Column("measure", "Measure", "text"), Column("calls", "Calls"),
               Column("share_percent", "Share of classified calls", "share"))
    try:
        bh = metrics.behavioural_health(ctx.engine, ctx.calls)
    except AnalyticsError as exc:
        return Panel("bh_summary", "Behavioural-health share", str(exc), columns, [],
                     notes=[f"{exc}."])
    parts = suppress_one_way([bh.bh_by_category, bh.bh_by_flag_only], ctx.threshold)
    whole = suppress_one_way([bh.bh_calls, bh.classified - bh.bh_calls], ctx.threshold)
    by_cat, by_flag = published([bh.bh_by_category, bh.bh_by_flag_only], parts.hidden)
    bh_calls, other = published([bh.bh_calls, bh.classified - bh.bh_calls], whole.hidden)
    if bh_calls == SUPPRESSED:
        by_cat = by_flag = SUPPRESSED
    rows = [("Behavioural-health calls", bh_calls, None),
            ("… of category Behavioral health", by_cat, None),
            ("… of another category with a BH flag", by_flag, None),
            ("Other classified calls", other, None),
            ("Classified calls", bh.classified, None)]
    rows = [(m, n, None if n in (SUPPRESSED, None) or not bh.classified else n / bh.classified)
            for m, n, _ in rows]
    share = rows[0][2]
    summary = ("Behavioural-health share suppressed (too few calls)." if share is None else
               f"{100 * share:.1f}% of classified calls are behavioural health; "
               f"{_pct(by_flag, bh.bh_calls)} of them are found by a flag, not the category.")
    fig = figures.bars([r[0] for r in rows[1:3]], chartable([r[1] for r in rows[1:3]]))
    return Panel("bh_summary", "Behavioural-health share", summary, columns, rows, figure=fig,
                 notes=["Behavioural health: category Behavioral health, or a mental-health, "
                        "suicide or substance-use flag (CALL_TAXONOMY.md). Unclassified calls "
                        "are left out of the share, never counted as not BH."],
                 suppressed=sum(parts.hidden) + sum(whole.hidden))


def _pct(part: object, whole: int) -> str:
    return "an unshown share" if not isinstance(part, int) or not whole else \
        f"{100 * part / whole:.0f}%"


def bh_monthly(ctx: Context) -> Panel:
    """Behavioural-health calls and share per month."""
    found = bh_by_period(ctx.engine, ctx.calls, "month")
    counts = [n for _, n, _ in found]
    sup = suppress_one_way(counts, ctx.threshold)
    shown = published(counts, sup.hidden)
    rows = [(p[:7], s, None if s == SUPPRESSED or not c else n / c)
            for (p, n, c), s in zip(found, shown, strict=True)]
    summary = (f"Behavioural-health calls per month, {len(rows)} months."
               if rows else "No classified calls match the filter.")
    return Panel("bh_monthly", "Behavioural-health calls per month", summary,
                 (Column("month", "Month", "text"), Column("bh_calls", "BH calls"),
                  Column("bh_share_percent", "Share of classified", "share")), rows,
                 figure=figures.line([r[0] for r in rows], chartable(shown)) if rows else None,
                 suppressed=sum(sup.hidden))


def hour_of_week(ctx: Context) -> Panel:
    """Calls by day of the week and hour of the day (local time)."""
    table = metrics.hour_of_week(ctx.engine, ctx.calls)
    grid = [[0] * 24 for _ in range(7)]
    for day, hour, n in table.rows:
        grid[day][hour] = n
    sup = suppress_grid(grid, ctx.threshold)
    shown = [published(grid[d], sup.hidden[d]) for d in range(7)]
    rows = [(DAYS[d], h, shown[d][h]) for d in range(7) for h in range(24)]
    busiest = max(((d, h) for d in range(7) for h in range(24)), key=lambda k: grid[k[0]][k[1]])
    total = sum(map(sum, grid))
    summary = (f"Calls by hour of the week; the busiest hour is {DAYS[busiest[0]]} "
               f"{busiest[1]:02d}:00." if total else "No calls with a local hour match.")
    notes = []
    if table.notes["calls_without_hour"]:
        notes.append(f"{table.notes['calls_without_hour']:,} calls have a date but no time "
                     "and are left out.")
    return Panel("hour_of_week", "Calls by hour of the week", summary,
                 (Column("day", "Day", "text"), Column("hour", "Hour", "text"),
                  Column("calls", "Calls")), rows,
                 figure=figures.heatmap([chartable(r) for r in shown], list(range(24)), DAYS)
                 if total else None, notes=notes, suppressed=sum(map(sum, sup.hidden)))


def change(ctx: Context) -> Panel:
    """The last 28 days against the 28 before and the same days a year earlier."""
    columns = (Column("comparison", "Comparison", "text"), Column("recent_calls", "Recent"),
               Column("baseline_calls", "Baseline"), Column("rate_ratio", "Rate ratio", "ratio"),
               Column("ci95", "95% interval", "text"), Column("verdict", "Verdict", "text"))
    rows, notes = [], []
    earliest = first_date(ctx.engine, ctx.calls)
    for baseline, name in (("previous", "last 28 days vs the 28 before"),
                           ("year_before", "last 28 days vs a year earlier")):
        try:
            r = trends.recent_change(ctx.engine, ctx.calls, days=28, baseline=baseline)
        except AnalyticsError as exc:
            return Panel("change", "Is the change more than noise?", str(exc), columns, [],
                         notes=[f"{exc}."])
        small = hide_small([r.recent_calls, r.baseline_calls], ctx.threshold)
        if earliest is None or r.baseline.first < earliest:
            rows.append((name, *published([r.recent_calls, r.baseline_calls], small),
                         None, "-", "baseline before the first call"))
            continue
        if any(small):
            rows.append((name, *published([r.recent_calls, r.baseline_calls], small),
                         None, "-", "too few calls to publish"))
            continue
        ci = "-" if r.ci95_low is None else f"{r.ci95_low:.2f} to {r.ci95_high:.2f}"
        rows.append((name, r.recent_calls, r.baseline_calls, r.rate_ratio, ci, r.verdict))
        notes.append(f"{name}: recent {r.recent.first} to {r.recent.last}, baseline "
                     f"{r.baseline.first} to {r.baseline.last}"
                     + ("" if r.p_value is None else f", p = {r.p_value:.3f}")
                     + f", dispersion {r.dispersion:.2f}.")
    notes.append("Quasi-Poisson test of the daily call rate: a change is called only when "
                 "p < 0.05 after allowing for the extra day-to-day variation.")
    summary = "; ".join(f"{r[0]}: {r[5]}" for r in rows) + "."
    return Panel("change", "Is the change more than noise?", summary, columns, rows, notes=notes)


def areas(ctx: Context) -> Panel:
    """Calls (and calls per 1,000 residents) by neighbourhood, with the map."""
    cf = ctx.calls
    if ctx.populations:
        table = metrics.rates_per_1000(ctx.engine, cf, ctx.populations)
        names, counts = table.column("area"), table.column("calls")
        pops, rates = table.column("population"), table.column("per_1000")
    else:
        table = metrics.volumes(ctx.engine, cf, "area")
        names, counts = table.column("area"), table.column("calls")
        pops, rates = [None] * len(names), [None] * len(names)
    sup = suppress_one_way(counts, ctx.threshold)
    shown = published(counts, sup.hidden)
    rates = [SUPPRESSED if s == SUPPRESSED else r for s, r in zip(shown, rates, strict=True)]
    rows = list(zip(names, shown, pops, rates, strict=True))
    measure = "calls per 1,000 residents" if ctx.populations else "calls"
    values = {n: (r if ctx.populations else s) for n, s, _, r in rows}
    svg = (choropleth_svg(ctx.boundaries, values, measure=measure,
                          title=f"Map of {measure} by neighbourhood")
           if ctx.boundaries and rows else None)
    ranked = [r for r in rows if isinstance(r[3] if ctx.populations else r[1], int | float)]
    top = max(ranked, key=lambda r: r[3] if ctx.populations else r[1], default=None)
    summary = (f"{measure.capitalize()} by neighbourhood, {len(rows)} areas; highest: {top[0]}."
               if top else "No calls with a neighbourhood match the filter.")
    notes = [] if ctx.populations else ["No area populations are configured "
                                        "(settings.populations_path), so no rates are shown."]
    if ctx.boundaries is None:
        notes.append("No area boundaries are configured (settings.area_boundaries), so no map "
                     "is drawn.")
    return Panel("areas", "Calls by neighbourhood", summary,
                 (Column("area", "Neighbourhood", "text"), Column("calls", "Calls"),
                  Column("population", "Residents"),
                  Column("per_1000", "Calls per 1,000", "rate")), rows, svg=svg, notes=notes,
                 suppressed=sum(sup.hidden))


def _durations(ctx: Context, kind: str, panel_id: str, title: str) -> Panel:
    # the one public rule for times, shared with the API (cswb.analytics.disclosure)
    table = publish_durations(metrics.durations(ctx.engine, ctx.calls, kind, by="category"),
                              ctx.threshold)
    rows = [(_name(str(key)), *(SUPPRESSED if v is None else v for v in values))
            for key, *values in table.rows]
    plotted = sorted((r for r in rows if isinstance(r[3], float)), key=lambda r: r[3])
    summary = (f"Median {title.lower()} by category; shortest {plotted[0][0]} "
               f"({plotted[0][3]:.1f} min)." if plotted else f"No usable {title.lower()}s.")
    fig = figures.bars([r[0] for r in plotted], [r[3] for r in plotted], unit="minutes (median)")
    return Panel(panel_id, title + " (minutes)", summary,
                 (Column("category", "Category", "text"), Column("calls", "Calls"),
                  Column("usable", "With usable times"), Column("p50_minutes", "Median", "minutes"),
                  Column("p75_minutes", "75th pct", "minutes"),
                  Column("p90_minutes", "90th pct", "minutes")), rows,
                 figure=fig if plotted else None,
                 notes=[f"Usable: {table.notes['usable']}. Percentiles resting on fewer than "
                        f"{ctx.threshold} calls are suppressed."],
                 suppressed=table.notes["suppressed"])


def response_times(ctx: Context) -> Panel:
    return _durations(ctx, "response", "response_times", "Response time")


def on_scene_times(ctx: Context) -> Panel:
    return _durations(ctx, "on_scene", "on_scene_times", "On-scene time")


PanelBuilder = Callable[[Context], Panel]

PANELS: dict[str, PanelBuilder] = {
    "monthly": monthly, "weekly": weekly, "top_categories": top_categories,
    "categories": categories, "crime_split": crime_split, "flags": flags,
    "bh_summary": bh_summary, "bh_monthly": bh_monthly, "hour_of_week": hour_of_week,
    "change": change, "areas": areas, "response_times": response_times,
    "on_scene_times": on_scene_times,
}
