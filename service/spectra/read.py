"""``read_spectrum``: any supported spectrum file in, one :class:`Spectrum` out.

The format is chosen by content, never by file name (archives serve
``getData?ID=...`` URLs, caches store hashes):

* FITS (``SIMPLE  =``; gzip-compressed FITS is expanded first):
  LAMOST DR1/DR2 (:mod:`.lamost`), Ondrejov CCD700 raw image and DataLink
  BINTABLE (:mod:`.ondrejov`), any other IVOA Spectrum DM FITS (:mod:`.sdm`);
* VOTable (root element ``VOTABLE``): IVOA Spectrum DM (:mod:`.votable`).

Every failure is a :class:`~service.reasons.SpectrumError` with a named reason;
astropy's warnings about non-standard headers are silenced, never shown.
"""

from __future__ import annotations

import gzip
import io
import os
import warnings
import zlib
from pathlib import Path
from typing import Any, BinaryIO

from service.reasons import Reason, SpectrumError
from service.spectra import fitsheader, lamost, ondrejov, sdm
from service.spectra.checks import validate
from service.spectra.spectrum import Spectrum
from service.spectra.votable import looks_like_votable, read_sdm_votable

#: Bytes: the largest file (or gzip expansion) accepted as one spectrum.
MAX_SPECTRUM_BYTES = 256 * 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"

Source = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO


def load_bytes(source: Source) -> bytes:
    """The content of a path, a bytes object or a binary file object (size-limited)."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        try:
            if path.stat().st_size > MAX_SPECTRUM_BYTES:
                raise SpectrumError(
                    Reason.SPECTRUM_TOO_LARGE, f"{path}: more than {MAX_SPECTRUM_BYTES} bytes"
                )
            data = path.read_bytes()
        except OSError as error:
            raise SpectrumError(Reason.UNREADABLE_FILE, f"{path}: {error.strerror}") from None
    else:
        try:
            data = source.read(MAX_SPECTRUM_BYTES + 1)
        except (OSError, ValueError, AttributeError) as error:
            raise SpectrumError(
                Reason.UNREADABLE_FILE, f"not a path, bytes or binary file: {error}"
            ) from None
        if not isinstance(data, bytes):
            raise SpectrumError(Reason.UNREADABLE_FILE, "file object is not opened in binary mode")
    if len(data) > MAX_SPECTRUM_BYTES:
        raise SpectrumError(Reason.SPECTRUM_TOO_LARGE, f"more than {MAX_SPECTRUM_BYTES} bytes")
    if data.startswith(GZIP_MAGIC):
        data = _gunzip(data)
    return data


def _gunzip(data: bytes) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            out = stream.read(MAX_SPECTRUM_BYTES + 1)
    except (OSError, EOFError, zlib.error) as error:
        raise SpectrumError(Reason.CORRUPT_FITS, f"broken gzip stream: {error}") from None
    if len(out) > MAX_SPECTRUM_BYTES:
        raise SpectrumError(Reason.SPECTRUM_TOO_LARGE, "gzip expands past the size limit")
    return out


def read_spectrum(source: Source) -> Spectrum:
    """Read one spectrum from a path, bytes or binary file object; format by content.

    Returns a validated :class:`Spectrum` (finite, increasing wavelengths; some
    finite non-zero flux). It may not cover H-alpha: call
    :func:`~service.spectra.check_halpha_coverage` for that.
    Raises :class:`SpectrumError` (CORRUPT_FITS, CORRUPT_VOTABLE, UNKNOWN_FORMAT,
    WRONG_HDU_LAYOUT, MISSING_KEYWORD, BAD_WAVELENGTH, BAD_FLUX, UNREADABLE_FILE,
    SPECTRUM_TOO_LARGE).
    """
    data = load_bytes(source)
    if data.startswith(fitsheader.FITS_MAGIC):
        spectrum = read_fits_bytes(data)
    elif looks_like_votable(data[:4096]):
        spectrum = read_sdm_votable(data)
    else:
        raise SpectrumError(Reason.CORRUPT_FITS, "neither FITS nor a VOTable (first bytes)")
    return validate(spectrum)


def read_fits_bytes(data: bytes) -> Spectrum:
    """Pick the FITS reader by the HDUs' content (structure checked before astropy).

    Images (LAMOST, raw CCD700) are read with :mod:`.fitsheader` and numpy alone,
    ~10x faster than through astropy's header objects; tables go through astropy.
    """
    layout = list(fitsheader.walk(data))  # truncation / garbage -> CORRUPT_FITS
    primary = layout[0]
    try:
        if primary.data_bytes and lamost.is_lamost(primary.cards):
            return lamost.read_lamost(primary.cards, fitsheader.image(data, primary))
        if primary.data_bytes and ondrejov.is_raw_ccd700(primary.cards):
            return ondrejov.read_raw(primary.cards, fitsheader.image(data, primary))
    except fitsheader.ODD_HEADER_ERRORS as error:
        detail = f"unusable header values: {type(error).__name__}: {error}"
        raise SpectrumError(Reason.CORRUPT_FITS, detail) from None
    from astropy.io import fits
    from astropy.utils.exceptions import AstropyWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        warnings.simplefilter("ignore", UserWarning)
        try:
            with fits.open(io.BytesIO(data), memmap=False, lazy_load_hdus=False) as hdus:
                return _dispatch(hdus, len(layout))
        except SpectrumError:
            raise
        except Exception as error:  # astropy: OSError, ValueError, VerifyError, ...
            raise SpectrumError(Reason.CORRUPT_FITS, f"{type(error).__name__}: {error}") from None


def _dispatch(hdus: Any, n_hdus: int) -> Spectrum:
    primary = hdus[0].header
    if lamost.is_lamost(primary):
        return lamost.read_lamost(primary, hdus[0].data)
    if ondrejov.is_raw_ccd700(primary):
        return ondrejov.read_raw(primary, hdus[0].data)
    if n_hdus > 1 and ondrejov.is_datalink_table(hdus[1].header):
        return ondrejov.read_datalink_table(hdus)
    if sdm.fits_table(hdus) is not None:
        return sdm.read_sdm_fits(hdus)
    shapes = [getattr(h, "shape", None) or h.header.get("NAXIS") for h in hdus]
    raise SpectrumError(
        Reason.UNKNOWN_FORMAT, f"HDUs {shapes}: no LAMOST, CCD700 or Spectrum DM layout"
    )
