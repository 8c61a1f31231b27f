"""Trained networks: one ``model`` row per saved Keras file (a train job's or an iteration's).

The row says what the file is -- the campaign and iteration it was trained in, the
adaptation it expects its spectra in, its output classes, its training metrics --
and where it lies, relative to the service's home (the table is published over TAP,
and a server's file paths are nobody's business). ``MODEL_ID`` of a classify job is
this row's key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from service.store import schema
from uws.store import retrying


def record_model(
    engine: sa.Engine,
    path: str,
    adaptation: str,
    classes: Sequence[str],
    metrics: str,
    campaign_id: int | None = None,
    iteration: int | None = None,
) -> int:
    """Add the ``model`` row of a saved file (``path`` relative to home, ``metrics`` as
    JSON); returns its ``model_id``."""

    def write() -> int:
        with engine.begin() as conn:
            result = conn.execute(
                schema.model.insert().values(
                    campaign_id=campaign_id,
                    iteration=iteration,
                    path=path,
                    adaptation=adaptation,
                    classes=",".join(classes),
                    metrics=metrics,
                    created=schema.utcnow(),
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    return retrying(write, f"model {path}")


def model_path(engine: sa.Engine, model_id: int) -> str | None:
    """The stored ``path`` of model ``model_id`` (None: no such model)."""
    table = schema.model
    with engine.connect() as conn:
        stored = conn.scalar(sa.select(table.c.path).where(table.c.model_id == model_id))
    return None if stored is None else str(stored)


def training_record(engine: sa.Engine, campaign_id: int, iteration: int) -> dict[str, Any] | None:
    """The stored ``metrics`` (the training's provenance: epochs run, seconds...) of a
    campaign iteration's model, None when it has none."""
    table = schema.model
    with engine.connect() as conn:
        stored = conn.scalar(
            sa.select(table.c.metrics)
            .where(table.c.campaign_id == campaign_id, table.c.iteration == iteration)
            .order_by(table.c.model_id.desc())
            .limit(1)
        )
    try:
        record = json.loads(stored) if stored else None
    except ValueError:
        return None
    return record if isinstance(record, dict) else None
