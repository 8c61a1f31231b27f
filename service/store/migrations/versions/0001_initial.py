"""The result tables as they were before any migration was needed.

Revision ID: 0001
Revises:
Create Date: 2026-12-01

campaign, dataset, spectrum, label, model, prediction and iteration as alvo made
them before its first hand-added column (the release before owners and the
spectrum identity index). A database made then has them all: nothing is made.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from service.store.migrations.ops import create_index, create_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_table(
        "campaign",
        sa.Column("campaign_id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(128), unique=True, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("source_dataset_id", sa.Integer),
        sa.Column("target_dataset_id", sa.Integer),
        sa.Column("batch_size", sa.Integer),
        sa.Column("created", sa.DateTime),
    )
    create_table(
        "dataset",
        sa.Column("dataset_id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(128), unique=True, nullable=False),
        sa.Column("collection", sa.String(128)),
        sa.Column("learning_domain", sa.String(16)),
        sa.Column("feature_path", sa.Text),
        sa.Column("n_spectra", sa.Integer),
        sa.Column("n_failed", sa.Integer),
        sa.Column("created", sa.DateTime),
    )
    create_table(
        "iteration",
        sa.Column("iteration_id", sa.Integer, primary_key=True),
        sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaign.campaign_id"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("strategy", sa.String(32)),
        sa.Column("n_labels", sa.Integer),
        sa.Column("n_candidates", sa.Integer),
        sa.Column("error", sa.Float),
        sa.Column("precision_emission", sa.Float),
        sa.Column("precision_emission_lower", sa.Float),
        sa.Column("n_sample_judged", sa.Integer),
        sa.Column("precision_single_peak", sa.Float),
        sa.Column("precision_single_peak_lower", sa.Float),
        sa.Column("precision_double_peak", sa.Float),
        sa.Column("precision_double_peak_lower", sa.Float),
        sa.Column("precision_absorption", sa.Float),
        sa.Column("precision_absorption_lower", sa.Float),
        sa.Column("train_seconds", sa.Float),
        sa.Column("classify_seconds", sa.Float),
        sa.Column("started", sa.DateTime),
        sa.Column("finished", sa.DateTime),
        sa.UniqueConstraint("campaign_id", "number"),
    )
    create_table(
        "model",
        sa.Column("model_id", sa.Integer, primary_key=True),
        sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaign.campaign_id")),
        sa.Column("iteration", sa.Integer),
        sa.Column("path", sa.Text),
        sa.Column("adaptation", sa.String(64)),
        sa.Column("classes", sa.String(256)),
        sa.Column("metrics", sa.Text),
        sa.Column("created", sa.DateTime),
    )
    create_table(
        "spectrum",
        sa.Column("spectrum_id", sa.Integer, primary_key=True),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("dataset.dataset_id"), nullable=False),
        sa.Column("row_index", sa.Integer, nullable=False),
        sa.Column("pubdid", sa.String(256)),
        sa.Column("obsid", sa.String(128)),
        sa.Column("designation", sa.String(64)),
        sa.Column("object", sa.String(128)),
        sa.Column("ra", sa.Float),
        sa.Column("dec", sa.Float),
        sa.Column("mjd", sa.Float),
        sa.Column("snr", sa.Float),
        sa.Column("pipeline_class", sa.String(32)),
        sa.Column("access_url", sa.Text),
        sa.Column("datalink_id", sa.String(256)),
        sa.Column("datalink_url", sa.Text),
        sa.Column("learning_domain", sa.String(16)),
        sa.Column("collection", sa.String(128)),
        sa.Column("magnitude", sa.Float),
        sa.Column("simbad_id", sa.String(128)),
        sa.UniqueConstraint("dataset_id", "row_index"),
    )
    create_index("ix_spectrum_pubdid", "spectrum", ["pubdid"])
    create_index("ix_spectrum_dec_ra", "spectrum", ["dec", "ra"])
    create_table(
        "label",
        sa.Column("label_id", sa.Integer, primary_key=True),
        sa.Column("spectrum_id", sa.Integer, sa.ForeignKey("spectrum.spectrum_id"), nullable=False),
        sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaign.campaign_id")),
        sa.Column("label", sa.String(16), nullable=False),
        sa.Column("oracle_user", sa.String(128)),
        sa.Column("labelled", sa.DateTime),
        sa.Column("iteration", sa.Integer),
        sa.Column("source", sa.String(16)),
    )
    create_index("ix_label_spectrum", "label", ["campaign_id", "spectrum_id"])
    create_table(
        "prediction",
        sa.Column("prediction_id", sa.Integer, primary_key=True),
        sa.Column("spectrum_id", sa.Integer, sa.ForeignKey("spectrum.spectrum_id"), nullable=False),
        sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaign.campaign_id")),
        sa.Column("iteration", sa.Integer, nullable=False),
        sa.Column("predicted_class", sa.String(16)),
        sa.Column("p_single_peak", sa.Float),
        sa.Column("p_double_peak", sa.Float),
        sa.Column("p_absorption", sa.Float),
        sa.Column("entropy", sa.Float),
        sa.Column("hou_verdict", sa.String(16)),
        sa.Column("role", sa.String(24)),
    )
    create_index("ix_prediction_entropy", "prediction", ["campaign_id", "iteration", "entropy"])
    create_index("ix_prediction_spectrum", "prediction", ["spectrum_id"])


def downgrade() -> None:
    for table in ("prediction", "label", "spectrum", "model", "iteration", "dataset", "campaign"):
        op.drop_table(table)
