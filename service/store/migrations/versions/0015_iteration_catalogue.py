"""The iteration row's catalogue: the oracle's verdicts over the network's (issue 25).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07

``iteration`` gains ``n_catalogue`` (the emission catalogue's size: verdicts where
the oracle gave a class, predictions elsewhere) and ``catalogue_estimate`` with its
bound (its stratified precision: the labelled stratum is right by definition).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from service.store.migrations.ops import add_column

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

ADDED = (
    ("n_catalogue", sa.Integer),
    ("catalogue_estimate", sa.Float),
    ("catalogue_estimate_lower", sa.Float),
)


def upgrade() -> None:
    for name, type_ in ADDED:
        add_column("iteration", sa.Column(name, type_))


def downgrade() -> None:
    for name, _ in reversed(ADDED):
        op.drop_column("iteration", name)
