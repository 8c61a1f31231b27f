"""Write a simulated collection to disk in chunks: FITS files plus ``catalogue.fits``.

Chunks are whole blocks of rows (:data:`service.archive.simulate.BLOCK`), each
simulated from its own seed, so the archive is the same whatever the chunk size
and however many processes write it. Only one chunk per process is in memory at
a time; the catalogue (a few hundred bytes a row) is gathered and written last,
atomically (a half-written archive never has a catalogue).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table

from service.archive import writers
from service.archive.catalogue import CATALOGUE_FILE, DEMO_SEED, catalogue_path, collection_root
from service.archive.instruments import instrument
from service.archive.simulate import BLOCK, Block, simulate_rows

FILES_PER_FOLDER = 1000
DEFAULT_CHUNK = 4 * BLOCK


def relative_name(collection: str, row: dict[str, Any]) -> str:
    """``{row // 1000:04d}/{file}``: folders of at most 1000 files."""
    folder = f"{int(row['row']) // FILES_PER_FOLDER:04d}"
    if collection == "lamost":
        return f"{folder}/{writers.lamost_file_name(row)}"
    return f"{folder}/{row['obsid']}.fits"


def write_block(root: Path, block: Block) -> dict[str, np.ndarray]:
    """Write every row of a block under ``root``; return its catalogue columns."""
    inst = instrument(block.collection)
    n = block.n
    files, sizes = [], np.zeros(n, dtype=np.int64)
    start, end = np.zeros(n), np.zeros(n)
    columns = dict(block.truth)
    half_exposure = columns["exptime"] / 2 / 86400
    times = writers.iso_times(np.concatenate([columns["mjd"], columns["mjd"] - half_exposure]))
    columns["date_obs"], columns["date_start"] = times[:n], times[n:]
    made: set[Path] = set()
    for i in range(n):
        row = {k: v[i] for k, v in columns.items()}
        name = relative_name(block.collection, row)
        path = root / name
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        flux, ivar, wavelength = block.flux[i], block.ivar[i], block.wavelength
        has_data = np.isfinite(flux) & ~((flux == 0) & (ivar == 0))
        if block.collection == "lamost":
            content = writers.lamost_bytes(flux, ivar, row)
        else:
            if row["artefact"] == "truncated":  # the archive's file is shorter
                keep = np.isfinite(flux)
                flux, wavelength, has_data = flux[keep], wavelength[keep], has_data[keep]
            if row["form"] == "raw":
                content = writers.ondrejov_raw_bytes(wavelength, flux, row)
            else:
                content = writers.ondrejov_datalink_bytes(wavelength, flux, row)
        path.write_bytes(content)
        good = np.flatnonzero(has_data)
        start[i], end[i] = wavelength[good[0]] * 1e-10, wavelength[good[-1]] * 1e-10
        files.append(name)
        sizes[i] = len(content)
    out = dict(block.truth)
    out.update(
        {
            "file": np.array(files),
            "format": np.full(n, "application/fits"),
            "size": sizes,
            "spec_start": start,
            "spec_end": end,
            "medium": np.full(n, inst.medium),
        }
    )
    return out


def write_chunk(
    root: str, collection: str, start: int, stop: int, seed: int, emission_fraction: float | None
) -> dict[str, np.ndarray]:
    """Simulate and write rows [start, stop) (a process-pool task: plain arguments)."""
    block = simulate_rows(collection, start, stop, seed, emission_fraction)
    return write_block(Path(root), block)


def generate_archive(
    home: str | Path,
    collection: str,
    n: int,
    seed: int,
    emission_fraction: float | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Write ``n`` spectra of ``collection`` under ``home/archive/{collection}``.

    workers : processes (spawned, so safe beside threads and TensorFlow); 1 = this one
    progress : called with the number of rows finished after each chunk
    Returns the catalogue path. Existing files of the same rows are overwritten.
    """
    instrument(collection)  # refuses unknown collections by name
    root = collection_root(home, collection)
    root.mkdir(parents=True, exist_ok=True)
    chunk_size = max(BLOCK, (chunk_size + BLOCK - 1) // BLOCK * BLOCK)
    ranges = [(a, min(a + chunk_size, n)) for a in range(0, n, chunk_size)]
    parts: dict[int, dict[str, np.ndarray]] = {}
    args = [(str(root), collection, a, b, seed, emission_fraction) for a, b in ranges]
    if workers <= 1 or len(ranges) == 1:
        for k, arg in enumerate(args):
            parts[k] = write_chunk(*arg)
            if progress:
                progress(arg[3] - arg[2])
    else:
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = {pool.submit(write_chunk, *arg): k for k, arg in enumerate(args)}
            for future in concurrent.futures.as_completed(futures):
                k = futures[future]
                parts[k] = future.result()
                if progress:
                    progress(args[k][3] - args[k][2])
    columns = {key: np.concatenate([parts[k][key] for k in range(len(args))]) for key in parts[0]}
    table = Table(columns)
    table.meta.update(
        {"COLLECT": collection, "NROWS": n, "SEED": seed, "EMFRAC": emission_fraction or -1.0}
    )
    path = root / CATALOGUE_FILE
    partial = root / f".{CATALOGUE_FILE}.{os.getpid()}.partial"
    table.write(partial, format="fits", overwrite=True)
    os.replace(partial, path)
    return path


def ensure_demo_archive(
    home: str | Path, n_per_collection: int, seed: int = DEMO_SEED, workers: int = 1
) -> dict[str, Path]:
    """Generate the demo archive (both collections) unless it is already there.

    Idempotent: a collection whose catalogue was made with the same size and seed
    is left alone. Returns {collection: catalogue path}.
    """
    out = {}
    for collection in ("ondrejov", "lamost"):
        path = catalogue_path(home, collection)
        if path.is_file():
            header = fits.getheader(path, 1)
            if header.get("NROWS") == n_per_collection and header.get("SEED") == seed:
                out[collection] = path
                continue
        out[collection] = generate_archive(
            home, collection, n_per_collection, seed, workers=workers
        )
    return out
