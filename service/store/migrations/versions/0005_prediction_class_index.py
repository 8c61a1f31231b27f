"""A covering index for predicted-class counts of an iteration.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

``ix_prediction_class`` on ``(campaign_id, iteration, predicted_class)``: counting
an iteration's candidates reads the index alone, not the 4 M-row table.
"""

from __future__ import annotations

from alembic import op

from service.store.migrations.ops import create_index

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_index(
        "ix_prediction_class", "prediction", ["campaign_id", "iteration", "predicted_class"]
    )


def downgrade() -> None:
    op.drop_index("ix_prediction_class", table_name="prediction")
