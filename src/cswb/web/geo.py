"""Area boundaries (GeoJSON) and the choropleth map drawn from them as SVG.

The map needs no tiles and no network: polygons are projected (equirectangular, longitude
scaled by the cosine of the mid latitude, exact enough for a city) into an SVG drawn here, with
five classes of a sequential palette, a legend, and a hatch for suppressed or missing values.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from cswb.errors import CswbError
from cswb.web.panel import SUPPRESSED

PALETTE = ("#deebf7", "#9ecae1", "#6baed6", "#2171b5", "#08306b")
"""Light to dark blue (ColorBrewer Blues): the darkest class holds the highest values."""

Ring = list[tuple[float, float]]


class AreaFileError(CswbError):
    """An area boundary file cannot be read."""

    code = "area_file_error"
    exit_code = 3


@dataclass(frozen=True)
class Area:
    """A named area and its outer rings (one per polygon part), as (longitude, latitude)."""

    name: str
    rings: list[Ring]


def load_boundaries(path: Path) -> list[Area]:
    """Polygons and multipolygons of a GeoJSON FeatureCollection, named by ``name``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        features = data["features"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AreaFileError(f"area boundaries {path}: not a GeoJSON FeatureCollection "
                            f"({type(exc).__name__})") from None
    areas = []
    for i, feature in enumerate(features):
        try:
            name = str(feature["properties"]["name"])
            geometry = feature["geometry"]
            polygons = ([geometry["coordinates"]] if geometry["type"] == "Polygon"
                        else geometry["coordinates"])
            rings = [[(float(x), float(y)) for x, y, *_ in polygon[0]] for polygon in polygons]
        except (KeyError, TypeError, ValueError, IndexError):
            raise AreaFileError(f"area boundaries {path}: feature {i} has no name property or "
                                "no polygon geometry") from None
        areas.append(Area(name, rings))
    return areas


def class_breaks(values: Sequence[float], classes: int = len(PALETTE)) -> list[float]:
    """Upper bounds of equal-count (quantile) classes of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return []
    return [ordered[min(len(ordered) - 1, math.ceil(len(ordered) * k / classes) - 1)]
            for k in range(1, classes + 1)]


def colour(value: float, breaks: Sequence[float]) -> str:
    for bound, fill in zip(breaks, PALETTE, strict=False):
        if value <= bound:
            return fill
    return PALETTE[-1]


def choropleth_svg(areas: Sequence[Area], values: dict[str, Any], *, measure: str,
                   title: str, width: int = 640) -> str:
    """An accessible SVG map of ``values`` by area name (numbers, ``SUPPRESSED`` or absent)."""
    points = [p for a in areas for r in a.rings for p in r]
    west, east = min(p[0] for p in points), max(p[0] for p in points)
    south, north = min(p[1] for p in points), max(p[1] for p in points)
    scale_x = math.cos(math.radians((south + north) / 2))
    span_x, span_y = (east - west) * scale_x, north - south
    pad, legend_h = 4, 56
    map_h = width * span_y / span_x if span_x else width
    k = (width - 2 * pad) / span_x if span_x else 1.0

    def xy(p: tuple[float, float]) -> str:
        return f"{pad + (p[0] - west) * scale_x * k:.1f},{pad + (north - p[1]) * k:.1f}"

    numbers = {n: float(v) for n, v in values.items() if isinstance(v, int | float)}
    breaks = class_breaks(list(numbers.values()))
    shapes = []
    for area in areas:
        value = values.get(area.name)
        fill = colour(numbers[area.name], breaks) if area.name in numbers else "url(#hatch)"
        shown = (f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"
                 if isinstance(value, int) else ("suppressed" if value == SUPPRESSED
                                                 else "no data"))
        d = " ".join("M" + " L".join(xy(p) for p in ring) + " Z" for ring in area.rings)
        shapes.append(f'<path d="{d}" fill="{fill}" data-area="{escape(area.name)}">'
                      f"<title>{escape(area.name)}: {shown} {escape(measure)}</title></path>")
    height = math.ceil(map_h + 2 * pad + legend_h)
    return (f'<svg class="map" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{escape(title)}">'
            '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
            'patternTransform="rotate(45)"><rect width="6" height="6" fill="#f3f5f8"/>'
            '<line x1="0" y1="0" x2="0" y2="6" stroke="#8a939e" stroke-width="2"/></pattern>'
            f'</defs><g class="areas" stroke="#ffffff" stroke-width="1.5">{"".join(shapes)}</g>'
            f"{_legend(breaks, measure, map_h + 2 * pad + 8)}</svg>")


def _legend(breaks: Sequence[float], measure: str, top: float) -> str:
    items, x = [], 4.0
    lower = 0.0
    for bound, fill in zip(breaks, PALETTE, strict=False):
        items.append(f'<rect x="{x:.0f}" y="{top:.0f}" width="18" height="14" fill="{fill}" '
                     f'stroke="#4a5360" stroke-width="0.5"/><text x="{x + 22:.0f}" '
                     f'y="{top + 12:.0f}">{_short(lower)}–{_short(bound)}</text>')
        lower, x = bound, x + 104
    items.append(f'<rect x="{x:.0f}" y="{top:.0f}" width="18" height="14" fill="url(#hatch)" '
                 f'stroke="#4a5360" stroke-width="0.5"/><text x="{x + 22:.0f}" '
                 f'y="{top + 12:.0f}">suppressed</text>')
    return (f'<g class="legend" font-size="12" fill="#1b1f24">{"".join(items)}'
            f'<text x="4" y="{top + 36:.0f}">{escape(measure)}</text></g>')


def _short(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"
