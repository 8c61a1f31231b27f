"""A small sky of the demo archive's own: a synthetic image of its field, as a local HiPS.

The labelling page shows each candidate in Aladin Lite over a HiPS (a sky survey cut
into HEALPix tiles). The real surveys (DSS2 at CDS) need the network and do not hold
the simulator's invented stars, so the demo archive gets its own sky: a FITS image
with a TAN WCS of the field its LAMOST spectra were taken in, with a star at every
spectrum's position (brightness from its magnitude) among fainter field stars, turned
into a HiPS by Hipsgen (Aladin's ``-hipsgen``, Debian package ``aladin``).

``$home/archive/sky/``: ``field.fits`` (the image) and ``hips/`` (the HiPS: PNG tiles,
``properties``, ``Moc.fits`` -- its coverage). Made once, on the first start of a
service with a demo archive; without Java and Aladin it is skipped and the page falls
back to the configured survey.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from service.archive.catalogue import catalogue_path, load_catalogue
from service.reasons import AlvoError, Reason

#: Aladin's jar in Debian's ``aladin`` package (its ``aladin`` script runs it; the
#: script passes ``$*`` unquoted, so arguments with spaces need the jar itself).
ALADIN_JAR = Path("/usr/share/java/aladin.jar")
#: The HiPS identifier written into its ``properties`` (``creator_did`` is ``ivo://`` + it).
HIPS_ID = "alvo/P/demo-sky"
#: Finest pixel [arcsec]: a LAMOST fibre (3.3") spans about two pixels.
FINEST_ARCSEC = 1.6
#: Largest image side [pixels]: bounds the first start's time (and Hipsgen's memory).
MAX_SIDE = 4096
#: Stellar image FWHM [arcsec] (Xinglong seeing).
SEEING_ARCSEC = 2.5
#: Field stars per square degree besides the spectra's own (fainter, r 13-19 mag).
FIELD_DENSITY = 6000.0
#: Largest half-width of the field [deg] (a LAMOST plate is 2.5° in radius).
MAX_HALF_WIDTH = 3.0


@dataclasses.dataclass(frozen=True)
class Field:
    """A square image field: centre (ICRS, deg), half-width (deg), pixel scale (arcsec)."""

    ra: float
    dec: float
    half_width: float
    scale_arcsec: float

    @property
    def side(self) -> int:
        return int(np.ceil(2 * self.half_width * 3600 / self.scale_arcsec))

    def wcs(self) -> WCS:
        wcs = WCS(naxis=2)
        wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        wcs.wcs.crval = [self.ra, self.dec]
        wcs.wcs.crpix = [(self.side + 1) / 2, (self.side + 1) / 2]
        wcs.wcs.cdelt = [-self.scale_arcsec / 3600, self.scale_arcsec / 3600]
        wcs.wcs.radesys = "ICRS"
        return wcs


def field_around(ra: np.ndarray, dec: np.ndarray, margin_deg: float = 0.02) -> Field:
    """The smallest square :class:`Field` (up to :data:`MAX_HALF_WIDTH`) centred on the
    mean direction of the positions ``ra``, ``dec`` (deg) that holds 98 % of them (a
    few stars both archives observed lie anywhere on the sky)."""
    r, d = np.radians(ra), np.radians(dec)
    xyz = np.stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)]).mean(1)
    ra0 = float(np.degrees(np.arctan2(xyz[1], xyz[0])) % 360)
    dec0 = float(np.degrees(np.arcsin(xyz[2] / np.linalg.norm(xyz))))
    x, y = _gnomonic(ra, dec, ra0, dec0)
    reach = np.maximum(np.abs(x), np.abs(y))
    half = min(MAX_HALF_WIDTH, float(np.quantile(reach, 0.98)) + margin_deg)
    scale = max(FINEST_ARCSEC, 2 * half * 3600 / MAX_SIDE)
    return Field(ra0, dec0, half, scale)


def _gnomonic(
    ra: np.ndarray, dec: np.ndarray, ra0: float, dec0: float
) -> tuple[np.ndarray, np.ndarray]:
    """Tangent-plane offsets (deg) of positions from (ra0, dec0), all in degrees."""
    r, d = np.radians(ra) - np.radians(ra0), np.radians(dec)
    d0 = np.radians(dec0)
    cos_c = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(r)
    x = np.cos(d) * np.sin(r) / cos_c
    y = (np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(r)) / cos_c
    return np.degrees(x), np.degrees(y)


def field_image(
    field: Field, ra: np.ndarray, dec: np.ndarray, magnitude: np.ndarray, seed: int = 1
) -> fits.PrimaryHDU:
    """The synthetic image of ``field``: a Gaussian star (FWHM :data:`SEEING_ARCSEC`) at
    each position (``magnitude`` r: 10 mag gives 1e5 counts) and seeded field stars, on
    a sky of 100 ± 5 counts. float32, with the field's WCS."""
    rng = np.random.default_rng(seed)
    side = field.side
    wcs = field.wcs()
    area = (2 * field.half_width) ** 2
    n_field = rng.poisson(FIELD_DENSITY * area)
    fx = rng.uniform(0, side, n_field)
    fy = rng.uniform(0, side, n_field)
    f_mag = 19 - 6 * rng.power(3, n_field)  # more faint ones than bright ones
    px, py = wcs.all_world2pix(ra, dec, 0)
    x = np.concatenate([px, fx])
    y = np.concatenate([py, fy])
    mag = np.concatenate([np.nan_to_num(magnitude, nan=14.0), f_mag])
    inside = (x > -5) & (x < side + 5) & (y > -5) & (y < side + 5)
    x, y, flux = x[inside], y[inside], 1e5 * 10 ** (-0.4 * (mag[inside] - 10))
    sigma = SEEING_ARCSEC / 2.355 / field.scale_arcsec
    sigma = max(sigma, 0.7)  # a coarse image still shows each star as a blob
    reach = int(np.ceil(4 * sigma))
    image = rng.normal(100.0, 5.0, (side, side)).astype(np.float32)
    offsets = np.arange(-reach, reach + 1)
    cx, cy = np.round(x).astype(np.int64), np.round(y).astype(np.int64)
    # every star's (2 reach + 1)^2 stamp at once: (stars, rows, cols) of pixel indices
    ix = cx[:, None, None] + offsets[None, None, :]
    iy = cy[:, None, None] + offsets[None, :, None]
    r2 = (ix - x[:, None, None]) ** 2 + (iy - y[:, None, None]) ** 2
    stamp = flux[:, None, None] / (2 * np.pi * sigma**2) * np.exp(-0.5 * r2 / sigma**2)
    ok = (ix >= 0) & (ix < side) & (iy >= 0) & (iy < side)
    ix, iy = np.broadcast_to(ix, r2.shape), np.broadcast_to(iy, r2.shape)
    np.add.at(image, (iy[ok], ix[ok]), stamp[ok].astype(np.float32))
    header = wcs.to_header()
    header["BUNIT"] = "count"
    header["ORIGIN"] = "alvo demo archive (synthetic sky)"
    return fits.PrimaryHDU(image, header=header)


