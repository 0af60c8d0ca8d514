"""The synthetic city's ground: frame, neighbourhoods, street grid and addresses.

The city is a 16 km by 12 km rectangle of open land in western Kansas (no real town is there).
Its neighbourhoods tessellate it: a jittered grid whose shared corners and edge midpoints make
irregular but gap-free polygons. Streets form a 200 m grid: numbered streets run north-south,
named avenues east-west, and house numbers count hundreds of metres from the centre lines
(``2418 N 35TH ST``, ``1306 W ELM AVE``), as in a real grid city. Addresses ("sites") are spread
over neighbourhoods by population, and each site carries a heavy-tailed call weight, so a few
addresses (a shelter, a big store, a bar strip, some troubled homes) generate many calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np

METRES_PER_DEGREE = 111_320.0

NEIGHBOURHOOD_NAMES: tuple[str, ...] = (
    "Prairie View", "Millbrook", "Sandpiper", "Quarry Row", "Fairmont", "Foundry Flats",
    "Willow Bend", "Tannery", "Old Town", "Depot District", "Stockyards", "Glenwood",
    "Kestrel Heights", "Birch Hollow", "Civic Centre", "Market Square", "Union Yards",
    "Meadowlark", "Northgate", "Lantern Hill", "Juniper Ridge", "Harlow Park", "Cedar Flats",
    "Ironside",
)
"""Neighbourhood names, one per grid cell, row by row from the south-west corner."""

AVENUE_NAMES: tuple[str, ...] = (
    "ASH", "BIRCH", "CEDAR", "DOGWOOD", "ELM", "FIR", "GROVE", "HAWTHORN", "IRONWOOD",
    "JUNIPER", "KINGFISHER", "LARCH", "MAPLE", "NUTHATCH", "OAK", "PINE", "QUAIL", "REDBUD",
    "SPRUCE", "TAMARACK", "UNION", "VINE", "WALNUT", "YEW", "ALDER", "BEECH", "CHESTNUT",
    "DOVE", "EMERSON", "FRANKLIN", "GRAND", "HARRISON", "INDUSTRY", "JEFFERSON", "KANSAS",
    "LINCOLN", "MADISON", "NORTHRUP", "ORCHARD", "PRAIRIE", "RAILROAD", "SANTA FE", "THATCHER",
    "UPLAND", "VALLEY", "WASHINGTON", "WICHITA", "WREN", "ARCHER", "BLUESTEM", "CANYON",
    "DELAWARE", "EASTMAN", "FOREST", "GARFIELD", "HICKORY", "IVY", "JUDSON", "KIOWA", "LAUREL",
    "MESA",
)
"""Names of the east-west avenues, south to north (61 for a 12 km city with 200 m blocks)."""


@dataclass(frozen=True)
class CityFrame:
    """Where the city lies, how big it is and its clock."""

    name: str = "Aldermoor"
    agency: str = "Aldermoor Police Service"
    time_zone: str = "America/Chicago"
    south: float = 38.55
    west: float = -100.42
    width_m: float = 16_000.0
    height_m: float = 12_000.0
    block_m: float = 200.0
    columns: int = 6
    rows: int = 4

    @property
    def metres_per_degree_lon(self) -> float:
        return METRES_PER_DEGREE * float(np.cos(np.radians(self.south + self.height_degrees / 2)))

    @property
    def height_degrees(self) -> float:
        return self.height_m / METRES_PER_DEGREE

    def to_lat_lon(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Latitude and longitude of points given in metres east and north of the SW corner."""
        return self.south + y / METRES_PER_DEGREE, self.west + x / self.metres_per_degree_lon

    def bounds(self, margin_m: float = 1_000.0) -> dict[str, float]:
        """The bounding box (with a margin) that a mapping declares."""
        lat, lon = self.to_lat_lon(np.array([-margin_m, self.width_m + margin_m]),
                                   np.array([-margin_m, self.height_m + margin_m]))
        return {"min_latitude": round(float(lat[0]), 3), "max_latitude": round(float(lat[1]), 3),
                "min_longitude": round(float(lon[0]), 3),
                "max_longitude": round(float(lon[1]), 3)}


