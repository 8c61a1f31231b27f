"""Owners: who made a dataset or campaign, and who else may label a campaign.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

``dataset.owner``, ``campaign.owner`` and ``campaign.oracles`` (null: anyone, as
before), for services behind an authenticating proxy (``ALVO_AUTH=header``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from service.store.migrations.ops import add_column

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_column("dataset", sa.Column("owner", sa.String(255)))
    add_column("campaign", sa.Column("owner", sa.String(255)))
    add_column("campaign", sa.Column("oracles", sa.Text))


def downgrade() -> None:
    op.drop_column("campaign", "oracles")
    op.drop_column("campaign", "owner")
    op.drop_column("dataset", "owner")
