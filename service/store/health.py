"""Whether the database answers: what VOSI availability reports before anything else.

A connection and ``SELECT 1`` on an engine made for the question and closed after it,
not the result tables' shared one (:func:`service.store.engine.engine_for` migrates the
tables on first use): asking whether the database is there must not try to change it.
"""

from __future__ import annotations

import sqlalchemy as sa

from uws.store import make_engine


def database_answers(database_url: str) -> None:
    """Return if the database at ``database_url`` answers ``SELECT 1``; raise the
    driver's error if it does not."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    finally:
        engine.dispose()
