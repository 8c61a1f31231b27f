"""Make the kept alvo homes again, each with the code of the release that made it.

    .venv/bin/python tests/data/make_old_homes.py      # from the repository root

``tests/test_store_migrations.py`` opens these homes with today's code: each must be
upgraded in place with every verdict intact. So they are not written by today's
code but by the code of the commit named in :data:`HOMES`: ``git archive`` puts that
commit's ``service/``, ``uws/`` and ``votable_templates/`` in a temporary folder,
and :data:`STORY` runs there in a fresh interpreter (only the public calls an
ingest and the labelling page make: ``Datasets.open_or_create``/``append``,
``Campaigns.create``/``add_labels``). Every home tells the same story:

* ``ondrejov-src`` (source, 3 spectra, each labelled at ingest) and ``lamost-pool``
  (target, 6 spectra, publisher DIDs ``ivo://alvo.test/pool?0..5``);
* campaign ``be-stars`` on them, batch size 4;
* verdicts on the pool: ana says pool?0 single-peak, pool?1 double-peak and
  pool?2 absorption, then changes pool?2 to not-sure; ben says pool?1 absorption
  (a conflict with ana) and pool?3 bad, from a VOTable; pool?4 and ?5 have none.

Where the code knows owners, ana owns both datasets and the campaign and ben is
its oracle. Only ``alvo.sqlite`` is kept (its feature stores are not needed to read
labels, and a home from before ``aad27c5`` names them by absolute path), after a
checkpoint so that no ``-wal`` file is needed, and rewritten with 1 KiB pages to
stay small (a page size is storage, not schema).
"""

from __future__ import annotations

import io
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parents[1]

#: Folder under tests/data/homes -> (commit, what it is).
HOMES = {
    "before-owners": (
        "10906a6",
        "main before its first schema change that needed a migration: no owners, "
        "no spectrum identity index, predictions without model/job, no prediction_file",
    ),
    "before-alembic": (
        "f859ef0",
        "main before issue 20 moved the result tables to Alembic (the schema of "
        "revision 0006, no version table)",
    ),
}

STORY = r"""
import inspect, sys
from pathlib import Path
import numpy as np
from service.settings import Settings
from service.datasets import Datasets
from service.campaigns import Campaigns, Verdict

home = Path(sys.argv[1])
home.mkdir(parents=True)  # as alvo serve does first
settings = Settings(home=home, demo_archive_size=0)
datasets = Datasets(settings)
owned = "owner" in inspect.signature(datasets.open_or_create).parameters
owner = {"owner": "ana"} if owned else {}

def rows(name, n):
    return {
        "pubdid": [f"ivo://alvo.test/{name}?{i}" for i in range(n)],
        "access_url": [f"http://archive.test/{name}/{i}.fits" for i in range(n)],
        "ra": [10.0 + i for i in range(n)],
        "dec": [-5.0 + i for i in range(n)],
        "snr": [20.0 + i for i in range(n)],
        "collection": [name] * n,
    }

rng = np.random.default_rng(20)
source = datasets.open_or_create("ondrejov-src", "source", "ondrejov", **owner)
datasets.append(source, rng.normal(size=(3, 140)).astype("float32"), rows("src", 3),
                labels=["single-peak", "double-peak", "absorption"], oracle_user="catalogue")
pool = datasets.open_or_create("lamost-pool", "target", "lamost", **owner)
datasets.append(pool, rng.normal(size=(6, 140)).astype("float32"), rows("pool", 6))

campaigns = Campaigns(settings)
extra = {"owner": "ana", "oracles": ["ben"]} if owned else {}
campaign = campaigns.create("be-stars", "ondrejov-src", "lamost-pool", batch_size=4,
                            description="Be stars in the pool", **extra)
pool_did = "ivo://alvo.test/pool?{}".format
for verdicts in (
    [Verdict("single-peak", pubdid=pool_did(0), user="ana", source="page", iteration=0),
     Verdict("double-peak", pubdid=pool_did(1), user="ana", source="page", iteration=0),
     Verdict("absorption", pubdid=pool_did(2), user="ana", source="page", iteration=0)],
    [Verdict("not-sure", pubdid=pool_did(2), user="ana", source="page", iteration=0)],
    [Verdict("absorption", pubdid=pool_did(1), user="ben", source="votable"),
     Verdict("bad", pubdid=pool_did(3), user="ben", source="votable")],
):
    campaigns.add_labels(campaign, verdicts)
datasets.engine.dispose()
"""


def make(name: str, commit: str) -> Path:
    """The home of ``commit`` as :data:`STORY` leaves it; returns the kept database."""
    with tempfile.TemporaryDirectory() as scratch:
        code, home = Path(scratch) / "code", Path(scratch) / "home"
        archive = subprocess.run(
            ["git", "archive", commit, "service", "uws", "votable_templates"],
            cwd=REPOSITORY,
            check=True,
            capture_output=True,
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(code, filter="data")
        subprocess.run(
            [sys.executable, "-c", STORY, str(home)],
            cwd=code,
            env={**os.environ, "PYTHONPATH": str(code)},
            check=True,
        )
        database = home / "alvo.sqlite"
        with sqlite3.connect(database) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            conn.execute("PRAGMA journal_mode=DELETE")
            conn.execute("PRAGMA page_size=1024")
            conn.execute("VACUUM")
            conn.execute(f"PRAGMA journal_mode={mode}")  # as the release left it
        conn.close()
        target = HERE / "homes" / name / "alvo.sqlite"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(database, target)
        return target


if __name__ == "__main__":
    for folder, (commit, what) in HOMES.items():
        made = make(folder, commit)
        print(f"{made.relative_to(REPOSITORY)}: {made.stat().st_size} bytes, {commit} ({what})")
