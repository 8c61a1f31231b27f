"""Ondrejov 2 m Perek telescope, CCD700 coude spectrograph (R ~ 13 000, air wavelengths).

Two forms reach us:

* the **raw 1-D image** the IRAF reduction leaves (``oe270005.fits``): flux in ADU
  as a float image, wavelength ``CRVAL1 + CDELT1 * (i + 1 - CRPIX1)`` Å in air
  (``CD1_1`` if ``CDELT1`` is absent), ``RA``/``DEC`` sexagesimal of the equinox
  ``EQUINOX`` (of date), time as ``DATE-OBS`` + ``UTMIDDLE`` or ``JD``;
* the **DataLink BINTABLE** the archive's GAVO DaCHS service delivers: an SDM FITS
  (``spectral`` in air Å, ``flux``), ``DS_IDPUB`` = ``ivo://asu.cas.cz/stel/ccd700/<file>``,
  ``RA``/``DEC`` in ICRS degrees, ``TMID`` = mid-exposure MJD.

Neither carries an SNR, so it is estimated from the flux (DER_SNR).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from service.reasons import Reason, SpectrumError
from service.spectra import keywords as kw
from service.spectra.checks import der_snr
from service.spectra.sdm import read_sdm_fits
from service.spectra.spectrum import Spectrum, SpectrumMeta

RESOLVING_POWER = 13000.0
PUBDID_PREFIX = "ivo://asu.cas.cz/stel/ccd700/"
INSTRUMENT = "CCD700"
INSTRUMENT_KEYWORDS = ("COUDE700", "CCD700")


def is_raw_ccd700(header: Mapping[str, Any]) -> bool:
    """A 1-D image from the Ondrejov coude spectrograph (or any linear 1-D spectrum)."""
    return kw.get(header, "NAXIS") == 1 and (
        kw.string(header, "OBSERVAT").upper().startswith("ONDREJOV")
        or kw.string(header, "INSTRUME").upper() in INSTRUMENT_KEYWORDS
        or "CRVAL1" in header
    )


def is_datalink_table(header: Mapping[str, Any]) -> bool:
    """The header of an Ondrejov DataLink BINTABLE (DaCHS SDM FITS of ccd700)."""
    return kw.string(header, "DS_IDPUB").startswith(PUBDID_PREFIX) or kw.string(
        header, "TITLE"
    ).startswith("ccd700/")


def linear_grid(header: Mapping[str, Any], n: int) -> np.ndarray:
    """Air wavelengths (Å) of pixels 0..n-1 from CRVAL1, CDELT1 (or CD1_1), CRPIX1."""
    start = kw.required(header, "CRVAL1", "wavelength of the reference pixel")
    step = kw.number(header, "CDELT1")
    if not math.isfinite(step):
        step = kw.required(header, "CD1_1", "CDELT1/CD1_1: dispersion per pixel")
    reference = kw.number(header, "CRPIX1")
    reference = reference if math.isfinite(reference) else 1.0
    return start + step * (np.arange(n) + 1.0 - reference)


def raw_mjd(header: Mapping[str, Any]) -> float:
    """Mid-exposure MJD: DATE-OBS + UTMIDDLE, else JD, else DATE-OBS + UT + EXPTIME/2.

    DATE-OBS is the night's date at the start of the exposure, so a UTMIDDLE
    earlier than UT means the exposure crossed 0h UT and the middle is a day later.
    """
    date = kw.string(header, "DATE-OBS")
    start = kw.mjd_from_iso(date, kw.string(header, "UT")) if date else math.nan
    middle = kw.mjd_from_iso(date, kw.string(header, "UTMIDDLE")) if date else math.nan
    if math.isfinite(middle):
        return middle + 1.0 if middle < start else middle
    jd = kw.number(header, "JD")
    if math.isfinite(jd):
        return jd - 2400000.5
    exposure = kw.number(header, "EXPTIME")
    return start + (exposure / 2 / 86400 if math.isfinite(exposure) else 0.0)


def icrs(ra: float, dec: float, equinox: float) -> tuple[float, float]:
    """FK5 coordinates of ``equinox`` (Julian year) precessed to ICRS degrees.

    The raw frames give the telescope's position of date (EQUINOX 2005.4: 4.5'
    from J2000), which matters when a spectrum is matched to a LAMOST twin.
    """
    if not (math.isfinite(ra) and math.isfinite(dec)):
        return ra, dec
    if not math.isfinite(equinox) or abs(equinox - 2000.0) < 1e-3:
        return ra, dec
    from astropy import units
    from astropy.coordinates import FK5, SkyCoord
    from astropy.time import Time

    frame = FK5(equinox=Time(equinox, format="jyear"))
    coord = SkyCoord(ra * units.deg, dec * units.deg, frame=frame).icrs
    return float(coord.ra.deg), float(coord.dec.deg)


def read_raw(header: Mapping[str, Any], data: Any) -> Spectrum:
    """A Spectrum from a raw CCD700 1-D image (primary header and data)."""
    if data is None or np.ndim(data) != 1:
        raise SpectrumError(
            Reason.WRONG_HDU_LAYOUT, f"CCD700 image must be 1-D, got shape {np.shape(data)}"
        )
    flux = np.asarray(data, dtype=np.float64)
    wavelength = linear_grid(header, flux.shape[0])
    ra, dec = icrs(
        kw.angle(kw.get(header, "RA"), hours=True),
        kw.angle(kw.get(header, "DEC"), hours=False),
        kw.number(header, "EQUINOX"),
    )
    name = kw.string(header, "FILENAME").rsplit(".", 1)[0]
    meta = SpectrumMeta(
        pubdid=f"{PUBDID_PREFIX}{name}" if name else "",
        obsid=name,
        object=kw.string(header, "OBJECT"),
        ra=ra,
        dec=dec,
        mjd=raw_mjd(header),
        snr=der_snr(flux),
        collection="ondrejov",
        instrument=INSTRUMENT,
        extra={"flux_unit": kw.string(header, "BUNIT"), "snr_source": "der_snr"},
    )
    return Spectrum(wavelength, flux, "air", RESOLVING_POWER, meta=meta)


def read_datalink_table(hdus: Any) -> Spectrum:
    """A Spectrum from an Ondrejov DataLink BINTABLE: SDM FITS plus what we know of CCD700."""
    spectrum = read_sdm_fits(hdus)
    meta = spectrum.meta
    if meta.extra.get("medium_source") == "default":
        spectrum.medium = "air"  # the archive's wavelengths are in air
        meta.extra["medium_source"] = "instrument"
    if meta.extra.get("resolving_power_source") == "sampling":
        spectrum.resolving_power = RESOLVING_POWER
        meta.extra["resolving_power_source"] = "instrument"
    meta.obsid = meta.obsid or meta.pubdid.removeprefix(PUBDID_PREFIX)
    meta.collection = meta.collection or "ondrejov"
    meta.instrument = meta.instrument or INSTRUMENT
    if not math.isfinite(meta.snr):
        meta.snr = der_snr(spectrum.flux)
        meta.extra["snr_source"] = "der_snr"
    return spectrum
