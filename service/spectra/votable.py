"""IVOA Spectrum DM as a VOTable (SSA ``getData`` / DataLink ``#proc`` output).

Parsed with astropy.io.votable after two safety checks astropy's parser does not
make: a size limit, and a refusal of any DOCTYPE (no entity can be declared, so
none can be expanded -- "billion laughs" -- or fetched from outside). Reading
tolerates astropy's W-warnings (many services emit them) but never lets them out.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np

from service.reasons import Reason, SpectrumError
from service.spectra import sdm
from service.spectra.spectrum import Spectrum

#: Bytes: SDM VOTables of optical spectra are ~1 MB; refuse what is not a spectrum.
MAX_VOTABLE_BYTES = 64 * 1024 * 1024


def looks_like_votable(head: bytes) -> bool:
    """True if the document is XML and names a VOTABLE element near its start."""
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<") and b"<VOTABLE" in head


def _parse(data: bytes) -> Any:
    if len(data) > MAX_VOTABLE_BYTES:
        raise SpectrumError(
            Reason.SPECTRUM_TOO_LARGE, f"VOTable of {len(data)} bytes > {MAX_VOTABLE_BYTES}"
        )
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise SpectrumError(Reason.CORRUPT_VOTABLE, "DOCTYPE/ENTITY declarations are refused")
    from astropy.io.votable import parse
    from astropy.utils.exceptions import AstropyWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        try:
            return parse(io.BytesIO(data), verify="ignore")
        except Exception as error:  # expat, astropy E-errors, bad values: all mean corrupt
            raise SpectrumError(
                Reason.CORRUPT_VOTABLE, f"{type(error).__name__}: {error}"
            ) from None


def _param_values(document: Any) -> tuple[dict[str, Any], str]:
    """SDM metadata keyed by utype tail, and an explicit medium PARAM's value if any."""
    from astropy.io.votable.tree import Param

    values: dict[str, Any] = {}
    explicit = ""
    for item in document.iter_fields_and_params():
        if not isinstance(item, Param):
            continue
        value = item.value
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if item.utype:
            key = sdm.utype_key(item.utype)
            values.setdefault(key, value)
            if key == "char.spectralaxis.resolution" and item.unit is not None:
                values.setdefault(f"{key}.unit", str(item.unit))
        name = (item.name or "").lower()
        if name in ("spectralmedium", "airorvac", "medium"):
            explicit = str(value)
    return values, explicit


def read_sdm_votable(data: bytes) -> Spectrum:
    """A Spectrum from the first table of an SDM VOTable with spectral and flux columns."""
    document = _parse(data)
    for table in document.iter_tables():
        fields = table.fields
        found = [
            sdm.find_column(
                [f.name or "" for f in fields],
                [f.utype or "" for f in fields],
                [f.ucd or "" for f in fields],
                role,
            )
            for role in (sdm.SPECTRAL, sdm.FLUX, sdm.FLUX_ERROR)
        ]
        if found[0] is None or found[1] is None or table.array is None:
            continue
        names = table.array.dtype.names
        columns = [
            None if i is None else np.ma.filled(table.array[names[i]].astype(np.float64), np.nan)
            for i in found
        ]
        spectral = fields[found[0]]
        assert columns[0] is not None and columns[1] is not None
        wavelength = sdm.to_angstrom(columns[0], str(spectral.unit or ""))
        values, explicit = _param_values(document)
        # DaCHS declares the medium in Char.SpectralAxis.Ucd (em.wl;obs.atmos = air).
        ucd = f"{spectral.ucd or ''} {values.get('char.spectralaxis.ucd') or ''}"
        hint = sdm.medium(explicit, ucd, spectral.description or "")
        return sdm.build(wavelength, columns[1], columns[2], values, hint)
    raise SpectrumError(Reason.WRONG_HDU_LAYOUT, "no VOTable TABLE with spectral and flux FIELDs")
