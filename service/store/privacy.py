"""Private datasets: which rows a user may not see, and the owner's invitations.

A dataset is public unless its owner made it private (``PRIVATE=yes`` at ingest,
``POST /datasets/{name}/readers``, ``alvo dataset share``). A private dataset's
rows -- and those of every campaign whose source or target it is, with their
labels, predictions, models and iterations -- are seen over TAP only by its owner
and the readers the owner invited; everyone else, anonymous callers included,
sees no rows of it, as if they were not there (no error: DaCHS and row-level
security answer the same way).

This module says *what* is hidden (:func:`hidden_from`); the ADQL layer
(:mod:`service.vo.tap.query`) turns that into a filter on every table a query
reads, so no query form (join, subquery, upload join, TOP, COUNT) can reach them.
A dataset created anonymously (no owner) cannot be made private: no one could
then read it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import sqlalchemy as sa

from service.reasons import AlvoError, Reason
from service.store import schema
from service.store.ownership import may_read, parse_oracles, refusal


@dataclasses.dataclass(frozen=True)
class Hidden:
    """Ids a user may not see: private datasets not theirs, and campaigns built on them."""

    datasets: tuple[int, ...] = ()
    campaigns: tuple[int, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.datasets or self.campaigns)


def readers_of(text: str | None) -> tuple[str, ...]:
    """The readers column (comma-separated) as a tuple of user names."""
    return tuple(name for name in (text or "").split(",") if name)


def hidden_from(conn: sa.Connection, user: str | None) -> Hidden:
    """What ``user`` (None: anonymous) may not see: one small query on ``dataset``,
    one on ``campaign``, only when some dataset is private."""
    d = schema.dataset.c
    private = conn.execute(
        sa.select(d.dataset_id, d.owner, d.readers).where(d.private.is_(True))
    ).all()
    datasets = tuple(
        int(row.dataset_id)
        for row in private
        if not may_read(row.owner, True, readers_of(row.readers), user)
    )
    if not datasets:
        return Hidden()
    c = schema.campaign.c
    campaigns = conn.execute(
        sa.select(c.campaign_id).where(
            sa.or_(c.source_dataset_id.in_(datasets), c.target_dataset_id.in_(datasets))
        )
    ).scalars()
    return Hidden(datasets, tuple(int(i) for i in campaigns))


def share(
    engine: sa.Engine, name: str, by: str | None, readers: Sequence[str] = ()
) -> tuple[str, ...]:
    """Make dataset ``name`` private (if it is not) and invite ``readers``; only its
    owner may. Returns the readers now invited."""
    invited = parse_oracles(list(readers))
    if "*" in invited:
        raise AlvoError(
            Reason.BAD_PARAMETER, "readers: name users; a dataset everyone may read is public"
        )
    d = schema.dataset.c
    with engine.begin() as conn:
        row = conn.execute(
            sa.select(d.dataset_id, d.owner, d.readers).where(d.name == name)
        ).first()
        if row is None:
            raise AlvoError(Reason.UNKNOWN_DATASET_NAME, f"no dataset named {name!r}")
        if row.owner is None:
            raise AlvoError(
                Reason.BAD_PARAMETER,
                f"dataset {name!r} was made anonymously and has no owner: no one could read "
                "it if it were private; ingest it again under a name of your own",
            )
        if by is not None and by != row.owner:
            raise refusal("dataset", name, row.owner, "ask its owner to invite you")
        now = tuple(dict.fromkeys([*readers_of(row.readers), *invited]))
        conn.execute(
            schema.dataset.update()
            .where(d.dataset_id == row.dataset_id)
            .values(private=True, readers=",".join(now) or None)
        )
    return now
