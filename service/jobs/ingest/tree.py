"""Bulk ingest of a local archive tree, the way LAMOST data releases are distributed.

A data release is a folder tree of FITS files (``<date>/<plan>/spec-*.fits.gz``
for LAMOST; the simulator writes ``<0000..>/spec-*.fits``). Going through SSA and
HTTP for 4 M local files would cost more than the science; this path walks the
tree in sorted order and, chunk by chunk:

1. skips files already in the dataset by their file URL (compared as 64-bit
   hashes, :mod:`service.store.spectrum_keys`, so 4 M known keys take 64 MB),
   which makes a re-run read nothing it stored and a run killed at any point
   resumable by running it again;
2. reads only the H-alpha window of each file (:func:`service.spectra.bulk.
   read_halpha_windows`), and adapts the stacked windows in one vectorised call
   (``service.adapt.adapt_array``), in ``workers`` processes forked from a fork
   server (:func:`service.jobs.fanout.processes`), each handing back a
   :class:`~service.jobs.ingest.chunk.Chunk`;
3. gives the chunk to the writer both doors share (in a thread of its own,
   :class:`Appender`, so the main thread sends the workers their next chunk first),
   :meth:`service.store.datasets.Datasets.append`: under the dataset's lock it
   drops spectra whose DID the dataset holds, appends the features to the
   feature store and bulk-inserts the ``spectrum`` rows (COPY on PostgreSQL, one
   executemany on SQLite) in one transaction. A kill between the two leaves
   feature rows no spectrum row points at; they are never classified into
   predictions (no spectrum id).

Only an operator runs this (``alvo ingest tree PATH``): the service never reads
a local path named in a request. PATH, named by the operator, is registered as an
archive root (:mod:`service.store.archive_roots`): the service reads its files in place
for the labelling page and serves them to clients over HTTP. Memory: one chunk of
windows per worker.
CPU: a file costs ~1.1-1.4 bare reads in all; the main process stays ~95 % idle, so
``workers`` = cores (docs/performance.md); its appends overlap the reading.

The worker's part, :func:`read_chunk`, joins ``file://`` URLs as strings under
a root resolved once (``Path.resolve`` per file cost ~90 µs of ``lstat``
calls, half a bare read).
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote_from_bytes

import numpy as np

from service.adapt import AdaptConfig, adapt_array
from service.jobs.fanout import map_chunks, processes
from service.jobs.ingest.chunk import Chunk, Failure, describe
from service.settings import Settings
from service.spectra.access import SpectrumReference
from service.spectra.bulk import read_halpha_windows
from service.spectra.defects import screen
from service.spectra.files import archive_files
from service.spectra.spectrum import SpectrumMeta
from service.store.archive_roots import register
from service.store.datasets import Datasets
from service.store.spectrum_keys import hashes_of

#: Files per chunk: one worker task, one transaction (two fsyncs). 1024 and 4096
#: measured no faster on a 20 000-file tree (docs/performance.md).
CHUNK = 2048
#: What the fork server imports once for all workers (~0.45 s of CPU each otherwise).
PRELOAD = ("service.jobs.ingest.tree",)


def ingest_tree(
    settings: Settings,
    root: Path,
    dataset_name: str,
    domain: str = "target",
    workers: int = 2,
    chunk: int = CHUNK,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Ingest every spectrum file under ``root`` into dataset ``dataset_name``.

    ``progress(files_done, files_added)`` is called after each chunk. Returns a
    summary: files seen, skipped (already there), added, failed by reason, seconds.
    """
    root = Path(root).resolve()
    base = str(root)
    started = time.perf_counter()
    with processes(workers, PRELOAD) as pool:  # the workers boot while the known keys are read
        settings.home.mkdir(parents=True, exist_ok=True)
        datasets = Datasets(settings)
        root_id = register(settings, root)
        dataset = datasets.open_or_create(dataset_name, domain)
        known = datasets.spectrum_keys(dataset)
        seen = skipped = added = 0
        reasons: Counter[str] = Counter()

        def fresh_chunks() -> Iterator[list[str]]:
            nonlocal seen, skipped
            files = archive_files(root)
            while batch := list(itertools.islice(files, chunk)):
                seen += len(batch)
                held = known.holds(hashes_of([file_url(base, r) for r in batch])).tolist()
                new = [r for r, h in zip(batch, held, strict=True) if not h]
                skipped += len(batch) - len(new)
                if new:
                    yield new

        def store(result: Chunk) -> None:  # in the appender's thread
            nonlocal added
            added += len(datasets.append(dataset, result.features, result.columns, known=known))
            reasons.update(failure.reason.name for failure in result.failures)
            if progress is not None:
                progress(seen, added)

        window = 2 * max(1, workers)
        with Appender(store) as appender:
            for result in map_chunks(read_chunk, fresh_chunks(), base, window=window, pool=pool):
                appender.put(result)  # back to the workers at once: the next chunk goes out
    if reasons:
        datasets.count_failures(dataset, sum(reasons.values()))
    return {
        "dataset": dataset_name,
        "root": base,
        "root_id": root_id,
        "files": seen,
        "skipped": skipped,
        "added": added,
        "failed": dict(reasons),
        "seconds": round(time.perf_counter() - started, 2),
    }


