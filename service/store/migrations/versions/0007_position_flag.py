"""Spectrum positions out of range: ``spectrum.position_flag``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

A header position no sky has (Dec = 95, RA = 400) is stored as NULL ``ra``/``dec``
and named in ``position_flag`` (:mod:`service.store.datasets`), instead of being
published over TAP as it was read. Rows stored before keep what they had.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from service.store.migrations.ops import add_column

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_column("spectrum", sa.Column("position_flag", sa.String(32)))


def downgrade() -> None:
    op.drop_column("spectrum", "position_flag")
