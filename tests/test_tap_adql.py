"""ADQL translation (both dialects) and the SQLite spherical functions."""

from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

from service.vo.tap import adql, sphere, tap_schema

TABLES = tap_schema.published_tables("sqlite")


@pytest.mark.parametrize("dialect", adql.DIALECTS)
def test_published_names_map_to_sql_names(dialect):
    names = tap_schema.published_tables(dialect)
    sql = adql.translate(
        "SELECT TOP 3 t.table_name FROM TAP_SCHEMA.tables AS t JOIN alvo.spectrum AS s ON 1 = 1",
        names,
        dialect,
    ).sql
    assert names["tap_schema.tables"] in sql and "LIMIT 3" in sql
    assert "TAP_SCHEMA.tables" not in sql


def test_postgresql_uses_pgsphere_operators():
    sql = adql.translate(
        "SELECT ra FROM alvo.spectrum WHERE 1 = CONTAINS(POINT('ICRS', ra, dec),"
        " CIRCLE('ICRS', 10, 20, 0.5))",
        TABLES,
        "postgresql",
    ).sql
    assert "spoint(RADIANS(ra), RADIANS(dec)) @ scircle(" in sql


def test_sqlite_cone_gets_a_declination_band_for_the_index():
    sql = adql.translate(
        "SELECT ra FROM alvo.spectrum WHERE 1 = CONTAINS(POINT(ra, dec), CIRCLE(10, 20, 0.5))",
        TABLES,
        "sqlite",
    ).sql
    assert "dec BETWEEN 19.5 AND 20.5 AND ra BETWEEN" in sql and "adql_in_circle" in sql
    wrapped = adql.translate(
        "SELECT ra FROM alvo.spectrum WHERE 1 = CONTAINS(POINT(ra, dec), CIRCLE(359.8, 0, 0.5))",
        TABLES,
        "sqlite",
    ).sql
    assert "(ra >= 359.2" in wrapped and "OR ra <= 0.3" in wrapped
    assert "adql_in_circle" in sql


def test_aliases_of_plain_columns_are_known():
    translation = adql.translate(
        "SELECT ra AS r, s.dec AS d, snr * 2 AS twice FROM alvo.spectrum AS s", TABLES
    )
    assert translation.aliases == {"r": "ra", "d": "dec"}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SELECT",
        "SELECT * FROM alvo.spectrum; SELECT * FROM alvo.label",
        "SELECT * FROM nowhere",
        "SELECT lo_import('/etc/passwd') FROM alvo.spectrum",
        "SELECT CENTROID(CIRCLE(1, 2, 3)) FROM alvo.spectrum",
    ],
)
def test_refusals_have_reasons(text):
    with pytest.raises(adql.AdqlError) as raised:
        adql.translate(text, TABLES)
    assert str(raised.value).startswith("BAD_QUERY: ")


def test_separation_matches_astropy():
    rng = np.random.default_rng(1)
    ra1, ra2 = rng.uniform(0, 360, (2, 200))
    dec1, dec2 = np.degrees(np.arcsin(rng.uniform(-1, 1, (2, 200))))
    truth = SkyCoord(ra1 * u.deg, dec1 * u.deg).separation(SkyCoord(ra2 * u.deg, dec2 * u.deg))
    mine = [sphere.separation(*args) for args in zip(ra1, dec1, ra2, dec2, strict=True)]
    assert np.allclose(mine, truth.deg, atol=1e-9)
    assert sphere.separation(10.0, 20.0, 10.0, 20.0 + 1e-9) == pytest.approx(1e-9, rel=1e-6)


def test_polygon_edges_are_great_circles():
    """A triangle around the pole with vertices at Dec 60: its great-circle edges bulge
    poleward, reaching Dec 73.9 half-way (tan d = tan 60 / cos 60), unlike a small circle."""
    polygon = (0.0, 60.0, 120.0, 60.0, 240.0, 60.0)
    assert sphere.point_in(0.0, 89.0, "polygon", polygon)
    assert sphere.point_in(0.0, 61.0, "polygon", polygon)  # just poleward of a vertex
    assert sphere.point_in(60.0, 74.5, "polygon", polygon)
    assert not sphere.point_in(60.0, 73.0, "polygon", polygon)  # inside the small circle only
    assert not sphere.point_in(180.0, 0.0, "polygon", polygon)


def test_box_wraps_around_ra_zero():
    box = (0.0, 0.0, 10.0, 4.0)
    assert sphere.point_in(357.0, 1.0, "box", box) and sphere.point_in(4.0, -1.9, "box", box)
    assert not sphere.point_in(6.0, 0.0, "box", box) and not sphere.point_in(0.0, 2.5, "box", box)
