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

import copy
import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa

from service.reasons import AlvoError, Reason
from service.settings import Settings
from service.store import schema
from service.store.datasets import Dataset, Datasets
from service.store.ownership import may_label, refusal
from service.store.privacy import hidden_from
from service.vocabulary import (
    BATCH_ROLES,
    CLASSES,
    INTERESTING,
    RELEVANCE_VERDICTS,
    TARGET_CLASSES,
    VERDICTS,
)
from uws.store import retrying

#: What a campaign's verdicts are exported with (``/campaigns/{name}/labels``): the
#: spectrum's identity and position, then who said what, when and how.
VERDICT_COLUMNS = (
    schema.spectrum.c.pubdid,
    schema.spectrum.c.designation,
    schema.spectrum.c.ra,
    schema.spectrum.c.dec,
    schema.label.c.label,
    schema.label.c.oracle_user,
    schema.label.c.labelled,
    schema.label.c.iteration,
    schema.label.c.source,
    schema.label.c.comment,
    schema.label.c.flag,
)


@dataclasses.dataclass(frozen=True)
class Campaign:
    campaign_id: int
    name: str
    source: Dataset
    target: Dataset
    batch_size: int
    description: str = ""
    owner: str | None = None  # runs its iterations (None: anyone); see service.store.ownership
    oracles: tuple[str, ...] = ()  # may label it too ('*': every signed-in user)

    def may_label(self, user: str | None) -> bool:
        return may_label(self.owner, self.oracles, user)


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One label to record: the spectrum by id or publisher DID."""

    label: str
    spectrum_id: int | None = None
    pubdid: str | None = None
    user: str = ""
    source: str = "api"
    iteration: int | None = None
    # the oracle's note and "needs a second look" flag; None: keep what the user's
    # latest verdict on the spectrum had
    comment: str | None = None
    flag: bool | None = None


@dataclasses.dataclass(frozen=True)
class LabelOutcome:
    stored: int
    unknown: list[str]  # identifiers that match no spectrum of the campaign's pool
    conflicts: list[dict[str, Any]]  # spectra on which users now disagree
    unchanged: int = 0  # verdicts identical to the user's latest on the spectrum: not stored
    noted: int = 0  # same verdict, a new comment or flag: written into the latest row


@dataclasses.dataclass
class _Latest:
    """A user's latest verdict on a spectrum (``label_id`` None: not stored yet)."""

    label_id: int | None
    label: str
    comment: str | None
    flag: bool | None
    row: dict[str, Any] = dataclasses.field(default_factory=dict)


