"""Where a pool's predictions live: full scores in Parquet files, what TAP needs in SQL.

A LAMOST-sized campaign scores 4.1 M spectra per iteration. One SQL row per
spectrum per iteration would grow the database by 4 M rows an iteration, and a
classify job would add 4 M rows that carry no model. Instead:

* every scoring (an iteration or a classify job) writes the whole pool's
  predictions as one Parquet file under ``<home>/predictions/`` (~100 MB at 4.1 M
  rows) and one ``prediction_file`` row that points at it, with its model and job;
* SQL ``prediction`` keeps, per campaign, every row of the *latest* iteration (the
  labelling page and TAP ask about the current state) plus the selected rows
  (query, precision-sample, candidate) and the labelled ones of earlier iterations;
  a classify job adds only its candidates. Older iterations' other rows are deleted
  when a newer iteration is recorded: the database stays at one pool's size;
* rows carry ``model_id`` and ``job_id`` (two classifications of a dataset are told
  apart) and ``labelled`` (the spectrum was a training row of that model).

Rows go in through :func:`service.store.schema.bulk_insert` (COPY on PostgreSQL,
one executemany on SQLite) inside :func:`~service.store.schema.bulk_load`: on SQLite
a whole pool's rows (and the deletes of the iteration before) go into a table without
secondary indexes, which are then built again by sorting, in the same transaction --
an order of magnitude less time at 4.1 M rows than updating them row by row
(docs/performance.md).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from service.store import schema
from service.vocabulary import (
    CLASSES,
    HOU_EMISSION,
    HOU_NONE,
    SCORED_BY_REFERENCE,
    TARGET_CLASSES,
)
from uws.store import retrying

#: Rows per SQL bulk insert and per Parquet row group.
CHUNK = 250_000


@dataclasses.dataclass(frozen=True)
class Scoring:
    """Who scored: the keys every prediction row and file of one scoring carries."""

    campaign_id: int | None
    iteration: int | None  # None: a classify job's scoring, not a campaign iteration
    model_id: int | None
    job_id: str | None
    arithmetic: str = "fp32"


def columns(
    spectrum_ids: np.ndarray,
    probabilities: np.ndarray,
    entropy: np.ndarray,
    hou: np.ndarray,
    roles: np.ndarray,
    labelled: np.ndarray,
    surprise: np.ndarray | None = None,
    surprise_rank: np.ndarray | None = None,
    scored_by: np.ndarray | None = None,
    predicted: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The prediction columns of every finite row with a spectrum id, as arrays
    (``surprise`` and ``surprise_rank`` NaN -> null; absent: null in every row;
    ``scored_by`` absent: every row by the reference net; ``predicted``: the class index
    the job decided per row, absent: argmax)."""
    keep = np.isfinite(probabilities).all(axis=1) & (spectrum_ids >= 0)
    if predicted is None:
        predicted = np.argmax(np.nan_to_num(probabilities, nan=-1.0), axis=1)
    classes = np.asarray(CLASSES, dtype=object)
    kept_roles = np.asarray(roles, dtype=object)[keep]
    return {
        "spectrum_id": np.asarray(spectrum_ids, dtype=np.int64)[keep],
        "predicted_class": classes[predicted[keep]],
        "p_single_peak": probabilities[keep, 0].astype(np.float32),
        "p_double_peak": probabilities[keep, 1].astype(np.float32),
        "p_absorption": probabilities[keep, 2].astype(np.float32),
        "entropy": np.asarray(entropy, dtype=np.float32)[keep],
        "hou_verdict": np.where(np.asarray(hou)[keep], HOU_EMISSION, HOU_NONE).astype(object),
        "role": np.where(kept_roles == "", None, kept_roles),
        "labelled": np.asarray(labelled, dtype=bool)[keep],
        "surprise": _nullable(surprise, keep),
        "surprise_rank": _nullable(surprise_rank, keep, int),
        "scored_by": (
            np.full(int(keep.sum()), SCORED_BY_REFERENCE, dtype=object)
            if scored_by is None
            else np.asarray(scored_by, dtype=object)[keep]
        ),
    }


