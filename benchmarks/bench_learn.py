"""Learning-core speed: inference throughput of the reference CNN against the GEMM floor.

The reference network costs ~34 MFLOP per spectrum (counted below from its layer
shapes). The best this machine could possibly do is its dense matrix-multiply
rate divided by that, the *GEMM floor*, measured in the same run with the same
thread count (numpy/OpenBLAS and TensorFlow matmul, the faster of the two).
Inference streams over a memory-mapped float32 (n, 140) .npy exactly as a
classify job does (``SpectrumClassifier.predict_proba``); ``keras.Model.predict``
on the same array is shown for comparison. Goal: >= 50 % of the floor, i.e. the
4.1 M LAMOST DR2 pool in ~15 min on 2 cores. Also: training time per epoch at
18 k spectra (batch 64, the original's 'about 4 s on a GTX 980') and peak RSS.

The machine may be shared: numbers are noisy; both sides of each ratio are
measured back to back to keep the ratio fair.

    .venv/bin/python benchmarks/bench_learn.py [--n 40000] [--threads 2] [--train-n 18000]
"""

# ruff: noqa: E402  (thread limits must be set before numpy/TF are imported)
from __future__ import annotations

import argparse
import os
import sys

_threads = "2"
for i, arg in enumerate(sys.argv):
    if arg == "--threads" and i + 1 < len(sys.argv):
        _threads = sys.argv[i + 1]
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, _threads)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import resource
import tempfile
import time
from pathlib import Path

import numpy as np


def rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (Linux ru_maxrss is KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def forward_flops(network) -> float:
    """FLOP (2 x multiply-adds) of one forward pass, from the layers' output shapes."""
    total = 0.0
    for layer in network.layers:
        kind = type(layer).__name__
        if kind == "Conv1D":
            length, filters = layer.output.shape[1:]
            total += 2.0 * length * filters * layer.kernel_size[0] * layer.input.shape[-1]
        elif kind == "Dense":
            total += 2.0 * layer.input.shape[-1] * layer.units
    return total


def best_rate(run, repeats: int = 5) -> float:
    """Fastest of ``repeats`` timings of run() (returns the work done), work per second."""
    best = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        work = run()
        best = max(best, work / (time.perf_counter() - started))
    return best


def gemm_rates(size: int = 2048) -> tuple[float, float]:
    """(numpy, TF) float32 matmul FLOP/s on ``size`` x ``size`` matrices."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    flop = 2.0 * size**3
    numpy_rate = best_rate(lambda: (a @ b, flop)[1])
    ta, tb = tf.constant(a), tf.constant(b)
    matmul = tf.function(lambda x, y: tf.linalg.matmul(x, y))
    matmul(ta, tb).numpy()
    tf_rate = best_rate(lambda: (matmul(ta, tb).numpy(), flop)[1])
    return numpy_rate, tf_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=40000, help="spectra to classify")
    parser.add_argument("--batch", type=int, default=4096, help="inference batch")
    parser.add_argument("--threads", type=int, default=2, help="TF intra/inter-op threads")
    parser.add_argument("--train-n", type=int, default=18000, help="spectra for the epoch timing")
    parser.add_argument("--epochs", type=int, default=2, help="epochs timed (first is warm-up)")
    args = parser.parse_args()

    from service.learn import configure_threads

    configure_threads(args.threads, args.threads)
    import keras
    import tensorflow as tf

    from service.learn.model import SpectrumClassifier, build_network

    print(f"TF {tf.__version__}, {args.threads} threads, devices: "
          f"{[d.device_type for d in tf.config.list_physical_devices()]}")  # fmt: skip
    start_rss = rss_mib()
    numpy_rate, tf_rate = gemm_rates()
    network = build_network("reference")
    flop = forward_flops(network)
    floor = max(numpy_rate, tf_rate) / flop
    print(f"GEMM: numpy {numpy_rate / 1e9:.1f} GFLOP/s, TF {tf_rate / 1e9:.1f} GFLOP/s; "
          f"reference net {flop / 1e6:.1f} MFLOP/spectrum, "
          f"{network.count_params():,} parameters -> floor {floor:,.0f} spectra/s")  # fmt: skip

    model = SpectrumClassifier(network, ("a", "b", "c"), {}, "bench")
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "features.npy"
        np.save(path, rng.standard_normal((args.n, 140), dtype=np.float32))
        pool = np.load(path, mmap_mode="r")
        model.predict_proba(pool[: args.batch], args.batch)  # trace once
        before = rss_mib()
        ours = best_rate(lambda: (model.predict_proba(pool, args.batch), args.n)[1], repeats=2)
        infer_rss = rss_mib()
        keras_rate = best_rate(
            lambda: (network.predict(pool, batch_size=args.batch, verbose=0), args.n)[1], 1
        )
    print(f"inference (predict_proba over a memmap, batch {args.batch}): {ours:,.0f} spectra/s "
          f"= {100 * ours / floor:.0f} % of the GEMM floor (goal >= 50 %); "
          f"keras predict(): {keras_rate:,.0f} spectra/s")  # fmt: skip
    print(f"  -> 4.1 M LAMOST DR2 pool in {4.1e6 / ours / 60:.1f} min; "
          f"peak RSS {start_rss:.0f} -> {before:.0f} -> {infer_rss:.0f} MiB")  # fmt: skip

    x = rng.standard_normal((args.train_n, 140, 1), dtype=np.float32)
    y = keras.utils.to_categorical(rng.integers(0, 3, args.train_n), 3)
    times: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t)

    build_network("reference").fit(
        x, y, batch_size=64, epochs=args.epochs, verbose=0, callbacks=[Timer()]
    )
    per_epoch = min(times[1:] or times)
    train_floor = args.train_n * 3 * flop / max(numpy_rate, tf_rate)
    print(f"training: {per_epoch:.1f} s/epoch at {args.train_n} spectra, batch 64 "
          f"(GEMM floor ~{train_floor:.1f} s at 3x forward FLOP = "
          f"{100 * train_floor / per_epoch:.0f} %); the paper: ~4 s on a GTX 980")  # fmt: skip
    print(f"peak RSS after training: {rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
