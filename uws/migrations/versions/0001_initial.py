"""The UWS 1.1 job store as first released: jobs, parameters, uploads, results.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from uws.schema import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _job_fk() -> sa.Column:
    return sa.Column(
        "job_id", sa.String(32), sa.ForeignKey("uws_job.id", ondelete="CASCADE"), primary_key=True
    )


def upgrade() -> None:
    op.create_table(
        "uws_job",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("job_list", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(255)),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("run_id", sa.Text),
        sa.Column("creation_time", UTCDateTime, nullable=False),
        sa.Column("start_time", UTCDateTime),
        sa.Column("end_time", UTCDateTime),
        sa.Column("quote", UTCDateTime),
        sa.Column("execution_duration", sa.Integer, nullable=False),
        sa.Column("destruction", UTCDateTime),
        sa.Column("deadline", UTCDateTime),
        sa.Column("error_message", sa.Text),
        sa.Column("error_detail", sa.Text),
        sa.Column("error_type", sa.String(16)),
        sa.Column("progress", sa.Float),
        sa.Column("progress_message", sa.Text),
        sa.Column("worker", sa.String(255)),
    )
    op.create_index(
        "ix_uws_job_list_owner_creation", "uws_job", ["job_list", "owner", "creation_time"]
    )
    op.create_index("ix_uws_job_phase", "uws_job", ["phase"])
    op.create_index("ix_uws_job_destruction", "uws_job", ["destruction"])
    op.create_index("ix_uws_job_deadline", "uws_job", ["deadline"])
    op.create_table(
        "uws_parameter",
        _job_fk(),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "uws_upload",
        _job_fk(),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("location", sa.Text, nullable=False),
    )
    op.create_table(
        "uws_result",
        _job_fk(),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("result_id", sa.String(255), nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("mime_type", sa.String(255)),
        sa.Column("size", sa.BigInteger),
    )


def downgrade() -> None:
    for table in ("uws_result", "uws_upload", "uws_parameter", "uws_job"):
        op.drop_table(table)
