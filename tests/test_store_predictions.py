"""Recording a pool's predictions: the batch first, the whole pool after (issue 21).

The oracle can label as soon as :func:`record_selected` has committed the selected
rows; :func:`record` then replaces them with every row of the iteration in one
transaction, reporting its progress, and ``scored_by`` travels with each row.
"""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa

from service.store import predictions as store
from service.store import schema
from uws.store import make_engine


def pool(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet((0.3, 0.2, 2.0), n).astype(np.float32)
    entropy = -np.sum(p * np.log(p), axis=1)
    roles = np.full(n, "", dtype=object)
    roles[:5] = "query"
    roles[5:8] = "candidate"
    labelled = np.zeros(n, bool)
    labelled[10] = True
    scored_by = np.where(p[:, 2] > 0.9, "gate", "reference").astype(object)
    ids = np.arange(1, n + 1, dtype=np.int64)
    return store.columns(ids, p, entropy, np.zeros(n, bool), roles, labelled, None, scored_by)


def counts(engine: sa.Engine) -> dict[str | None, int]:
    p = schema.prediction
    with engine.connect() as conn:
        rows = conn.execute(sa.select(p.c.scored_by, sa.func.count()).group_by(p.c.scored_by))
        return {by: int(n) for by, n in rows}


def test_the_batch_is_recorded_first_then_replaced_by_the_whole_pool(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'p.sqlite'}")
    sa.event.listen(engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA foreign_keys=OFF"))
    schema.create_all(engine)
    with engine.begin() as conn:
        conn.execute(schema.campaign.insert().values(campaign_id=1, name="c"))
    table = pool(2000, 1)
    scoring = store.Scoring(1, 0, None, "job")
    assert store.record_selected(engine, table, scoring) == 9  # 5 query, 3 candidates, 1 label
    assert sum(counts(engine).values()) == 9
    seen: list[tuple[int, int]] = []
    done = store.record(engine, tmp_path / "predictions", table, scoring, lambda *a: seen.append(a))
    assert done["sql_rows"] == 2000 and seen[-1] == (2000, 2000)
    by = counts(engine)
    assert sum(by.values()) == 2000  # the batch's rows replaced, not doubled
    assert by["gate"] == int(np.sum(table["scored_by"] == "gate")) > 0
    assert store.read_file(done["path"], ["scored_by"])["scored_by"].tolist() == list(
        table["scored_by"]
    )
