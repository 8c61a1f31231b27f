"""The store's reads of one kind of prediction row (the batch, the labelled rows, the
surprises) go through an index that holds only those rows, not a scan of the iteration.

A campaign's latest iteration keeps every pool row in SQL (4.1 M at LAMOST DR2); the
batch is a few hundred of them. Before the partial indexes of
``schema.PREDICTION_SUBSETS`` the labelling page's batch took 1.5-1.9 s at 1 M rows,
the iterate job's reads of the last batch and of the labelled rows as long. Plans, not
timings, are checked here: a plan is what the database will do at any size, and the
bulk load that rebuilds the indexes (after which SQLite once picked a bad one for
``spectrum_rows``) comes first, as after every iteration.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from service.settings import Settings
from service.store import candidates, predictions, schema
from service.store.campaigns import Campaign, Campaigns
from service.store.datasets import Datasets

N_POOL = 3000


def _campaign_store(home: Path) -> tuple[Campaigns, Campaign]:
    """A campaign whose two iterations' predictions were recorded as an iterate job
    records them (each load rebuilds the indexes)."""
    settings = Settings(home=home, port=1, demo_archive_size=0, simbad="off")
    datasets = Datasets(settings)
    rng = np.random.default_rng(1)
    for name, domain, n in (("src", "source", 60), ("pool", "target", N_POOL)):
        rows = {"pubdid": [f"ivo://t/{name}?{i}" for i in range(n)]}
        labels = ["absorption" if domain == "source" else ""] * n
        features = rng.normal(size=(n, 140)).astype(np.float32)
        datasets.append(datasets.open_or_create(name, domain), features, rows, labels)
    campaigns = Campaigns(settings)
    campaign = campaigns.create("c", "src", "pool")
    ids = campaigns.spectrum_ids(campaign.target)
    for iteration in (0, 1):  # the second load deletes most of the first: both rebuild
        p = rng.dirichlet([0.3, 0.3, 4.0], N_POOL)
        roles = np.full(N_POOL, "", object)
        roles[rng.choice(N_POOL, 40, replace=False)] = "query"
        surprise = np.full(N_POOL, np.nan)
        surprise[:20] = rng.random(20)
        ranks = np.where(np.isnan(surprise), np.nan, np.arange(N_POOL))
        table = predictions.columns(
            ids, p, -(p * np.log(p)).sum(1), np.zeros(N_POOL, bool), roles,
            rng.random(N_POOL) < 0.05, surprise, surprise_rank=ranks,
        )  # fmt: skip
        scoring = predictions.Scoring(campaign.campaign_id, iteration, None, f"job-{iteration}")
        predictions.record(campaigns.engine, home / "predictions", table, scoring)
    return campaigns, campaign


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Campaigns, Campaign]:
    return _campaign_store(tmp_path_factory.mktemp("plans"))


def test_a_tap_users_query_for_a_few_spectra_finds_them_by_spectrum(tmp_path: Path) -> None:
    """No ``+ 0`` or partial index helps a query alvo does not write: ADQL over TAP.
    Without statistics SQLite took ``ix_prediction_entropy`` for this one, a scan of the
    iteration for three rows; the statistics ``bulk_load`` makes after each rebuild
    tell it that a spectrum id finds one row, an iteration thousands."""
    campaigns, campaign = _campaign_store(tmp_path)
    ids = [int(i) for i in campaigns.spectrum_ids(campaign.target)[:3]]
    query = (
        "SELECT * FROM prediction WHERE campaign_id = ? AND iteration = 1"
        f" AND spectrum_id IN ({', '.join(map(str, ids))})"
    )
    with campaigns.engine.connect() as conn:
        plan = " | ".join(
            str(row[-1])
            for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}", (campaign.campaign_id,))
        )
        found = conn.exec_driver_sql(query, (campaign.campaign_id,)).all()
    assert "ix_prediction_spectrum" in plan, plan
    assert len(found) == 3


def _plans(engine: sa.Engine, read: Callable[[], Any]) -> list[str]:
    """The query plan of each statement on ``prediction`` that ``read`` runs."""
    seen: list[tuple[str, Any]] = []

    def before(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "prediction" in statement and statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        read()
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)
    with engine.connect() as conn:
        return [
            " | ".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {s}", p))
            for s, p in seen
        ]


READS: dict[str, tuple[Callable[[Campaigns, Campaign], Any], str]] = {
    "the page's batch": (
        lambda cs, c: candidates.candidate_rows(
            cs.engine, c.campaign_id, 1, ["query", "precision"]
        ),
        "ix_prediction_batch",
    ),
    "the page's surprises": (
        lambda cs, c: candidates.surprise_rows(cs.engine, c.campaign_id, 1, 10),
        "ix_prediction_surprise",
    ),
    "the last batch, for the iterate job": (
        lambda cs, c: cs.batch_predictions(c, 1),
        "ix_prediction_batch",
    ),
    "every batch, for the page's history": (
        lambda cs, c: cs.batch_predictions(c),
        "ix_prediction_batch",
    ),
    "the labelled rows, for the catalogue": (
        lambda cs, c: cs.labelled_at(c, 1),
        "ix_prediction_labelled",
    ),
    "the labelled candidates": (
        lambda cs, c: cs.labelled_candidates(c, 1),
        "ix_prediction_labelled",
    ),
}


def _build_indexes(engine: sa.Engine, reverse: bool) -> None:
    """``prediction``'s indexes built again in one order or the other: SQLite breaks a
    tie between equally good indexes by that order, and :func:`schema.bulk_load`
    builds them in a set's order, which may change from one process to the next."""
    indexes = sorted(schema.prediction.indexes, key=lambda index: str(index.name))
    with engine.begin() as conn:
        for index in indexes:
            conn.execute(sa.schema.DropIndex(index))
        for index in reversed(indexes) if reverse else indexes:
            conn.execute(sa.schema.CreateIndex(index))


@pytest.mark.parametrize("reverse", [False, True], ids=["built in order", "built reversed"])
@pytest.mark.parametrize("what", list(READS))
def test_a_read_of_few_rows_uses_the_index_of_those_rows(
    store: tuple[Campaigns, Campaign], what: str, reverse: bool
) -> None:
    campaigns, campaign = store
    _build_indexes(campaigns.engine, reverse)
    read, index = READS[what]
    plans = _plans(campaigns.engine, lambda: read(campaigns, campaign))
    first = [plan for plan in plans if "prediction" in plan]
    assert first, f"{what}: no statement on prediction was run"
    assert index in first[0], first[0]


def test_the_reads_return_what_the_rows_say(store: tuple[Campaigns, Campaign]) -> None:
    """The indexes change how rows are found, never which: each read's rows match a
    plain filter of the Parquet-free SQL table."""
    campaigns, campaign = store
    with campaigns.engine.connect() as conn:
        p = schema.prediction.c
        batch = set(
            conn.scalars(sa.select(p.spectrum_id).where(p.iteration == 1, p.role.is_not(None)))
        )
        labelled = set(conn.scalars(sa.select(p.spectrum_id).where(p.iteration == 1, p.labelled)))
    assert {sid for _, sid, _, _ in campaigns.batch_predictions(campaign, 1)} == batch
    assert set(campaigns.labelled_at(campaign, 1)) == labelled
    rows = candidates.surprise_rows(campaigns.engine, campaign.campaign_id, 1, 10)
    assert [r["surprise_rank"] for r in rows] == sorted(r["surprise_rank"] for r in rows)
    assert len(rows) == 10