class Campaigns:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.datasets = Datasets(settings)
        self.engine = self.datasets.engine
        #: campaigns this view does not show (built on private datasets; see seen_by)
        self.hidden: frozenset[int] = frozenset()

    def seen_by(self, user: str | None) -> Campaigns:
        """These campaigns as ``user`` (None: anonymous) may see them: one built on a
        private dataset they may not read is not there (``get`` None, ``require``
        UNKNOWN_CAMPAIGN, not in ``names``), as over TAP (:mod:`service.store.privacy`)."""
        view = copy.copy(self)
        with self.engine.connect() as conn:
            view.hidden = frozenset(hidden_from(conn, user).campaigns)
        return view

    # --- campaigns ------------------------------------------------------------------------------
    def create(
        self,
        name: str,
        source: str,
        target: str,
        batch_size: int = 100,
        description: str = "",
        owner: str | None = None,
        oracles: Sequence[str] = (),
    ) -> Campaign:
        """A new campaign on two datasets (anyone's: datasets are shared read-only, except
        private ones, which only their owner and readers may build on)."""
        source_set, target_set = self.datasets.require(source), self.datasets.require(target)
        for dataset in (source_set, target_set):
            if not dataset.may_read(owner):
                raise refusal("dataset", dataset.name, dataset.owner, "ask its owner to invite you")
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
                    owner=owner,
                    oracles=",".join(oracles) or None,
                )
            )
        return self.require(name)

    def get(self, name: str) -> Campaign | None:
        table = schema.campaign
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.name == name)).first()
            if row is None or row.campaign_id in self.hidden:
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
            owner=row.owner,
            oracles=tuple(filter(None, (row.oracles or "").split(","))),
        )

    def require(self, name: str) -> Campaign:
        found = self.get(name)
        if found is None:
            # on a shared (auth=header) service a miss must not reveal everybody's names
            shared = self.settings.auth == "header"
            known = "" if shared else f" (known: {', '.join(self.names()) or 'none yet'})"
            raise AlvoError(
                Reason.UNKNOWN_CAMPAIGN,
                f"no campaign named {name!r}{known}; create it with POST /campaigns",
            )
        return found

    def names(self) -> list[str]:
        c = schema.campaign.c
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(c.campaign_id, c.name).order_by(c.name)).all()
        return [str(row.name) for row in rows if row.campaign_id not in self.hidden]

    # --- labels ---------------------------------------------------------------------------------
    def add_labels(self, campaign: Campaign, verdicts: Iterable[Verdict]) -> LabelOutcome:
        """Record verdicts on spectra of the campaign's pool (or source set).

        Idempotent: a verdict equal to the same user's latest one on the spectrum is
        not stored again (``unchanged``), so a table sent twice over SAMP or uploaded
        twice adds nothing; a changed verdict is a new row (the history is kept).
        A comment or flag that changes while the verdict stays is written into the
        user's latest row (it is a note on that verdict, not a new one; undo still
        takes back exactly the last verdict); a verdict that says no comment or flag
        keeps the user's latest ones on the spectrum.
        """
        verdicts = list(verdicts)
        words = (*VERDICTS, *RELEVANCE_VERDICTS)
        for verdict in verdicts:
            if verdict.label not in words:
                raise AlvoError(
                    Reason.BAD_LABEL, f"{verdict.label!r} is not one of {', '.join(words)}"
                )
            if verdict.comment is not None and len(verdict.comment) > schema.MAX_COMMENT:
                raise AlvoError(
                    Reason.COMMENT_TOO_LONG,
                    f"the comment on {verdict.pubdid or verdict.spectrum_id} has "
                    f"{len(verdict.comment)} characters; at most {schema.MAX_COMMENT} are kept",
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
            resolved, unknown = [], []
            for verdict in verdicts:
                sid = verdict.spectrum_id if verdict.spectrum_id in known_ids else None
                sid = sid if sid is not None else by_pubdid.get(verdict.pubdid or "")
                if sid is None:
                    unknown.append(str(verdict.pubdid or verdict.spectrum_id))
                else:
                    resolved.append((int(sid), verdict))
            answers = [(sid, v) for sid, v in resolved if v.label in RELEVANCE_VERDICTS]
            relevance_rows = self._relevance_rows(conn, campaign, answers)
            resolved = [(sid, v) for sid, v in resolved if v.label not in RELEVANCE_VERDICTS]
            sids = sorted({sid for sid, _ in resolved})
            latest = self._latest_verdicts(conn, campaign, sids)
            asked_in = self._batch_iterations(conn, campaign, sids)
            rows: list[dict[str, Any]] = []
            notes: dict[int, dict[str, Any]] = {}  # label_id -> the note written into it
            noted = 0
            for sid, verdict in resolved:
                key = (sid, verdict.user)
                before = latest.get(key)
                comment = (
                    verdict.comment
                    if verdict.comment is not None
                    else (before.comment if before else None)
                )
                comment = comment or None  # '' clears it
                flag = bool(verdict.flag if verdict.flag is not None else before and before.flag)
                if before and before.label == verdict.label:
                    if (before.comment, bool(before.flag)) != (comment, flag):
                        if before.label_id is None:  # the row is in this request
                            before.row.update(comment=comment, flag=flag)
                        else:
                            notes[before.label_id] = {"comment": comment, "flag": flag}
                        latest[key] = dataclasses.replace(before, comment=comment, flag=flag)
                        noted += 1
                    continue  # the same verdict again (a table sent twice): one row
                row = {
                    "spectrum_id": sid,
                    "campaign_id": campaign.campaign_id,
                    "label": verdict.label,
                    "oracle_user": verdict.user,
                    "labelled": schema.utcnow(),
                    "iteration": (
                        verdict.iteration if verdict.iteration is not None else asked_in.get(sid)
                    ),
                    "source": verdict.source,
                    "comment": comment,
                    "flag": flag,
                }
                latest[key] = _Latest(None, verdict.label, comment, flag, row)
                rows.append(row)
            if rows:
                conn.execute(schema.label.insert(), rows)
                self._count_answered(conn, campaign)
            for label_id, note in notes.items():
                conn.execute(
                    schema.label.update().where(schema.label.c.label_id == label_id).values(**note)
                )
        touched = {row["spectrum_id"] for row in rows}
        conflicts = [c for c in self.conflicts(campaign) if c["spectrum_id"] in touched]
        return LabelOutcome(
            stored=len(rows) + relevance_rows,
            unknown=unknown,
            conflicts=conflicts,
            unchanged=len(resolved) + len(answers) - len(rows) - noted - relevance_rows,
            noted=noted,
        )

    def _relevance_rows(
        self, conn: sa.Connection, campaign: Campaign, answers: list[tuple[int, Verdict]]
    ) -> int:
        """Store interesting/boring answers in ``relevance`` (never in ``label``: they must
        not reach the training set); the same answer again from the same user adds no row."""
        if not answers:
            return 0
        table = schema.relevance
        latest: dict[tuple[int, str], str] = {}
        for sid, user, verdict in conn.execute(
            sa.select(table.c.spectrum_id, table.c.oracle_user, table.c.verdict)
            .where(table.c.campaign_id == campaign.campaign_id)
            .where(table.c.spectrum_id.in_(sorted({sid for sid, _ in answers})))
            .order_by(table.c.relevance_id)
        ):
            latest[(int(sid), str(user or ""))] = str(verdict)
        rows = []
        for sid, answer in answers:
            if latest.get((sid, answer.user)) == answer.label:
                continue
            latest[(sid, answer.user)] = answer.label
            rows.append(
                {
                    "spectrum_id": sid,
                    "campaign_id": campaign.campaign_id,
                    "verdict": answer.label,
                    "oracle_user": answer.user,
                    "answered": schema.utcnow(),
                    "iteration": answer.iteration,
                }
            )
        if rows:
            conn.execute(table.insert(), rows)
        return len(rows)

    def relevance_per_user(self, campaign: Campaign) -> list[tuple[int, str, str]]:
        """(spectrum_id, user, answer): each user's latest interesting/boring answer."""
        table = schema.relevance
        latest: dict[tuple[int, str], str] = {}
        with self.engine.connect() as conn:
            for sid, user, verdict in conn.execute(
                sa.select(table.c.spectrum_id, table.c.oracle_user, table.c.verdict)
                .where(table.c.campaign_id == campaign.campaign_id)
                .order_by(table.c.relevance_id)
            ):
                latest[(int(sid), str(user or ""))] = str(verdict)
        return [(sid, user, verdict) for (sid, user), verdict in latest.items()]

    def pool_relevance(self, campaign: Campaign) -> tuple[np.ndarray, np.ndarray]:
        """(pool row indices, relevance in [0, 1]) of every surprise anyone answered on:
        the share of its users' latest answers that say interesting."""
        votes: dict[int, list[float]] = {}
        for sid, _, verdict in self.relevance_per_user(campaign):
            votes.setdefault(sid, []).append(1.0 if verdict == INTERESTING else 0.0)
        if not votes:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        spectrum = schema.spectrum
        with self.engine.connect() as conn:
            pairs = conn.execute(
                sa.select(spectrum.c.spectrum_id, spectrum.c.row_index)
                .where(spectrum.c.dataset_id == campaign.target.dataset_id)
                .where(spectrum.c.spectrum_id.in_(list(votes)))
            ).all()
        pairs = sorted(pairs, key=lambda pair: int(pair[1]))
        rows = np.array([int(row) for _, row in pairs], np.int64)
        relevance = np.array([np.mean(votes[int(sid)]) for sid, _ in pairs], np.float32)
        return rows, relevance

    @staticmethod
    def _latest_verdicts(
        conn: sa.Connection, campaign: Campaign, sids: Sequence[int]
    ) -> dict[tuple[int, str], _Latest]:
        """``{(spectrum_id, user): latest}``: each user's latest verdict on these spectra,
        with its comment and flag."""
        label = schema.label
        latest: dict[tuple[int, str], _Latest] = {}
        for row in conn.execute(
            sa.select(
                label.c.label_id,
                label.c.spectrum_id,
                label.c.oracle_user,
                label.c.label,
                label.c.comment,
                label.c.flag,
            )
            .where(label.c.campaign_id == campaign.campaign_id)
            .where(label.c.spectrum_id.in_(sids))
            .order_by(label.c.label_id)
        ):
            latest[(int(row.spectrum_id), str(row.oracle_user or ""))] = _Latest(
                int(row.label_id), str(row.label), row.comment, row.flag
            )
        return latest

    def notes(self, campaign: Campaign, ids: Sequence[int], user: str) -> dict[int, dict[str, Any]]:
        """``{spectrum_id: {"comment", "flag"}}``: the note on ``user``'s latest verdict on
        each of these spectra, where it has one."""
        with self.engine.connect() as conn:
            latest = self._latest_verdicts(conn, campaign, ids)
        return {
            sid: {"comment": found.comment, "flag": bool(found.flag)}
            for (sid, who), found in latest.items()
            if who == user and (found.comment or found.flag)
        }

    @staticmethod
    def _batch_iterations(
        conn: sa.Connection, campaign: Campaign, sids: Sequence[int]
    ) -> dict[int, int]:
        """``{spectrum_id: iteration}``: the latest iteration whose batch held the spectrum,
        so a label that does not say (SAMP, files) is filed under the batch that asked."""
        prediction = schema.prediction
        return {
            int(sid): int(number)
            for sid, number in conn.execute(
                sa.select(prediction.c.spectrum_id, sa.func.max(prediction.c.iteration))
                .where(prediction.c.campaign_id == campaign.campaign_id)
                .where(prediction.c.spectrum_id.in_(sids))
                .where(prediction.c.role.in_(BATCH_ROLES))
                .group_by(prediction.c.spectrum_id)
            )
        }

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

    def undo_verdict(
        self, campaign: Campaign, spectrum_id: int, user: str, relevance: bool = False
    ) -> str | None:
        """Delete ``user``'s latest verdict on a spectrum; return the one now in effect (or None).

        Verdicts are append-only otherwise; undo removes exactly the row the
        user's last key press added, so an earlier verdict of theirs comes back.
        ``relevance``: the latest interesting/boring answer instead.
        """
        table = schema.relevance if relevance else schema.label
        key, word = table.c[0], table.c.verdict if relevance else table.c.label
        mine = (
            sa.select(key, word)
            .where(table.c.campaign_id == campaign.campaign_id)
            .where(table.c.spectrum_id == spectrum_id)
            .where(table.c.oracle_user == user)
            .order_by(key.desc())
            .limit(2)
        )
        with self.engine.begin() as conn:
            latest = conn.execute(mine).all()
            if not latest:
                return None
            conn.execute(table.delete().where(key == latest[0][0]))
        return str(latest[1][1]) if len(latest) > 1 else None

    def verdict_rows(self, campaign: Campaign) -> list[dict[str, Any]]:
        """Every verdict given in the campaign, oldest first, as dicts of
        :data:`VERDICT_COLUMNS` (the spectrum's identity and position, who said what when)."""
        label, spectrum = schema.label, schema.spectrum
        query = (
            sa.select(*VERDICT_COLUMNS)
            .join(spectrum, spectrum.c.spectrum_id == label.c.spectrum_id)
            .where(label.c.campaign_id == campaign.campaign_id)
            .order_by(label.c.label_id)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

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

    def judged_pool_rows(self, campaign: Campaign) -> np.ndarray:
        """Pool row indices of every spectrum anyone judged in the campaign, disputed ones
        included: they leave the pool the oracle is asked about (a dispute is settled on
        the page, not by asking the same people again), though only undisputed verdicts
        are trained on."""
        judged = sorted({sid for sid, _, _ in self.verdicts_per_user(campaign)})
        if not judged:
            return np.zeros(0, dtype=np.int64)
        spectrum = schema.spectrum
        with self.engine.connect() as conn:
            rows = conn.scalars(
                sa.select(spectrum.c.row_index)
                .where(spectrum.c.dataset_id == campaign.target.dataset_id)
                .where(spectrum.c.spectrum_id.in_(judged))
            ).all()
        return np.sort(np.asarray(rows, dtype=np.int64))

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
        """The ``iteration`` rows, each with ``n_answered``: spectra of its batch the oracle
        has labelled so far (``n_labels`` counts only what its model was trained on, so
        it stays 0 for iteration 0 however many labels its batch got since). ``n_answered``
        is a column (kept up to date by :meth:`add_labels`), so TAP has it too."""
        table = schema.iteration
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(table)
                .where(table.c.campaign_id == campaign.campaign_id)
                .order_by(table.c.number)
            )
            return [{**row._mapping, "n_answered": row.n_answered or 0} for row in rows]

    @staticmethod
    def _count_answered(conn: sa.Connection, campaign: Campaign) -> None:
        """Set ``iteration.n_answered`` of the campaign's iterations: distinct spectra of
        each batch that anyone has labelled in the campaign."""
        table, prediction, label = schema.iteration, schema.prediction, schema.label
        answered = (
            sa.select(sa.func.count(sa.distinct(prediction.c.spectrum_id)))
            .where(prediction.c.campaign_id == campaign.campaign_id)
            .where(prediction.c.iteration == table.c.number)
            .where(prediction.c.role.in_(BATCH_ROLES))
            .where(
                prediction.c.spectrum_id.in_(
                    sa.select(label.c.spectrum_id).where(
                        label.c.campaign_id == campaign.campaign_id
                    )
                )
            )
            .scalar_subquery()
        )
        conn.execute(
            table.update()
            .where(table.c.campaign_id == campaign.campaign_id)
            .values(n_answered=answered)
        )

    def last_predicted_iteration(self, campaign: Campaign) -> int | None:
        """The latest iteration with predictions (the one the labelling page opens on)."""
        prediction = schema.prediction
        with self.engine.connect() as conn:
            return conn.scalar(
                sa.select(sa.func.max(prediction.c.iteration)).where(
                    prediction.c.campaign_id == campaign.campaign_id
                )
            )

    def batch_predictions(
        self, campaign: Campaign, iteration: int | None = None
    ) -> list[tuple[int, int, str, str]]:
        """``(iteration, spectrum_id, predicted class, role)`` of every spectrum a batch put
        before the oracle (query, precision sample, padding): of one iteration, or of all."""
        prediction = schema.prediction
        query = (
            sa.select(
                prediction.c.iteration,
                prediction.c.spectrum_id,
                prediction.c.predicted_class,
                prediction.c.role,
            )
            .where(prediction.c.campaign_id == campaign.campaign_id)
            .where(prediction.c.role.in_(BATCH_ROLES))
        )
        if iteration is not None:
            query = query.where(prediction.c.iteration == iteration)
        with self.engine.connect() as conn:
            return [(int(n), int(sid), str(p), str(r)) for n, sid, p, r in conn.execute(query)]

    def labelled_at(
        self, campaign: Campaign, iteration: int, predicted: Sequence[str] | None = None
    ) -> list[int]:
        """Spectrum ids the oracle had labelled before ``iteration`` (whatever its model
        predicted): the labelled stratum of the catalogue, where verdicts win. With
        ``predicted``, only those the model put in one of these classes."""
        c = schema.prediction.c
        query = (
            sa.select(c.spectrum_id)
            .where(c.campaign_id == campaign.campaign_id)
            .where(c.iteration == iteration)
            .where(c.labelled == sa.true())
        )
        if predicted is not None:
            query = query.where(c.predicted_class.in_(list(predicted)))
        with self.engine.connect() as conn:
            return [int(sid) for sid in conn.scalars(query)]

    def labelled_candidates(self, campaign: Campaign, iteration: int) -> list[int]:
        """Spectrum ids the oracle had labelled before ``iteration`` that its model predicted
        as emission (the labelled stratum of its candidate set)."""
        return self.labelled_at(campaign, iteration, TARGET_CLASSES)

    def prediction_file(self, campaign: Campaign, iteration: int) -> str | None:
        """Path (relative to the home) of the Parquet file of an iteration's whole pool."""
        table = schema.prediction_file
        with self.engine.connect() as conn:
            return conn.scalar(
                sa.select(table.c.path)
                .where(table.c.campaign_id == campaign.campaign_id)
                .where(table.c.iteration == iteration)
                .order_by(table.c.prediction_file_id.desc())
                .limit(1)
            )

    def record_iteration(self, campaign: Campaign, number: int, **values: Any) -> None:
        """Add the ``iteration`` row of a finished step (``values``: its strategy, counts,
        timings; the metrics follow once the oracle has labelled its batch)."""

        def write() -> None:
            with self.engine.begin() as conn:
                conn.execute(
                    schema.iteration.insert().values(
                        campaign_id=campaign.campaign_id, number=number, n_answered=0, **values
                    )
                )

        retrying(write, f"campaign {campaign.name} iteration {number}")

    def record_metrics(self, campaign: Campaign, number: int, metrics: dict[str, Any]) -> None:
        """Set the metrics of iteration ``number`` (error, precisions: how its model did on
        the batch it asked about, now that the oracle has answered)."""
        table = schema.iteration

        def write() -> None:
            with self.engine.begin() as conn:
                conn.execute(
                    table.update()
                    .where(table.c.campaign_id == campaign.campaign_id)
                    .where(table.c.number == number)
                    .values(**metrics)
                )

        retrying(write, f"campaign {campaign.name} iteration {number} metrics")
