"""Alembic history of the result tables, run by :func:`upgrade` whenever alvo opens a database.

The job store (:mod:`uws.store`) keeps its own history in the same database; the
two never collide because each has its own version table (``uws_alembic_version``
there, :data:`VERSION_TABLE` here).

Revisions (``versions/``), in the order the tables grew:

* 0001 -- the tables as they were before any migration was needed;
* 0002 -- one spectrum per publisher DID (or access URL) in a dataset;
* 0003 -- owners of datasets and campaigns, and a campaign's oracles;
* 0004 -- predictions name their model and job and say whether the spectrum was
  a training row; ``prediction_file`` holds the whole pool's predictions;
* 0005 -- a covering index for predicted-class counts;
* 0006 -- ``archive_root``, the folders an operator ingested a tree from.

A database made before alvo used Alembic (a ``var/`` of an older release) has
the tables but no version table. Every revision therefore makes only what is
absent (the guarded operations of :mod:`.ops`), so such a
database is upgraded by the same path as a new one and ends identical to it
(tests/test_store_migrations.py upgrades a kept old home).

To change the tables: edit :mod:`service.store.schema`, then add the next revision
here by hand (copy the newest), guarded the same way, and check it with
``tests/test_store_migrations.py``, which compares a new database with ``schema.metadata``.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

__all__ = ["VERSION_TABLE", "current", "head", "upgrade"]

#: Where Alembic records the result tables' revision (the job store uses ``uws_alembic_version``).
VERSION_TABLE = "alvo_alembic_version"
#: PostgreSQL advisory lock held while one process migrates (any constant; "alvo" in ASCII).
_PG_LOCK = 0x616C766F


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    return config


def head() -> str | None:
    """The newest revision bundled with this code."""
    return ScriptDirectory.from_config(_config()).get_current_head()


def current(engine: sa.Engine) -> str | None:
    """The revision the database is at (None: new, or made before alvo used Alembic)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def upgrade(engine: sa.Engine, revision: str = "head") -> bool:
    """Bring the result tables to ``revision`` (the newest by default); False, having only
    read the database, where they are at it already.

    Processes that start together (the service and its first workers) migrate one
    at a time: the whole upgrade runs in one transaction that first takes the
    database's write lock (SQLite) or an advisory lock (PostgreSQL), and the
    revision is read again under it, so the second finds nothing left to do.
    """
    if current(engine) == (head() if revision == "head" else revision):
        return False
    config = _config()
    with engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            # Python's sqlite3 would run DDL outside any transaction: open one, for writing
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        elif connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return True
