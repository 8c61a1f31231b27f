"""Who scored a prediction: the cascade's gate or the reference net (docs/performance.md).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07

``prediction.scored_by``: ``gate`` where the cascade's cheap model was sure of
absorption and the reference CNN was skipped, ``reference`` otherwise; null for rows
recorded before this column existed (all scored by the reference CNN).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from service.store.migrations.ops import add_column

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_column("prediction", sa.Column("scored_by", sa.String(16)))


def downgrade() -> None:
    op.drop_column("prediction", "scored_by")
