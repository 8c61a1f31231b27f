"""Archive roots: the folders an operator ingested a tree from.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

``archive_root`` lists the only local folders the service reads spectra from or
serves (:mod:`service.store.archive_roots`); not published over TAP.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from service.store.migrations.ops import create_table

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_table(
        "archive_root",
        sa.Column("root_id", sa.String(32), primary_key=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("registered", sa.DateTime),
    )


def downgrade() -> None:
    op.drop_table("archive_root")
