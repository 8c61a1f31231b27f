"""IVOA Spectrum Data Model 1.x serialisations: shared rules and the FITS form.

SSA services deliver one spectrum as a table whose spectral and flux columns carry
the SDM utypes ``spec:Spectrum.Data.SpectralAxis.Value`` and
``spec:Spectrum.Data.FluxAxis.Value`` (VOTable FIELD ``utype``; FITS ``TUTYPn``,
which GAVO DaCHS writes in lower case), with the dataset's metadata as PARAMs
(VOTable) or header keywords (FITS; DaCHS maps utypes to keywords such as
``DS_IDPUB``, ``OBJECT``, ``RA``/``DEC``, ``TMID``, ``SPEC_RP``, ``SPEC_RES``,
``DER_SNR``). Both forms are turned into one dict keyed by the utype's tail
(``curation.publisherdid``, ...) and :func:`build` makes the Spectrum from it.

The SDM has no standard flag for air or vacuum wavelengths. :func:`medium` looks,
in this order, at an explicit medium (``AIRORVAC``, ``VACUUM``, a
``SpectralMedium`` PARAM), the spectral column's UCD (``obs.atmos`` = air), and
words in its description/comment ("air", "vacuum"); without any hint it assumes
**vacuum** (the convention of the big survey pipelines: SDSS, LAMOST, DESI) and
records ``meta.extra["medium_source"] = "default"``. The resolving power comes from
``ResPower`` (``SPEC_RP``), else wavelength / ``Resolution`` (``SPEC_RES``), else
the **Nyquist default** median(λ) / (2 median Δλ), recorded as
``meta.extra["resolving_power_source"] = "sampling"``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from service.reasons import Reason, SpectrumError
from service.spectra import keywords as kw
from service.spectra.spectrum import Medium, Spectrum, SpectrumMeta

SPECTRAL = "data.spectralaxis.value"
FLUX = "data.fluxaxis.value"
FLUX_ERROR = "data.fluxaxis.accuracy.staterror"
#: Utype tails of the metadata we use -> DaCHS's FITS keyword for it
#: (gavo/protocols/sdm.py, _SDM_HEADER_MAPPING), and our own cutouts' keywords.
FITS_KEYWORDS: dict[str, tuple[str, ...]] = {
    "curation.publisherdid": ("DS_IDPUB",),
    "dataid.creatordid": ("CR_IDENT",),
    "dataid.datasetid": ("DS_IDENT",),
    "dataid.title": ("TITLE",),
    "dataid.collection": ("COLLECT1", "COLLECTN"),
    "dataid.instrument": ("INSTRUME",),
    "target.name": ("OBJECT",),
    "target.class": ("SRCCLASS",),
    "char.spatialaxis.coverage.location.value.c1": ("RA",),
    "char.spatialaxis.coverage.location.value.c2": ("DEC",),
    "char.timeaxis.coverage.location.value": ("TMID", "MJD"),
    "char.spectralaxis.respower": ("SPEC_RP", "RESPOWER"),
    "char.spectralaxis.resolution": ("SPEC_RES",),
    "derived.snr": ("DER_SNR",),
}
#: Explicit medium keywords: AIRORVAC ('air'/'vac', SDSS and our cutouts), VACUUM (T/F).
MEDIUM_KEYWORDS = ("AIRORVAC", "VACUUM")
#: Metres per unit of the spectral axis units archives use.
LENGTH_UNITS = {
    "angstrom": 1e-10,
    "a": 1e-10,
    "aa": 1e-10,
    "0.1nm": 1e-10,
    "nm": 1e-9,
    "um": 1e-6,
    "micron": 1e-6,
    "cm": 1e-2,
    "m": 1.0,
}


def utype_key(utype: str) -> str:
    """``spec:Spectrum.Char.SpectralAxis.ResPower`` -> ``char.spectralaxis.respower``."""
    key = utype.strip().lower().split(":")[-1]
    return key.removeprefix("spectrum.")


def find_column(
    names: Sequence[str], utypes: Sequence[str], ucds: Sequence[str], role: str
) -> int | None:
    """Index of the column playing ``role`` (SPECTRAL, FLUX or FLUX_ERROR), or None.

    By SDM utype first; then by UCD (``em.wl`` / ``phot.flux*`` as the primary
    word, ``stat.error`` + ``phot.flux`` for the error); then by the names DaCHS
    and the Ondrejov archive use.
    """
    for i, utype in enumerate(utypes):
        if utype and utype_key(utype) == role:
            return i
    words = [[w.strip().lower() for w in (u or "").split(";")] for u in ucds]
    for i, ucd in enumerate(words):
        if role == SPECTRAL and ucd[0] == "em.wl":
            return i
        if role == FLUX and ucd[0].startswith("phot.flux"):
            return i
        if role == FLUX_ERROR and ucd[0] == "stat.error" and "phot.flux" in ";".join(ucd):
            return i
    wanted = {
        SPECTRAL: ("spectral", "wavelength", "wave", "lambda"),
        FLUX: ("flux",),
        FLUX_ERROR: ("flux_error", "error", "sigma"),
    }[role]
    for i, name in enumerate(names):
        if name.strip().lower() in wanted:
            return i
    return None


def to_angstrom(values: np.ndarray, unit: str) -> np.ndarray:
    """Wavelengths in Å from a column in ``unit`` (Å when the unit is empty)."""
    key = unit.strip().lower().replace("angstroms", "angstrom")
    if not key:
        return values
    if key in LENGTH_UNITS:
        return values * (LENGTH_UNITS[key] / 1e-10)
    raise SpectrumError(
        Reason.WRONG_HDU_LAYOUT, f"spectral axis in {unit!r}: only wavelength units are read"
    )


def medium(explicit: str, ucd: str, description: str) -> tuple[Medium, str]:
    """(medium, where it came from): see the module docstring for the order."""
    word = explicit.strip().lower()
    if word in ("air", "t_air") or word.startswith("air"):
        return "air", "explicit"
    if word.startswith("vac") or word in ("t", "true"):
        return "vacuum", "explicit"
    if word in ("f", "false"):  # VACUUM = F
        return "air", "explicit"
    if "obs.atmos" in ucd.lower():
        return "air", "ucd"
    text = description.lower()
    if re.search(r"\bair\b", text):
        return "air", "description"
    if re.search(r"\bvacuum\b", text):
        return "vacuum", "description"
    return "vacuum", "default"


def resolving_power(values: Mapping[str, Any], wavelength: np.ndarray) -> tuple[float, str]:
    """(λ/Δλ, source) from ResPower, else Resolution (m unless a unit says), else sampling."""
    power = _float(values.get("char.spectralaxis.respower"))
    if power > 0:
        return power, "respower"
    resolution = _float(values.get("char.spectralaxis.resolution"))
    if resolution > 0:
        unit = str(values.get("char.spectralaxis.resolution.unit", "") or "").lower()
        scale = LENGTH_UNITS.get(unit.strip("[] ")) if unit else None
        metres = resolution * scale if scale else (resolution if resolution < 1e-3 else 0.0)
        if metres == 0.0:  # no unit and a large number: Å
            metres = resolution * 1e-10
        return float(np.median(wavelength)) * 1e-10 / metres, "resolution"
    step = float(np.median(np.diff(wavelength)))
    return float(np.median(wavelength)) / (2.0 * step), "sampling"


def _float(value: Any) -> float:
    if isinstance(value, bool) or value is None:
        return math.nan
    try:
        return float(np.asarray(value, dtype=np.float64).ravel()[0])
    except (TypeError, ValueError, IndexError):
        return math.nan


def position(values: Mapping[str, Any]) -> tuple[float, float]:
    """(ra, dec) degrees from C1/C2 PARAMs or a 2-element Location.Value (DaCHS)."""
    pair = values.get("char.spatialaxis.coverage.location.value")
    if pair is None:
        pair = values.get("target.pos")
    if pair is not None:
        flat = np.asarray(pair, dtype=object).ravel()
        if flat.shape[0] == 1 and isinstance(flat[0], str):
            flat = np.array(flat[0].replace(",", " ").split(), dtype=object)
        if flat.shape[0] >= 2:
            return _float(flat[0]), _float(flat[1])
    ra = values.get("char.spatialaxis.coverage.location.value.c1")
    dec = values.get("char.spatialaxis.coverage.location.value.c2")
    return kw.angle(ra, hours=False), kw.angle(dec, hours=False)


def build(
    wavelength: np.ndarray,
    flux: np.ndarray,
    error: np.ndarray | None,
    values: Mapping[str, Any],
    medium_hint: tuple[Medium, str],
) -> Spectrum:
    """A Spectrum from SDM columns (wavelength already in Å) and metadata values."""
    power, power_source = resolving_power(values, np.asarray(wavelength, dtype=np.float64))
    ivar = None
    if error is not None:
        err = np.asarray(error, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            ivar = np.where(np.isfinite(err) & (err > 0), 1.0 / err**2, 0.0)
    pubdid = kw.string(values, "curation.publisherdid")
    ra, dec = position(values)
    snr = _float(values.get("derived.snr"))
    meta = SpectrumMeta(
        pubdid=pubdid,
        obsid=kw.string(values, "dataid.creatordid") or kw.string(values, "dataid.datasetid"),
        object=kw.string(values, "target.name"),
        ra=ra,
        dec=dec,
        mjd=_float(values.get("char.timeaxis.coverage.location.value")),
        snr=snr,
        collection=kw.string(values, "dataid.collection"),
        instrument=kw.string(values, "dataid.instrument"),
        extra={
            "title": kw.string(values, "dataid.title"),
            "source_class": kw.string(values, "target.class"),
            "medium_source": medium_hint[1],
            "resolving_power_source": power_source,
        },
    )
    return Spectrum(wavelength, flux, medium_hint[0], power, ivar=ivar, meta=meta)


# --------------------------------------------------------------------------- FITS


def fits_table(hdus: Any) -> tuple[int, list[int | None]] | None:
    """(HDU index, [spectral, flux, error] column indices) of the first SDM-like BINTABLE."""
    for index, hdu in enumerate(hdus):
        header = hdu.header
        if kw.string(header, "XTENSION") != "BINTABLE":
            continue
        n = int(kw.number(header, "TFIELDS")) if kw.number(header, "TFIELDS") > 0 else 0
        names = [kw.string(header, f"TTYPE{i}") for i in range(1, n + 1)]
        utypes = [
            kw.string(header, f"TUTYP{i}") or kw.string(header, f"TUTYPE{i}")
            for i in range(1, n + 1)
        ]
        ucds = [kw.string(header, f"TUCD{i}") for i in range(1, n + 1)]
        found = [find_column(names, utypes, ucds, role) for role in (SPECTRAL, FLUX, FLUX_ERROR)]
        if found[0] is not None and found[1] is not None:
            return index, found
    return None


def read_sdm_fits(hdus: Any) -> Spectrum:
    """A Spectrum from an SDM FITS file (BINTABLE with SDM utypes/UCDs/names)."""
    located = fits_table(hdus)
    if located is None:
        raise SpectrumError(Reason.WRONG_HDU_LAYOUT, "no BINTABLE with spectral and flux columns")
    index, (i_lam, i_flux, i_err) = located
    hdu = hdus[index]
    header = hdu.header
    assert i_lam is not None and i_flux is not None
    data = hdu.data
    if data is None or len(data) == 0:
        raise SpectrumError(Reason.WRONG_HDU_LAYOUT, "the spectrum table has no rows")
    try:
        lam = np.asarray(data.field(i_lam), dtype=np.float64).ravel()
        flux = np.asarray(data.field(i_flux), dtype=np.float64).ravel()
        err = None if i_err is None else np.asarray(data.field(i_err), dtype=np.float64).ravel()
    except (TypeError, ValueError) as error:
        raise SpectrumError(Reason.WRONG_HDU_LAYOUT, f"non-numeric column: {error}") from None
    col = i_lam + 1
    lam = to_angstrom(lam, kw.string(header, f"TUNIT{col}") or kw.string(header, "SPECSDIM"))
    values: dict[str, Any] = {}
    for key, names in FITS_KEYWORDS.items():
        for name in names:
            for source in (header, hdus[0].header):
                if key not in values and kw.get(source, name) not in (None, ""):
                    values[key] = kw.get(source, name)
    if "char.spectralaxis.resolution" in values:
        values["char.spectralaxis.resolution.unit"] = _comment_unit(header, "SPEC_RES")
    explicit = next((str(kw.get(header, k)) for k in MEDIUM_KEYWORDS if k in header), "")
    description = f"{_comment(header, f'TTYPE{col}')} {kw.string(header, f'TCOMM{col}')}"
    hint = medium(explicit, kw.string(header, f"TUCD{col}"), description)
    spectrum = build(lam, flux, err, values, hint)
    spectrum.meta.extra["flux_calibration"] = kw.string(header, "FLUX_CAL")
    return spectrum


def _comment(header: Any, key: str) -> str:
    """A keyword's comment ("" when absent)."""
    try:
        return str(header.comments[key])
    except (KeyError, IndexError):
        return ""


def _comment_unit(header: Any, key: str) -> str:
    """The ``[unit]`` DaCHS puts at the start of a keyword's comment."""
    found = re.match(r"\s*\[([^\]]*)\]", _comment(header, key))
    return found.group(1) if found else ""
