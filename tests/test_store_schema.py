"""The result tables: one metadata source, idempotent creation, consistent demo rows."""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa

from service.store import demo, schema
from service.vo.tap import tap_schema
from service.vocabulary import CLASSES


def test_every_published_column_is_described():
    for table in schema.PUBLISHED:
        assert table.comment, table.name
        for column in table.columns:
            meta = schema.column_meta(column)
            assert meta.description and meta.ucd, f"{table.name}.{column.name}"
            assert meta.datatype in ("int", "long", "double", "char", "boolean")


def test_reserved_words_are_published_delimited():
    columns = {row["column_name"] for row in tap_schema.rows("sqlite")["columns"]}
    assert '"size"' in columns and "size" not in columns


def test_create_all_is_idempotent_and_tap_schema_matches_metadata(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'a.sqlite'}")
    tap_schema.ensure_tap_schema(engine)
    tap_schema.ensure_tap_schema(engine)
    with engine.connect() as conn:
        n_columns = conn.execute(sa.text("SELECT COUNT(*) FROM tap_schema_columns")).scalar()
        keys = conn.execute(sa.text("SELECT from_table, target_table FROM tap_schema_keys")).all()
    expected = sum(len(t.columns) for t in tap_schema.published("sqlite").values())
    assert n_columns == expected
    assert ("alvo.prediction", "alvo.spectrum") in keys


def test_demo_rows_are_consistent(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'd.sqlite'}")
    ids = demo.fill_demo(engine, 300, iterations=2)
    p = schema.prediction
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                p.c.p_single_peak,
                p.c.p_double_peak,
                p.c.p_absorption,
                p.c.entropy,
                p.c.predicted_class,
            )
        ).all()
        n_spectra = conn.execute(
            sa.select(sa.func.count()).where(
                schema.spectrum.c.dataset_id == ids["target_dataset_id"]
            )
        ).scalar()
        n_labels = conn.execute(sa.select(sa.func.count()).select_from(schema.label)).scalar()
    probabilities = np.array([r[:3] for r in rows])
    assert n_spectra == 300 and len(rows) == 600 and n_labels == 200
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    entropy = -np.sum(probabilities * np.log(probabilities), axis=1)
    assert np.allclose(entropy, [r[3] for r in rows])
    best = np.array(CLASSES)[probabilities.argmax(axis=1)]
    assert list(best) == [r[4] for r in rows]


def test_the_result_tables_engine_puts_a_fresh_sqlite_file_in_wal_mode(tmp_path) -> None:
    """A home only ``alvo ingest tree`` opened (no service, so no job store) gets WAL too:
    readers keep reading while an ingest or a prediction record writes."""
    from service.store.engine import engine_for

    path = tmp_path / "alvo.sqlite"
    engine_for(f"sqlite:///{path}")
    with sa.create_engine(f"sqlite:///{path}").connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
