"""Which spectra a dataset holds, as 64-bit hashes of their publisher DIDs and access URLs.

A bulk ingest of a data release asks, for each of 4 M files, whether the
dataset has it already: by its file URL before reading it (a re-run reads
nothing it stored), by its publisher DID after. Asking the database per chunk
(an ``IN`` list of 4 096 keys, and ``access_url`` has no index) or holding 8 M
strings would cost more than the reading; 8 M sorted ``int64`` hashes take
64 MB and answer a chunk by binary search in about a millisecond. Two
different identifiers share a hash with a chance of 2⁻⁶³ per pair: then a
spectrum would be skipped as if present, never stored twice.

:meth:`SpectrumKeys.refresh` reads the keys of the spectra stored since the
last look (by anyone: their ``row_index`` is past the last one seen), so the
writer (:meth:`service.store.datasets.Datasets.append`), holding the
dataset's lock, knows exactly what is there.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence

import numpy as np
import sqlalchemy as sa

from service.store import schema

#: Keys added since the sorted array was last rebuilt, below which they stay apart
#: (merging 2 048 keys into 8 M costs a 64 MB copy; this bounds that to every ~64th chunk).
RECENT = 1 << 17


def key(text: str) -> int:
    """A stable 64-bit hash of an identifier (file URL or publisher DID), as a positive int64."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") >> 1


def hashes_of(texts: Sequence[str]) -> np.ndarray:
    """:func:`key` of each text, ``-1`` (no spectrum's) for an empty one: (n,) int64.

    The digests are joined and read as one array (half the time of a key per text).
    """
    blake2b = hashlib.blake2b
    digests = b"".join([blake2b(t.encode(), digest_size=8).digest() for t in texts])
    hashes = (np.frombuffer(digests, dtype="<u8") >> np.uint64(1)).astype(np.int64)
    hashes[[i for i, t in enumerate(texts) if not t]] = -1
    return hashes


def among(keys: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Which ``keys`` are in the sorted array ``known``: a binary search per key.

    Why not ``np.isin``: it hashes or sorts ``known`` again on every call, 1.5 s per
    2 048-file chunk against a 900 000-spectrum dataset (1.8 M keys) -- the tree
    ingest slowed from 8 300 to ~900 spectra/s as the dataset grew. This is
    O(k log n) per chunk.
    """
    if not len(known):
        return np.zeros(len(keys), dtype=bool)
    at = np.minimum(np.searchsorted(known, keys), len(known) - 1)
    return known[at] == keys


def repeats(hashes: np.ndarray, n: int) -> np.ndarray:
    """Which of ``n`` rows share a DID or URL with an earlier row: (n,) bool.

    ``hashes`` (2n,) are the rows' DIDs' then URLs' (:func:`hashes_of`, -1 for
    none). A row is a repeat if any of its hashes first appears on an earlier row.
    """
    row = np.tile(np.arange(n), 2)
    given = hashes >= 0
    value, row = hashes[given], row[given]
    order = np.lexsort((row, value))  # by hash, then row
    value, row = value[order], row[order]
    starts = np.r_[True, value[1:] != value[:-1]] if len(value) else np.zeros(0, dtype=bool)
    first_row = row[starts][np.cumsum(starts) - 1]  # the earliest row holding each hash
    repeated = np.zeros(n, dtype=bool)
    repeated[row[first_row < row]] = True
    return repeated


class SpectrumKeys:
    """The hashed publisher DIDs and access URLs of one dataset's spectra."""

    def __init__(self, engine: sa.Engine, dataset_id: int) -> None:
        self.dataset_id = dataset_id
        self._sorted = np.zeros(0, dtype=np.int64)
        self._recent = np.zeros(0, dtype=np.int64)
        self._next_row = 0  # spectra from this row_index on have not been looked at
        self._lock = threading.Lock()  # a tree ingest adds from its writer thread
        with engine.connect() as conn:
            self.refresh(conn)

    def refresh(self, conn: sa.Connection) -> None:
        """Add the keys of the spectra stored since the last look (streamed)."""
        spectrum = schema.spectrum
        query = (
            sa.select(spectrum.c.access_url, spectrum.c.pubdid, spectrum.c.row_index)
            .where(spectrum.c.dataset_id == self.dataset_id)
            .where(spectrum.c.row_index >= self._next_row)
            .execution_options(stream_results=True, yield_per=100_000)
        )
        found, next_row = [np.zeros(0, dtype=np.int64)], self._next_row
        for part in conn.execute(query).partitions():
            found.append(hashes_of([text or "" for row in part for text in row[:2]]))
            next_row = max(next_row, 1 + max(row[2] for row in part))
        self.add(np.concatenate(found), next_row)

    def add(self, hashes: np.ndarray, next_row: int) -> None:
        """Remember ``hashes`` (:func:`hashes_of` DIDs and URLs) as held, and the rows
        before ``next_row`` as looked at."""
        with self._lock:
            self._next_row = max(self._next_row, next_row)
            if not len(new := hashes[hashes >= 0]):
                return
            self._recent = np.union1d(self._recent, new)
            if len(self._recent) > max(RECENT, len(self._sorted) // 8):
                self._sorted = np.union1d(self._sorted, self._recent)
                self._recent = self._recent[:0]

    def holds(self, hashes: np.ndarray) -> np.ndarray:
        """Which of ``hashes`` (:func:`hashes_of` DIDs, URLs) the dataset has: (n,) bool."""
        with self._lock:
            held, recent = self._sorted, self._recent
        return (among(hashes, held) | among(hashes, recent)) & (hashes >= 0)
