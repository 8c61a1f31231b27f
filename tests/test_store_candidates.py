"""service/store/candidates.py: the rows the result tables are made of, found by index."""

from __future__ import annotations

import sqlalchemy as sa

from service.store import schema
from service.store.candidates import spectrum_rows
from uws.store import make_engine


def test_spectrum_rows_finds_each_prediction_by_its_spectrum_not_by_the_iteration(tmp_path):
    """The surprises' table reads ~100 named spectra with their prediction of one
    iteration. SQLite had joined through (campaign_id, iteration, entropy): a scan of
    the iteration's 1 M rows for each spectrum, 134 s in a 1 M-spectrum campaign's
    iterate job, once a bulk load had rebuilt the indexes (their order steers SQLite's
    planner). The plan of the query it runs must use the spectrum_id index."""
    engine = make_engine(f"sqlite:///{tmp_path / 'store.sqlite'}")
    schema.create_all(engine)
    with engine.begin() as conn:
        conn.execute(schema.campaign.insert().values(campaign_id=1, name="c"))
        with schema.bulk_load(conn, schema.prediction, 10):
            pass  # an iteration's load: the indexes dropped and built again, as after each
    statements: list[tuple[str, object]] = []

    def seen(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "LEFT OUTER JOIN prediction" in statement:
            statements.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", seen)
    assert spectrum_rows(engine, 1, 0, [3, 5, 8]) == {}
    assert len(statements) == 1
    statement, parameters = statements[0]
    with engine.connect() as conn:
        plan = " ".join(
            str(row[-1])
            for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        )
    assert "ix_prediction_spectrum" in plan, plan
    assert "ix_prediction_entropy" not in plan and "ix_prediction_class" not in plan, plan
