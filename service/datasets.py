"""Named datasets: spectrum rows in the result tables plus their feature store.

A dataset is what an ingest fills and what training and classification read:
``spectrum`` rows (identifiers, position, access) in the database and, row for
row, the adapted 140-pixel vectors in ``$ALVO_HOME/datasets/<name>/features.npy``.
The feature store is appended to before its rows are committed, so a crash can
leave unreferenced feature rows at the end (harmless: ``row_index`` is the
truth) but never a row without its features.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from service.features import FeatureStore
from service.reasons import AlvoError, Reason
from service.settings import Settings
from service.tables import schema
from uws.store import make_engine

FEATURE_WIDTH = 140


@functools.cache
def engine_for(url: str) -> sa.Engine:
    """One engine per database URL and process, with the result tables created."""
    engine = make_engine(url)
    schema.create_all(engine)
    return engine


@dataclasses.dataclass(frozen=True)
class Dataset:
    dataset_id: int
    name: str
    domain: str
    collection: str
    feature_path: Path

    @property
    def features(self) -> FeatureStore:
        return FeatureStore(self.feature_path)


class Datasets:
    """The datasets of one alvo home and database."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = engine_for(settings.sqlalchemy_url)

    def get(self, name: str) -> Dataset | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(schema.dataset).where(schema.dataset.c.name == name)
            ).first()
        return _dataset(row) if row else None

    def require(self, name: str) -> Dataset:
        found = self.get(name)
        if found is None:
            known = ", ".join(self.names()) or "none yet"
            raise AlvoError(
                Reason.UNKNOWN_DATASET_NAME,
                f"no dataset named {name!r} (known: {known}); ingest it first",
            )
        return found

    def names(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.scalars(sa.select(schema.dataset.c.name).order_by("name")))

    def open_or_create(self, name: str, domain: str, collection: str = "") -> Dataset:
        """The dataset ``name``; created empty if new. A second ingest appends to it."""
        existing = self.get(name)
        if existing is not None:
            if existing.domain != domain:
                raise AlvoError(
                    Reason.BAD_PARAMETER,
                    f"dataset {name!r} is a {existing.domain} dataset, not {domain}; "
                    "use another DATASET name",
                )
            return existing
        path = (self.settings.home / "datasets" / name / "features.npy").resolve()
        FeatureStore.create(path, FEATURE_WIDTH)
        with self.engine.begin() as conn:
            conn.execute(
                schema.dataset.insert().values(
                    name=name,
                    learning_domain=domain,
                    collection=collection,
                    feature_path=str(path),
                    n_spectra=0,
                    n_failed=0,
                    created=schema.utcnow(),
                )
            )
        return self.require(name)

    def append(
        self,
        dataset: Dataset,
        features: np.ndarray,
        rows: Mapping[str, Sequence[Any]],
        labels: Sequence[str] = (),
        oracle_user: str = "",
    ) -> list[int]:
        """Add spectra (features + ``spectrum`` columns); return their spectrum ids.

        ``labels`` (one per row, '' for none) are stored as verdicts without a
        campaign: the labels of a labelled source set.
        """
        if len(features) == 0:
            return []
        indices = dataset.features.append(features)
        columns = dict(rows)
        columns["row_index"] = list(indices)
        columns["dataset_id"] = [dataset.dataset_id] * len(indices)
        columns.setdefault("learning_domain", [dataset.domain] * len(indices))
        records = schema.row_dicts(schema.spectrum, columns)
        with self.engine.begin() as conn:
            conn.execute(schema.spectrum.insert(), records)
            ids = list(
                conn.scalars(
                    sa.select(schema.spectrum.c.spectrum_id)
                    .where(schema.spectrum.c.dataset_id == dataset.dataset_id)
                    .where(schema.spectrum.c.row_index >= indices.start)
                    .order_by(schema.spectrum.c.row_index)
                )
            )
            verdicts = [
                {
                    "spectrum_id": sid,
                    "label": lab,
                    "oracle_user": oracle_user,
                    "labelled": schema.utcnow(),
                    "source": "votable",
                }
                for sid, lab in zip(ids, labels, strict=False)
                if lab
            ]
            if verdicts:
                conn.execute(schema.label.insert(), verdicts)
            conn.execute(
                schema.dataset.update()
                .where(schema.dataset.c.dataset_id == dataset.dataset_id)
                .values(n_spectra=schema.dataset.c.n_spectra + len(ids))
            )
        return ids

    def count_failures(self, dataset: Dataset, n_failed: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                schema.dataset.update()
                .where(schema.dataset.c.dataset_id == dataset.dataset_id)
                .values(n_failed=schema.dataset.c.n_failed + n_failed)
            )

    def spectra(self, dataset: Dataset, columns: Sequence[str] = ()) -> dict[str, np.ndarray]:
        """The ``spectrum`` columns of a dataset, ordered by feature row."""
        table = schema.spectrum
        chosen = [table.c[name] for name in columns] or list(table.c)
        query = sa.select(*chosen).where(table.c.dataset_id == dataset.dataset_id)
        with self.engine.connect() as conn:
            result = conn.execute(query.order_by(table.c.row_index)).all()
        return {
            column.name: np.array([row[i] for row in result], dtype=object)
            for i, column in enumerate(chosen)
        }

    def source_labels(self, dataset: Dataset) -> dict[int, str]:
        """Campaign-free labels of a dataset: ``{row_index: verdict}`` (latest wins)."""
        spectrum, label = schema.spectrum, schema.label
        query = (
            sa.select(spectrum.c.row_index, label.c.label)
            .join(label, label.c.spectrum_id == spectrum.c.spectrum_id)
            .where(spectrum.c.dataset_id == dataset.dataset_id)
            .where(label.c.campaign_id.is_(None))
            .order_by(label.c.label_id)
        )
        with self.engine.connect() as conn:
            return {int(row): str(verdict) for row, verdict in conn.execute(query)}


def _dataset(row: Any) -> Dataset:
    return Dataset(
        dataset_id=int(row.dataset_id),
        name=str(row.name),
        domain=str(row.learning_domain),
        collection=str(row.collection or ""),
        feature_path=Path(row.feature_path),
    )
