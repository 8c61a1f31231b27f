"""The database of the result tables: one engine per database URL for this process.

Every ``Datasets``, ``Campaigns`` or prediction record a request or a job opens
asks :func:`engine_for` for its engine. An engine owns a connection pool, so
they must share one per database rather than open their own: reopening an SQLite
connection costs far more than a query, and a PostgreSQL server counts its
connections. The first call for a URL also readies the database once per process:
WAL mode on an SQLite file (:func:`uws.store.use_wal`: readers go on reading while
a job writes) and the tables brought up to the newest Alembic revision
(:func:`service.store.schema.create_all`). A database that is already up to date
is only read for that.

Why a per-process cache (the one piece of module state in :mod:`service.store`):
the callers -- request handlers, job runners in their worker processes, ``alvo``
commands -- are handed settings, not engines, and an engine cannot travel to a
worker process. Workers start from ``forkserver`` or ``spawn``, never plain
``fork``, so no process inherits another's pooled connections.

Tests need no reset: each test's home is a fresh folder, hence a fresh URL. One
that replaces a database file under a URL already opened calls
``ENGINES.clear()`` (pools closed, the next call readies the database again).
"""

from __future__ import annotations

import threading

import sqlalchemy as sa

from service.store import schema
from uws.store import make_engine, use_wal

__all__ = ["ENGINES", "Engines", "engine_for"]


class Engines:
    """Engines by database URL, each made and readied once (thread-safe)."""

    def __init__(self) -> None:
        self._engines: dict[str, sa.Engine] = {}
        self._lock = threading.Lock()

    def get(self, url: str) -> sa.Engine:
        """The engine of ``url``; the first call makes it, sets WAL and migrates."""
        engine = self._engines.get(url)
        if engine is not None:
            return engine
        with self._lock:  # two request threads asking at once migrate once
            engine = self._engines.get(url)
            if engine is None:
                engine = make_engine(url)
                use_wal(engine)
                schema.create_all(engine)
                self._engines[url] = engine
        return engine

    def clear(self) -> None:
        """Close every pool and forget the engines (a test that swapped a database file)."""
        with self._lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()


#: This process's engines (see the module docstring for why there is one).
ENGINES = Engines()


def engine_for(url: str) -> sa.Engine:
    """One engine per database URL and process, its tables at the newest revision."""
    return ENGINES.get(url)
