"""A comment and a flag with each label: ``label.comment``, ``label.flag``.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

The oracle's free-text note on a spectrum (the convention applied, what made
the case hard) and a "needs a second look" flag, stored with the verdict they
go with (docs/labelling.md). Labels stored before have neither (null).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from service.store.migrations.ops import add_column

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_column("label", sa.Column("comment", sa.String(1000)))
    add_column("label", sa.Column("flag", sa.Boolean))


def downgrade() -> None:
    op.drop_column("label", "flag")
    op.drop_column("label", "comment")
