"""Bulk H-alpha reader vs astropy.io.fits opening each file, on thousands of files.

Makes a temporary folder of N files (default 2000) by cycling through the real
LAMOST DR1/DR2 and Ondrejov spectra of ../shared/data/real (copies under new
names, so the set looks like an archive dump), then times, over the same files
in the same run:

* reference -- what an ingest does with astropy: ``fits.open`` each file, read its
  header keywords and all its data, cut the H-alpha window out;
* ``read_spectrum`` -- our full reader (astropy underneath, plus metadata);
* ``read_halpha_windows`` -- the bulk path (header + window bytes only).

Prints files per CPU-second (this process's user + system time: on a shared
machine, waiting for a CPU is not the reader's cost) and the ratio bulk /
reference (goal >= 10x), per archive and for the mixture, with the wall-clock
ratio beside it. The files are read once before timing so every method meets a warm
page cache (the fair comparison on one machine; on a cold archive disk the bulk
path also reads ~2 KB of data per LAMOST file instead of ~170 KB).

    .venv/bin/python benchmarks/bench_readers.py [N] [REAL_DATA]
"""

from __future__ import annotations

import itertools
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from astropy.io import fits

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from service.spectra import read_halpha_windows, read_spectrum  # noqa: E402
from service.spectra.bulk import BULK_WINDOW  # noqa: E402

GOAL = 10.0


def astropy_window(path: Path) -> np.ndarray:
    """The reference: astropy opens the whole file, we cut the window from it."""
    with fits.open(path, memmap=False) as hdus:
        header = hdus[0].header
        if header.get("NAXIS") == 2:  # LAMOST (5, N) image, log-linear grid
            data = np.asarray(hdus[0].data, dtype=np.float64)
            lam = 10 ** (header["COEFF0"] + header["COEFF1"] * np.arange(data.shape[1]))
            flux = data[0]
        elif header.get("NAXIS") == 1:  # raw CCD700 image, linear air grid
            flux = np.asarray(hdus[0].data, dtype=np.float64)
            lam = header["CRVAL1"] + header["CDELT1"] * (
                np.arange(flux.shape[0]) + 1 - header.get("CRPIX1", 1)
            )
        else:  # Ondrejov DataLink BINTABLE
            table = hdus[1].data
            lam = np.asarray(table["spectral"], dtype=np.float64)
            flux = np.asarray(table["flux"], dtype=np.float64)
    keep = (lam >= BULK_WINDOW[0]) & (lam <= BULK_WINDOW[1])
    return flux[keep]


def make_archive(real: Path, folder: Path, n: int, pattern: str) -> list[Path]:
    sources = sorted(real.glob(pattern))
    paths = []
    for i, source in zip(range(n), itertools.cycle(sources), strict=False):
        target = folder / f"{i:07d}-{source.name}"
        shutil.copyfile(source, target)
        paths.append(target)
    return paths


def bench(label: str, paths: list[Path], repeats: int = 3) -> float:
    """Files/s of each method, best of ``repeats`` rounds that interleave the methods.

    Interleaving makes a burst of load from other processes on this shared machine
    hit every method alike instead of one of them.
    """
    for path in paths:  # warm the page cache for every method alike
        path.read_bytes()
    windows = read_halpha_windows(paths)
    assert not windows.failures, windows.failures
    methods: dict[str, Callable[[Sequence[Path]], object]] = {
        "astropy": lambda ps: [astropy_window(p) for p in ps],
        "read_spectrum": lambda ps: [read_spectrum(p) for p in ps],
        "bulk": read_halpha_windows,
    }
    rate = dict.fromkeys(methods, 0.0)  # files per CPU-second (user + system)
    wall = dict.fromkeys(methods, 0.0)  # files per wall-clock second
    for _ in range(repeats):
        for name, run in methods.items():
            cpu, start = time.process_time(), time.perf_counter()
            run(paths)
            rate[name] = max(rate[name], len(paths) / (time.process_time() - cpu))
            wall[name] = max(wall[name], len(paths) / (time.perf_counter() - start))
    ratio = rate["bulk"] / rate["astropy"]
    print(
        f"{label:<24} {len(paths):>5} files  astropy {rate['astropy']:6.0f}/s  "
        f"read_spectrum {rate['read_spectrum']:5.0f}/s  bulk {rate['bulk']:6.0f}/s  "
        f"ratio {ratio:5.1f}x ({'meets' if ratio >= GOAL else 'MISSES'} goal {GOAL:.0f}x; "
        f"wall-clock ratio {wall['bulk'] / wall['astropy']:.1f}x)"
    )
    return ratio


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    real = Path(sys.argv[2]) if len(sys.argv) > 2 else REPO.parent / "shared" / "data" / "real"
    if not (real / "lamost-dr2").is_dir():
        sys.exit(f"real spectra not found at {real}")
    with tempfile.TemporaryDirectory(prefix="alvo-bench-readers-") as tmp:
        folder = Path(tmp)
        lamost = make_archive(real, folder, n, "lamost-dr*/*.fits")
        ondrejov = make_archive(real, folder, max(n // 3, 1), "ondrejov/*.fits")
        print(
            f"window {BULK_WINDOW[0]:.0f}-{BULK_WINDOW[1]:.0f} Å vacuum, warm page cache, "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )
        ratios = [
            bench("LAMOST DR1+DR2", lamost),
            bench("Ondrejov (table + raw)", ondrejov),
            bench("mixture", lamost + ondrejov),
        ]
    sys.exit(0 if min(ratios) >= GOAL else 1)


if __name__ == "__main__":
    main()
