"""ADQL geometry for SQLite: spherical functions registered on each connection.

The SQLite translation of :mod:`service.vo.tap.adql` writes geometry as calls
to these functions. Shapes travel between them as text in the DALI 1.1
serialisations prefixed by their type -- ``point ra dec``, ``circle ra dec r``,
``box ra dec width height``, ``polygon ra1 dec1 ra2 dec2 ...`` -- all in
degrees (ICRS). The answers are those of pgSphere on PostgreSQL:

- ``BOX`` is pgSphere's ``sbox`` made by the translation: RA within
  ``ra +- width/2`` (modulo 360), Dec within ``dec +- height/2``;
- ``POLYGON`` edges are great circles (tested in a gnomonic projection, which
  maps great circles to straight lines);
- ``DISTANCE`` is the great-circle separation (haversine, stable at small
  angles).

``adql_in_circle`` and ``adql_sep`` take plain numbers and skip the text
round trip: they are what a cone search on millions of rows calls.
"""

from __future__ import annotations

import functools
import math
import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any

Shape = tuple[str, tuple[float, ...]]
_LAST = threading.local()


def last_error() -> str:
    """Why the last geometry function failed in this thread (SQLite only says that one did)."""
    return str(getattr(_LAST, "message", "") or "a geometry function failed")


