"""Write FITS headers and HDUs as bytes, without astropy's per-card machinery.

Writing a million small files through ``astropy.io.fits`` costs ~50 ms each
(card objects, verification, configuration look-ups); formatting the 80-byte
cards directly costs ~0.1 ms. Only what the archive's files need: fixed-format
cards (bool, int, float, string ≤ 68 characters), image HDUs and binary tables
of scalar columns. The counterpart reader is :mod:`service.spectra.fitsheader`;
tests read every kind of file back with astropy and ``read_spectrum``.
FITS 4.0 (Pence et al. 2010) sections 4.1-4.2, 5, 7.3.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

BLOCK = 2880  # bytes: FITS headers and data come in blocks of this size
CARD = 80  # bytes per header card
END_CARD = b"END".ljust(CARD)

Card = tuple[str, Any] | tuple[str, Any, str]


def format_value(value: Any) -> str:
    """The value field (columns 11-30 for numbers, left-justified quoted strings)."""
    if isinstance(value, bool | np.bool_):
        return ("T" if value else "F").rjust(20)
    if isinstance(value, int | np.integer):
        return str(int(value)).rjust(20)
    if isinstance(value, float | np.floating):
        number = float(value)
        if not np.isfinite(number):
            raise ValueError("FITS header values must be finite")
        text = repr(number).upper()
        return text.rjust(20)
    text = str(value).replace("'", "''")[:68]
    return f"'{text:<8}'"


def card(key: str, value: Any, comment: str = "") -> bytes:
    """One 80-byte ``KEY     = value / comment`` card (ASCII; comment cut to fit)."""
    text = f"{key.upper():<8}= {format_value(value)}"
    if comment:
        text += f" / {comment}"
    return text[:CARD].ljust(CARD).encode("ascii", "replace")


def header(cards: Sequence[Card | bytes]) -> bytes:
    """Header bytes: the cards (tuples, or cards already formatted by :func:`card`), END,
    padded with blanks to a 2880-byte block."""
    raw = b"".join(c if isinstance(c, bytes) else card(*c) for c in cards) + END_CARD
    return raw + b" " * (-len(raw) % BLOCK)


def pad_data(raw: bytes) -> bytes:
    return raw + b"\0" * (-len(raw) % BLOCK)


def image_hdu(data: np.ndarray, cards: Sequence[Card | bytes], primary: bool = True) -> bytes:
    """A primary (or IMAGE extension) HDU of float32/float64 ``data`` plus ``cards``."""
    bitpix = {np.dtype(np.float32): -32, np.dtype(np.float64): -64}[data.dtype]
    first: list[Card | bytes] = (
        [("SIMPLE", True, "conforms to FITS standard")]
        if primary
        else [("XTENSION", "IMAGE", "image extension")]
    )
    first += [("BITPIX", bitpix, "array data type"), ("NAXIS", data.ndim)]
    first += [(f"NAXIS{k + 1}", n) for k, n in enumerate(reversed(data.shape))]
    first += [("EXTEND", True)] if primary else [("PCOUNT", 0), ("GCOUNT", 1)]
    big_endian = data.astype(data.dtype.newbyteorder(">"), copy=False)
    return header([*first, *cards]) + pad_data(big_endian.tobytes())


def empty_primary(cards: Sequence[Card] = ()) -> bytes:
    """A primary HDU without data, announcing extensions."""
    first: list[Card] = [("SIMPLE", True, "conforms to FITS standard"), ("BITPIX", 8), ("NAXIS", 0)]
    return header([*first, ("EXTEND", True), *cards])


def bintable_hdu(columns: Sequence[tuple[str, np.ndarray, str]], cards: Sequence[Card]) -> bytes:
    """A BINTABLE of float64 scalar columns (name, values, unit) plus ``cards``.

    TTYPE/TFORM/TUNIT cards come first, in column order, as astropy writes them.
    """
    n = len(columns[0][1])
    dtype = np.dtype([(name, ">f8") for name, _, _ in columns])
    rows = np.empty(n, dtype=dtype)
    for name, values, _ in columns:
        rows[name] = values
    described: list[Card] = [
        ("XTENSION", "BINTABLE", "binary table extension"),
        ("BITPIX", 8, "array data type"),
        ("NAXIS", 2, "number of array dimensions"),
        ("NAXIS1", dtype.itemsize, "length of dimension 1"),
        ("NAXIS2", n, "length of dimension 2"),
        ("PCOUNT", 0, "number of group parameters"),
        ("GCOUNT", 1, "number of groups"),
        ("TFIELDS", len(columns), "number of table fields"),
    ]
    for k, (name, _, unit) in enumerate(columns, start=1):
        described += [(f"TTYPE{k}", name), (f"TFORM{k}", "D")]
        if unit:
            described.append((f"TUNIT{k}", unit))
    return header([*described, *cards]) + pad_data(rows.tobytes())
