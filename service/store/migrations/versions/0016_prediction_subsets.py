"""Partial indexes of the few prediction rows the page and the iterate job read.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07

A campaign's latest iteration keeps every pool row in ``prediction`` (4.1 M at
LAMOST DR2). The batch (``role``), the labelled rows and the ranked surprises are
hundreds of them, and each read of one kind scanned the whole iteration: 1.5-1.9 s
at 1 M rows for the labelling page's batch (docs/performance.md). Each kind now has
an index that holds only its rows (``schema.PREDICTION_SUBSETS``, frozen here as
they were made).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from service.store.migrations.ops import create_index

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


#: (name, columns, rows held on SQLite, on PostgreSQL)
SUBSETS = (
    ("ix_prediction_batch", ("campaign_id", "role", "iteration"), "role IS NOT NULL", None),
    (
        "ix_prediction_labelled",
        ("campaign_id", "iteration", "labelled", "predicted_class"),
        "labelled = 1",
        "labelled = true",
    ),
    (
        "ix_prediction_surprise",
        ("campaign_id", "iteration", "surprise_rank"),
        "surprise_rank IS NOT NULL",
        None,
    ),
)


def upgrade() -> None:
    for name, columns, sqlite, postgresql in SUBSETS:
        create_index(
            name,
            "prediction",
            columns,
            sqlite_where=sa.text(sqlite),
            postgresql_where=sa.text(postgresql or sqlite),
        )


def downgrade() -> None:
    for name, *_ in reversed(SUBSETS):
        op.drop_index(name, table_name="prediction")
