"""FITS files in the archives' own formats, so that ``service.spectra.read_spectrum``
reads them exactly as it reads the real ones.

* LAMOST DR2: primary HDU, (5, 3909) float32 image — flux, inverse variance,
  vacuum wavelength, andmask, ormask — with the pipeline's header keywords
  (``COEFF0``/``COEFF1``, ``DESIG``, ``CLASS``/``SUBCLASS``, ``SN_U``..``SN_Z``,
  ``OBSID``, ``PLANID``, ``LMJD``/``MJD``, ``VACUUM = T`` ...).
* Ondrejov CCD700 DataLink: empty primary HDU + BINTABLE ``spectral`` (air Å),
  ``flux`` with the GAVO DaCHS SDM keywords (``DS_IDPUB``, ``OBJECT``, ``RA``,
  ``DEC``, ``TMID``, ``FLUX_CAL``, ``SPEC_VAL`` ...).
* Ondrejov CCD700 raw: the IRAF 1-D float32 image in ADU with ``CRVAL1``,
  ``CDELT1``, ``CRPIX1`` (air Å), sexagesimal ``RA``/``DEC``, ``DATE-OBS`` and
  ``UTMIDDLE``.

Headers are formatted as bytes (:mod:`.fitsbytes`): astropy's writer is ~100× slower.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from astropy.time import Time

from service.archive import fitsbytes
from service.archive import instruments as ins

NODATA = 4  # LAMOST mask bit: no data in this pixel


#: LAMOST primary header cards that do not change between files: (key, value, comment).
LAMOST_FIXED: list[tuple[str, Any, str]] = [
    ("AUTHOR", "LAMOST Pipeline", "Who compiled the information"),
    ("EXTEN0", "Flux Inverse Wavelength Andmask Ormask", ""),
    ("N_EXTEN", 1, "The extension number"),
    ("EXTNAME", "Flux", "The extension name"),
    ("ORIGIN", "NAOC-LAMOST (simulated by alvo)", "Organization responsible"),
    ("TELESCOP", "LAMOST", "GuoShouJing Telescope"),
    ("LONGITUD", 117.58, "[deg] Longitude of site"),
    ("LATITUDE", 40.39, "[deg] Latitude of site"),
]
LAMOST_WCS: list[tuple[str, Any, str]] = [
    ("HELIO", True, "Heliocentric correction"),
    ("VACUUM", True, "Wavelengths are in vacuum"),
    ("NWORDER", 2, "Number of linear-log10 coefficients"),
    ("WFITTYPE", "LOG-LINEAR", "Linear-log10 dispersion"),
    ("COEFF0", ins.LAMOST_COEFF0, "Central wavelength (log10) of first pixel"),
    ("COEFF1", ins.LAMOST_COEFF1, "Log10 dispersion per pixel"),
    ("CRVAL1", ins.LAMOST_COEFF0, "Central wavelength (log10) of first pixel"),
    ("CD1_1", ins.LAMOST_COEFF1, "Log10 dispersion per pixel"),
    ("CRPIX1", 1, "Starting pixel (1-indexed)"),
    ("CTYPE1", "LINEAR", ""),
    ("DC-FLAG", 1, "Log-linear flag"),
    ("VERSPIPE", "2.7.5", "Version of Pipeline"),
]
C_KMS = 299792.458


@functools.cache
def _formatted(cards: tuple[tuple[str, Any, str], ...]) -> bytes:
    """Fixed cards formatted once per process."""
    return b"".join(fitsbytes.card(*c) for c in cards)


@functools.cache
def _lamost_wavelength_f32() -> np.ndarray:
    return ins.lamost_wavelength().astype(np.float32)


def iso_times(mjd: np.ndarray) -> np.ndarray:
    """(n,) ISO 8601 UTC strings 'yyyy-mm-ddThh:mm:ss.ss' of MJDs (vectorised)."""
    return np.array([t[:22] for t in Time(np.asarray(mjd), format="mjd").isot])


def lamost_file_name(row: dict[str, Any]) -> str:
    """``spec-{LMJD}-{PLANID}_sp{SPID:02d}-{FIBERID:03d}.fits`` as the archive names files."""
    return f"spec-{row['lmjd']}-{row['planid']}_sp{row['spid']:02d}-{row['fiberid']:03d}.fits"


def lamost_bytes(flux: np.ndarray, ivar: np.ndarray, row: dict[str, Any]) -> bytes:
    """One LAMOST DR2 file. ``row``: the spectrum's catalogue values plus ``date_obs``."""
    nodata = ~np.isfinite(flux) | ((flux == 0) & (ivar == 0))
    andmask = np.where(nodata, NODATA, 0)
    data = np.empty((5, flux.shape[0]), dtype=np.float32)
    data[0], data[1], data[2], data[3], data[4] = (
        flux,
        ivar,
        _lamost_wavelength_f32(),
        andmask,
        andmask,
    )
    velocity = float(row["rv"])
    cards: list[fitsbytes.Card | bytes] = [
        ("FILENAME", lamost_file_name(row)),
        _formatted(tuple(LAMOST_FIXED)),
    ]
    cards += [
        ("DATE-OBS", str(row["date_obs"]), "The observation median UTC"),
        ("LMJD", int(row["lmjd"]), "Local Modified Julian Day"),
        ("MJD", int(np.floor(row["mjd"])), "Modified Julian Day"),
        ("PLANID", str(row["planid"]), "Plan ID in use"),
        ("RA", round(float(row["ra"]), 6), "[deg] Right ascension of object"),
        ("DEC", round(float(row["dec"]), 6), "[deg] Declination of object"),
        ("DESIG", f"LAMOST {row['designation']}", "Designation of LAMOST target"),
        ("FIBERID", int(row["fiberid"]), "Fiber ID of Object"),
        ("OBJNAME", str(row["object"]), "Name of object"),
        ("OBJTYPE", "star", "Object type from input catalog"),
        ("MAGTYPE", "ugrizjh", "Magnitude type of object"),
        ("MAG3", round(float(row["magnitude"]), 2), "[mag] r magnitude of object"),
        ("OBS_TYPE", "OBJ", "The type of target (OBJ, FLAT, ARC or BIAS)"),
        ("RADECSYS", "FK5", "Equatorial coordinate system"),
        ("EQUINOX", 2000.0, "Equinox in years"),
        ("SPID", int(row["spid"]), "Spectrograph ID"),
        ("EXPTIME", float(row["exptime"]), "[s] Minimum of exposure time for all cameras"),
        _formatted(tuple(LAMOST_WCS)),
        ("CLASS", str(row["pipeline_class"]), "Class of object"),
        ("SUBCLASS", str(row["subclass"]), "Subclass of object"),
        ("Z", round(velocity / C_KMS, 7), "Redshift of object"),
        ("Z_ERR", round(abs(velocity) * 0.02 / C_KMS + 1e-5, 7), "Redshift error of object"),
        *[(f"SN_{b.upper()}", float(row[f"sn_{b}"]), f"SNR of {b} filter") for b in "ugriz"],
        ("OBSID", int(row["obsid"]), "Unique number ID of this spectrum"),
    ]
    return fitsbytes.image_hdu(data, cards)


