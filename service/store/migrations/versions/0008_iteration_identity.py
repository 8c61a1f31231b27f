"""Classify rows get their own identity; the iteration table's loose ends (issue 25).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

* ``prediction.iteration`` may be NULL: a classify job's rows had iteration 0, so
  ``WHERE p.iteration = 0`` mixed them with a campaign's iteration 0. Existing
  classify rows (no campaign) and their ``prediction_file`` rows get NULL.
* ``iteration.precision_absorption`` (and its bound) dropped: the precision sample is
  drawn among predicted emission, so it was always empty.
* ``iteration`` gains ``n_answered`` (documented, until now computed on the fly and
  not over TAP), the stratified ``precision_estimate`` with its bound, ``churn``,
  ``candidate_agreement``, ``n_flipped``, ``n_uncertain``, ``stop`` and ``stop_reason``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from service.store.migrations.ops import add_column

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ADDED = (
    ("n_answered", sa.Integer),
    ("precision_estimate", sa.Float),
    ("precision_estimate_lower", sa.Float),
    ("churn", sa.Float),
    ("candidate_agreement", sa.Float),
    ("n_flipped", sa.Integer),
    ("n_uncertain", sa.Integer),
    ("stop", sa.Boolean),
    ("stop_reason", sa.Text),
)


def _columns(table: str) -> dict[str, Any]:
    return {c["name"]: c for c in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade() -> None:
    if not _columns("prediction")["iteration"]["nullable"]:
        with op.batch_alter_table("prediction") as batch:
            batch.alter_column("iteration", existing_type=sa.Integer, nullable=True)
    op.execute("UPDATE prediction SET iteration = NULL WHERE campaign_id IS NULL")
    op.execute("UPDATE prediction_file SET iteration = NULL WHERE campaign_id IS NULL")
    for name in ("precision_absorption", "precision_absorption_lower"):
        if name in _columns("iteration"):
            op.execute(f"ALTER TABLE iteration DROP COLUMN {name}")
    for name, type_ in ADDED:
        add_column("iteration", sa.Column(name, type_))


def downgrade() -> None:
    for name, _ in reversed(ADDED):
        op.drop_column("iteration", name)
    for name in ("precision_absorption", "precision_absorption_lower"):
        op.add_column("iteration", sa.Column(name, sa.Float))
    op.execute("UPDATE prediction SET iteration = 0 WHERE iteration IS NULL")
    with op.batch_alter_table("prediction") as batch:
        batch.alter_column("iteration", existing_type=sa.Integer, nullable=False)
