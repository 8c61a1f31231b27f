"""A campaign's backup: what cannot be recomputed, read out and put back.

The oracle's labels are the one thing alvo holds that no archive can give back;
features, models and predictions follow from the spectra and the labels. A backup
(:class:`CampaignBackup`) holds, as rows of the result tables' own columns:

* ``campaign``: the campaign's row (name, description, batch size, created, owner,
  oracles, and the ids of its source and target datasets in ``spectra``);
* ``spectra``: every spectrum of the two datasets -- the dataset's id and name, the
  row in its feature store, its publisher DID and access URL -- so that a restore can
  check the service holds the same spectra before it files a label on one;
* ``labels``: every verdict, oldest first (spectrum by dataset and publisher DID,
  verdict, user, time, iteration, how it came);
* ``relevance``: every interesting/boring answer on a surprise, oldest first (a label
  kind of its own, :data:`service.store.schema.relevance`);
* ``iterations`` and ``batches``: each iteration's row and the spectra its batch put
  before the oracle (so iteration numbers and metrics go on where they stopped).

:func:`read_backup` reads one out; :func:`restore` puts one into a service whose
datasets were ingested from the same spectra, idempotently (a row already there is
not stored again, so restoring twice adds nothing). The file format (VOTables in a
tarball) is :mod:`service.vo.backup_tables`; the command, ``alvo campaign``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa

from service.reasons import AlvoError, Reason
from service.settings import Settings
from service.store import schema
from service.store.campaigns import Campaign, Campaigns
from service.vocabulary import BATCH_ROLES

_c, _d, _s, _l, _i, _p, _r = (
    schema.campaign.c,
    schema.dataset.c,
    schema.spectrum.c,
    schema.label.c,
    schema.iteration.c,
    schema.prediction.c,
    schema.relevance.c,
)

#: The campaign's row as backed up (its datasets by their ids in ``spectra``).
CAMPAIGN_COLUMNS: tuple[sa.Column[Any], ...] = (
    _c.name,
    _c.description,
    _c.batch_size,
    _c.created,
    _c.owner,
    _c.oracles,
    _c.source_dataset_id,
    _c.target_dataset_id,
)
#: One row per spectrum of the campaign's two datasets.
SPECTRUM_COLUMNS: tuple[sa.Column[Any], ...] = (
    _d.dataset_id,
    _d.name,
    _s.row_index,
    _s.pubdid,
    _s.access_url,
)
#: One row per verdict given, oldest first.
LABEL_COLUMNS: tuple[sa.Column[Any], ...] = (
    _s.dataset_id,
    _s.pubdid,
    _l.label,
    _l.oracle_user,
    _l.labelled,
    _l.iteration,
    _l.source,
    _l.comment,
    _l.flag,
)
#: One row per interesting/boring answer, oldest first.
RELEVANCE_COLUMNS: tuple[sa.Column[Any], ...] = (
    _s.dataset_id,
    _s.pubdid,
    _r.verdict,
    _r.oracle_user,
    _r.answered,
    _r.iteration,
)
#: Columns a backup written before they existed lacks (restored as null).
OPTIONAL_COLUMNS = frozenset({"comment", "flag"})
_NOT_BACKED_UP = {"iteration_id", "campaign_id", "prediction_id", "spectrum_id", "model_id"}
#: Each iteration's row (its numbers, strategy, counts, metrics, timings).
ITERATION_COLUMNS: tuple[sa.Column[Any], ...] = tuple(
    c for c in schema.iteration.columns if c.name not in _NOT_BACKED_UP
)
#: The spectra each iteration's batch put before the oracle, with what was predicted.
BATCH_COLUMNS: tuple[sa.Column[Any], ...] = (
    _s.dataset_id,
    _s.pubdid,
    *(c for c in schema.prediction.columns if c.name not in _NOT_BACKED_UP | {"job_id"}),
)


@dataclasses.dataclass
class CampaignBackup:
    """A campaign's rows, each a dict keyed by the column names of the ``*_COLUMNS``."""

    campaign: dict[str, Any]
    spectra: list[dict[str, Any]]
    labels: list[dict[str, Any]]
    iterations: list[dict[str, Any]]
    batches: list[dict[str, Any]]
    relevance: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def dataset_names(self) -> dict[int, str]:
        """``{dataset_id in the backup: dataset name}``."""
        return {int(row["dataset_id"]): str(row["name"]) for row in self.spectra}


@dataclasses.dataclass(frozen=True)
class RestoreOutcome:
    campaign: str
    created: bool  # False: the campaign was there already (only what it lacked was added)
    labels_added: int
    labels_present: int  # of the backup's labels, those already stored
    iterations_added: int
    answers_added: int = 0  # interesting/boring answers