def _reporting(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapped(*args: Any) -> Any:
        try:
            return function(*args)
        except Exception as error:
            _LAST.message = str(error)
            raise

    return wrapped


def register(connection: sqlite3.Connection) -> None:
    """Register every ADQL geometry function (and ``cot``) on a sqlite3 connection."""
    deterministic = {"deterministic": True}
    connection.create_function("adql_point", 2, _maker("point"), **deterministic)
    connection.create_function("adql_circle", 3, _maker("circle"), **deterministic)
    connection.create_function("adql_box", 4, _maker("box"), **deterministic)
    connection.create_function("adql_polygon", -1, _maker("polygon"), **deterministic)
    connection.create_function("adql_in_circle", 5, in_circle, **deterministic)
    connection.create_function("adql_sep", 4, separation, **deterministic)
    connection.create_function("adql_distance", 2, _reporting(_distance), **deterministic)
    connection.create_function("adql_contains", 2, _reporting(_contains), **deterministic)
    connection.create_function("adql_intersects", 2, _reporting(_intersects), **deterministic)
    connection.create_function("cot", 1, lambda x: None if x is None else 1.0 / math.tan(x))


def _maker(kind: str) -> Any:
    def make(*values: float | None) -> str | None:
        if any(value is None for value in values):
            return None
        return " ".join([kind, *(repr(float(value)) for value in values)])  # type: ignore[arg-type]

    return make


def parse(text: str) -> Shape:
    kind, *numbers = text.split()
    return kind, tuple(float(number) for number in numbers)


def separation(
    ra1: float | None, dec1: float | None, ra2: float | None, dec2: float | None
) -> float | None:
    """Great-circle distance between two positions, degrees (haversine)."""
    if ra1 is None or dec1 is None or ra2 is None or dec2 is None:
        return None
    phi1, phi2 = math.radians(dec1), math.radians(dec2)
    half_dphi = (phi2 - phi1) / 2.0
    half_dlam = math.radians(ra2 - ra1) / 2.0
    h = math.sin(half_dphi) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(half_dlam) ** 2
    return math.degrees(2.0 * math.asin(min(1.0, math.sqrt(h))))


def in_circle(
    ra: float | None, dec: float | None, ra0: float | None, dec0: float | None, radius: float | None
) -> int | None:
    """1 if (ra, dec) lies within ``radius`` degrees of (ra0, dec0), else 0."""
    distance = separation(ra, dec, ra0, dec0)
    if distance is None or radius is None:
        return None
    return int(distance <= radius)


def _distance(a: str | None, b: str | None) -> float | None:
    if a is None or b is None:
        return None
    (kind_a, pa), (kind_b, pb) = parse(a), parse(b)
    if kind_a != "point" or kind_b != "point":
        raise ValueError("DISTANCE takes two points")
    return separation(pa[0], pa[1], pb[0], pb[1])


def _contains(a: str | None, b: str | None) -> int | None:
    """CONTAINS(a, b): 1 if shape ``a`` lies within shape ``b``."""
    if a is None or b is None:
        return None
    (kind_a, pa), (kind_b, pb) = parse(a), parse(b)
    if kind_a == "point":
        return int(point_in(pa[0], pa[1], kind_b, pb))
    if kind_a == "circle" and kind_b == "circle":
        return int(separation(pa[0], pa[1], pb[0], pb[1]) + pa[2] <= pb[2])  # type: ignore[operator]
    raise ValueError(f"CONTAINS({kind_a}, {kind_b}) is not supported on the embedded database")


def _intersects(a: str | None, b: str | None) -> int | None:
    if a is None or b is None:
        return None
    (kind_a, pa), (kind_b, pb) = parse(a), parse(b)
    if kind_a == "point":
        return int(point_in(pa[0], pa[1], kind_b, pb))
    if kind_b == "point":
        return int(point_in(pb[0], pb[1], kind_a, pa))
    if kind_a == "circle" and kind_b == "circle":
        return int(separation(pa[0], pa[1], pb[0], pb[1]) <= pa[2] + pb[2])  # type: ignore[operator]
    raise ValueError(f"INTERSECTS({kind_a}, {kind_b}) is not supported on the embedded database")


def point_in(ra: float, dec: float, kind: str, p: Sequence[float]) -> bool:
    """Is the point inside a circle, box or polygon (degrees)?"""
    if kind == "point":
        return separation(ra, dec, p[0], p[1]) == 0.0
    if kind == "circle":
        return separation(ra, dec, p[0], p[1]) <= p[2]  # type: ignore[operator]
    if kind == "box":
        lo_dec, hi_dec = p[1] - p[3] / 2.0, p[1] + p[3] / 2.0
        if not lo_dec <= dec <= hi_dec:
            return False
        if p[2] >= 360.0:
            return True
        return (ra - (p[0] - p[2] / 2.0)) % 360.0 <= p[2]
    if kind == "polygon":
        return _in_polygon(ra, dec, p)
    raise ValueError(f"unknown shape {kind!r}")


def _unit(ra: float, dec: float) -> tuple[float, float, float]:
    a, d = math.radians(ra), math.radians(dec)
    return (math.cos(d) * math.cos(a), math.cos(d) * math.sin(a), math.sin(d))


def _in_polygon(ra: float, dec: float, flat: Sequence[float]) -> bool:
    """Great-circle polygon test: even-odd rule in the gnomonic projection at its centre."""
    vertices = [_unit(flat[i], flat[i + 1]) for i in range(0, len(flat) - 1, 2)]
    cx, cy, cz = (sum(v[k] for v in vertices) for k in range(3))
    norm = math.sqrt(cx * cx + cy * cy + cz * cz)
    centre = (cx / norm, cy / norm, cz / norm)
    # tangent-plane axes at the centre
    east = _normalise((-centre[1], centre[0], 0.0)) if abs(centre[2]) < 1.0 else (1.0, 0.0, 0.0)
    north = _cross(centre, east)

    def project(v: tuple[float, float, float]) -> tuple[float, float] | None:
        depth = _dot(v, centre)
        if depth <= 0.0:
            return None
        return _dot(v, east) / depth, _dot(v, north) / depth

    target = project(_unit(ra, dec))
    corners = [project(v) for v in vertices]
    if target is None or any(c is None for c in corners):
        return False
    x, y = target
    inside = False
    for (x1, y1), (x2, y2) in zip(corners, corners[1:] + corners[:1], strict=True):  # type: ignore[misc]
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _cross(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _normalise(a: Sequence[float]) -> tuple[float, float, float]:
    n = math.sqrt(_dot(a, a))
    return (a[0] / n, a[1] / n, a[2] / n)