def sky_folder(home: str | Path) -> Path:
    return Path(home) / "archive" / "sky"


def hips_folder(home: str | Path) -> Path:
    """The demo sky's HiPS (complete when its ``properties`` file is there)."""
    return sky_folder(home) / "hips"


def hipsgen_command() -> list[str] | None:
    """How to run Hipsgen here (Debian's Aladin jar with Java), or None."""
    java = shutil.which("java")
    if java and ALADIN_JAR.is_file():
        return [java, "-Xmx1024m", "-jar", str(ALADIN_JAR), "-hipsgen"]
    return None


def make_hips(image: Path, out: Path, timeout_s: float = 600) -> Path:
    """Hipsgen ``image`` into the HiPS folder ``out`` (PNG tiles with an asinh-like log
    stretch, its MOC; the FITS tiles are dropped: the page only draws). Built beside
    and renamed into place, so a crash leaves no half HiPS."""
    command = hipsgen_command()
    if command is None:
        raise AlvoError(Reason.SKY_TOOL_FAILED, "Hipsgen needs java and Debian's aladin")
    building = out.with_name(out.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    done = subprocess.run(
        [*command, f"in={image}", f"out={building}", f"id={HIPS_ID}",
         "obs_title=alvo demo archive: synthetic sky", "hips_pixel_cut=85 2500 log",
         "INDEX", "TILES", "PNG", "CLEANFITS"],
        capture_output=True, text=True, timeout=timeout_s, check=False,
    )  # fmt: skip
    if done.returncode or not (building / "properties").is_file():
        raise AlvoError(
            Reason.SKY_TOOL_FAILED, f"Hipsgen failed: {(done.stdout + done.stderr)[-500:]}"
        )
    shutil.rmtree(building / "HpxFinder", ignore_errors=True)  # index of the input only
    shutil.rmtree(out, ignore_errors=True)
    os.replace(building, out)
    return out


def make_sky(
    home: str | Path,
    ra: np.ndarray,
    dec: np.ndarray,
    magnitude: np.ndarray,
    seed: int = 1,
    margin_deg: float = 0.02,
) -> Path:
    """The image of the field holding these positions (and ``margin_deg`` more on each
    side) and its HiPS, under ``home``."""
    folder = sky_folder(home)
    folder.mkdir(parents=True, exist_ok=True)
    field = field_around(np.asarray(ra, float), np.asarray(dec, float), margin_deg)
    image = folder / "field.fits"
    field_image(field, ra, dec, magnitude, seed).writeto(image, overwrite=True)
    return make_hips(image, hips_folder(home))


def ensure_demo_sky(home: str | Path) -> Path | None:
    """The demo archive's HiPS, made from its LAMOST catalogue the first time; None
    without a LAMOST catalogue or without Hipsgen (the page then uses ``ALVO_HIPS``)."""
    hips = hips_folder(home)
    catalogue = catalogue_path(home, "lamost")
    if not catalogue.is_file() or hipsgen_command() is None:
        return None
    stamp = hips / "properties"
    if stamp.is_file() and stamp.stat().st_mtime >= catalogue.stat().st_mtime:
        return hips
    table = load_catalogue(home, "lamost")
    return make_sky(home, table["ra"], table["dec"], table["magnitude"])
