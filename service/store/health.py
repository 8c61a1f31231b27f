"""Whether the database answers: what VOSI availability reports before anything else.

A bare connection and ``SELECT 1``, on an engine of its own that creates nothing (the
result tables' engine creates the tables on first use): asking whether the database
is there must not try to change it.
"""

from __future__ import annotations

import functools

import sqlalchemy as sa

from uws.store import make_engine


def database_answers(database_url: str) -> None:
    """Return if the database at ``database_url`` answers ``SELECT 1``; raise the
    driver's error if it does not."""
    with _engine(database_url).connect() as conn:
        conn.execute(sa.text("SELECT 1"))


@functools.lru_cache(maxsize=4)
def _engine(database_url: str) -> sa.Engine:
    return make_engine(database_url)