def _nullable(values: np.ndarray | None, keep: np.ndarray, kind: type = float) -> np.ndarray:
    """Numbers (``kind``) of the kept rows as an object array, None where NaN or not given."""
    if values is None:
        return np.full(int(keep.sum()), None, dtype=object)
    kept = np.asarray(values, dtype=np.float64)[keep]
    out = np.full(len(kept), None, dtype=object)
    finite = np.isfinite(kept)
    out[finite] = kept[finite].astype(np.int64 if kind is int else np.float64).astype(object)
    return out


def write_file(path: Path, table: dict[str, np.ndarray], scoring: Scoring) -> Path:
    """The columns as a Parquet file (zstd; class, verdict and role dictionary-encoded)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = {name: pa.array(values) for name, values in table.items()}
    for name in ("predicted_class", "hou_verdict", "role", "scored_by"):
        arrays[name] = arrays[name].dictionary_encode()
    keys = {
        "campaign_id": "" if scoring.campaign_id is None else str(scoring.campaign_id),
        "iteration": "" if scoring.iteration is None else str(scoring.iteration),
        "model_id": "" if scoring.model_id is None else str(scoring.model_id),
        "job_id": scoring.job_id or "",
        "arithmetic": scoring.arithmetic,
    }
    arrow = pa.table(arrays).replace_schema_metadata({f"alvo.{k}": v for k, v in keys.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    pq.write_table(arrow, partial, compression="zstd", row_group_size=CHUNK)
    partial.replace(path)  # a killed job never leaves a truncated file under the real name
    return path


def read_file(path: str | Path, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Columns of a prediction file as numpy arrays (all columns, or ``names``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=names)
    out = {}
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_dictionary(column.type):  # decoded, so that nulls stay None
            column = pa.chunked_array([c.dictionary_decode() for c in column.chunks])
        out[name] = column.to_numpy()
    return out


def record_selected(engine: sa.Engine, table: dict[str, np.ndarray], scoring: Scoring) -> int:
    """The rows the oracle needs first -- selected (query, precision-sample, padding,
    candidate) or labelled -- of a campaign iteration, in one small transaction.

    Why first: the labelling page and the ``query`` result read these rows; the whole pool
    (Parquet, then 4 M SQL rows) takes minutes at LAMOST size and the oracle need not
    wait for it. :func:`record` replaces them with the full iteration afterwards, in
    its own transaction, so a reader sees the batch first and then the whole pool,
    never a mixture. Returns the rows written.
    """
    if scoring.campaign_id is None or scoring.iteration is None:
        return 0
    selected = np.flatnonzero((table["role"] != None) | table["labelled"])  # noqa: E711
    keys = _keys(scoring)

    def write() -> None:
        with engine.begin() as conn:
            _forget_this_iteration(conn, scoring)  # a job run again replaces its rows
            for start in range(0, len(selected), CHUNK):
                rows = selected[start : start + CHUNK]
                part: dict[str, Any] = {k: v[rows] for k, v in table.items()}
                part.update({k: [v] * len(rows) for k, v in keys.items()})
                schema.bulk_insert(conn, schema.prediction, part)

    retrying(write, f"campaign {scoring.campaign_id} iteration {scoring.iteration} batch")
    return len(selected)


def _keys(scoring: Scoring) -> dict[str, Any]:
    return {
        "campaign_id": scoring.campaign_id,
        "iteration": scoring.iteration,
        "model_id": scoring.model_id,
        "job_id": scoring.job_id,
    }


def _forget_this_iteration(conn: sa.Connection, scoring: Scoring) -> int:
    """Delete the rows of this very iteration (those :func:`record_selected` wrote)."""
    p = schema.prediction
    result = conn.execute(
        sa.delete(p)
        .where(p.c.campaign_id == scoring.campaign_id)
        .where(p.c.iteration == scoring.iteration)
    )
    return int(result.rowcount or 0)


def record(
    engine: sa.Engine,
    folder: Path,
    table: dict[str, np.ndarray],
    scoring: Scoring,
    progress: Any = None,
) -> dict[str, Any]:
    """Write the file, its ``prediction_file`` row and the SQL rows TAP needs.

    ``folder`` is ``<home>/predictions``; the row holds the file's path relative to the
    service's home (``predictions/...``), as ``model.path`` does: the table is published
    over TAP, and a server's file paths are nobody's business.

    Returns ``{"path", "sql_rows", "deleted"}``: the file, the rows inserted and the
    earlier iterations' unselected rows removed. Rows :func:`record_selected` wrote for
    this iteration are replaced. ``progress(done, total)`` is called after each
    :data:`CHUNK` of SQL rows (the job's jobInfo).
    """
    name = (
        f"campaign-{scoring.campaign_id}-iteration-{scoring.iteration}"
        if scoring.campaign_id is not None
        else f"classify-{scoring.job_id or 'local'}-model-{scoring.model_id}"
    )
    path = write_file(folder / f"{name}.parquet", table, scoring)
    selected = (table["role"] != None) | table["labelled"]  # noqa: E711 (elementwise)
    sql_rows = np.ones(len(selected), bool) if scoring.campaign_id is not None else selected
    keys = _keys(scoring)
    chosen = np.flatnonzero(sql_rows)

    def write() -> int:  # one transaction: a try that met a lock or an outage stored nothing
        with engine.begin() as conn:
            conn.execute(  # first: SQLite's transaction opens here, before bulk_load's DDL
                schema.prediction_file.insert().values(
                    **keys,
                    path=str(path.relative_to(folder.parent)),
                    n_rows=len(table["spectrum_id"]),
                    # every spectrum predicted as emission, the batch's (query, sample) too
                    n_candidates=int(np.isin(table["predicted_class"], TARGET_CLASSES).sum()),
                    arithmetic=scoring.arithmetic,
                    created=schema.utcnow(),
                )
            )
            with schema.bulk_load(conn, schema.prediction, len(chosen)):
                deleted = 0
                if scoring.campaign_id is not None:
                    deleted = _forget_unselected(conn, scoring)
                    if scoring.iteration is not None:
                        _forget_this_iteration(conn, scoring)
                for start in range(0, len(chosen), CHUNK):
                    rows = chosen[start : start + CHUNK]
                    part: dict[str, Any] = {k: v[rows] for k, v in table.items()}
                    part.update({k: [v] * len(rows) for k, v in keys.items()})
                    schema.bulk_insert(conn, schema.prediction, part)
                    if progress is not None:
                        progress(start + len(rows), len(chosen))
        return deleted

    deleted = retrying(write, f"predictions {name}")
    return {"path": path, "sql_rows": len(chosen), "deleted": deleted}


def similarity_index_file(home: Path, campaign_id: int, iteration: int) -> Path:
    """Where an iteration's "more like this" index lives: beside its predictions file
    (``<home>/predictions/campaign-C-iteration-N.hnsw``, its projection in ``.hnsw.npz``)."""
    return Path(home) / "predictions" / f"campaign-{campaign_id}-iteration-{iteration}.hnsw"


def latest_similarity_index(
    home: Path, campaign_id: int, last: int | None, wanted: int | None = None
) -> tuple[int, Path] | None:
    """(iteration, file) of iteration ``wanted``'s index, or else of the newest iteration up
    to ``last`` that has one; None if there is none."""
    numbers = [wanted] if wanted is not None else range(last if last is not None else -1, -1, -1)
    for number in numbers:
        path = similarity_index_file(home, campaign_id, number)
        if path.is_file():
            return number, path
    return None


def _forget_unselected(conn: sa.Connection, scoring: Scoring) -> int:
    """Delete the campaign's earlier rows that were neither selected nor labelled."""
    p = schema.prediction
    if scoring.iteration is None:  # a classify job's scoring forgets nothing
        return 0
    result = conn.execute(
        sa.delete(p)
        .where(p.c.campaign_id == scoring.campaign_id)
        .where(p.c.iteration < scoring.iteration)
        .where(p.c.role.is_(None))
        .where(sa.or_(p.c.labelled.is_(None), p.c.labelled == sa.false()))
    )
    return int(result.rowcount or 0)
