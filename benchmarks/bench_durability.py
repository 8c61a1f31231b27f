"""What SQLite's ``synchronous`` level costs a label, in labels per second.

In WAL mode a commit under ``synchronous=NORMAL`` is in the WAL file (the operating
system's page cache) when it returns: it survives kill -9 of the service
(tests/durability/test_label_storm.py) but a power loss may roll back the last
commits. ``FULL`` fsyncs the WAL at each commit and so survives a power loss too;
``EXTRA`` also syncs the directory. This stores labels through the one label writer
(``Campaigns.add_labels``), as the labelling page sends them -- one verdict per
commit -- and as a table (100 verdicts per commit), at each level, on a fresh
database file in the same folder (the same disk), and prints labels/s with the
ratio to NORMAL (the reference: the default).

    .venv/bin/python benchmarks/bench_durability.py [N] [FOLDER]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from service.settings import Settings  # noqa: E402
from service.store.campaigns import Campaigns, Verdict  # noqa: E402
from service.store.datasets import Datasets  # noqa: E402
from service.store.engine import ENGINES  # noqa: E402

LEVELS = ("NORMAL", "FULL", "EXTRA", "OFF")
TABLE_ROWS = 100


def labels_per_second(folder: Path, level: str, n: int, per_commit: int) -> float:
    home = folder / f"{level.lower()}-{per_commit}"
    home.mkdir()
    url = f"sqlite:///{home / 'alvo.sqlite'}?synchronous={level.lower()}"
    settings = Settings(home=home, database_url=url)
    datasets = Datasets(settings)
    for name, domain, count in (("src", "source", 3), ("pool", "target", n)):
        rows = {"pubdid": [f"ivo://b/{name}?{i}" for i in range(count)], "ra": [1.0] * count}
        labels = ["absorption" if domain == "source" else ""] * count
        datasets.append(datasets.open_or_create(name, domain), np.zeros((count, 140), np.float32),
                        rows, labels)  # fmt: skip
    campaigns = Campaigns(settings)
    campaign = campaigns.create("b", "src", "pool")
    verdicts = [Verdict(label="single-peak", pubdid=f"ivo://b/pool?{i}", user="") for i in range(n)]
    started = time.perf_counter()
    for first in range(0, n, per_commit):
        outcome = campaigns.add_labels(campaign, verdicts[first : first + per_commit])
        assert outcome.stored == len(verdicts[first : first + per_commit])
    elapsed = time.perf_counter() - started
    ENGINES.clear()
    return n / elapsed


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    where = Path(sys.argv[2]) if len(sys.argv) > 2 else REPO / "var"
    where.mkdir(parents=True, exist_ok=True)
    print(f"load: {os.getloadavg()[0]:.2f}; {n} labels per run; database under {where}")
    with tempfile.TemporaryDirectory(dir=where) as folder:
        for per_commit in (1, TABLE_ROWS):
            rates = {
                level: labels_per_second(Path(folder), level, n, per_commit) for level in LEVELS
            }
            for level, rate in rates.items():
                print(f"  {per_commit:>3} label(s)/commit  synchronous={level:<6} "
                      f"{rate:8.0f} labels/s  x{rate / rates['NORMAL']:.2f} of NORMAL")  # fmt: skip


if __name__ == "__main__":
    main()
