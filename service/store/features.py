"""Per-dataset feature store: one float32 ``.npy`` file, row i <-> spectrum row i.

Ingest appends adapted spectra chunk by chunk; training and classification
memory-map the whole array, so a 4 M x 140 pool (2.3 GB) is never loaded at
once. Appending rewrites only the ``.npy`` header (whose length is reserved up
front), so the file is always a valid ``.npy`` that ``np.load(mmap_mode='r')``
and any other numpy user can open.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

DTYPE = np.dtype("<f4")
#: Header length reserved for every store: room for any shape up to 10^15 rows.
HEADER_BYTES = 128


def _header(n_rows: int, width: int) -> bytes:
    header = {"descr": DTYPE.str, "fortran_order": False, "shape": (n_rows, width)}
    text = repr(header).encode("latin1")
    magic = npy_format.magic(1, 0)
    padding = HEADER_BYTES - len(magic) - 2 - len(text) - 1
    if padding < 0:
        raise ValueError(f"shape {(n_rows, width)} does not fit the reserved .npy header")
    body = text + b" " * padding + b"\n"
    return magic + len(body).to_bytes(2, "little") + body


class FeatureStore:
    """An append-only (n, width) float32 array on disk."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @classmethod
    def create(cls, path: Path | str, width: int) -> FeatureStore:
        store = cls(path)
        store.path.parent.mkdir(parents=True, exist_ok=True)
        store.path.write_bytes(_header(0, width))
        return store

    @property
    def shape(self) -> tuple[int, int]:
        with self.path.open("rb") as handle:
            npy_format.read_magic(handle)
            shape, _, _ = npy_format.read_array_header_1_0(handle)
        return int(shape[0]), int(shape[1])

    def __len__(self) -> int:
        return self.shape[0]

    def append(self, rows: np.ndarray) -> range:
        """Append (k, width) rows; return the row numbers they got."""
        n, width = self.shape
        rows = np.ascontiguousarray(rows, dtype=DTYPE)
        if rows.ndim != 2 or rows.shape[1] != width:
            raise ValueError(f"rows must have shape (k, {width}), not {rows.shape}")
        with self.path.open("r+b") as handle:
            handle.seek(HEADER_BYTES + n * width * DTYPE.itemsize)
            handle.write(rows.tobytes())
            handle.truncate()
            handle.flush()
            os.fsync(handle.fileno())
            # The header is written last: a crash mid-append leaves the old, valid shape.
            handle.seek(0)
            handle.write(_header(n + rows.shape[0], width))
        return range(n, n + rows.shape[0])

    def array(self) -> np.ndarray:
        """The whole store, memory-mapped read-only."""
        return np.load(self.path, mmap_mode="r")

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows start..stop as a fresh array, read (not mapped) from the file.

        Why: the pages of a memory map a process has read count in its resident
        memory until it unmaps them, so a scan of a whole 4.1 M-row pool through
        :meth:`array` holds 2.3 GB more resident at its end; read this way they stay in
        the kernel's page cache, which it can drop.
        """
        n, width = self.shape
        start, stop = max(0, start), min(stop, n)
        if stop <= start:
            return np.empty((0, width), DTYPE)
        with self.path.open("rb") as handle:
            handle.seek(HEADER_BYTES + start * width * DTYPE.itemsize)
            rows = np.fromfile(handle, dtype=DTYPE, count=(stop - start) * width)
        return rows.reshape(stop - start, width)
