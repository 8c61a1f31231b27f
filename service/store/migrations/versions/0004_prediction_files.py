"""Predictions name their model and job; the whole pool's predictions go to Parquet files.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

``prediction`` gains ``model_id``, ``job_id`` and ``labelled`` (the spectrum was a
training row) and keeps only the latest iteration's pool and the selected rows of
earlier ones; ``prediction_file`` lists the Parquet file of every scoring. alvo
made these for new databases only: a database from before could not store
predictions until this revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from service.store.migrations.ops import add_column, create_index, create_table

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_column("prediction", sa.Column("model_id", sa.Integer, sa.ForeignKey("model.model_id")))
    add_column("prediction", sa.Column("job_id", sa.String(64)))
    add_column("prediction", sa.Column("labelled", sa.Boolean))
    create_index("ix_prediction_model", "prediction", ["model_id"])
    create_table(
        "prediction_file",
        sa.Column("prediction_file_id", sa.Integer, primary_key=True),
        sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaign.campaign_id")),
        sa.Column("iteration", sa.Integer),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("model.model_id")),
        sa.Column("job_id", sa.String(64)),
        sa.Column("path", sa.Text),
        sa.Column("n_rows", sa.Integer),
        sa.Column("n_candidates", sa.Integer),
        sa.Column("arithmetic", sa.String(8)),
        sa.Column("created", sa.DateTime),
    )


def downgrade() -> None:
    op.drop_table("prediction_file")
    op.drop_index("ix_prediction_model", table_name="prediction")
    with op.batch_alter_table("prediction") as batch:  # SQLite drops a foreign key by copying
        for column in ("labelled", "job_id", "model_id"):
            batch.drop_column(column)