def ondrejov_datalink_bytes(wavelength: np.ndarray, flux: np.ndarray, row: dict[str, Any]) -> bytes:
    """One CCD700 spectrum as the Ondrejov DataLink service delivers it (air Å)."""
    metres = wavelength * 1e-10
    cards: list[fitsbytes.Card] = [
        ("TUTYP1", "spec:spectrum.data.spectralaxis.value"),
        ("TUTYP2", "spec:spectrum.data.fluxaxis.value"),
        ("TITLE", f"ccd700/data/sim/{row['obsid']}.fit"),
        ("DS_IDPUB", f"ivo://asu.cas.cz/stel/ccd700/{row['obsid']}"),
        ("DATE", str(row["date_obs"])[:19]),
        ("SPECBAND", "Optical"),
        ("OBJECT", str(row["object"])),
        ("SRCCLASS", "star"),
        ("RA", float(row["ra"])),
        ("DEC", float(row["dec"])),
        ("APERTURE", 0.000167, "[deg]"),
        ("TMID", float(row["mjd"]), "[d]"),
        ("TELAPSE", float(row["exptime"]), "[s]"),
        ("SPEC_VAL", float(metres.mean()), "[m]"),
        ("SPEC_BW", float(metres[-1] - metres[0]), "[m]"),
        ("TDMIN1", float(metres[0]), "[m]"),
        ("TDMAX1", float(metres[-1]), "[m]"),
        ("RADECSYS", "ICRS"),
        ("SPECSDIM", "Angstrom"),
        ("VOSEGT", "Spectrum"),
        ("VOPUB", "ivo://alvo.demo/org"),
        ("DSSOURCE", "pointed"),
        ("CRETYPE", "archival"),
        ("FLUX_CAL", "UNCALIBRATED"),
        ("SPEC_CAL", "ABSOLUTE"),
    ]
    table = fitsbytes.bintable_hdu(
        [("spectral", wavelength, "Angstrom"), ("flux", flux, "")], cards
    )
    primary = fitsbytes.empty_primary(
        [("DATE", str(row["date_obs"])[:10], "Date file was written")]
    )
    return primary + table


