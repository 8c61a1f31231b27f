"""Generated rows for the result tables: tests, examples and the TAP benchmark.

:func:`fill_demo` writes a small, consistent world -- a campaign, a source and
a target dataset, their spectra, ``iterations`` rounds of predictions, labels
on each round's query batch, a model and the metrics per iteration. The
numbers are random (seeded) but shaped like the real thing: probabilities that
sum to one, entropies computed from them, positions uniform on the sphere.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sqlalchemy as sa

from service.store import schema
from service.vocabulary import (
    ABSORPTION,
    CANDIDATE,
    CLASSES,
    HOU_EMISSION,
    HOU_NONE,
    QUERY,
    VERDICTS,
)

_PIPELINE = np.array(["STAR", "GALAXY", "QSO", "Unknown"])
_HOU = np.array([HOU_EMISSION, HOU_NONE])


def fill_demo(
    engine: sa.Engine,
    n_spectra: int = 1000,
    iterations: int = 2,
    seed: int = 0,
    chunk: int = 50_000,
    progress: Any = None,
) -> dict[str, int]:
    """Fill empty result tables with generated rows; returns the ids it made.

    ``n_spectra`` target spectra (plus a tenth as many source spectra) and
    ``n_spectra * iterations`` predictions are written in chunks of ``chunk``
    rows; ``progress(rows_done)`` is called after each chunk (e.g. tqdm.update).
    """
    rng = np.random.default_rng(seed)
    schema.create_all(engine)
    now = schema.utcnow()
    with engine.begin() as conn:
        campaign_id = _insert_one(
            conn,
            schema.campaign,
            name=f"demo-{seed}",
            description="Generated demo campaign",
            batch_size=100,
            created=now,
        )
        source_id = _insert_one(
            conn,
            schema.dataset,
            name=f"demo-source-{seed}",
            collection="ondrejov",
            learning_domain="source",
            n_spectra=max(1, n_spectra // 10),
            n_failed=0,
            created=now,
        )
        target_id = _insert_one(
            conn,
            schema.dataset,
            name=f"demo-target-{seed}",
            collection="lamost-dr2",
            learning_domain="target",
            n_spectra=n_spectra,
            n_failed=0,
            created=now,
        )
        conn.execute(
            schema.campaign.update().values(
                source_dataset_id=source_id, target_dataset_id=target_id
            )
        )
    first_target = None
    for dataset_id, count, domain in (
        (source_id, max(1, n_spectra // 10), "source"),
        (target_id, n_spectra, "target"),
    ):
        for start in range(0, count, chunk):
            rows = spectra_rows(rng, dataset_id, start, min(chunk, count - start), domain)
            with engine.begin() as conn:
                schema.bulk_insert(conn, schema.spectrum, rows)
            if progress:
                progress(len(rows["row_index"]))
    with engine.begin() as conn:
        first_target = conn.execute(
            sa.select(sa.func.min(schema.spectrum.c.spectrum_id)).where(
                schema.spectrum.c.dataset_id == target_id
            )
        ).scalar_one()
    for number in range(1, iterations + 1):
        for start in range(0, n_spectra, chunk):
            size = min(chunk, n_spectra - start)
            rows = prediction_rows(rng, first_target + start, size, campaign_id, number)
            with engine.begin() as conn:
                schema.bulk_insert(conn, schema.prediction, rows)
            if progress:
                progress(size)
        _label_and_measure(engine, rng, campaign_id, number, now)
    return {
        "campaign_id": campaign_id,
        "source_dataset_id": source_id,
        "target_dataset_id": target_id,
    }


def spectra_rows(
    rng: np.random.Generator, dataset_id: int, start: int, size: int, domain: str
) -> dict[str, Any]:
    """Columns of ``size`` spectrum rows; RA/Dec uniform on the sphere (degrees)."""
    rows_index = np.arange(start, start + size)
    ra = rng.uniform(0.0, 360.0, size)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, size)))
    collection = "lamost-dr2" if domain == "target" else "ondrejov"
    pubdid = np.char.add(f"ivo://alvo.demo/{collection}?{dataset_id}/", rows_index.astype(str))
    return {
        "dataset_id": np.full(size, dataset_id),
        "row_index": rows_index,
        "pubdid": pubdid,
        "obsid": rows_index.astype(str),
        "designation": [_designation(a, d) for a, d in zip(ra, dec, strict=True)],
        "object": np.char.add("obj", rows_index.astype(str)),
        "ra": ra,
        "dec": dec,
        "mjd": rng.uniform(55_000.0, 57_000.0, size),
        "snr": rng.gamma(2.0, 20.0, size),
        "pipeline_class": _PIPELINE[rng.integers(0, len(_PIPELINE), size)],
        "access_url": np.char.add(f"http://127.0.0.1/ssa/{collection}/", rows_index.astype(str)),
        "datalink_id": pubdid,
        "learning_domain": np.full(size, domain),
        "collection": np.full(size, collection),
        "magnitude": rng.uniform(9.0, 17.0, size),
    }


def prediction_rows(
    rng: np.random.Generator, first_spectrum: int, size: int, campaign_id: int, number: int
) -> dict[str, Any]:
    """Columns of ``size`` predictions for consecutive spectrum ids."""
    probabilities = rng.dirichlet((0.3, 0.2, 2.0), size)
    entropy = -np.sum(probabilities * np.log(np.clip(probabilities, 1e-300, None)), axis=1)
    classes = np.array(CLASSES)[np.argmax(probabilities, axis=1)]
    role = np.full(size, None, dtype=object)
    top = np.argsort(-entropy)[:100]
    role[top] = QUERY
    role[(classes != ABSORPTION) & (role == None)] = CANDIDATE  # noqa: E711 (numpy)
    return {
        "spectrum_id": np.arange(first_spectrum, first_spectrum + size),
        "campaign_id": np.full(size, campaign_id),
        "iteration": np.full(size, number),
        "predicted_class": classes,
        "p_single_peak": probabilities[:, 0],
        "p_double_peak": probabilities[:, 1],
        "p_absorption": probabilities[:, 2],
        "entropy": entropy,
        "hou_verdict": _HOU[rng.integers(0, len(_HOU), size)],
        "role": role,
    }


def _label_and_measure(
    engine: sa.Engine, rng: np.random.Generator, campaign_id: int, number: int, now: Any
) -> None:
    """Label the iteration's query batch and record a model and metrics for it."""
    p = schema.prediction
    with engine.begin() as conn:
        queried = conn.execute(
            sa.select(p.c.spectrum_id, p.c.predicted_class)
            .where(
                (p.c.campaign_id == campaign_id) & (p.c.iteration == number) & (p.c.role == QUERY)
            )
            .order_by(p.c.spectrum_id)  # the verdicts are drawn in this order, on any database
        ).all()
        verdicts = rng.choice(np.array(VERDICTS), len(queried), p=[0.3, 0.2, 0.4, 0.05, 0.05])
        if queried:
            conn.execute(
                schema.label.insert(),
                [
                    {
                        "spectrum_id": sid,
                        "campaign_id": campaign_id,
                        "label": str(verdict),
                        "oracle_user": "demo",
                        "labelled": now,
                        "iteration": number,
                        "source": "api",
                    }
                    for (sid, _), verdict in zip(queried, verdicts, strict=True)
                ],
            )
        wrong = sum(pred != verdict for (_, pred), verdict in zip(queried, verdicts, strict=True))
        precision = rng.uniform(0.6, 0.95, 3)
        conn.execute(
            schema.iteration.insert().values(
                campaign_id=campaign_id,
                number=number,
                error=wrong / max(1, len(queried)),
                precision_single_peak=precision[0],
                precision_single_peak_lower=precision[0] - 0.1,
                precision_double_peak=precision[1],
                precision_double_peak_lower=precision[1] - 0.1,
                n_answered=len(queried),  # the demo oracle answered its whole batch
                n_labels=len(queried) * number,
                started=now,
                finished=now,
            )
        )
        conn.execute(
            schema.model.insert().values(
                campaign_id=campaign_id,
                iteration=number,
                path=f"models/demo-{number}.keras",
                adaptation="demo",
                classes=",".join(CLASSES),
                metrics='{"accuracy": 0.9}',
                created=now,
            )
        )


def _insert_one(conn: sa.Connection, table: sa.Table, **values: Any) -> int:
    key = conn.execute(table.insert().values(**values)).inserted_primary_key
    assert key is not None
    return int(key[0])


def _designation(ra: float, dec: float) -> str:
    h, rem = divmod(ra / 15.0 * 3600.0, 3600.0)
    m, s = divmod(rem, 60.0)
    sign = "+" if dec >= 0 else "-"
    d, drem = divmod(abs(dec) * 3600.0, 3600.0)
    dm, ds = divmod(drem, 60.0)
    return f"J{int(h):02d}{int(m):02d}{s:05.2f}{sign}{int(d):02d}{int(dm):02d}{ds:04.1f}"
