"""Just enough FITS to find where the pixels are: headers, HDU offsets, data types.

The bulk reader of millions of archive files cannot afford astropy's full header
machinery per file (a few ms each); this module parses the 80-character cards of
a header into a plain dict and computes where each HDU's data starts, so the few
hundred bytes around H-alpha can be read straight from disk with numpy. It is also
how :func:`~service.spectra.read_spectrum` recognises truncated files before
astropy would pad them silently. FITS 4.0 (Pence et al. 2010), section 3-4.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from service.reasons import Reason, SpectrumError

BLOCK = 2880
CARD = 80
#: The first card of every FITS file, padded to 10 characters.
FITS_MAGIC = b"SIMPLE  ="
#: Numpy big-endian dtypes of the image BITPIX values.
BITPIX_DTYPES = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
#: Bytes per element of the binary-table TFORM codes this module can address.
TFORM_DTYPES = {"L": "i1", "B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8"}
_MISSING = object()
STRING_VALUE = re.compile(r"'((?:[^']|'')*)'")
#: What odd header values (a string where a number belongs, ...) raise when used.
ODD_HEADER_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError)
#: Headers longer than this are not spectra we know (LAMOST: 2 blocks, Ondrejov: 3).
MAX_HEADER_BLOCKS = 64


def parse_value(text: str) -> Any:
    """The value of a card's value field: str, bool, int, float or None (empty)."""
    text = text.strip()
    if text.startswith("'"):
        quoted = STRING_VALUE.match(text)
        if quoted is None:
            return None  # unterminated string: unparsable, as astropy says, so absent
        return quoted.group(1).replace("''", "'").rstrip()
    value = text.split("/", 1)[0].strip() if "/" in text else text
    if value in ("T", "F"):
        return value == "T"
    if not value:
        return None
    if not _FLOAT_MARK.search(value):  # int() would fail on these: skip its exception
        try:
            return int(value)
        except ValueError:
            pass
    try:
        return float(value.replace("D", "E"))
    except ValueError:
        return value


#: Characters no int() accepts and a float field has (a bulk read parses ~18 cards a file).
_FLOAT_MARK = re.compile(r"[.EeDd]")


@functools.lru_cache(maxsize=1024)
def _card_name(key: str) -> bytes:
    """A keyword's 8-byte card name (cached: a bulk read asks for the same ~25 a file)."""
    return key.encode("ascii", "replace").ljust(8)


