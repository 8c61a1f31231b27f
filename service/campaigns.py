"""Active-learning campaigns: a source set, a target pool, the oracle's labels, iterations.

A campaign ties together what one search needs across iterations and across
people: the labelled source dataset the CNN starts from, the target pool the
oracle labels, every verdict given (attributed to its user; a later verdict
of the same user replaces an earlier one, two users who disagree are a
*conflict* the page shows), and per iteration the model, the predictions and
the metrics. Everything lives in the result tables, so it is also queryable
over TAP.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa

from service.datasets import Dataset, Datasets
from service.reasons import AlvoError, Reason
from service.settings import Settings
from service.tables import schema

CLASSES = schema.CLASSES
VERDICTS = schema.VERDICTS


@dataclasses.dataclass(frozen=True)
class Campaign:
    campaign_id: int
    name: str
    source: Dataset
    target: Dataset
    batch_size: int
    description: str = ""


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One label to record: the spectrum by id or publisher DID."""

    label: str
    spectrum_id: int | None = None
    pubdid: str | None = None
    user: str = ""
    source: str = "api"
    iteration: int | None = None


@dataclasses.dataclass(frozen=True)
class LabelOutcome:
    stored: int
    unknown: list[str]  # identifiers that match no spectrum of the campaign's pool
    conflicts: list[dict[str, Any]]  # spectra on which users now disagree


