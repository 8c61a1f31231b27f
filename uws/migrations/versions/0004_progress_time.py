"""The time of a job's latest progress report (``progress_time``, the ``time`` of jobInfo's
``progress``): a client that sees a fraction seconds after it was reported estimates the
time left from when it was reported, not from when it looked.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("uws_job") as batch:
        batch.add_column(sa.Column("progress_time", sa.DateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("uws_job") as batch:
        batch.drop_column("progress_time")
