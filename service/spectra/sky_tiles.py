"""Sky tiles for paging an SSA query past one answer's MAXREC.

SSA selects by cone only (POS + SIZE), so a region that overflows is cut into
RA x Dec boxes, each queried as the smallest cone that holds it; a box that
overflows again is cut into its four quadrants. Pure functions, degrees
throughout; RA bounds of a box may run outside 0..360 (a box across RA 0).
"""

from __future__ import annotations

import dataclasses
import math

#: The largest box of a first grid: SSA's SIZE is at most 180 degrees, and a
#: 90 x 45 degree box needs less than 100.
GRID_RA_DEG = 90.0
GRID_DEC_DEG = 45.0
#: Cones are widened by this much so that a record on a box corner is in it.
MARGIN_DEG = 1e-9


def unit_vector(ra: float, dec: float) -> tuple[float, float, float]:
    a, d = math.radians(ra), math.radians(dec)
    return (math.cos(d) * math.cos(a), math.cos(d) * math.sin(a), math.sin(d))


def separation(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Angle between two positions in degrees (stable at small and large angles)."""
    u, v = unit_vector(ra1, dec1), unit_vector(ra2, dec2)
    cross = math.dist((0.0, 0.0, 0.0), _cross(u, v))
    dot = sum(a * b for a, b in zip(u, v, strict=True))
    return math.degrees(math.atan2(cross, dot))


def _cross(u: tuple[float, ...], v: tuple[float, ...]) -> tuple[float, float, float]:
    return (u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0])


@dataclasses.dataclass(frozen=True)
class Tile:
    """An RA x Dec box (``ra_hi - ra_lo`` <= 360; Dec within -90..90)."""

    ra_lo: float
    ra_hi: float
    dec_lo: float
    dec_hi: float

    @property
    def centre(self) -> tuple[float, float]:
        return ((self.ra_lo + self.ra_hi) / 2.0) % 360.0, (self.dec_lo + self.dec_hi) / 2.0

    @property
    def radius(self) -> float:
        """Degrees from the centre to the farthest point of the box.

        Along a parallel the distance to the centre grows with the RA offset
        (up to 180 degrees) and along a meridian it has no interior maximum,
        so the farthest point is a corner.
        """
        ra, dec = self.centre
        return max(
            separation(ra, dec, corner_ra, corner_dec)
            for corner_ra in (self.ra_lo, self.ra_hi)
            for corner_dec in (self.dec_lo, self.dec_hi)
        )

    @property
    def diameter(self) -> float:
        """SIZE of the cone that holds the box (what an SSA query of this tile sends)."""
        return min(180.0, 2.0 * self.radius + MARGIN_DEG)

    def quadrants(self) -> list[Tile]:
        ra_mid, dec_mid = (self.ra_lo + self.ra_hi) / 2.0, (self.dec_lo + self.dec_hi) / 2.0
        return [
            Tile(ra_lo, ra_hi, dec_lo, dec_hi)
            for dec_lo, dec_hi in ((self.dec_lo, dec_mid), (dec_mid, self.dec_hi))
            for ra_lo, ra_hi in ((self.ra_lo, ra_mid), (ra_mid, self.ra_hi))
        ]

    def contains(self, ra: float, dec: float) -> bool:
        """Whether the box holds a position; boxes are half-open (the low edges), so
        a point on the border of two quadrants is in exactly one."""
        offset = (ra - self.ra_lo) % 360.0
        in_ra = self.ra_hi - self.ra_lo >= 360.0 or offset < self.ra_hi - self.ra_lo
        in_dec = self.dec_lo <= dec < self.dec_hi or dec == self.dec_hi == 90.0
        return in_ra and in_dec


def in_cone(ra: float, dec: float, pos: tuple[float, float] | None, size: float | None) -> bool:
    """Whether a position is inside the SSA cone (POS, SIZE diameter); no POS: the whole sky."""
    if pos is None or size is None:
        return True
    return separation(ra, dec, pos[0], pos[1]) <= size / 2.0 + MARGIN_DEG


def bounding_box(pos: tuple[float, float] | None, size: float | None) -> Tile:
    """The smallest RA x Dec box that holds the cone (the whole sky without POS)."""
    if pos is None or size is None:
        return Tile(0.0, 360.0, -90.0, 90.0)
    ra, dec = pos
    radius = size / 2.0
    dec_lo, dec_hi = max(-90.0, dec - radius), min(90.0, dec + radius)
    if dec_hi >= 90.0 or dec_lo <= -90.0:  # the cone holds a pole: every RA
        return Tile(0.0, 360.0, dec_lo, dec_hi)
    ratio = math.sin(math.radians(radius)) / math.cos(math.radians(dec))
    if ratio >= 1.0:
        return Tile(0.0, 360.0, dec_lo, dec_hi)
    half = math.degrees(math.asin(ratio)) + MARGIN_DEG
    return Tile(ra - half, ra + half, dec_lo, dec_hi)


def first_tiles(pos: tuple[float, float] | None, size: float | None) -> list[Tile]:
    """The tiles an overflowing query is cut into first: its bounding box, gridded
    into boxes of at most 90 x 45 degrees (or, when that is one box, its quadrants,
    since the box holds the whole cone and would overflow as the cone did)."""
    box = bounding_box(pos, size)
    n_ra = max(1, math.ceil((box.ra_hi - box.ra_lo) / GRID_RA_DEG - 1e-9))
    n_dec = max(1, math.ceil((box.dec_hi - box.dec_lo) / GRID_DEC_DEG - 1e-9))
    ra_step, dec_step = (box.ra_hi - box.ra_lo) / n_ra, (box.dec_hi - box.dec_lo) / n_dec
    tiles = [
        Tile(
            box.ra_lo + i * ra_step,
            box.ra_lo + (i + 1) * ra_step,
            box.dec_lo + j * dec_step,
            box.dec_lo + (j + 1) * dec_step,
        )
        for j in range(n_dec)
        for i in range(n_ra)
    ]
    if len(tiles) == 1:
        tiles = tiles[0].quadrants()
    return [tile for tile in tiles if overlaps(tile, pos, size)]


def overlaps(tile: Tile, pos: tuple[float, float] | None, size: float | None) -> bool:
    """Whether the tile's cone can hold a point of the query cone (cheap and conservative)."""
    if pos is None or size is None:
        return True
    ra, dec = tile.centre
    return separation(ra, dec, pos[0], pos[1]) <= size / 2.0 + tile.radius + MARGIN_DEG
