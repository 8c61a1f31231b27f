"""Candidate rows: the spectra an iteration put before the oracle, with what it predicted.

One query serves every list of candidates the service shows -- the query batch and
candidates VOTables of an ``iterate`` job and of ``/campaigns/{name}/candidates``,
and the rows of the labelling page: an iteration's ``prediction`` rows joined with
their ``spectrum`` rows, each with the oracle's latest verdict in the campaign
(``label``) and a ``reason`` saying why it is listed (rebuilt from its stored role
and the iteration's query strategy). The query batch comes first (query,
precision-sample, padding), then the candidates; the most uncertain first in each.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from service.learn.query import NEEDS_EMBEDDINGS
from service.learn.step import reason
from service.store import schema
from service.vocabulary import ROLES

#: ``spectrum`` columns of every candidate row (what ``votable_templates/candidates.xml``
#: lists); callers may ask for more.
SPECTRUM_COLUMNS = (
    "spectrum_id",
    "pubdid",
    "obsid",
    "designation",
    "ra",
    "dec",
    "snr",
    "access_url",
    "datalink_url",
    "simbad_id",
)
#: ``prediction`` columns of every candidate row.
PREDICTION_COLUMNS = (
    "predicted_class",
    "p_single_peak",
    "p_double_peak",
    "p_absorption",
    "entropy",
    "hou_verdict",
    "role",
    "iteration",
)
#: ``prediction`` columns of the surprises.
SURPRISE_COLUMNS = ("surprise", "surprise_rank")
#: The order of the list: the query batch first, in the order the oracle is asked.
ROLE_ORDER = {role: rank for rank, role in enumerate(ROLES)}


def candidate_rows(
    engine: sa.Engine,
    campaign_id: int,
    iteration: int,
    roles: Sequence[str] | None = None,
    more: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The rows of iteration ``iteration`` of a campaign with one of ``roles`` (None: every
    selected row, candidates included), as dicts of :data:`SPECTRUM_COLUMNS`,
    :data:`PREDICTION_COLUMNS`, the ``spectrum`` columns named in ``more``, ``label``
    (the campaign's latest verdict on the spectrum, None if none) and ``reason``."""
    prediction, label = schema.prediction, schema.label
    query = _iteration_rows(campaign_id, iteration, more, PREDICTION_COLUMNS)
    query = query.where(prediction.c.role.in_(roles) if roles else prediction.c.role.is_not(None))
    with engine.connect() as conn:
        rows = [dict(row._mapping) for row in conn.execute(query)]
        latest: dict[int, str] = {}
        for sid, verdict in conn.execute(
            sa.select(label.c.spectrum_id, label.c.label)
            .where(label.c.campaign_id == campaign_id)
            .order_by(label.c.label_id)
        ):
            latest[int(sid)] = str(verdict)
        strategy = conn.scalar(
            sa.select(schema.iteration.c.strategy)
            .where(schema.iteration.c.campaign_id == campaign_id)
            .where(schema.iteration.c.number == iteration)
        )
    for row in rows:
        row["label"] = latest.get(int(row["spectrum_id"]))
        row["reason"] = reason(
            row["role"], strategy or "entropy", None, strategy in NEEDS_EMBEDDINGS
        )
    rows.sort(key=lambda r: (ROLE_ORDER.get(r["role"], 9), -(r["entropy"] or 0)))
    return rows


