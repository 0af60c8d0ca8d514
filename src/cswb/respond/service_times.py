"""Travel and on-scene times of a crisis team, fitted from its own dispatch records.

The fitted times ship as package data (``data/crisis_team_times.json``), so staffing works on a
fresh install. :func:`fit_service_times` rebuilds them from the dispatch file of Mobile Crisis
Services of Lane County (``crisis_teams/lane_county_mcslc/dispatches.csv`` in the shared data),
or from any CSV with the same three time columns: ``cswb respond fit-times FILE --output JSON``.

The file's quirks (PROVENANCE.md) are handled here: a time of exactly ``00:00:00`` means "not
recorded" and is treated as missing; gaps outside ``[0, MAX_TRAVEL]`` (travel) or ``[0,
MAX_ON_SCENE]`` (on scene) are data errors (the 2005 departure, times out of order) and are
left out; blank times are missing. Travel is dispatch to arrival; on-scene is arrival to the
team's departure, which is when the team is free again.

The fit is non-parametric: the empirical quantile function at 0.5 % steps (201 values), which
keeps the long right tail the simulation needs. A lognormal maximum-likelihood fit and its
Kolmogorov-Smirnov distance are recorded beside it for comparison.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from cswb.errors import ConfigError, SourceFileError
from cswb.respond.durations import Duration
from cswb.storage.sql import ident, lit, run

PACKAGED_TIMES = "crisis_team_times.json"
MAX_TRAVEL_MINUTES = 240
MAX_ON_SCENE_MINUTES = 720
QUANTILE_POINTS = 201

DISPATCHED = "Dispatch Date & Time"
ARRIVED = "Arrival on Scene Date & Time"
DEPARTED = "MCIT Departure Date & Time"


@dataclass(frozen=True)
class ServiceTimes:
    """What a team spends on a call: travel to it, then time on scene."""

    travel: Duration
    on_scene: Duration
    provenance: dict[str, Any]

    @property
    def busy(self) -> float:
        """Mean minutes a team is taken by one call (travel + on scene)."""
        return self.travel.mean() + self.on_scene.mean()


def _time_sql(column: str) -> str:
    col = ident(column)
    return (f"CASE WHEN trim({col}) = '' OR {col} LIKE '% 00:00:00' OR {col} LIKE '% 00:00' "
            f"THEN NULL ELSE try_strptime(trim({col}), ['%Y-%m-%d %H:%M:%S', '%Y-%m-%d %H:%M']) "
            "END")


def _gaps(con: duckdb.DuckDBPyConnection, path: Path) -> tuple[dict[str, Any], np.ndarray,
                                                                 np.ndarray]:
    con.execute("CREATE OR REPLACE TEMP VIEW dispatches AS SELECT * FROM "
                f"read_csv({lit(str(path))}, all_varchar = true, header = true)")
    columns = {r[0] for r in run(con, "DESCRIBE dispatches")}
    missing = [c for c in (DISPATCHED, ARRIVED, DEPARTED) if c not in columns]
    if missing:
        raise SourceFileError(f"{path}: no column {', '.join(map(repr, missing))} "
                              "(expected the MCSLC dispatch sheet saved as CSV)")
    minutes = ("date_diff('second', {a}, {b}) / 60.0")
    rows = run(con, f"""
        SELECT {minutes.format(a=_time_sql(DISPATCHED), b=_time_sql(ARRIVED))} AS travel,
               {minutes.format(a=_time_sql(ARRIVED), b=_time_sql(DEPARTED))} AS on_scene
        FROM dispatches""")
    travel = np.array([r[0] for r in rows if r[0] is not None], dtype=float)
    on_scene = np.array([r[1] for r in rows if r[1] is not None], dtype=float)
    kept_travel = travel[(travel >= 0) & (travel <= MAX_TRAVEL_MINUTES)]
    kept_scene = on_scene[(on_scene >= 0) & (on_scene <= MAX_ON_SCENE_MINUTES)]
    counts = {"rows": len(rows), "travel_recorded": len(travel),
              "travel_used": len(kept_travel), "on_scene_recorded": len(on_scene),
              "on_scene_used": len(kept_scene)}
    return counts, kept_travel, kept_scene


def _fit(values: np.ndarray) -> tuple[Duration, dict[str, Any]]:
    quantiles = np.quantile(values, np.linspace(0, 1, QUANTILE_POINTS))
    fitted = Duration.from_quantiles([float(q) for q in quantiles])
    positive = values[values > 0]
    logs = np.log(positive)
    lognormal = Duration.lognormal(float(logs.mean()), float(logs.std()))
    ordered = np.sort(values)
    empirical = np.arange(1, len(ordered) + 1) / len(ordered)
    ks = float(np.max(np.abs(empirical - np.array([lognormal.cdf(v) for v in ordered]))))
    summary = {
        "n": len(values), "mean": round(float(values.mean()), 2),
        "p50": float(np.quantile(values, 0.5)), "p90": float(np.quantile(values, 0.9)),
        "zero_share": round(float((values == 0).mean()), 4),
        "lognormal_of_positive": {"mu": round(lognormal.mu, 4), "sigma": round(lognormal.sigma, 4),
                                  "ks_distance": round(ks, 4)},
    }
    return fitted, summary


def fit_service_times(path: Path) -> dict[str, Any]:
    """Fit travel and on-scene times from a crisis-team dispatch CSV; the JSON document."""
    if not path.is_file():
        raise SourceFileError(f"dispatch file {path} does not exist")
    if path.suffix.lower() != ".csv":
        raise SourceFileError(f"{path}: give the dispatch sheet saved as CSV (dispatches.csv)")
    con = duckdb.connect()
    try:
        counts, travel, on_scene = _gaps(con, path)
    finally:
        con.close()
    if len(travel) < 30 or len(on_scene) < 30:
        raise SourceFileError(f"{path}: fewer than 30 usable travel or on-scene times")
    travel_fit, travel_summary = _fit(travel)
    scene_fit, scene_summary = _fit(on_scene)
    return {
        "format": 1,
        "provenance": {
            "file": path.name,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "publisher": "Mobile Crisis Services of Lane County (Eugene/Springfield, Oregon), "
                         "via sophiafling/cahoots-impact-eugene",
            "fitted_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "method": f"empirical quantile function at {QUANTILE_POINTS} points; 00:00:00 = "
                      f"not recorded; travel kept in [0, {MAX_TRAVEL_MINUTES}] min, on scene in "
                      f"[0, {MAX_ON_SCENE_MINUTES}] min",
            **counts,
        },
        "travel": {**travel_fit.to_dict(), "summary": travel_summary,
                   "definition": "dispatch to arrival on scene, minutes"},
        "on_scene": {**scene_fit.to_dict(), "summary": scene_summary,
                     "definition": "arrival on scene to team departure, minutes"},
    }


def service_times_from_dict(data: dict[str, Any], origin: str) -> ServiceTimes:
    """Build :class:`ServiceTimes` from the JSON document."""
    try:
        return ServiceTimes(Duration.from_dict(data["travel"]),
                            Duration.from_dict(data["on_scene"]),
                            dict(data.get("provenance", {})))
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"{origin}: not a service-times document ({exc} missing)") from None
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None


def load_service_times(path: Path | None = None) -> ServiceTimes:
    """The fitted times in ``path``, or those shipped with cswb when ``path`` is None."""
    if path is None:
        text = resources.files("cswb.respond").joinpath("data", PACKAGED_TIMES).read_text(
            encoding="utf-8")
        origin = f"packaged {PACKAGED_TIMES}"
    else:
        if not path.is_file():
            raise ConfigError(f"service-times file {path} does not exist")
        text, origin = path.read_text(encoding="utf-8"), str(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{origin}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: not a service-times document")
    return service_times_from_dict(data, origin)


def share_reachable(travel: Duration, target_minutes: float) -> float:
    """Share of calls reached within the target with unlimited teams (travel alone)."""
    return travel.cdf(target_minutes)


def travel_bound_minutes(travel: Duration, share: float) -> float:
    """The shortest target that unlimited teams could meet for ``share`` of calls."""
    return math.ceil(travel.quantile(share) * 10) / 10