@dataclass(frozen=True)
class Neighbourhoods:
    """The city's neighbourhoods: polygons (metres), names, people, districts and beats."""

    names: tuple[str, ...]
    populations: np.ndarray
    call_rate: np.ndarray
    polygons: tuple[np.ndarray, ...]
    districts: tuple[str, ...]
    beats: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.names)

    def locate(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Index of the neighbourhood holding each point (-1 outside every polygon)."""
        found = np.full(x.shape, -1, dtype=np.int16)
        for i, polygon in enumerate(self.polygons):
            found[(found < 0) & inside_polygon(x, y, polygon)] = i
        return found


def inside_polygon(x: np.ndarray, y: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """Even-odd ray casting of many points against one closed ring."""
    inside = np.zeros(x.shape, dtype=bool)
    for (x1, y1), (x2, y2) in pairwise(ring):
        crosses = (y1 > y) != (y2 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (x < at)
    return inside


def build_neighbourhoods(frame: CityFrame, rng: np.random.Generator) -> Neighbourhoods:
    """A jittered-grid tessellation with names, populations, districts and beats."""
    corners = _jittered_corners(frame, rng)
    h_mid, v_mid = _edge_midpoints(frame, corners, rng)
    polygons, centres = [], []
    for r in range(frame.rows):
        for c in range(frame.columns):
            ring = np.array([corners[r, c], h_mid[r, c], corners[r, c + 1], v_mid[r, c + 1],
                             corners[r + 1, c + 1], h_mid[r + 1, c], corners[r + 1, c],
                             v_mid[r, c], corners[r, c]])
            polygons.append(ring)
            centres.append((c, r))
    centrality = np.array([_centrality(frame, c, r) for c, r in centres])
    populations = np.round(rng.lognormal(np.log(7_500), 0.35, len(polygons))
                           * (0.7 + 0.9 * centrality), -1).astype(np.int64)
    call_rate = (0.75 + 1.6 * centrality ** 2) * rng.lognormal(0.0, 0.25, len(polygons))
    districts = tuple(_district(frame, c, r) for c, r in centres)
    return Neighbourhoods(
        names=NEIGHBOURHOOD_NAMES[: len(polygons)],
        populations=populations,
        call_rate=call_rate,
        polygons=tuple(polygons),
        districts=districts,
        beats=_beats(districts),
    )


def _jittered_corners(frame: CityFrame, rng: np.random.Generator) -> np.ndarray:
    cw, ch = frame.width_m / frame.columns, frame.height_m / frame.rows
    xs = np.arange(frame.columns + 1) * cw
    ys = np.arange(frame.rows + 1) * ch
    corners = np.stack(np.meshgrid(xs, ys), axis=-1)
    jitter = rng.uniform(-0.22, 0.22, corners.shape) * np.array([cw, ch])
    jitter[[0, -1], :, 1] = 0.0
    jitter[:, [0, -1], 0] = 0.0
    jitter[[0, -1], :, 0] *= 0.8
    jitter[:, [0, -1], 1] *= 0.8
    return corners + jitter


def _edge_midpoints(frame: CityFrame, corners: np.ndarray,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Midpoints of horizontal edges [row, col] and vertical edges [row, col], jittered across."""
    cw, ch = frame.width_m / frame.columns, frame.height_m / frame.rows
    h_mid = (corners[:, :-1] + corners[:, 1:]) / 2
    h_mid[1:-1, :, 1] += rng.uniform(-0.12, 0.12, h_mid[1:-1, :, 1].shape) * ch
    v_mid = (corners[:-1, :] + corners[1:, :]) / 2
    v_mid[:, 1:-1, 0] += rng.uniform(-0.12, 0.12, v_mid[:, 1:-1, 0].shape) * cw
    return h_mid, v_mid


def _centrality(frame: CityFrame, column: int, row: int) -> float:
    """1 in the middle of the city, falling to 0 at its corners."""
    dx = (column + 0.5) / frame.columns - 0.5
    dy = (row + 0.5) / frame.rows - 0.5
    return float(max(0.0, 1.0 - np.hypot(dx, dy) / np.hypot(0.5, 0.5)))


def _district(frame: CityFrame, column: int, row: int) -> str:
    third = min(2, column * 3 // frame.columns)
    half = 1 if row * 2 >= frame.rows else 0
    return ("SOUTHWEST", "SOUTH CENTRAL", "SOUTHEAST",
            "NORTHWEST", "NORTH CENTRAL", "NORTHEAST")[half * 3 + third]


def _beats(districts: tuple[str, ...]) -> tuple[str, ...]:
    numbers = {d: i + 1 for i, d in enumerate(dict.fromkeys(districts))}
    seen: dict[str, int] = {}
    beats = []
    for district in districts:
        seen[district] = seen.get(district, 0) + 1
        beats.append(f"{numbers[district]}{chr(ord('A') + seen[district] - 1)}")
    return tuple(beats)


@dataclass(frozen=True)
class Sites:
    """Addresses that calls come from: text, place, neighbourhood, kind and call weight."""

    address: np.ndarray
    intersection: np.ndarray
    latitude: np.ndarray
    longitude: np.ndarray
    neighbourhood: np.ndarray
    commercial: np.ndarray
    units: np.ndarray
    weight: np.ndarray

    def __len__(self) -> int:
        return len(self.address)


def build_sites(frame: CityFrame, hoods: Neighbourhoods, count: int,
                rng: np.random.Generator) -> Sites:
    """``count`` addresses spread by population, snapped to the street grid."""
    share = hoods.populations / hoods.populations.sum()
    per_hood = rng.multinomial(count, share)
    points = [_points_in(hoods.polygons[i], n, rng) for i, n in enumerate(per_hood)]
    x = np.concatenate([p[0] for p in points])
    y = np.concatenate([p[1] for p in points])
    grid = _snap_to_grid(frame, x, y, rng)
    hood = hoods.locate(grid.x, grid.y)
    hood = np.where(hood < 0, hoods.locate(x, y), hood)
    lat, lon = frame.to_lat_lon(grid.x, grid.y)
    commercial = rng.random(len(x)) < 0.12
    units = np.where(~commercial & (rng.random(len(x)) < 0.2),
                     rng.integers(4, 60, len(x)), 0).astype(np.int16)
    return Sites(
        address=_join(grid.number.astype(str), " ", grid.prefix, grid.street),
        intersection=_join(grid.street, " / ", grid.cross),
        latitude=np.round(lat, 6),
        longitude=np.round(lon, 6),
        neighbourhood=hood.astype(np.int16),
        commercial=commercial,
        units=units,
        weight=_call_weights(hoods, hood, commercial, units, rng),
    )


def _join(*parts: np.ndarray | str) -> np.ndarray:
    result = np.asarray(parts[0]).astype(object)
    for part in parts[1:]:
        result = result + np.asarray(part).astype(object)
    return result.astype(str)


def _points_in(ring: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    lo, hi = ring.min(axis=0), ring.max(axis=0)
    xs, ys = np.empty(0), np.empty(0)
    while len(xs) < n:
        cx = rng.uniform(lo[0], hi[0], 2 * n + 16)
        cy = rng.uniform(lo[1], hi[1], 2 * n + 16)
        keep = inside_polygon(cx, cy, ring)
        xs, ys = np.concatenate([xs, cx[keep]]), np.concatenate([ys, cy[keep]])
    return xs[:n], ys[:n]


@dataclass(frozen=True)
class _GridPlace:
    """Points snapped to the street grid: where they are and how the address reads."""

    x: np.ndarray
    y: np.ndarray
    number: np.ndarray
    prefix: np.ndarray
    street: np.ndarray
    cross: np.ndarray


def _snap_to_grid(frame: CityFrame, x: np.ndarray, y: np.ndarray,
                  rng: np.random.Generator) -> _GridPlace:
    """Put each point on its nearest street and give it a house number there."""
    block = frame.block_m
    avenue_k = np.clip(np.rint(y / block), 0, len(AVENUE_NAMES) - 1).astype(np.int64)
    street_j = np.clip(np.rint(x / block), 0, frame.width_m / block).astype(np.int64)
    on_avenue = np.abs(y - avenue_k * block) <= np.abs(x - street_j * block)
    along = np.where(on_avenue, x - frame.width_m / 2, y - frame.height_m / 2)
    side = rng.integers(0, 2, len(x))
    lot = np.floor(np.mod(np.abs(along), block) / block * 48).astype(np.int64) * 2 + 2 + side
    avenues = np.array([f"{n} AVE" for n in AVENUE_NAMES])[avenue_k]
    streets = np.array([f"{_ordinal(j + 1)} ST"
                        for j in range(int(frame.width_m / block) + 1)])[street_j]
    setback = np.where(side == 0, -12.0, 12.0)
    return _GridPlace(
        x=np.clip(np.where(on_avenue, x, street_j * block + setback), 1, frame.width_m - 1),
        y=np.clip(np.where(on_avenue, avenue_k * block + setback, y), 1, frame.height_m - 1),
        number=(np.abs(along) // block).astype(np.int64) * 100 + lot,
        prefix=np.where(on_avenue, np.where(along >= 0, "E ", "W "),
                        np.where(along >= 0, "N ", "S ")),
        street=np.where(on_avenue, avenues, streets),
        cross=np.where(on_avenue, streets, avenues),
    )


def _ordinal(n: int) -> str:
    suffix = "TH" if 10 <= n % 100 <= 20 else {1: "ST", 2: "ND", 3: "RD"}.get(n % 10, "TH")
    return f"{n}{suffix}"


def _call_weights(hoods: Neighbourhoods, hood: np.ndarray, commercial: np.ndarray,
                  units: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Heavy-tailed calls per address: Pareto, more for shops, flats and busy areas."""
    pareto = (1.0 - rng.random(len(hood))) ** (-1.0 / 1.5)
    weight = np.minimum(pareto, 800.0)
    weight *= np.where(commercial, 2.5, 1.0) * (1.0 + units / 12.0)
    weight *= hoods.call_rate[np.maximum(hood, 0)]
    hot = rng.choice(len(hood), size=12, replace=False)
    weight[hot] *= rng.uniform(40, 160, 12)
    return weight


def neighbourhood_geojson(frame: CityFrame, hoods: Neighbourhoods) -> dict[str, object]:
    """The neighbourhoods as a GeoJSON FeatureCollection (RFC 7946, lon/lat)."""
    features = []
    for i, ring in enumerate(hoods.polygons):
        lat, lon = frame.to_lat_lon(ring[:, 0], ring[:, 1])
        coordinates = [[round(float(a), 6), round(float(b), 6)] for a, b in zip(lon, lat,
                                                                                  strict=True)]
        features.append({
            "type": "Feature",
            "id": i + 1,
            "properties": {"name": hoods.names[i], "population": int(hoods.populations[i]),
                           "district": hoods.districts[i], "beat": hoods.beats[i]},
            "geometry": {"type": "Polygon", "coordinates": [coordinates]},
        })
    bounds = frame.bounds(margin_m=0.0)
    return {"type": "FeatureCollection", "name": f"{frame.name} neighbourhoods",
            "bbox": [bounds["min_longitude"], bounds["min_latitude"], bounds["max_longitude"],
                     bounds["max_latitude"]],
            "features": features}


def write_neighbourhoods(frame: CityFrame, hoods: Neighbourhoods, geojson: Path,
                         table: Path) -> None:
    """Write the neighbourhoods as GeoJSON and as a CSV of name and population."""
    geojson.write_text(json.dumps(neighbourhood_geojson(frame, hoods), indent=1),
                       encoding="utf-8")
    lines = ["name,population,district,beat"]
    lines += [f"{n},{p},{d},{b}" for n, p, d, b in zip(hoods.names, hoods.populations,
                                                      hoods.districts, hoods.beats, strict=True)]
    table.write_text("\n".join(lines) + "\n", encoding="utf-8")