def ondrejov_raw_bytes(wavelength: np.ndarray, flux: np.ndarray, row: dict[str, Any]) -> bytes:
    """One CCD700 spectrum as the IRAF reduction leaves it: 1-D ADU image, air Å.

    ``row`` needs ``date_start`` (ISO start of exposure) and ``date_obs`` (middle).
    """
    from service.archive import sky

    ra, dec = sky.sexagesimal(np.array([row["ra"]]), np.array([row["dec"]]))
    step = float(wavelength[1] - wavelength[0])
    start, middle = str(row["date_start"]), str(row["date_obs"])
    cards: list[fitsbytes.Card] = [
        ("ORIGIN", "NOAO-IRAF FITS Image Kernel July 2003", "FITS file originator"),
        ("OBJECT", str(row["object"]), "Title of observation"),
        ("OBSERVAT", "ONDREJOV", "Name of observatory (IRAF style)"),
        ("LATITUDE", 49.910555, "Telescope latitude  (degrees), +49:54:38.0"),
        ("LONGITUD", 14.783611, "Telescope longitud  (degrees), +14:47:01.0"),
        ("IMAGETYP", "object", "Type of observation, eg. FLAT"),
        ("FILENAME", f"{row['obsid']}.fit", "Original file name"),
        ("TELESCOP", "ZEISS-2m", "2m Ondrejov observatory telescope"),
        ("TELSYST", "COUDE", "Telescope setup - COUDE or CASSegrain"),
        ("EXPTIME", float(row["exptime"]), "Length of observation excluding pauses"),
        ("DATE-OBS", start[:10], "UTC date start of observation"),
        ("UT", start[11:19], "UTC of  start of observation"),
        ("INSTRUME", "COUDE700", "Coude spectrograph setup - 1400/700mm focus"),
        ("DETECTOR", "SITe 2000x800", "Name of the detector"),
        ("BUNIT", "ADU", "Unit of the array of image data"),
        ("GAIN", 1.07, "Electrons per ADU"),
        ("READNOIS", 7.0, "Readout noise in electrons per pix"),
        ("RA", ra[0], "ICRS"),
        ("DEC", dec[0], "ICRS"),
        ("EQUINOX", 2000.0, "Equinox of RA and DEC"),
        ("JD", float(row["mjd"]) + 2400000.5),
        ("UTMIDDLE", middle[11:21]),
        ("CTYPE1", "LINEAR"),
        ("CRVAL1", float(wavelength[0])),
        ("CRPIX1", 1.0),
        ("CDELT1", step),
        ("CD1_1", step),
        ("DC-FLAG", 0),
    ]
    return fitsbytes.image_hdu(np.asarray(flux, dtype=np.float32), cards)
