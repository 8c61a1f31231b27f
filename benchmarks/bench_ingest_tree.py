"""`alvo ingest tree` against its floor, two bare readers, measured in the same run.

    .venv/bin/python benchmarks/bench_ingest_tree.py --files 20000 [--tree DIR]
        [--rounds 2] [--chunk 1024 --chunk 2048] [--reference old_ingest_tree.py ...]
        [--prefill 300000]

Generates a LAMOST DR2 tree of ``--files`` files (or reuses ``--tree``, the folder
holding ``archive/lamost`` from an earlier run, so rounds and sessions compare on
the same files), then per round, interleaved: the bare reader
(``read_halpha_windows``, one process, 4 000 files), ``ingest_tree`` with 2 workers
into a fresh home for each ``--chunk``, and, with ``--reference``, another copy of
``service/jobs/ingest/tree.py`` (e.g. ``git show main:service/jobs/ingest/tree.py``)
the same way, in reverse order every other round: before/after on one machine at
one load. Prints spectra/s, the ratio to
2 x the bare reader, and the load average (the machine is shared; compare ratios),
and the CPU seconds all processes spent per file (this process and its workers):
``2 / cpu`` is what two free cores would sustain, the number a busy machine hides.
``--prefill N`` ingests into a copy of a home whose dataset holds N spectra already
(synthetic rows, made once): the main process's append into a large SQLite table is
slower, the case the appender thread takes off the readers' path.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--tree", type=Path, help="reuse this generated tree (kept afterwards)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--chunk", type=int, action="append", help="files per chunk (repeatable)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--prefill", type=int, default=0, help="spectra already in the dataset")
    parser.add_argument("--reference", type=Path, action="append", default=[],
                        help="another ingest_tree.py to compare (repeatable)")  # fmt: skip
    args = parser.parse_args()

    from service.archive.generate import generate_archive
    from service.jobs.ingest.tree import CHUNK, ingest_tree
    from service.settings import Settings
    from service.spectra.bulk import read_halpha_windows
    from service.spectra.files import archive_files

    work = Path(tempfile.mkdtemp(prefix="bench-ingest-tree-"))
    tree = args.tree or work / "make"
    root = tree / "archive" / "lamost"
    if not root.is_dir():
        started = time.perf_counter()
        generate_archive(tree, "lamost", args.files, seed=5, workers=2)
        print(f"generated {args.files} files in {time.perf_counter() - started:.1f} s")
    (root / "catalogue.fits").unlink(missing_ok=True)  # the simulator's truth, not a spectrum
    n_files = sum(1 for _ in archive_files(root))
    variants = {f"ingest_tree chunk={c}": (ingest_tree, c) for c in args.chunk or [CHUNK]}
    for path in args.reference:
        module = _load(path)
        variants[path.stem] = (module.ingest_tree, module.CHUNK)
    sample = [root / r for r in itertools.islice(archive_files(root), 4000)]
    filled = _prefilled(work / "prefilled", args.prefill) if args.prefill else None
    _warm_imports(root)  # what every variant imports once, so the first one pays no more
    try:
        for round_ in range(args.rounds):
            started, cpu = time.perf_counter(), time.process_time()
            read_halpha_windows(sample)
            bare = len(sample) / (time.perf_counter() - started)
            bare_cpu = 1e6 * (time.process_time() - cpu) / len(sample)
            print(f"round {round_}: bare reader {bare:.0f} files/s/process, {bare_cpu:.0f} µs "
                  f"CPU/file, load {_load_avg()}")  # fmt: skip
            order = list(variants.items())
            for name, (function, chunk) in order if round_ % 2 == 0 else order[::-1]:
                home = work / f"home-{round_}-{len(name)}-{chunk}"
                if filled is not None:
                    shutil.copytree(filled, home)
                started, cpu = time.perf_counter(), _cpu_seconds()
                summary = function(Settings(home=home), root, "pool", workers=args.workers,
                                   chunk=chunk)  # fmt: skip
                rate = n_files / (time.perf_counter() - started)
                per_file = 1e6 * (_cpu_seconds() - cpu) / n_files
                print(f"  {name:24s} {rate:6.0f} spectra/s  {rate / (2 * bare):.2f} of 2 bare "
                      f"readers  {per_file:.0f} µs CPU/file (2 free cores: "
                      f"{2e6 / per_file:.0f}/s)  added {summary['added']}  "
                      f"load {_load_avg()}", flush=True)  # fmt: skip
                shutil.rmtree(home)
    finally:
        shutil.rmtree(work)


def _prefilled(home: Path, n: int) -> Path:
    """A home whose target dataset ``pool`` holds ``n`` synthetic spectra."""
    import numpy as np

    from service.settings import Settings
    from service.store.datasets import Datasets

    started = time.perf_counter()
    home.mkdir(parents=True)
    datasets = Datasets(Settings(home=home))
    dataset = datasets.open_or_create("pool", "target")
    rng = np.random.default_rng(0)
    for first in range(0, n, 50_000):
        ids = range(first, min(n, first + 50_000))
        rows = {
            "pubdid": [f"ivo://bench/prefill?{i}" for i in ids],
            "access_url": [f"file:///prefill/{i}.fits" for i in ids],
            "ra": rng.uniform(0, 360, len(ids)).tolist(),
            "dec": rng.uniform(-10, 60, len(ids)).tolist(),
        }
        datasets.append(dataset, rng.normal(size=(len(ids), 140)).astype(np.float32), rows)
    print(f"prefilled {n} spectra in {time.perf_counter() - started:.1f} s")
    return home


def _load(path: Path):
    """Import ``path`` as a top-level module its spawned workers can import again."""
    sys.path.insert(0, str(path.resolve().parent))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def _warm_imports(root: Path) -> None:
    """Import what an ingest imports in the main process (SQL, UWS models, numpy.ma)."""
    import numpy as np

    from service.jobs.ingest.tree import read_chunk
    from service.store.datasets import Datasets  # noqa: F401

    np.unique(np.zeros(2))
    read_chunk([], str(root))


def _cpu_seconds() -> float:
    """CPU of this process, of its children waited for (spawned workers), and of the
    fork server with the workers it forked and reaped (Linux ``/proc``)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = time.process_time() + children.ru_utime + children.ru_stime
    from multiprocessing import forkserver

    pid = getattr(forkserver._forkserver, "_forkserver_pid", None)
    stat = Path(f"/proc/{pid}/stat")
    if pid and stat.exists():  # utime stime cutime cstime, in clock ticks
        ticks = stat.read_text().rsplit(")", 1)[1].split()[11:15]
        total += sum(int(t) for t in ticks) / os.sysconf("SC_CLK_TCK")
    return total


def _load_avg() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
