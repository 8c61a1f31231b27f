"""Relevance: the oracle's interesting/boring answers on surprises, and their ranking.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07

``relevance``: one row per answer (a label kind of its own, never trained on);
``prediction.surprise_rank``: each surprise's place in the iteration's list after the
answers re-ranked it (null outside the list, and for rows scored before this column).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from service.store.migrations.ops import add_column, create_index, create_table

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_table(
        "relevance",
        sa.Column("relevance_id", sa.Integer, primary_key=True),
        sa.Column("spectrum_id", sa.Integer, sa.ForeignKey("spectrum.spectrum_id"), nullable=False),
        sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaign.campaign_id"), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("oracle_user", sa.String(128)),
        sa.Column("answered", sa.DateTime),
        sa.Column("iteration", sa.Integer),
    )
    create_index("ix_relevance_spectrum", "relevance", ["campaign_id", "spectrum_id"])
    add_column("prediction", sa.Column("surprise_rank", sa.Integer))


def downgrade() -> None:
    op.drop_column("prediction", "surprise_rank")
    op.drop_index("ix_relevance_spectrum", "relevance")
    op.drop_table("relevance")
