"""The prediction store on PostgreSQL (COPY) gives TAP the same rows as on SQLite."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from service.store import predictions as store
from service.store import schema
from service.vo.tap.query import TapDatabase
from tests.peers.postgres import postgres  # noqa: F401  (the session fixture)
from tests.tap_support import postgres_demo, sqlite_demo
from tests.test_scale import _pool

pytestmark = pytest.mark.peers

QUERIES = (
    "SELECT spectrum_id, iteration, role, labelled, predicted_class, entropy, job_id "
    "FROM alvo.prediction WHERE job_id IN ('a', 'b', 'c') ORDER BY job_id, spectrum_id",
    "SELECT iteration, COUNT(*) AS n FROM alvo.prediction WHERE campaign_id = 1 "
    "GROUP BY iteration ORDER BY iteration",
    "SELECT job_id, n_rows, n_candidates, arithmetic FROM alvo.prediction_file ORDER BY job_id",
)


def _record(url: str, folder) -> TapDatabase:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        model_id = conn.scalar(sa.select(sa.func.min(schema.model.c.model_id)))
    for job, number, seed in (("a", 40, 1), ("b", 41, 2)):
        scoring = store.Scoring(1, number, model_id, job)
        store.record(engine, folder, _pool(engine, 200, seed), scoring)
    classify = _pool(engine, 200, 3)
    classify["labelled"][:] = False
    store.record(engine, folder, classify, store.Scoring(None, None, model_id, "c", "int8"))
    engine.dispose()
    database = TapDatabase(url)
    database.setup()
    return database


def test_same_predictions_through_tap_on_sqlite_and_postgresql(postgres, tmp_path):  # noqa: F811
    lite = _record(sqlite_demo(tmp_path / "lite", 300), tmp_path / "lite-files")
    pg = _record(postgres_demo(postgres, "scale_store", 300), tmp_path / "pg-files")
    for query in QUERIES:
        a, b = lite.run(query, 100_000), pg.run(query, 100_000)
        assert a.nrows == b.nrows > 0, query
        for x, y in zip(a.columns, b.columns, strict=True):
            assert [round(v, 5) if isinstance(v, float) else v for v in x] == [
                round(v, 5) if isinstance(v, float) else v for v in y
            ], query
    lite.dispose()
    pg.dispose()