class Appender:
    """Stores chunks in order in a thread of its own, at most ``depth`` waiting.

    The main thread hands each chunk over and goes straight back to the workers,
    submitting the next chunk, instead of appending first: the serial append (feature
    store + SQL, ~10 µs a file, much more into a large SQLite dataset) is no longer on
    the readers' critical path. SQLite, the file write and numpy release the GIL for
    most of it. The first error ``store`` raises is raised again by the next
    :meth:`put` or at the end; later chunks are dropped, as a run killed there would.
    """

    def __init__(self, store: Callable[[Chunk], None], depth: int = 2) -> None:
        self._store = store
        self._queue: queue.Queue[Chunk | None] = queue.Queue(depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="ingest-append", daemon=True)

    def __enter__(self) -> Appender:
        self._thread.start()
        return self

    def put(self, chunk: Chunk) -> None:
        self._raise()
        self._queue.put(chunk)

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        self._queue.put(None)
        self._thread.join()
        if kind is None:
            self._raise()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._store(chunk)
                except BaseException as error:
                    self._error = error

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error


def file_url(root: str, relative: str) -> str:
    """``Path(root, relative).as_uri()`` for a resolved, absolute ``root``, without pathlib.

    The same bytes, percent-quoted the same way (``quote_from_bytes`` with ``/``
    safe); the file itself is not resolved, so a symbolic link under the root is
    named by its place in the tree, the name the skip-by-URL check looks for.
    """
    return "file://" + quote_from_bytes(os.fsencode(f"{root.rstrip('/')}/{relative}"))


def read_chunk(relatives: Sequence[str], root: str) -> Chunk:
    """Read and adapt one chunk of files under the resolved ``root`` (runs in a worker).

    A file is named by its ``file://`` URL, and by it as DID too when its
    header has none.
    """
    config = AdaptConfig()
    base = root.rstrip("/")
    windows = read_halpha_windows([f"{base}/{r}" for r in relatives])
    features = np.full((len(relatives), config.n), np.nan, dtype=np.float32)
    resolving_powers = np.full(len(relatives), np.nan)
    failed = dict(windows.failures)
    flags = [""] * len(relatives)
    for group in windows.groups:
        found = screen(
            group.wavelength, group.flux, group.mask, group.medium, config.max_gap_angstrom
        )
        for j, error in found.refused.items():
            failed[int(group.index[j])] = error
        for j, flag in enumerate(found.flags):
            flags[int(group.index[j])] = flag
        batch = adapt_array(
            group.wavelength, group.flux, found.mask, group.medium, group.resolving_power, config
        )
        features[group.index] = batch.features
        resolving_powers[group.index] = group.resolving_power
        for j, error in batch.failures.items():
            failed.setdefault(int(group.index[j]), error)  # DEAD_PIXELS names it best
    good = [i for i in range(len(relatives)) if i not in failed]
    empty = SpectrumMeta()  # a file read without header metadata: its URL names it
    metas = [windows.meta.get(i, empty) for i in good]
    urls = [file_url(base, relatives[i]) for i in good]
    references = [
        SpectrumReference(access_url=url, pubdid=meta.pubdid or url)
        for meta, url in zip(metas, urls, strict=True)
    ]
    failures = [Failure.of(relatives[i], "", error) for i, error in sorted(failed.items())]
    return describe(
        features[good],
        metas,
        references,
        resolving_powers[good],
        failures,
        flags=[flags[i] for i in good],
    )
