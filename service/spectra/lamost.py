"""LAMOST low-resolution spectra (DR1 and DR2 pipeline FITS).

Both releases put one spectrum in the primary HDU as a (5, N) image, N ~ 3900
pixels on a log10-linear vacuum grid ``10**(COEFF0 + COEFF1 * i)`` Å, i from 0:

=====  ==================  ======================
row    DR2 (pipeline 2.7)  DR1 (pipeline 2.6)
=====  ==================  ======================
0      flux                flux
1      inverse variance    inverse variance
2      wavelength (Å)      sub-continuum (not λ!)
3      andmask             andmask
4      ormask              ormask
=====  ==================  ======================

The release is told by ``EXTEN0`` (``Flux Inverse Wavelength ...`` vs
``... Subcontinuum ...``) or, without it, by whether row 2 equals the
COEFF0/COEFF1 grid. Flux is in units of 1e-17 erg/s/cm²/Å (relative for DR1/2).

Mask: a pixel is bad where ``andmask != 0`` (bad in every exposure), where the
flux is not finite, and where flux and ivar are both exactly 0 (the pipeline's
"no data" at the ends of the arms). ``ivar == 0`` alone is *not* masked: LAMOST
zeroes the inverse variance over strong emission-line cores (BT CMi: 12 pixels
across H-alpha), the very signal this project looks for. ``Spectrum.ivar`` keeps
it for consumers that weight by it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from service.reasons import Reason, SpectrumError
from service.spectra import keywords as kw
from service.spectra.spectrum import Medium, Spectrum, SpectrumMeta

RESOLVING_POWER = 1800.0
N_ROWS = 5
ROW_FLUX, ROW_IVAR, ROW_WAVELENGTH, ROW_ANDMASK = 0, 1, 2, 3
#: LAMOST registers no publisher DIDs; ours are built from OBSID under this prefix.
PUBDID_PREFIX = "ivo://lamost.org/spectrum?"


def is_lamost(header: Mapping[str, Any]) -> bool:
    """A primary header written by the LAMOST pipeline (2-D image with log grid)."""
    telescope = kw.string(header, "TELESCOP").upper()
    return kw.get(header, "NAXIS") == 2 and (
        telescope.startswith("LAMOST")
        or "COEFF0" in header
        or kw.string(header, "EXTEN0").startswith("Flux")
    )


def log_grid(header: Mapping[str, Any], n: int) -> np.ndarray:
    """Vacuum wavelengths (Å) of pixels 0..n-1 from COEFF0/COEFF1 (log10 Å)."""
    c0 = kw.required(header, "COEFF0", "log10 of the first pixel's wavelength")
    c1 = kw.required(header, "COEFF1", "log10 dispersion per pixel")
    return np.power(10.0, c0 + c1 * np.arange(n))


def has_wavelength_row(header: Mapping[str, Any], data: np.ndarray) -> bool:
    """True for the DR2 layout (row 2 is the wavelength), False for DR1 (sub-continuum)."""
    exten = kw.string(header, "EXTEN0").lower()
    if "wavelength" in exten:
        return True
    if "subcontinuum" in exten:
        return False
    row = data[ROW_WAVELENGTH]
    return bool(np.allclose(row, log_grid(header, row.shape[0]), rtol=1e-6))


def pixel_mask(flux: np.ndarray, ivar: np.ndarray, andmask: np.ndarray) -> np.ndarray:
    """True where a pixel must not be used (see the module docstring for why)."""
    return (andmask != 0) | ~np.isfinite(flux) | ((flux == 0) & (ivar == 0))


def medium(header: Mapping[str, Any]) -> Medium:
    """``VACUUM = T`` (all releases so far) or F; vacuum when absent."""
    return "air" if kw.get(header, "VACUUM") is False else "vacuum"


def meta(header: Mapping[str, Any], extra: bool = True) -> SpectrumMeta:
    """Identifiers, position, time and pipeline results of a LAMOST header.

    ``extra=False`` skips the plan/fibre/redshift/band-SNR cards of ``meta.extra``:
    a bulk ingest of millions of files needs only the ``spectrum`` columns.
    """
    obsid = kw.string(header, "OBSID")  # DR1 files have none: left empty, not the file name
    classes = (kw.string(header, "CLASS"), kw.string(header, "SUBCLASS"))
    mjd = kw.mjd_from_iso(kw.string(header, "DATE-OBS"))  # median UTC of the exposures
    more = {}
    if extra:
        more = {
            key.lower(): kw.get(header, key)
            for key in ("LMJD", "MJD", "PLANID", "SPID", "FIBERID", "VERSPIPE", "Z", "Z_ERR")
            if key in header
        }
        more.update({f"sn_{band}": _snr(header, f"SN_{band.upper()}") for band in "ugriz"})
    more["magnitude"] = magnitude(header)  # a spectrum column: bulk ingest needs it too
    identity = obsid or spectrum_name(header)
    return SpectrumMeta(
        pubdid=f"{PUBDID_PREFIX}{identity}" if identity else "",
        obsid=obsid,
        designation=kw.string(header, "DESIG"),
        object=kw.string(header, "OBJNAME"),
        ra=kw.angle(kw.get(header, "RA"), hours=False),
        dec=kw.angle(kw.get(header, "DEC"), hours=False),
        mjd=mjd if np.isfinite(mjd) else kw.number(header, "MJD"),
        snr=_snr(header, "SN_R"),  # r band: the one that holds H-alpha
        pipeline_class=" ".join(c for c in classes if c),
        collection="lamost",
        instrument="LAMOST",
        extra=more,
    )


#: What the LAMOST pipeline writes in SN_* when it could not measure the S/N.
SNR_FILL = 99.0
#: Bands whose magnitude the page shows, best first: H-alpha lies in r (V next door).
MAGNITUDE_BANDS = "rvgi"


def magnitude(header: Mapping[str, Any]) -> float:
    """The object's input-catalogue magnitude: ``MAG1``..``MAG7`` in the bands
    ``MAGTYPE`` spells letter by letter (``ugrizjh``, ``ugrijhk``, ``V``...); r, else V,
    g, i. NaN when none is given: LAMOST fills unknown ones with 99 (and sometimes 0)."""
    bands = kw.string(header, "MAGTYPE").lower()
    for band in MAGNITUDE_BANDS:
        at = bands.find(band)
        if 0 <= at < 7:
            value = kw.number(header, f"MAG{at + 1}")
            if np.isfinite(value) and 0.0 < value < SNR_FILL - 1:
                return value
    return float("nan")


def _snr(header: Mapping[str, Any], key: str) -> float:
    """``SN_<band>``, NaN when absent or the pipeline's fill value 99 (not an S/N of 99)."""
    value = kw.number(header, key)
    return float("nan") if value == SNR_FILL else value


