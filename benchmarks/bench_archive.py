"""Simulator throughput: spectra per second per core, simulated and written as FITS.

Three ratios, each against a reference measured in the same run:

1. *simulate*: alvo's (n_spectra, n_pixels) block path against the same physics
   run one spectrum at a time (blocks of one row) — what vectorisation buys;
2. *write*: FITS files formatted as bytes (``service.archive.fitsbytes``) against
   ``astropy.io.fits`` writing the same arrays and headers;
3. *archive*: ``generate_archive`` end to end (simulate + write + catalogue) on
   one process, and with ``--workers`` processes (spawned) for the parallel speed-up.

    .venv/bin/python benchmarks/bench_archive.py [--n 2048] [--reference-n 64] [--workers 2]
"""

# ruff: noqa: E402  (thread limits must be set before numpy is imported)
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core per process: spectra per second per core

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.io import fits

from service.archive import writers
from service.archive.generate import generate_archive, write_block
from service.archive.simulate import resolve_priors, simulate_block, simulate_rows


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def bench_simulate(collection: str, n: int, reference_n: int) -> None:
    simulate_rows(collection, 0, 8, seed=1)  # warm caches and imports
    start = time.perf_counter()
    simulate_rows(collection, 0, n, seed=1)
    fast = rate(n, time.perf_counter() - start)
    priors = resolve_priors(collection)
    start = time.perf_counter()
    for i in range(reference_n):
        simulate_block(collection, i, 1, priors, size=1)
    slow = rate(reference_n, time.perf_counter() - start)
    print(f"simulate {collection:8s}: {fast:8.0f} spectra/s/core  one-at-a-time {slow:7.0f}/s  "
          f"ratio {fast / slow:5.1f}x")  # fmt: skip


def astropy_lamost(flux: np.ndarray, ivar: np.ndarray, row: dict) -> bytes:
    """The reference writer: the same LAMOST cards and rows through astropy.io.fits."""
    hdu = fits.PrimaryHDU(
        np.vstack(
            [flux, ivar, np.zeros_like(flux), np.zeros_like(flux), np.zeros_like(flux)]
        ).astype(np.float32)
    )
    for key, value, comment in writers.LAMOST_FIXED + writers.LAMOST_WCS:
        hdu.header[key] = (value, comment)
    for key in ("RA", "DEC", "SNR", "MJD"):
        hdu.header[key] = float(row[key.lower()])
    buffer = io.BytesIO()
    hdu.writeto(buffer)
    return buffer.getvalue()


def bench_write(n: int, reference_n: int) -> None:
    block = simulate_rows("lamost", 0, n, seed=2)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        write_block(Path(folder), block)
        fast = rate(n, time.perf_counter() - start)
    rows = [{k: v[i] for k, v in block.truth.items()} for i in range(reference_n)]
    start = time.perf_counter()
    for i, row in enumerate(rows):
        astropy_lamost(block.flux[i], block.ivar[i], row)
    slow = rate(reference_n, time.perf_counter() - start)
    print(f"write    lamost  : {fast:8.0f} files/s/core (to disk)  astropy.io.fits {slow:7.0f}/s "
          f"(in memory)  ratio {fast / slow:5.1f}x")  # fmt: skip


def bench_archive(n: int, workers: int) -> None:
    timings = {}
    for w in sorted({1, workers}):
        with tempfile.TemporaryDirectory() as home:
            start = time.perf_counter()
            generate_archive(home, "lamost", n, seed=3, chunk_size=512, workers=w)
            timings[w] = time.perf_counter() - start
    one = rate(n, timings[1])
    print(f"archive  lamost  : {one:8.0f} spectra/s on 1 process", end="")
    if workers > 1:
        many = rate(n, timings[workers])
        print(f", {many:.0f}/s on {workers} (speed-up {many / one:.2f}x, "
              f"{os.cpu_count()} cores here)", end="")  # fmt: skip
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--reference-n", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    for collection in ("ondrejov", "lamost"):
        bench_simulate(collection, args.n, args.reference_n)
    bench_write(args.n // 2, args.reference_n)
    bench_archive(args.n, args.workers)


if __name__ == "__main__":
    main()
