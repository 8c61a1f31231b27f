"""Training on a Dask worker against training in a plain process.

The scale campaign found training 1.5-2.3x slower on Dask workers. The cause
was the nanny's ``MALLOC_TRIM_THRESHOLD_=65536``, which pins glibc's mmap
threshold at 128 KiB (:mod:`uws.executors.allocator`). This script trains the
reference CNN for a fixed number of epochs three ways, back to back:

* ``plain``: in this process (the floor);
* ``worker, nanny malloc``: as a bare task on a ``LocalCluster`` worker process;
* ``worker, job malloc``: the same task inside ``job_allocator()``, as UWS jobs
  and their fanned-out chunks run.

and prints each time with its ratio to the floor. Early stopping is off, so
every run does the same work.

    .venv/bin/python benchmarks/bench_dask_training.py [--rows 6000] [--epochs 4]
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import time

import numpy as np


def train_seconds(rows: int, epochs: int, job_malloc: bool = False) -> float:
    """Seconds to train the reference net on synthetic three-class spectra."""
    import contextlib

    from service.learn import SpectrumClassifier, TrainConfig, configure_threads
    from uws.executors.allocator import job_allocator

    configure_threads()
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, rows)
    x = rng.normal(size=(rows, 140)).astype(np.float32)
    x[y == 0, 65:75] += 2.0
    x[y == 2, 65:75] -= 2.0
    config = TrainConfig(epochs=epochs, patience=epochs + 1, balancing="none")
    with job_allocator() if job_malloc else contextlib.nullcontext():
        started = time.perf_counter()
        SpectrumClassifier.train(x, y, config, adapt_config={}, adapt_fingerprint="bench")
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=6000, help="training spectra (default 6000)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per run (default 4)")
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    print(f"reference CNN, {args.rows} spectra, {args.epochs} epochs, batch 64")
    plain = train_seconds(args.rows, args.epochs)
    print(f"{'plain process':24s} {plain:7.1f} s   1.00")
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        for label, job_malloc in (("worker, nanny malloc", False), ("worker, job malloc", True)):
            seconds = client.submit(
                train_seconds, args.rows, args.epochs, job_malloc, pure=False
            ).result()
            print(f"{label:24s} {seconds:7.1f} s   {seconds / plain:.2f}")


if __name__ == "__main__":
    main()