def surprise_rows(
    engine: sa.Engine,
    campaign_id: int,
    iteration: int,
    limit: int,
    more: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The first ``limit`` of iteration ``iteration``'s surprises, in the order the iterate
    job ranked them (``prediction.surprise_rank``: the anomaly score re-ranked by the
    oracle's relevance answers), as :func:`candidate_rows` gives rows, with ``surprise``
    and ``surprise_rank``; ``role`` stays what the iteration selected the spectrum as."""
    prediction = schema.prediction
    query = (
        _iteration_rows(campaign_id, iteration, more, (*PREDICTION_COLUMNS, *SURPRISE_COLUMNS))
        .where(prediction.c.surprise_rank.is_not(None))
        .order_by(prediction.c.surprise_rank)
        .limit(limit)
    )
    with engine.connect() as conn:
        rows = [dict(row._mapping) for row in conn.execute(query)]
        latest = _latest_labels(conn, campaign_id, [int(r["spectrum_id"]) for r in rows])
    for row in rows:
        row["label"] = latest.get(int(row["spectrum_id"]))
    return rows


def _iteration_rows(
    campaign_id: int, iteration: int, more: Sequence[str], columns: Sequence[str]
) -> sa.Select[Any]:
    """An iteration's prediction rows joined to their spectra: the spectrum columns of
    :data:`SPECTRUM_COLUMNS` and ``more``, the prediction columns ``columns``."""
    prediction, spectrum = schema.prediction, schema.spectrum
    wanted = [*SPECTRUM_COLUMNS, *(name for name in more if name not in SPECTRUM_COLUMNS)]
    return (
        sa.select(
            *(spectrum.c[name] for name in wanted),
            *(prediction.c[name] for name in columns),
        )
        .join(spectrum, spectrum.c.spectrum_id == prediction.c.spectrum_id)
        .where(prediction.c.campaign_id == campaign_id)
        .where(prediction.c.iteration == iteration)
    )


def _latest_labels(conn: sa.Connection, campaign_id: int, ids: Sequence[int]) -> dict[int, str]:
    label = schema.label
    latest: dict[int, str] = {}
    for sid, verdict in conn.execute(
        sa.select(label.c.spectrum_id, label.c.label)
        .where(label.c.campaign_id == campaign_id)
        .where(label.c.spectrum_id.in_(list(ids)))
        .order_by(label.c.label_id)
    ):
        latest[int(sid)] = str(verdict)
    return latest


def spectrum_rows(
    engine: sa.Engine,
    campaign_id: int,
    iteration: int,
    spectrum_ids: Sequence[int],
    more: Sequence[str] = (),
) -> dict[int, dict[str, Any]]:
    """``{spectrum_id: row}`` of these spectra as :func:`candidate_rows` gives them (their
    prediction of iteration ``iteration`` where one is stored, else None in those columns;
    ``label`` the campaign's latest verdict), whatever their role, with the ``spectrum``
    columns named in ``more`` and the surprise columns."""
    prediction, spectrum, label = schema.prediction, schema.spectrum, schema.label
    ids = [int(i) for i in spectrum_ids]
    wanted = [*SPECTRUM_COLUMNS, *(name for name in more if name not in SPECTRUM_COLUMNS)]
    # "+ 0" keeps SQLite off the (campaign_id, iteration, ...) indexes for this join: it
    # chose ix_prediction_entropy, a scan of the iteration's rows for each spectrum
    # (134 s for 92 surprises at 1 M rows), where ix_prediction_spectrum finds each in
    # one step (2 ms)
    joined = spectrum.outerjoin(
        prediction,
        sa.and_(
            prediction.c.spectrum_id == spectrum.c.spectrum_id,
            prediction.c.campaign_id + 0 == campaign_id,
            prediction.c.iteration + 0 == iteration,
        ),
    )
    query = (
        sa.select(
            *(spectrum.c[name] for name in wanted),
            *(prediction.c[name] for name in (*PREDICTION_COLUMNS, *SURPRISE_COLUMNS)),
        )
        .select_from(joined)
        .where(spectrum.c.spectrum_id.in_(ids))
    )
    with engine.connect() as conn:
        rows = {int(row.spectrum_id): dict(row._mapping) for row in conn.execute(query)}
        for sid, verdict in conn.execute(
            sa.select(label.c.spectrum_id, label.c.label)
            .where(label.c.campaign_id == campaign_id)
            .where(label.c.spectrum_id.in_(ids))
            .order_by(label.c.label_id)
        ):
            rows[int(sid)]["label"] = str(verdict)
    for row in rows.values():
        row.setdefault("label", None)
    return rows
