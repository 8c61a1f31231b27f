"""Where simulated stars are, when they were observed, and what they are called.

Positions follow the archives' footprints: LAMOST plates (5° fields) with
declination −10°...+60°, concentrated towards the Galactic anticentre and plane;
Ondrejov targets (bright, mostly Be stars) north of −25° and close to the plane.
Identifiers follow each archive's conventions and are unique by construction
(row number → night and sequence number, or → OBSID), whatever the chunking.
"""

from __future__ import annotations

import numpy as np

#: ICRS → Galactic rotation (J2000); rows are the Galactic axes in ICRS.
ICRS_TO_GALACTIC = np.array(
    [
        [-0.0548755604162154, -0.8734370902348850, -0.4838350155487132],
        [+0.4941094278755837, -0.4448296299600112, +0.7469822444972189],
        [-0.8676661490190047, -0.1980763734312015, +0.4559837761750669],
    ]
)
LAMOST_DEC = (-10.0, 60.0)
ONDREJOV_DEC = (-25.0, 90.0)
PLATE_RADIUS = 2.5  # degrees: LAMOST field of view 5°
FIBRES_PER_SPECTROGRAPH = 250
SPECTROGRAPHS = 16
SPECTRA_PER_PLATE = FIBRES_PER_SPECTROGRAPH * SPECTROGRAPHS
ONDREJOV_NIGHTS = 5000  # 2003-01-01 + 13.7 years
ONDREJOV_FIRST_MJD = 52640
LAMOST_FIRST_MJD = 55900  # DR2 spans 2011 October - 2013 June
LAMOST_NIGHTS = 600
OBSID_BASE = 101000000


def galactic_to_icrs(l_deg: np.ndarray, b_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ra, dec) degrees of Galactic (l, b) degrees, any shape."""
    lon, b = np.radians(l_deg), np.radians(b_deg)
    gal = np.stack([np.cos(b) * np.cos(lon), np.cos(b) * np.sin(lon), np.sin(b)], axis=-1)
    xyz = gal @ ICRS_TO_GALACTIC  # == (M.T @ gal.T).T
    ra = np.degrees(np.arctan2(xyz[..., 1], xyz[..., 0])) % 360.0
    dec = np.degrees(np.arcsin(np.clip(xyz[..., 2], -1.0, 1.0)))
    return ra, dec


def footprint(
    rng: np.random.Generator,
    n: int,
    dec_range: tuple[float, float],
    b_scale: float,
    anticentre_kappa: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(ra, dec) of n points: l ~ von Mises around 180°, b ~ Laplace(b_scale), dec cut.

    Eight candidates per point, the first inside ``dec_range`` wins (rejection
    sampling without a Python loop); if none is, a uniform point of the band.
    """
    tries = 8
    lon = np.degrees(rng.vonmises(np.pi, anticentre_kappa, size=(n, tries))) % 360.0
    b = np.clip(rng.laplace(0.0, b_scale, size=(n, tries)), -89.9, 89.9)
    ra, dec = galactic_to_icrs(lon, b)
    inside = (dec >= dec_range[0]) & (dec <= dec_range[1])
    first = np.argmax(inside, axis=1)
    rows = np.arange(n)
    fallback_ra = rng.uniform(0.0, 360.0, n)
    s0, s1 = np.sin(np.radians(dec_range[0])), np.sin(np.radians(dec_range[1]))
    fallback_dec = np.degrees(np.arcsin(rng.uniform(s0, s1, n)))
    ok = inside[rows, first]
    return (
        np.where(ok, ra[rows, first], fallback_ra),
        np.where(ok, dec[rows, first], fallback_dec),
    )


def offset(
    ra0: np.ndarray, dec0: np.ndarray, radius_deg: np.ndarray, angle: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Points ``radius_deg`` from (ra0, dec0) at position angle ``angle`` (rad), small-field."""
    dec = np.clip(dec0 + radius_deg * np.cos(angle), -89.99, 89.99)
    ra = (ra0 + radius_deg * np.sin(angle) / np.cos(np.radians(dec))) % 360.0
    return ra, dec


def designation(ra: np.ndarray, dec: np.ndarray) -> list[str]:
    """IAU-style ``Jhhmmss.ss+ddmmss.s`` names (truncated, not rounded, as IAU asks)."""
    ra_s = np.floor(np.asarray(ra) / 15.0 * 3600.0 * 100.0).astype(np.int64)
    dec_a = np.floor(np.abs(np.asarray(dec)) * 3600.0 * 10.0).astype(np.int64)
    signs = np.where(np.asarray(dec) < 0, "-", "+")
    return [
        f"J{r // 360000:02d}{r // 6000 % 60:02d}{r % 6000 / 100:05.2f}"
        f"{s}{d // 36000:02d}{d // 600 % 60:02d}{d % 600 / 10:04.1f}"
        for r, d, s in zip(ra_s.tolist(), dec_a.tolist(), signs.tolist(), strict=True)
    ]


def sexagesimal(ra: np.ndarray, dec: np.ndarray) -> tuple[list[str], list[str]]:
    """('hh:mm:ss.s', '+dd:mm:ss.s') strings as the raw CCD700 headers write them."""
    ra_t = np.round(np.asarray(ra) / 15.0 * 36000.0).astype(np.int64)
    dec_t = np.round(np.abs(np.asarray(dec)) * 36000.0).astype(np.int64)
    sign = np.where(np.asarray(dec) < 0, "-", "")
    ras = [f"{t // 36000:02d}:{t // 600 % 60:02d}:{t % 600 / 10:04.1f}" for t in ra_t.tolist()]
    decs = [
        f"{s}{t // 36000:02d}:{t // 600 % 60:02d}:{t % 600 / 10:04.1f}"
        for t, s in zip(dec_t.tolist(), sign.tolist(), strict=True)
    ]
    return ras, decs


def ondrejov_night(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(night number, sequence number) of rows: a bijection, so file names never clash."""
    rows = np.asarray(rows, dtype=np.int64)
    return (rows * 7919) % ONDREJOV_NIGHTS, rows // ONDREJOV_NIGHTS + 1


def ondrejov_obsid(mjd: np.ndarray, sequence: np.ndarray) -> list[str]:
    """CCD700 file names: year letter (a = 1991) + month letter + day + 4-digit sequence,
    after 2015 ``a`` + yyyymmdd + sequence, as the real archive names them."""
    from astropy.time import Time

    dates = Time(np.floor(np.asarray(mjd)), format="mjd").to_value("ymdhms")
    names = []
    for (year, month, day), seq in zip(
        zip(dates["year"].tolist(), dates["month"].tolist(), dates["day"].tolist(), strict=True),
        np.asarray(sequence).tolist(),
        strict=True,
    ):
        if year < 2015:
            letters = chr(ord("a") + year - 1991) + chr(ord("a") + month - 1)
            names.append(f"{letters}{day:02d}{seq:04d}")
        else:
            names.append(f"a{year:04d}{month:02d}{day:02d}{seq:04d}")
    return names
