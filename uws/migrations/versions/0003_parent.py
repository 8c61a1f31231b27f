"""A job run again names the job it started from (``parent``, shown in ``jobInfo``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("uws_job") as batch:
        batch.add_column(sa.Column("parent", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("uws_job") as batch:
        batch.drop_column("parent")