def read_backup(settings: Settings, name: str) -> CampaignBackup:
    """Everything :data:`CampaignBackup` holds about the campaign ``name``."""
    campaigns = Campaigns(settings)
    campaign = campaigns.require(name)
    datasets = (campaign.source.dataset_id, campaign.target.dataset_id)
    with campaigns.engine.connect() as conn:
        row = conn.execute(
            sa.select(*CAMPAIGN_COLUMNS).where(_c.campaign_id == campaign.campaign_id)
        ).one()
        spectra = conn.execute(
            sa.select(*SPECTRUM_COLUMNS)
            .join(schema.dataset, _d.dataset_id == _s.dataset_id)
            .where(_s.dataset_id.in_(datasets))
            .order_by(_s.dataset_id, _s.row_index)
        )
        labels = conn.execute(
            sa.select(*LABEL_COLUMNS)
            .join(schema.spectrum, _s.spectrum_id == _l.spectrum_id)
            .where(_l.campaign_id == campaign.campaign_id)
            .order_by(_l.label_id)
        )
        iterations = conn.execute(
            sa.select(*ITERATION_COLUMNS)
            .where(_i.campaign_id == campaign.campaign_id)
            .order_by(_i.number)
        )
        relevance = conn.execute(
            sa.select(*RELEVANCE_COLUMNS)
            .join(schema.spectrum, _s.spectrum_id == _r.spectrum_id)
            .where(_r.campaign_id == campaign.campaign_id)
            .order_by(_r.relevance_id)
        )
        batches = conn.execute(
            sa.select(*BATCH_COLUMNS)
            .join(schema.spectrum, _s.spectrum_id == _p.spectrum_id)
            .where(_p.campaign_id == campaign.campaign_id)
            .where(_p.role.in_(BATCH_ROLES))
            .order_by(_p.iteration, _p.prediction_id)
        )
        return CampaignBackup(
            campaign=dict(row._mapping),
            spectra=[dict(r._mapping) for r in spectra],
            labels=[dict(r._mapping) for r in labels],
            iterations=[dict(r._mapping) for r in iterations],
            batches=[dict(r._mapping) for r in batches],
            relevance=[dict(r._mapping) for r in relevance],
        )


def restore(settings: Settings, backup: CampaignBackup) -> RestoreOutcome:
    """Put a backup into this service: the campaign (created if absent), then every label,
    iteration and batch row it lacks, in one transaction.

    Raises ``BACKUP_DATASETS_MISSING`` naming what to ingest when the service lacks a
    dataset of the backup or any of its spectra (matched by dataset name and publisher
    DID), and ``NAME_IN_USE`` when a campaign of the name exists on other datasets.
    """
    campaigns = Campaigns(settings)
    names = backup.dataset_names()
    spectrum_ids = _match_spectra(campaigns, backup, names)
    info = backup.campaign
    source, target = names[int(info["source_dataset_id"])], names[int(info["target_dataset_id"])]
    campaign = campaigns.get(str(info["name"]))
    created = campaign is None
    if campaign is None:
        campaign = campaigns.create(
            str(info["name"]),
            source,
            target,
            batch_size=int(info["batch_size"]),
            description=str(info["description"] or ""),
            owner=info["owner"],
            oracles=tuple(filter(None, str(info["oracles"] or "").split(","))),
        )
        with campaigns.engine.begin() as conn:  # the original creation time
            conn.execute(
                schema.campaign.update()
                .where(_c.campaign_id == campaign.campaign_id)
                .values(created=info["created"])
            )
    elif (campaign.source.name, campaign.target.name) != (source, target):
        raise AlvoError(
            Reason.NAME_IN_USE,
            f"this service has a campaign {campaign.name!r} on datasets "
            f"{campaign.source.name!r}/{campaign.target.name!r}, the backup's is on "
            f"{source!r}/{target!r}: rename or delete one of them first",
        )
    with campaigns.engine.begin() as conn:
        labels_added, present = _restore_labels(conn, campaign, backup, spectrum_ids)
        iterations_added = _restore_iterations(conn, campaign, backup, spectrum_ids)
        answers_added = _restore_relevance(conn, campaign, backup, spectrum_ids)
    return RestoreOutcome(
        campaign.name, created, labels_added, present, iterations_added, answers_added
    )


