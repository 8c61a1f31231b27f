"""Index job lists by (list, owner, phase, creationTime): PHASE-filtered listings stay fast.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_uws_job_list_owner_phase_creation",
        "uws_job",
        ["job_list", "owner", "phase", "creation_time"],
    )


def downgrade() -> None:
    op.drop_index("ix_uws_job_list_owner_phase_creation", table_name="uws_job")
