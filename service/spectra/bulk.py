"""Bulk path: read only the H-alpha window of many archive files, stacked for adaptation.

Ingesting a multi-million-spectrum archive with :func:`read_spectrum` parses every
header card with astropy and reads every pixel, ~1.5 ms a file. The classifier
needs ~200 of LAMOST's 3909 pixels, so :func:`read_halpha_windows` parses the
header with :mod:`.fitsheader`, computes the byte offsets of the window, and
reads just those bytes with ``os.pread``:

* LAMOST DR1/DR2: rows flux, ivar, andmask (and DR2's wavelength row) over the
  window's pixels ``(log10 λ - COEFF0) / COEFF1``; 3-4 small reads per file.
* Ondrejov CCD700 raw image: the window's pixels of the 1-D image (CRVAL1/CDELT1).
* Ondrejov DataLink BINTABLE: the (small) table, then the rows inside the window.

Anything else (gzip, other SDM files, scaled integer data) goes through
:func:`read_spectrum` and is cut to the window, so every file gets an answer.
Pixel values, wavelengths and masks are those :func:`read_spectrum` gives.

Files sharing a wavelength grid in the window (all LAMOST files so far do) are
stacked into one :class:`WindowGroup`, ready for ``service.adapt.adapt_array``.
A file whose window holds no usable flux fails with ``BAD_FLUX``; the whole-file
checks of :func:`read_spectrum` are not repeated (that would mean reading it all).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Hashable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from service.reasons import Reason, SpectrumError
from service.spectra import fitsheader, lamost, ondrejov
from service.spectra import keywords as kw
from service.spectra.checks import window_in_medium
from service.spectra.read import read_spectrum
from service.spectra.sdm import FLUX, SPECTRAL, find_column, to_angstrom
from service.spectra.spectrum import Medium, SpectrumMeta
from service.vocabulary import FEATURE_WINDOW

#: Å (vacuum) read around the classifier's window: room for the blur kernel of
#: adaptation (4 σ of a Gaussian to R = 1800 is ~6 Å) and the air/vacuum shift (~1.8 Å).
MARGIN = 25.0
BULK_WINDOW = (FEATURE_WINDOW[0] - MARGIN, FEATURE_WINDOW[1] + MARGIN)
#: Bytes read first: enough for the headers of all known layouts (LAMOST 2 blocks,
#: Ondrejov BINTABLE 1 + 1); longer headers are read in full on demand.
HEAD_BYTES = 4 * fitsheader.BLOCK


@dataclasses.dataclass
class WindowGroup:
    """Spectra that share one wavelength grid over the window.

    wavelength : (p,) Å in ``medium``, increasing
    flux, ivar : (n, p) float64, as read_spectrum gives them
    mask : (n, p) bool, True = bad pixel
    resolving_power : (n,) λ/Δλ
    index : (n,) int, position of each row's file in the ``paths`` given
    """

    wavelength: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray
    medium: Medium
    resolving_power: np.ndarray
    index: np.ndarray


@dataclasses.dataclass
class HalphaWindows:
    """The result of :func:`read_halpha_windows`: stacked groups and per-file failures."""

    groups: list[WindowGroup]
    failures: dict[int, SpectrumError]
    n_files: int
    #: per file read, what its header says (LAMOST and fully read files; a bulk
    #: ingest's ``spectrum`` rows), keyed like ``failures``
    meta: dict[int, SpectrumMeta] = dataclasses.field(default_factory=dict)

    @property
    def n_read(self) -> int:
        return sum(group.index.shape[0] for group in self.groups)


@dataclasses.dataclass
class _Window:
    """One file's window before stacking; LAMOST rows stay raw until stacked.

    ``andmask`` set: LAMOST rows (flux, ivar, andmask in the file's dtype), the mask
    is made per group. ``mask`` set: a spectrum cut by the full reader. Neither:
    a plain image/table window, bad = non-finite flux.
    """

    wavelength: np.ndarray
    flux: np.ndarray
    medium: Medium
    resolving_power: float
    grid: Hashable
    ivar: np.ndarray | None = None
    andmask: np.ndarray | None = None
    mask: np.ndarray | None = None
    meta: SpectrumMeta | None = None


class _UseFullReaderError(Exception):
    """The fast path does not handle this file; read it whole."""


def read_halpha_windows(
    paths: Iterable[str | os.PathLike[str]],
    window: tuple[float, float] = BULK_WINDOW,
) -> HalphaWindows:
    """Read the pixels of ``window`` (Å, vacuum) from every file in ``paths``.

    Returns :class:`HalphaWindows`: groups of stacked arrays (row ``j`` of group
    ``g`` came from ``paths[g.index[j]]``) and ``failures[i]``, the named reason
    why ``paths[i]`` gave nothing (NO_HALPHA_COVERAGE when the window is outside
    the spectrum, BAD_FLUX when it holds no usable flux, and all the reasons of
    :func:`read_spectrum`).
    """
    members: dict[tuple[str, Hashable], list[tuple[int, _Window]]] = {}
    failures: dict[int, SpectrumError] = {}
    metas: dict[int, SpectrumMeta] = {}
    grids: dict[Hashable, Any] = {}  # LAMOST DR1 grids, computed once per run
    n = 0
    for i, path in enumerate(paths):
        n += 1
        try:
            try:
                part = _read_fast(os.fspath(path), window, grids)
            except (_UseFullReaderError, *fitsheader.ODD_HEADER_ERRORS):
                part = _read_slow(Path(path), window)  # unusual or odd: the full reader names it
        except SpectrumError as error:
            failures[i] = error
            continue
        if part.wavelength.shape[0] < 2:
            failures[i] = SpectrumError(
                Reason.NO_HALPHA_COVERAGE, "the window lies outside the spectrum"
            )
            continue
        members.setdefault((part.medium, part.grid), []).append((i, part))
        if part.meta is not None:
            metas[i] = part.meta
    groups = [_stack(group, failures) for group in members.values()]
    return HalphaWindows([g for g in groups if g.index.shape[0]], failures, n, metas)


def _stack(
    members: Sequence[tuple[int, _Window]], failures: dict[int, SpectrumError]
) -> WindowGroup:
    """Stack one grid's windows, make their masks, and drop rows with no usable flux."""
    first = members[0][1]
    parts = [part for _, part in members]
    flux = np.array([p.flux for p in parts], dtype=np.float64)
    mask = ~np.isfinite(flux)  # plain windows: that is all
    ivar = np.zeros_like(flux)
    rows = [j for j, p in enumerate(parts) if p.andmask is not None]
    if rows:  # LAMOST: one vectorised mask for all rows of the group
        raw_ivar = np.array([parts[j].ivar for j in rows], dtype=np.float64)
        andmask = np.array([parts[j].andmask for j in rows], dtype=np.float64)
        mask[rows] = lamost.pixel_mask(flux[rows], raw_ivar, andmask)
        ivar[rows] = np.where(np.isfinite(raw_ivar), raw_ivar, 0.0)
    rows = [j for j, p in enumerate(parts) if p.mask is not None]
    if rows:  # cut by the full reader: its mask and ivar
        mask[rows] = np.array([parts[j].mask for j in rows], dtype=bool)
        ivar[rows] = np.array([parts[j].ivar for j in rows], dtype=np.float64)
    index = np.array([i for i, _ in members], dtype=np.int64)
    usable = (~mask & np.isfinite(flux) & (flux != 0)).any(axis=1)
    for i in index[~usable]:
        failures[int(i)] = SpectrumError(Reason.BAD_FLUX, "no finite, non-zero flux in the window")
    return WindowGroup(
        wavelength=first.wavelength,
        flux=flux[usable],
        ivar=ivar[usable],
        mask=mask[usable],
        medium=first.medium,
        resolving_power=np.array([p.resolving_power for p in parts])[usable],
        index=index[usable],
    )


def _grid_key(wavelength: np.ndarray) -> Hashable:
    return (wavelength.shape[0], hash(wavelength.tobytes()))


def _read_slow(path: Path, window: tuple[float, float]) -> _Window:
    spectrum = read_spectrum(path)
    lo, hi = window_in_medium(window, spectrum.medium)
    cut = _index_range(spectrum.wavelength, lo, hi)
    assert spectrum.ivar is not None and spectrum.mask is not None
    lam = spectrum.wavelength[cut]
    return _Window(
        lam,
        spectrum.flux[cut],
        spectrum.medium,
        spectrum.resolving_power,
        _grid_key(lam),
        ivar=spectrum.ivar[cut],
        mask=spectrum.mask[cut],
        meta=spectrum.meta,
    )


def _index_range(grid: np.ndarray, lo: float, hi: float) -> slice:
    """Pixels from the last one at or below ``lo`` to the first at or above ``hi``."""
    i0 = max(int(np.searchsorted(grid, lo, side="right")) - 1, 0)
    i1 = min(int(np.searchsorted(grid, hi, side="left")) + 1, grid.shape[0])
    return slice(i0, max(i0, i1))


def _read_fast(path: str, window: tuple[float, float], grids: dict[Hashable, Any]) -> _Window:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as error:
        raise SpectrumError(Reason.UNREADABLE_FILE, f"{path}: {error.strerror}") from None
    try:
        return _read_open(fd, window, grids)
    except OSError as error:  # e.g. a folder: open() succeeds, reading does not
        raise SpectrumError(Reason.UNREADABLE_FILE, f"{path}: {error.strerror}") from None
    finally:
        os.close(fd)


def _read_open(fd: int, window: tuple[float, float], grids: dict[Hashable, Any]) -> _Window:
    """The fast path on an open file: header, layout, then the window's bytes."""
    size = os.fstat(fd).st_size
    head = os.pread(fd, HEAD_BYTES, 0)
    if not head.startswith(fitsheader.FITS_MAGIC):
        raise _UseFullReaderError
    try:
        cards, length = fitsheader.parse_cards(head)
    except SpectrumError:
        if len(head) < size:
            raise _UseFullReaderError from None  # a header longer than HEAD_BYTES
        raise
    primary = fitsheader.HDUInfo(cards, 0, length, fitsheader.data_size(cards))
    if primary.data_offset + primary.data_bytes > size:
        raise SpectrumError(Reason.CORRUPT_FITS, f"data runs past the file's {size} bytes")
    if lamost.is_lamost(cards):
        return _lamost(fd, primary, window, grids)
    if ondrejov.is_raw_ccd700(cards):
        return _raw_ccd700(fd, primary, window)
    hdus = list(fitsheader.walk(head, size))
    if len(hdus) > 1 and ondrejov.is_datalink_table(hdus[1].cards):
        return _datalink_table(fd, hdus[1], window)
    raise _UseFullReaderError


def _image_dtype(cards: Any) -> np.dtype[Any]:
    """The big-endian dtype of an unscaled image; scaled (BSCALE/BZERO) ones fall back."""
    if "BSCALE" in cards and kw.number(cards, "BSCALE") != 1.0:
        raise _UseFullReaderError
    if "BZERO" in cards and kw.number(cards, "BZERO") != 0.0:
        raise _UseFullReaderError
    return np.dtype(fitsheader.BITPIX_DTYPES[int(cards["BITPIX"])])


def _pread_array(fd: int, offset: int, count: int, dtype: np.dtype[Any]) -> np.ndarray:
    raw = os.pread(fd, count * dtype.itemsize, offset)
    if len(raw) != count * dtype.itemsize:
        raise SpectrumError(Reason.CORRUPT_FITS, "file shorter than its header says")
    return np.frombuffer(raw, dtype=dtype)


def _lamost(
    fd: int, hdu: fitsheader.HDUInfo, window: tuple[float, float], grids: dict[Hashable, Any]
) -> _Window:
    cards = hdu.cards
    if cards.get("NAXIS2") != lamost.N_ROWS:
        raise SpectrumError(
            Reason.WRONG_HDU_LAYOUT, f"LAMOST image has {cards.get('NAXIS2')} rows, not 5"
        )
    exten = kw.string(cards, "EXTEN0").lower()
    if "wavelength" in exten:
        dr2 = True
    elif "subcontinuum" in exten:
        dr2 = False
    else:
        raise _UseFullReaderError  # layout told by the data: let read_spectrum decide
    c0, c1 = kw.number(cards, "COEFF0"), kw.number(cards, "COEFF1")
    if not (math.isfinite(c0) and math.isfinite(c1) and c1 > 0):
        raise _UseFullReaderError
    n = int(cards["NAXIS1"])
    medium = lamost.medium(cards)
    lo, hi = window_in_medium(window, medium)
    i0 = min(max(math.floor((math.log10(lo) - c0) / c1), 0), n)
    i1 = min(max(math.ceil((math.log10(hi) - c0) / c1) + 1, i0), n)
    dtype = _image_dtype(cards)
    width = i1 - i0

    def row(r: int) -> np.ndarray:
        return _pread_array(fd, hdu.data_offset + (r * n + i0) * dtype.itemsize, width, dtype)

    if dr2:
        wavelength = row(lamost.ROW_WAVELENGTH).astype(np.float64)
        grid = _grid_key(wavelength)
    else:
        known = (c0, c1, i0, i1)
        if known not in grids:  # the same np.power read_spectrum does, over the window
            lam = np.power(10.0, c0 + c1 * np.arange(n)[i0:i1])
            grids[known] = (lam, _grid_key(lam))
        wavelength, grid = grids[known]
    return _Window(
        wavelength,
        row(lamost.ROW_FLUX),
        medium,
        lamost.RESOLVING_POWER,
        grid,
        ivar=row(lamost.ROW_IVAR),
        andmask=row(lamost.ROW_ANDMASK),
        meta=lamost.meta(cards, extra=False),
    )


def _raw_ccd700(fd: int, hdu: fitsheader.HDUInfo, window: tuple[float, float]) -> _Window:
    cards = hdu.cards
    n = int(cards.get("NAXIS1") or 0)
    grid = ondrejov.linear_grid(cards, n)
    lo, hi = window_in_medium(window, "air")
    if n < 2 or not (np.diff(grid[:2]) > 0).all():
        raise _UseFullReaderError
    cut = _index_range(grid, lo, hi)
    dtype = _image_dtype(cards)
    width = cut.stop - cut.start
    flux = _pread_array(fd, hdu.data_offset + cut.start * dtype.itemsize, width, dtype)
    lam = grid[cut]
    return _Window(lam, flux, "air", ondrejov.RESOLVING_POWER, _grid_key(lam))


def _datalink_table(fd: int, hdu: fitsheader.HDUInfo, window: tuple[float, float]) -> _Window:
    cards = hdu.cards
    if any(key in cards for key in ("SPEC_RP", "SPEC_RES", "AIRORVAC", "VACUUM", "RESPOWER")):
        raise _UseFullReaderError  # the header overrides what we know of CCD700: read it in full
    try:
        layout = fitsheader.columns(cards)
    except SpectrumError:
        raise _UseFullReaderError from None
    names = [name for name, *_ in layout]
    tfields = range(1, len(layout) + 1)
    utypes = [kw.string(cards, f"TUTYP{i}") for i in tfields]
    ucds = [kw.string(cards, f"TUCD{i}") for i in tfields]
    i_lam, i_flux = (find_column(names, utypes, ucds, role) for role in (SPECTRAL, FLUX))
    if i_lam is None or i_flux is None or layout[i_lam][2] != 1 or layout[i_flux][2] != 1:
        raise _UseFullReaderError
    row_bytes, n_rows = int(cards["NAXIS1"]), int(cards["NAXIS2"])
    raw = os.pread(fd, row_bytes * n_rows, hdu.data_offset)
    if len(raw) != row_bytes * n_rows:
        raise SpectrumError(Reason.CORRUPT_FITS, "table shorter than its header says")

    def column(i: int) -> np.ndarray:
        _, dtype, _, offset = layout[i]
        shape, strides = (n_rows,), (row_bytes,)
        values = np.ndarray(shape, dtype=dtype, buffer=raw, offset=offset, strides=strides)
        return values.astype(np.float64)

    lam = to_angstrom(column(i_lam), kw.string(cards, f"TUNIT{i_lam + 1}"))
    if not (np.diff(lam) > 0).all():
        raise _UseFullReaderError  # decreasing or broken: read_spectrum sorts or names it
    flux = column(i_flux)
    lo, hi = window_in_medium(window, "air")
    cut = _index_range(lam, lo, hi)
    return _Window(lam[cut], flux[cut], "air", ondrejov.RESOLVING_POWER, _grid_key(lam[cut]))