def _match_spectra(
    campaigns: Campaigns, backup: CampaignBackup, names: dict[int, str]
) -> dict[tuple[int, str], int]:
    """``{(backup dataset id, publisher DID): spectrum_id here}``; refuses a backup whose
    datasets or spectra this service lacks, saying which and what to ingest."""
    wanted: dict[int, set[str]] = {key: set() for key in names}
    for row in backup.spectra:
        if row["pubdid"] is not None:
            wanted[int(row["dataset_id"])].add(str(row["pubdid"]))
    urls = {
        (int(r["dataset_id"]), str(r["pubdid"])): r["access_url"]
        for r in backup.spectra
        if r["access_url"]
    }
    found: dict[tuple[int, str], int] = {}
    problems = []
    with campaigns.engine.connect() as conn:
        for key, name in sorted(names.items()):
            dataset_id = conn.scalar(sa.select(_d.dataset_id).where(_d.name == name))
            if dataset_id is None:
                problems.append(f"dataset {name!r} ({len(wanted[key])} spectra) is not ingested")
                continue
            here = dict(
                conn.execute(
                    sa.select(_s.pubdid, _s.spectrum_id).where(_s.dataset_id == dataset_id)
                ).all()
            )
            missing = sorted(wanted[key] - set(here))
            if missing:
                problems.append(
                    f"dataset {name!r} lacks {len(missing)} of the backup's "
                    f"{len(wanted[key])} spectra, e.g. {missing[0]}"
                    + (f" ({urls[(key, missing[0])]})" if (key, missing[0]) in urls else "")
                )
            found.update({(key, did): int(here[did]) for did in wanted[key] if did in here})
    if problems:
        raise AlvoError(
            Reason.BACKUP_DATASETS_MISSING,
            "; ".join(problems) + ": ingest the same spectra under the same dataset names "
            "(the backup's spectra.xml lists each one's publisher DID and access URL), "
            "then import again",
        )
    return found


def _label_key(spectrum_id: int, row: dict[str, Any]) -> tuple[Any, ...]:
    return (
        spectrum_id,
        row["label"],
        row["oracle_user"] or "",
        row["labelled"],
        row["iteration"],
        row["source"],
    )


def _restore_labels(
    conn: sa.Connection,
    campaign: Campaign,
    backup: CampaignBackup,
    spectrum_ids: dict[tuple[int, str], int],
) -> tuple[int, int]:
    """Insert the backup's labels this campaign lacks, in their order; ``(added, present)``."""
    stored = {
        _label_key(int(r.spectrum_id), dict(r._mapping))
        for r in conn.execute(
            sa.select(
                _l.spectrum_id, _l.label, _l.oracle_user, _l.labelled, _l.iteration, _l.source
            ).where(_l.campaign_id == campaign.campaign_id)
        )
    }
    rows = []
    for row in backup.labels:
        sid = spectrum_ids[(int(row["dataset_id"]), str(row["pubdid"]))]
        key = _label_key(sid, row)
        if key in stored:
            continue
        stored.add(key)
        rows.append(
            {
                "spectrum_id": sid,
                "campaign_id": campaign.campaign_id,
                **{k: row[k] for k in ("label", "labelled", "iteration", "source")},
                **{k: row.get(k) for k in ("comment", "flag")},
                "oracle_user": row["oracle_user"] or "",  # a file's empty cell is null
            }
        )
    if rows:
        conn.execute(schema.label.insert(), rows)
    return len(rows), len(backup.labels) - len(rows)


def _restore_relevance(
    conn: sa.Connection,
    campaign: Campaign,
    backup: CampaignBackup,
    spectrum_ids: dict[tuple[int, str], int],
) -> int:
    """Insert the backup's interesting/boring answers this campaign lacks, in their order."""
    columns = ("verdict", "oracle_user", "answered", "iteration")

    def key(sid: int, row: dict[str, Any]) -> tuple[Any, ...]:
        return (sid, *(row[c] or "" if c == "oracle_user" else row[c] for c in columns))

    stored = {
        key(int(r.spectrum_id), dict(r._mapping))
        for r in conn.execute(
            sa.select(_r.spectrum_id, *(_r[c] for c in columns)).where(
                _r.campaign_id == campaign.campaign_id
            )
        )
    }
    rows = []
    for row in backup.relevance:
        sid = spectrum_ids[(int(row["dataset_id"]), str(row["pubdid"]))]
        if key(sid, row) in stored:
            continue
        stored.add(key(sid, row))
        rows.append(
            {
                "spectrum_id": sid,
                "campaign_id": campaign.campaign_id,
                **{c: row[c] for c in columns},
                "oracle_user": row["oracle_user"] or "",
            }
        )
    if rows:
        conn.execute(schema.relevance.insert(), rows)
    return len(rows)


def _restore_iterations(
    conn: sa.Connection,
    campaign: Campaign,
    backup: CampaignBackup,
    spectrum_ids: dict[tuple[int, str], int],
) -> int:
    """Insert the iterations this campaign lacks (by number), with their batches' rows."""
    have = set(conn.scalars(sa.select(_i.number).where(_i.campaign_id == campaign.campaign_id)))
    new = [row for row in backup.iterations if int(row["number"]) not in have]
    if new:
        conn.execute(
            schema.iteration.insert(),
            [{**row, "campaign_id": campaign.campaign_id} for row in new],
        )
    numbers = {int(row["number"]) for row in new}
    batch = [
        {
            **{k: v for k, v in row.items() if k not in ("dataset_id", "pubdid")},
            "spectrum_id": spectrum_ids[(int(row["dataset_id"]), str(row["pubdid"]))],
            "campaign_id": campaign.campaign_id,
        }
        for row in backup.batches
        if int(row["iteration"]) in numbers
    ]
    if batch:
        conn.execute(schema.prediction.insert(), batch)
    return len(new)
