"""Private datasets: rows shown over TAP only to their owner and invited readers.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07

``dataset.private`` (null or false: public, as before) and ``dataset.readers``
(comma-separated users the owner invited), for services behind an authenticating
proxy (``ALVO_AUTH=header``; docs/security.md, *Private datasets*).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from service.store.migrations.ops import add_column

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_column("dataset", sa.Column("private", sa.Boolean))
    add_column("dataset", sa.Column("readers", sa.Text))


def downgrade() -> None:
    op.drop_column("dataset", "readers")
    op.drop_column("dataset", "private")
