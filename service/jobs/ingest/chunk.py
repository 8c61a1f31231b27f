"""The worker side of a tree ingest: read, adapt and describe one chunk of files.

:func:`read_chunk` runs in the spawned processes of :mod:`service.jobs.ingest.tree`, so
this module imports no SQL (a worker starts in ~0.5 s instead of ~0.75 s) and
hands back columns, not rows: features as one float32 array, the numeric
``spectrum`` columns as float64 arrays and the text ones as lists of str, which
pickle as a few buffers per chunk. Per file it does only what cannot be batched:
the read, and one attribute lookup per column; the ``file://`` URLs are joined as
strings under a root resolved once (``Path.resolve`` per file cost ~90 µs of
``lstat`` calls, half a bare read).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote_from_bytes

import numpy as np

#: ``spectrum`` columns a tree ingest fills from the file headers.
ROW_COLUMNS = (
    "pubdid", "obsid", "designation", "object", "ra", "dec", "mjd", "snr",
    "pipeline_class", "access_url", "collection",
)  # fmt: skip
#: The numeric ones: float64 arrays, NaN where the header has no value (NULL in SQL).
FLOAT_COLUMNS = ("ra", "dec", "mjd", "snr")
#: The ones copied from the header's text as they are.
TEXT_COLUMNS = ("obsid", "designation", "object", "pipeline_class", "collection")


def file_url(root: str, relative: str) -> str:
    """``Path(root, relative).as_uri()`` for a resolved, absolute ``root``, without pathlib.

    The same bytes, percent-quoted the same way (``quote_from_bytes`` with ``/``
    safe); the file itself is not resolved, so a symbolic link under the root is
    named by its place in the tree, the name the skip-by-URL check looks for.
    """
    return "file://" + quote_from_bytes(os.fsencode(f"{root.rstrip('/')}/{relative}"))


@dataclasses.dataclass
class Chunk:
    """One chunk's good spectra (features and ``spectrum`` columns) and its failures."""

    features: np.ndarray  # (n, config.n) float32
    columns: dict[str, Any]  # ROW_COLUMNS -> (n,) float64 array or list of n str
    failures: list[tuple[str, str]]  # (relative path, reason name)

    def select(self, keep: np.ndarray) -> Chunk:
        """The chunk with only the good spectra where ``keep`` (bool, (n,)) is True."""
        columns = {
            name: values[keep]
            if isinstance(values, np.ndarray)
            else [v for v, k in zip(values, keep.tolist(), strict=True) if k]
            for name, values in self.columns.items()
        }
        return Chunk(self.features[keep], columns, self.failures)


def read_chunk(root: str, relatives: Sequence[str]) -> Chunk:
    """Read and adapt one chunk of files under the resolved ``root`` (runs in a worker)."""
    from service.adapt import AdaptConfig, adapt_array
    from service.spectra.bulk import read_halpha_windows
    from service.spectra.spectrum import SpectrumMeta

    config = AdaptConfig()
    base = root.rstrip("/")
    windows = read_halpha_windows([f"{base}/{r}" for r in relatives])
    features = np.full((len(relatives), config.n), np.nan, dtype=np.float32)
    failures = {i: error.reason.name for i, error in windows.failures.items()}
    for group in windows.groups:
        batch = adapt_array(
            group.wavelength, group.flux, group.mask, group.medium, group.resolving_power, config
        )
        features[group.index] = batch.features
        for j, error in batch.failures.items():
            failures[int(group.index[j])] = error.reason.name
    good = [i for i in range(len(relatives)) if i not in failures]
    empty = SpectrumMeta()  # a file read without header metadata: its URL names it
    metas = [windows.meta.get(i, empty) for i in good]
    urls = [file_url(base, relatives[i]) for i in good]
    columns: dict[str, Any] = {
        name: np.array([getattr(m, name) for m in metas], dtype=np.float64)
        for name in FLOAT_COLUMNS
    }
    columns.update({name: [getattr(m, name) for m in metas] for name in TEXT_COLUMNS})
    columns["access_url"] = urls
    columns["pubdid"] = [m.pubdid or url for m, url in zip(metas, urls, strict=True)]
    return Chunk(
        features[good],
        columns,
        [(relatives[i], reason) for i, reason in sorted(failures.items())],
    )


def warm() -> None:
    """Import what :func:`read_chunk` needs, so a worker boots while the main process
    reads the dataset's known keys instead of when the first chunk is waiting."""
    import service.adapt
    import service.spectra.bulk  # noqa: F401
