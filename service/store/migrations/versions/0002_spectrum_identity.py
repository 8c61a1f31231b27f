"""One spectrum per publisher DID (or, without one, per access URL) in a dataset.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

The unique index ``ux_spectrum_identity`` that makes re-running an ingest add
nothing. Where ingests before it left duplicates, the index cannot be built:
:func:`service.store.schema.ensure_identity_index` says so and goes on, and each
later start tries again.
"""

from __future__ import annotations

from alembic import op

from service.store.schema import ensure_identity_index

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ensure_identity_index(op.get_bind())


def downgrade() -> None:
    op.drop_index("ux_spectrum_identity", table_name="spectrum", if_exists=True)