class Cards(Mapping[str, Any]):
    """The keywords of one header, parsed only when asked for.

    A bulk read looks at ~12 of a LAMOST header's ~120 cards, and a Python loop
    over all cards costs more than the rest of the read, so the keyword index is
    built by numpy views of the 8-byte names and 72-byte fields, and a value is
    parsed on first access. The first card of a repeated keyword wins, as astropy
    does for ``header[key]``; cards without the ``"= "`` value indicator
    (COMMENT, HISTORY, blank) have no value.
    """

    def __init__(self, names: list[bytes], fields: list[bytes]) -> None:
        """``names`` (8 bytes) and ``fields`` (72 bytes) of the cards before END."""
        self._fields: dict[bytes, bytes] = dict(zip(names[::-1], fields[::-1], strict=True))
        self._parsed: dict[str, Any] = {}

    def _field(self, key: str) -> bytes | None:
        field = self._fields.get(_card_name(key))
        return field if field is not None and field.startswith(b"= ") else None

    def get(self, key: str, default: Any = None) -> Any:
        """Like ``dict.get``, without the exception a missing key costs ``Mapping.get``."""
        value = self._parsed.get(key, _MISSING)
        if value is not _MISSING:
            return value
        field = self._field(key)
        if field is None:
            return default
        value = self._parsed[key] = parse_value(field[2:].decode("latin-1"))
        return value

    def __getitem__(self, key: str) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._field(key) is not None

    def __iter__(self) -> Iterator[str]:
        fields = self._fields.items()
        return (k.decode("latin-1").rstrip() for k, v in fields if v.startswith(b"= "))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def parse_cards(raw: bytes) -> tuple[Cards, int]:
    """Keywords of the header at the start of ``raw`` and the header's length in bytes.

    Raises ``SpectrumError(CORRUPT_FITS)`` if no END card is found in ``raw``.
    """
    n = len(raw) // CARD
    names = np.ndarray((n,), dtype="S8", buffer=raw, strides=(CARD,)).tolist()
    try:
        end = names.index(b"END     ")
    except ValueError:
        raise SpectrumError(
            Reason.CORRUPT_FITS, "no END card: the FITS header is truncated"
        ) from None
    fields = np.ndarray((end,), dtype="S72", buffer=raw, offset=8, strides=(CARD,)).tolist()
    return Cards(names[:end], fields), (end * CARD // BLOCK + 1) * BLOCK


def data_size(cards: Mapping[str, Any]) -> int:
    """Bytes of an HDU's data without padding (FITS 4.0 eq. 1 and 2)."""
    naxis = cards.get("NAXIS", 0)
    bitpix = cards.get("BITPIX")
    if not isinstance(naxis, int) or not isinstance(bitpix, int) or bitpix not in BITPIX_DTYPES:
        raise SpectrumError(Reason.CORRUPT_FITS, f"bad NAXIS={naxis!r} or BITPIX={bitpix!r}")
    if naxis == 0:
        return 0
    n = 1
    for axis in range(1, naxis + 1):
        length = cards.get(f"NAXIS{axis}")
        if not isinstance(length, int) or length < 0:
            raise SpectrumError(Reason.CORRUPT_FITS, f"bad NAXIS{axis}={length!r}")
        n *= length
    pcount, gcount = cards.get("PCOUNT", 0), cards.get("GCOUNT", 1)
    if not (isinstance(pcount, int) and isinstance(gcount, int) and pcount >= 0 and gcount >= 0):
        raise SpectrumError(Reason.CORRUPT_FITS, f"bad PCOUNT={pcount!r} or GCOUNT={gcount!r}")
    return abs(bitpix) // 8 * gcount * (pcount + n)


@dataclasses.dataclass(frozen=True)
class HDUInfo:
    """Where one HDU sits in the file: its keywords and the byte offset of its data."""

    cards: Cards
    header_offset: int
    data_offset: int
    data_bytes: int

    @property
    def end(self) -> int:
        """Offset just past the (padded) data."""
        return self.data_offset + -(-self.data_bytes // BLOCK) * BLOCK


def walk(buffer: bytes, size: int | None = None) -> Iterator[HDUInfo]:
    """HDUs of a FITS file held in ``buffer`` (the whole file, or its first blocks).

    ``size`` is the file's real length when ``buffer`` is only its head; an HDU
    whose data would run past it is reported as truncated. Iteration stops at the
    end of the buffer, so a head-only buffer yields the HDUs whose headers it holds.
    """
    total = len(buffer) if size is None else size
    if not buffer.startswith(FITS_MAGIC):
        raise SpectrumError(Reason.CORRUPT_FITS, "does not start with SIMPLE =: not FITS")
    offset = 0
    while offset < len(buffer):
        if offset > 0 and not buffer[offset : offset + 8].startswith(b"XTENSION"):
            return  # special records or padding after the last HDU
        head = buffer[offset : offset + MAX_HEADER_BLOCKS * BLOCK]
        try:
            cards, length = parse_cards(head)
        except SpectrumError:
            if offset + len(head) < total and len(head) < MAX_HEADER_BLOCKS * BLOCK:
                return  # header continues beyond the buffer we were given
            raise
        info = HDUInfo(cards, offset, offset + length, data_size(cards))
        if info.data_offset + info.data_bytes > total:
            raise SpectrumError(
                Reason.CORRUPT_FITS,
                f"HDU at byte {offset} needs {info.data_offset + info.data_bytes} bytes, "
                f"file has {total}: truncated",
            )
        yield info
        offset = info.end


def image(buffer: bytes, hdu: HDUInfo) -> np.ndarray:
    """The data of an image HDU as float64, shape (NAXISn, ..., NAXIS1), physical values.

    BSCALE/BZERO are applied and integer BLANK pixels become NaN (FITS 4.0, 5.3).
    """
    cards = hdu.cards
    shape = tuple(int(cards[f"NAXIS{i}"]) for i in range(int(cards["NAXIS"]), 0, -1))
    raw = np.frombuffer(
        buffer,
        dtype=BITPIX_DTYPES[int(cards["BITPIX"])],
        count=int(np.prod(shape)),
        offset=hdu.data_offset,
    )
    data = raw.astype(np.float64).reshape(shape)
    blank = cards.get("BLANK")
    if isinstance(blank, int) and raw.dtype.kind in "iu":
        data[(raw == blank).reshape(shape)] = np.nan
    scale, zero = cards.get("BSCALE", 1.0), cards.get("BZERO", 0.0)
    if isinstance(scale, int | float) and isinstance(zero, int | float) and (scale, zero) != (1, 0):
        data = data * scale + zero
    return data


def columns(cards: Mapping[str, Any]) -> list[tuple[str, str, int, int]]:
    """(name, numpy dtype, repeat, byte offset in the row) of a BINTABLE's columns.

    Raises ``SpectrumError(WRONG_HDU_LAYOUT)`` for column types the fast path
    cannot address (strings, arrays descriptors, bit fields, complex).
    """
    out, offset = [], 0
    for i in range(1, int(cards.get("TFIELDS", 0) or 0) + 1):
        form = str(cards.get(f"TFORM{i}", "")).strip()
        digits = form[:-1] if form and form[-1].isalpha() else ""
        code = form[len(digits) :][:1]
        repeat = int(digits) if digits.isdigit() else 1
        if code not in TFORM_DTYPES:
            raise SpectrumError(Reason.WRONG_HDU_LAYOUT, f"column {i} has TFORM {form!r}")
        name = str(cards.get(f"TTYPE{i}", f"col{i}")).strip()
        out.append((name, TFORM_DTYPES[code], repeat, offset))
        offset += repeat * int(TFORM_DTYPES[code][-1])
    return out