def spectrum_name(header: Mapping[str, Any]) -> str:
    """The LAMOST name of a spectrum, ``spec-LMJD-PLANID_spSPID-FIBERID``, from the
    keywords that make it (so a renamed file keeps its identity); '' if they are absent.

    DR1 headers have no OBSID: this name is then what the publisher DID is made of.
    """
    lmjd, plan = kw.get(header, "LMJD"), kw.string(header, "PLANID")
    spid, fiber = kw.get(header, "SPID"), kw.get(header, "FIBERID")
    if lmjd is None or not plan or spid is None or fiber is None:
        return kw.string(header, "FILENAME").removesuffix(".fits").removesuffix(".gz")
    return f"spec-{int(lmjd)}-{plan}_sp{int(spid):02d}-{int(fiber):03d}"


def read_lamost(header: Mapping[str, Any], data: Any) -> Spectrum:
    """A :class:`Spectrum` from the primary header and (5, N) image of a LAMOST file."""
    if data is None or np.ndim(data) != 2 or np.shape(data)[0] != N_ROWS:
        raise SpectrumError(
            Reason.WRONG_HDU_LAYOUT,
            f"LAMOST primary HDU must be a ({N_ROWS}, N) image, got {np.shape(data)}",
        )
    rows = np.asarray(data, dtype=np.float64)
    n = rows.shape[1]
    dr2 = has_wavelength_row(header, rows)
    wavelength = rows[ROW_WAVELENGTH] if dr2 else log_grid(header, n)
    flux, ivar = rows[ROW_FLUX], rows[ROW_IVAR]
    info = meta(header)
    info.extra["layout"] = "DR2" if dr2 else "DR1"
    return Spectrum(
        wavelength,
        flux,
        medium(header),
        RESOLVING_POWER,
        ivar=np.where(np.isfinite(ivar), ivar, 0.0),
        mask=pixel_mask(flux, ivar, rows[ROW_ANDMASK]),
        meta=info,
    )
