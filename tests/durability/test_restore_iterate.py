"""The restore drill, all the way: a campaign exported after iteration 0 and its labels,
imported into an empty service that ingested the same archive, iterates to the same
next batch as the original.

Both homes run iteration 1 with the same SEED. Training is deterministic for a seed
(``keras.utils.set_random_seed`` + ``tf.config.experimental.enable_op_determinism`` in
:mod:`service.learn.model`), so the two query batches must be the same spectra -- what
a restored campaign promises its oracle: the work goes on where it stopped. Small on
purpose: 120 source spectra, a pool of 200, the small network, two epochs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from service.cli import main
from service.jobs import iterate
from service.settings import Settings
from service.store import schema
from service.store.campaigns import Campaigns, Verdict
from service.store.datasets import Datasets
from service.store.engine import engine_for
from service.vocabulary import CLASSES, QUERY
from tests.test_learning_jobs import profiles
from uws.models import JobParameters
from uws.runner import RunnerJob

pytestmark = pytest.mark.durability

PARAMS = {"CAMPAIGN": "be", "MODEL": "small", "EPOCHS": "2", "BATCH": "10", "SEED": "7",
          "PRECISION_SAMPLE": "4"}  # fmt: skip


def ingest(home: Path) -> tuple[Settings, np.ndarray]:
    """The same archive in every home: same DIDs, same features, same order."""
    settings = Settings(home=home, demo_archive_size=0, simbad="off")
    settings.save_snapshot()  # the runner reads it (Settings.for_job)
    rng = np.random.default_rng(5)
    datasets = Datasets(settings)
    source_kinds = rng.choice(3, 120, p=[0.4, 0.15, 0.45])
    pool_kinds = rng.choice(3, 200, p=[0.08, 0.04, 0.88])
    for name, domain, kinds, labels in (
        ("src", "source", source_kinds, [CLASSES[k] for k in source_kinds]),
        ("pool", "target", pool_kinds, [""] * len(pool_kinds)),
    ):
        rows = {"pubdid": [f"ivo://drill/{name}?{i}" for i in range(len(kinds))]}
        dataset = datasets.open_or_create(name, domain)
        datasets.append(dataset, profiles(kinds, rng), rows, labels)
    return settings, pool_kinds


def run_iteration(settings: Settings, number: int, **extra: str) -> list[str]:
    """Run the iterate runner in process; the pubdids of its query batch, sorted."""
    parameters = JobParameters(tuple({**PARAMS, **extra}.items()))
    workdir = settings.home / "jobs" / f"iterate-{number}"
    workdir.mkdir(parents=True)
    job = RunnerJob(f"iterate-{number}", None, "iterate", parameters, {})
    iterate.run(job, workdir, lambda fraction, message="": None)
    return batch(settings, number)


def batch(settings: Settings, number: int) -> list[str]:
    s, p = schema.spectrum, schema.prediction
    with engine_for(settings.sqlalchemy_url).connect() as conn:
        rows = conn.execute(
            sa.select(s.c.pubdid)
            .join(p, p.c.spectrum_id == s.c.spectrum_id)
            .where(p.c.iteration == number, p.c.role == QUERY)
        ).scalars()
        return sorted(rows)


def label_batch(settings: Settings, pubdids: list[str], kinds: np.ndarray) -> None:
    campaigns = Campaigns(settings)
    campaign = campaigns.require("be")
    truth = [CLASSES[kinds[int(pubdid.split("?")[1])]] for pubdid in pubdids]
    campaigns.add_labels(
        campaign,
        [
            Verdict(v, pubdid=d, user="ana", iteration=0)
            for d, v in zip(pubdids, truth, strict=True)
        ],
    )


def labels(settings: Settings) -> list[tuple[Any, ...]]:
    s, lab = schema.spectrum, schema.label
    with engine_for(settings.sqlalchemy_url).connect() as conn:
        return sorted(
            conn.execute(
                sa.select(s.c.pubdid, lab.c.label, lab.c.oracle_user)
                .join(s, s.c.spectrum_id == lab.c.spectrum_id)
                .where(lab.c.campaign_id.is_not(None))
            ).all()
        )


def test_imported_campaign_iterates_to_the_same_next_batch(tmp_path, capsys):
    original, kinds = ingest(tmp_path / "original")
    first = run_iteration(original, 0, SOURCE="src", TARGET="pool")
    assert len(first) == 10
    label_batch(original, first, kinds)
    backup = tmp_path / "be.tar.gz"
    assert main(["campaign", "export", "be", "-o", str(backup), "--home", str(original.home)]) == 0

    restored, _ = ingest(tmp_path / "restored")  # an empty service, the same archive
    assert main(["campaign", "import", str(backup), "--home", str(restored.home)]) == 0
    assert labels(restored) == labels(original) and len(labels(restored)) == len(first)
    assert batch(restored, 0) == first  # the batch the oracle answered came back too

    again = run_iteration(original, 1)
    assert run_iteration(restored, 1) == again
    assert len(again) == 10 and not set(again) & set(first)  # labelled ones are not asked again
