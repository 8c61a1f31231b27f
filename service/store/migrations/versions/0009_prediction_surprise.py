"""Surprise: an unsupervised anomaly score per predicted spectrum (docs/discovery.md).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

``prediction.surprise``: how unlike the rest of the pool the spectrum is in the
network's embedding (IsolationForest; higher is more surprising); null for rows
scored before this column existed and for classify jobs.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from service.store.migrations.ops import add_column

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_column("prediction", sa.Column("surprise", sa.Float))


def downgrade() -> None:
    op.drop_column("prediction", "surprise")