class Campaigns:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.datasets = Datasets(settings)
        self.engine = self.datasets.engine

    # --- campaigns ------------------------------------------------------------------------------
    def create(
        self, name: str, source: str, target: str, batch_size: int = 100, description: str = ""
    ) -> Campaign:
        source_set, target_set = self.datasets.require(source), self.datasets.require(target)
        if self.get(name) is not None:
            raise AlvoError(Reason.NAME_IN_USE, f"a campaign named {name!r} exists already")
        with self.engine.begin() as conn:
            conn.execute(
                schema.campaign.insert().values(
                    name=name,
                    description=description,
                    source_dataset_id=source_set.dataset_id,
                    target_dataset_id=target_set.dataset_id,
                    batch_size=batch_size,
                    created=schema.utcnow(),
                )
            )
        return self.require(name)

    def get(self, name: str) -> Campaign | None:
        table = schema.campaign
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.name == name)).first()
            if row is None:
                return None
            ids = (row.source_dataset_id, row.target_dataset_id)
            names = dict(
                conn.execute(
                    sa.select(schema.dataset.c.dataset_id, schema.dataset.c.name).where(
                        schema.dataset.c.dataset_id.in_(ids)
                    )
                ).all()
            )
        return Campaign(
            campaign_id=int(row.campaign_id),
            name=str(row.name),
            source=self.datasets.require(names[row.source_dataset_id]),
            target=self.datasets.require(names[row.target_dataset_id]),
            batch_size=int(row.batch_size),
            description=str(row.description or ""),
        )

    def require(self, name: str) -> Campaign:
        found = self.get(name)
        if found is None:
            known = ", ".join(self.names()) or "none yet"
            raise AlvoError(
                Reason.UNKNOWN_CAMPAIGN,
                f"no campaign named {name!r} (known: {known}); create it with POST /campaigns",
            )
        return found

    def names(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.scalars(sa.select(schema.campaign.c.name).order_by("name")))

    # --- labels ---------------------------------------------------------------------------------
    def add_labels(self, campaign: Campaign, verdicts: Iterable[Verdict]) -> LabelOutcome:
        """Record verdicts on spectra of the campaign's pool (or source set)."""
        verdicts = list(verdicts)
        for verdict in verdicts:
            if verdict.label not in VERDICTS:
                raise AlvoError(
                    Reason.BAD_LABEL, f"{verdict.label!r} is not one of {', '.join(VERDICTS)}"
                )
        spectrum = schema.spectrum
        datasets = (campaign.target.dataset_id, campaign.source.dataset_id)
        pubdids = {v.pubdid for v in verdicts if v.spectrum_id is None and v.pubdid}
        ids = {v.spectrum_id for v in verdicts if v.spectrum_id is not None}
        with self.engine.begin() as conn:
            by_pubdid = dict(
                conn.execute(
                    sa.select(spectrum.c.pubdid, spectrum.c.spectrum_id)
                    .where(spectrum.c.dataset_id.in_(datasets))
                    .where(spectrum.c.pubdid.in_(pubdids))
                ).all()
            ) if pubdids else {}  # fmt: skip
            known_ids = set(
                conn.scalars(
                    sa.select(spectrum.c.spectrum_id)
                    .where(spectrum.c.dataset_id.in_(datasets))
                    .where(spectrum.c.spectrum_id.in_(ids))
                )
            ) if ids else set()  # fmt: skip
            rows, unknown = [], []
            for verdict in verdicts:
                sid = verdict.spectrum_id if verdict.spectrum_id in known_ids else None
                sid = sid if sid is not None else by_pubdid.get(verdict.pubdid or "")
                if sid is None:
                    unknown.append(str(verdict.pubdid or verdict.spectrum_id))
                    continue
                rows.append(
                    {
                        "spectrum_id": sid,
                        "campaign_id": campaign.campaign_id,
                        "label": verdict.label,
                        "oracle_user": verdict.user,
                        "labelled": schema.utcnow(),
                        "iteration": verdict.iteration,
                        "source": verdict.source,
                    }
                )
            if rows:
                conn.execute(schema.label.insert(), rows)
        touched = {row["spectrum_id"] for row in rows}
        conflicts = [c for c in self.conflicts(campaign) if c["spectrum_id"] in touched]
        return LabelOutcome(stored=len(rows), unknown=unknown, conflicts=conflicts)

    def verdicts_per_user(self, campaign: Campaign) -> list[tuple[int, str, str]]:
        """(spectrum_id, user, verdict): each user's latest verdict per spectrum."""
        label = schema.label
        query = (
            sa.select(label.c.spectrum_id, label.c.oracle_user, label.c.label)
            .where(label.c.campaign_id == campaign.campaign_id)
            .order_by(label.c.label_id)
        )
        latest: dict[tuple[int, str], str] = {}
        with self.engine.connect() as conn:
            for sid, user, verdict in conn.execute(query):
                latest[(int(sid), str(user or ""))] = str(verdict)
        return [(sid, user, verdict) for (sid, user), verdict in latest.items()]

    def labels(self, campaign: Campaign) -> dict[int, str]:
        """``{spectrum_id: verdict}``; where users disagree the spectrum is left out."""
        votes: dict[int, set[str]] = {}
        for sid, _, verdict in self.verdicts_per_user(campaign):
            votes.setdefault(sid, set()).add(verdict)
        return {sid: next(iter(v)) for sid, v in votes.items() if len(v) == 1}

    def conflicts(self, campaign: Campaign) -> list[dict[str, Any]]:
        """Spectra whose latest verdicts from different users disagree."""
        votes: dict[int, dict[str, str]] = {}
        for sid, user, verdict in self.verdicts_per_user(campaign):
            votes.setdefault(sid, {})[user] = verdict
        return [
            {"spectrum_id": sid, "verdicts": by_user}
            for sid, by_user in sorted(votes.items())
            if len(set(by_user.values())) > 1
        ]

    # --- training data --------------------------------------------------------------------------
    def training_set(
        self, campaign: Campaign, classes: Sequence[str] = CLASSES
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(features, class index, target row indices labelled)`` to train on.

        Source spectra with a class label, plus every pool spectrum the oracle
        labelled with a class; ``not-sure`` and ``bad`` verdicts are kept in
        the tables but not trained on.
        """
        source_labels = self.datasets.source_labels(campaign.source)
        source_rows = np.array(
            [row for row, verdict in sorted(source_labels.items()) if verdict in classes], int
        )
        source_y = np.array(
            [classes.index(source_labels[row]) for row in source_rows], dtype=np.int64
        )
        target_rows, target_y = self.pool_labels(campaign, classes)
        features = np.concatenate(
            [
                np.asarray(campaign.source.features.array()[source_rows]),
                np.asarray(campaign.target.features.array()[target_rows]),
            ]
        )
        return features, np.concatenate([source_y, target_y]), target_rows

    def pool_labels(
        self, campaign: Campaign, classes: Sequence[str] = CLASSES
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pool rows the oracle labelled with a class, and the class indices."""
        rows, y = [], []
        for row, verdict in sorted(self.pool_verdicts(campaign).items()):
            if verdict in classes:
                rows.append(row)
                y.append(classes.index(verdict))
        return np.array(rows, dtype=np.int64), np.array(y, dtype=np.int64)

    def pool_verdicts(self, campaign: Campaign) -> dict[int, str]:
        """``{pool row index: verdict}`` for every pool spectrum labelled in the campaign."""
        labels = self.labels(campaign)
        if not labels:
            return {}
        spectrum = schema.spectrum
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(spectrum.c.spectrum_id, spectrum.c.row_index)
                .where(spectrum.c.dataset_id == campaign.target.dataset_id)
                .where(spectrum.c.spectrum_id.in_(list(labels)))
            ).all()
        return {int(row): labels[int(sid)] for sid, row in rows}

    def spectrum_ids(self, dataset: Dataset) -> np.ndarray:
        """``spectrum_id`` of each feature row of a dataset (index = row)."""
        spectrum = schema.spectrum
        with self.engine.connect() as conn:
            pairs = conn.execute(
                sa.select(spectrum.c.row_index, spectrum.c.spectrum_id).where(
                    spectrum.c.dataset_id == dataset.dataset_id
                )
            ).all()
        ids = np.full(len(dataset.features), -1, dtype=np.int64)
        for row, sid in pairs:
            ids[int(row)] = int(sid)
        return ids

    # --- iterations -----------------------------------------------------------------------------
    def last_iteration(self, campaign: Campaign) -> int | None:
        table = schema.iteration
        with self.engine.connect() as conn:
            return conn.scalar(
                sa.select(sa.func.max(table.c.number)).where(
                    table.c.campaign_id == campaign.campaign_id
                )
            )

    def iterations(self, campaign: Campaign) -> list[dict[str, Any]]:
        table = schema.iteration
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(table)
                .where(table.c.campaign_id == campaign.campaign_id)
                .order_by(table.c.number)
            )
            return [dict(row._mapping) for row in rows]
