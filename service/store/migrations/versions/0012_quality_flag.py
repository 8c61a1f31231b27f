"""Detector defects found at ingest: ``spectrum.quality_flag``.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07

Ingest masks dead (flat) runs and cosmic-ray spikes in the H-alpha window and
names them per spectrum (:mod:`service.spectra.defects`); ``dead-run``,
``cosmic-ray`` or both, comma-separated, published over TAP. Rows stored
before keep NULL: they were not checked.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from service.store.migrations.ops import add_column

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_column("spectrum", sa.Column("quality_flag", sa.String(32)))


def downgrade() -> None:
    op.drop_column("spectrum", "quality_flag")
