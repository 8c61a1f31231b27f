"""The job store: SQLAlchemy 2 Core over SQLite (WAL) or PostgreSQL.

The database is the truth about a job's phase. Every phase change is a
compare-and-set (``UPDATE ... WHERE phase IN (allowed)``): whoever loses a race
(a worker finishing a job that a user has just aborted, two clients posting
RUN and ABORT at once) sees ``False`` and does nothing, so a job can never be
pulled back out of a final phase. All methods are synchronous and thread-safe;
the async service calls them from worker threads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import errno
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from uws import schema
from uws.models import (
    ErrorInfo,
    ErrorType,
    JobFilter,
    JobParameters,
    JobRecord,
    Phase,
    ResultRecord,
)

__all__ = ["JobRef", "JobStore", "is_busy", "is_disk_full", "is_unavailable", "retrying"]

#: How long a write waits for SQLite's lock before giving up (the URL's ``timeout``
#: query parameter overrides it, as in SQLAlchemy's own pysqlite dialect).
BUSY_TIMEOUT_S = 30.0
#: What a refused writer is told to wait before trying again.
RETRY_AFTER_S = 10
#: SQLite's ``synchronous`` levels a database URL may name (``?synchronous=full``).
SYNCHRONOUS_LEVELS = ("OFF", "NORMAL", "FULL", "EXTRA")
_SQLITE_BUSY = ("database is locked", "database table is locked")
_POSTGRES_BUSY = {"55P03", "40P01"}  # lock_not_available, deadlock_detected


def is_busy(error: BaseException) -> bool:
    """Whether ``error`` is a write that lost the wait for a lock another writer held.

    Not a bug but a moment: a pool's predictions take SQLite's write lock for
    ~50 s at 4.1 M rows. Callers answer 503 with ``Retry-After``.
    """
    if not isinstance(error, sa.exc.OperationalError):
        return False
    code = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
    return code in _POSTGRES_BUSY or any(text in str(error.orig) for text in _SQLITE_BUSY)


#: SQLSTATEs of a PostgreSQL server that is going or not there yet: admin_shutdown,
#: crash_shutdown, cannot_connect_now (class 08, connection exceptions, is added below).
_POSTGRES_GONE = {"57P01", "57P02", "57P03"}
_T = TypeVar("_T")
log = logging.getLogger(__name__)


def is_unavailable(error: BaseException) -> bool:
    """Whether ``error`` is the database server gone (stopped, restarting, unreachable).

    Not a bug but an outage: the pool pings connections before use
    (:func:`make_engine`), so the first request after the server is back gets a
    fresh connection. Callers answer 503 with ``Retry-After`` meanwhile.
    """
    if not isinstance(error, sa.exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    code = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
    if code is not None:
        return str(code).startswith("08") or code in _POSTGRES_GONE
    # psycopg raises a connection that could not be made without a SQLSTATE
    module = type(error.orig).__module__
    return isinstance(error, sa.exc.OperationalError) and module.startswith("psycopg")


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) is a write that found no space left.

    The disk under the job directories, the feature stores or the database filled
    up (or a quota ran out): ``ENOSPC``/``EDQUOT`` from the file system, SQLite's
    ``SQLITE_FULL``, PostgreSQL's ``disk_full`` (SQLSTATE 53100). Not a bug, and not
    a moment that passes by itself: the operator has to free space. SQLite and
    PostgreSQL roll the failed transaction back, so what was stored before is intact.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(current, sa.exc.DBAPIError):
            orig = current.orig
            code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
            if code == "53100" or "database or disk is full" in str(orig):
                return True
        current = current.__cause__ or current.__context__
    return False


def retrying(
    write: Callable[[], _T], what: str, patience: float = 300.0, longest_wait: float = 5.0
) -> _T:
    """``write()``, again after a growing pause (0.1 s doubling to ``longest_wait``)
    while it fails on a busy lock (:func:`is_busy`) or a database that is away
    (:func:`is_unavailable`), for up to ``patience`` seconds; then its error.

    For writes that are one transaction (a failed try stored nothing) and that a job
    or the executor makes: a request answers 503 and lets its client retry, but a job
    that meets a pool's 50-s predictions write or a PostgreSQL restart should wait,
    not end in ERROR, and the final phase of a job must not be lost (it would stay
    EXECUTING).
    """
    deadline = time.monotonic() + patience
    pause = 0.1
    while True:
        try:
            return write()
        except sa.exc.DBAPIError as error:
            if not (is_busy(error) or is_unavailable(error)) or time.monotonic() > deadline:
                raise
            log.warning("%s: %s; again in %.1f s", what, str(error.orig).strip()[:200], pause)
        time.sleep(pause)
        pause = min(pause * 2, longest_wait)


def busy_timeout(url: str) -> float:
    """Seconds an SQLite write waits for the lock: ``?timeout=`` of the URL, else 30."""
    value = sa.engine.make_url(url).query.get("timeout", BUSY_TIMEOUT_S)
    try:
        return float(value[-1] if isinstance(value, tuple) else value)
    except ValueError:
        return BUSY_TIMEOUT_S


@dataclasses.dataclass(frozen=True)
class JobRef:
    """The short description of a job, for job lists."""

    id: str
    phase: Phase
    run_id: str | None
    owner: str | None
    creation_time: dt.datetime


def sqlite_synchronous(url: str) -> tuple[str, str]:
    """``(url without it, level)``: the ``?synchronous=`` of an SQLite URL, else NORMAL.

    What a commit survives in WAL mode (https://sqlite.org/pragma.html#pragma_synchronous):
    NORMAL -- the commit is in the WAL file when it returns (the operating system's page
    cache), so a killed process (kill -9, a crash, OOM) loses nothing acknowledged, but a
    power loss or kernel crash may roll back the last commits (never corrupt the file);
    FULL and EXTRA -- the WAL is fsynced at each commit, so an acknowledged commit also
    survives a power loss. docs/operations.md, *Durability*, has what each costs.
    """
    parsed = sa.engine.make_url(url)
    value = parsed.query.get("synchronous", "normal")
    level = str(value[-1] if isinstance(value, tuple) else value).upper()
    if level not in SYNCHRONOUS_LEVELS:
        raise ValueError(f"synchronous={level.lower()}: one of {', '.join(SYNCHRONOUS_LEVELS)}")
    bare = parsed.difference_update_query(["synchronous"])
    return bare.render_as_string(hide_password=False), level


def make_engine(url: str) -> sa.Engine:
    """An engine for ``url``; SQLite connections get a busy timeout, foreign keys and
    the ``synchronous`` level of :func:`sqlite_synchronous` (WAL mode is set on the file
    by :func:`use_wal`, which :meth:`JobStore.migrate` and the result tables' engine
    call). PostgreSQL connections are pinged when taken from the pool, so a server
    restarted under the service costs the requests of its downtime, not the pool."""
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    # as many pooled connections as request threads: reopening one costs far more than a query
    timeout = busy_timeout(url)
    url, synchronous = sqlite_synchronous(url)
    engine = sa.create_engine(
        url,
        connect_args={"timeout": timeout, "check_same_thread": False},
        pool_size=40,
        max_overflow=20,
    )

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={round(timeout * 1000)}")
        cursor.close()

    return engine


def use_wal(engine: sa.Engine) -> None:
    """Put an SQLite file in WAL mode (a property of the file: once is enough).

    Why everyone who opens the file calls it: readers (TAP, the labelling page) then
    keep reading while a job writes, and a commit appends its pages once instead
    of journalling and syncing them twice -- ~1.3x the insert rate into a
    900 000-spectrum table. A home that only ``alvo ingest tree`` ever opened was
    left in rollback-journal mode before.
    """
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA journal_mode=WAL")


class JobStore:
    """Persistent UWS jobs. ``url`` is any SQLAlchemy URL (``sqlite:///path``,
    ``postgresql+psycopg://user@host/db``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        # SQLite allows one writer at a time; queueing writers on a lock here is far
        # faster than letting them collide and back off in SQLite's busy handler
        self._write_lock = threading.Lock() if url.startswith("sqlite") else None

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sa.Connection]:
        with self._write_lock or contextlib.nullcontext(), self.engine.begin() as conn:
            yield conn

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision bundled in ``uws/migrations``."""
        config = Config()
        config.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
        use_wal(self.engine)
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def close(self) -> None:
        self.engine.dispose()

    # -- reading -------------------------------------------------------------------------------

    def holds_jobs(self) -> bool:
        """Whether this database has the job tables (a job's code run outside a UWS
        service, as the benchmarks run it, may find a database without them)."""
        return sa.inspect(self.engine).has_table(schema.job.name)

    def get(self, job_id: str) -> JobRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(schema.job).where(schema.job.c.id == job_id)).first()
            if row is None:
                return None
            params = conn.execute(
                sa.select(schema.parameter.c.name, schema.parameter.c.value)
                .where(schema.parameter.c.job_id == job_id)
                .order_by(schema.parameter.c.position)
            ).all()
            uploads = conn.execute(
                sa.select(schema.upload.c.name, schema.upload.c.location).where(
                    schema.upload.c.job_id == job_id
                )
            ).all()
            results = conn.execute(
                sa.select(schema.result)
                .where(schema.result.c.job_id == job_id)
                .order_by(schema.result.c.position)
            ).all()
        return _record(row, params, uploads, results)

    def list_jobs(self, job_list: str, owner: str | None, where: JobFilter) -> list[JobRef]:
        """Jobs of ``owner`` in ``job_list`` matching the UWS filters, newest first."""
        j = schema.job
        query = sa.select(j.c.id, j.c.phase, j.c.run_id, j.c.owner, j.c.creation_time).where(
            j.c.job_list == job_list, _owner_is(owner)
        )
        order: Any = j.c.creation_time.desc()  # an index order: LAST stops early
        if where.phases:
            query = query.where(j.c.phase.in_([p.value for p in where.phases]))
            if len(where.phases) > 1 and self.engine.dialect.name == "sqlite":
                # Without statistics SQLite would walk every job of the owner in creation
                # order rather than sort the few in the wanted phases; the no-op unary +
                # hides that order from its planner, so the phase index is used.
                order = sa.text("+uws_job.creation_time DESC")
        else:
            query = query.where(j.c.phase != Phase.ARCHIVED.value)
        if where.after is not None:
            query = query.where(j.c.creation_time > where.after)
        query = query.order_by(order)
        if where.last is not None:
            query = query.limit(where.last)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [JobRef(r.id, Phase(r.phase), r.run_id, r.owner, r.creation_time) for r in rows]

    def with_parameter(
        self, job_list: str, name: str, value: str, phases: Collection[Phase]
    ) -> list[JobRef]:
        """Jobs of any owner in ``job_list`` and ``phases`` with parameter ``name`` =
        ``value`` (names are case-insensitive, values exact), oldest first: what an
        application asks before it lets a second job work on the same thing."""
        j, p = schema.job, schema.parameter
        query = (
            sa.select(j.c.id, j.c.phase, j.c.run_id, j.c.owner, j.c.creation_time)
            .where(
                j.c.job_list == job_list,
                j.c.phase.in_([phase.value for phase in phases]),
                sa.exists().where(
                    p.c.job_id == j.c.id, p.c.name == name.lower(), p.c.value == value
                ),
            )
            .order_by(j.c.creation_time)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [JobRef(r.id, Phase(r.phase), r.run_id, r.owner, r.creation_time) for r in rows]

    def ids_in(self, phases: Collection[Phase]) -> list[str]:
        """Ids of all jobs in ``phases``, oldest first (for recovery after a restart)."""
        j = schema.job
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(j.c.id)
                .where(j.c.phase.in_([p.value for p in phases]))
                .order_by(j.c.creation_time)
            ).all()
        return [r.id for r in rows]

    def expired(self, now: dt.datetime) -> list[str]:
        """Jobs past their destruction time and not yet ARCHIVED."""
        j = schema.job
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(j.c.id).where(j.c.destruction <= now, j.c.phase != Phase.ARCHIVED.value)
            ).all()
        return [r.id for r in rows]

    def overdue(self, now: dt.datetime) -> list[tuple[str, int]]:
        """EXECUTING jobs past start + executionDuration, with their duration (s)."""
        j = schema.job
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(j.c.id, j.c.execution_duration).where(
                    j.c.deadline <= now, j.c.phase == Phase.EXECUTING.value
                )
            ).all()
        return [(r.id, r.execution_duration) for r in rows]

    def next_alarm(self) -> dt.datetime | None:
        """The earliest destruction or execution deadline still to be enforced."""
        j = schema.job
        with self.engine.connect() as conn:
            destruction = conn.execute(
                sa.select(sa.func.min(j.c.destruction)).where(j.c.phase != Phase.ARCHIVED.value)
            ).scalar()
            deadline = conn.execute(
                sa.select(sa.func.min(j.c.deadline)).where(j.c.phase == Phase.EXECUTING.value)
            ).scalar()
        times = [t for t in (destruction, deadline) if t is not None]
        return min(times) if times else None

    # -- writing -------------------------------------------------------------------------------

    def create(self, record: JobRecord) -> None:
        with self._writing() as conn:
            conn.execute(
                schema.job.insert().values(
                    id=record.id,
                    job_list=record.job_list,
                    owner=record.owner,
                    phase=record.phase.value,
                    run_id=record.run_id,
                    creation_time=record.creation_time,
                    execution_duration=record.execution_duration,
                    destruction=record.destruction,
                    parent=record.parent,
                )
            )
            _insert_parameters(conn, record.id, record.parameters.pairs())
            _insert_uploads(conn, record.id, record.uploads.items())

    def transition(self, job_id: str, to: Phase, allowed: Collection[Phase], **fields: Any) -> bool:
        """Move the job to phase ``to`` if it is in one of ``allowed``; True if it moved."""
        return self.update(job_id, allowed, phase=to.value, **fields)

    def update(self, job_id: str, allowed: Collection[Phase] | None, **fields: Any) -> bool:
        """Set columns, if the job exists (and is in ``allowed``, when given)."""
        query = schema.job.update().where(schema.job.c.id == job_id).values(**fields)
        if allowed is not None:
            query = query.where(schema.job.c.phase.in_([p.value for p in allowed]))
        with self._writing() as conn:
            return conn.execute(query).rowcount == 1

    def set_error(
        self, job_id: str, allowed: Collection[Phase], error: ErrorInfo, **fields: Any
    ) -> bool:
        """Move to ERROR with ``error``. ``ran_until=t`` also fills a missing startTime
        with ``t`` (a worker's report can overtake its own "started" message)."""
        _fill_start(fields)
        return self.transition(
            job_id,
            Phase.ERROR,
            allowed,
            error_message=error.message,
            error_detail=error.detail,
            error_type=error.type.value,
            deadline=None,
            **fields,
        )

    def complete(
        self,
        job_id: str,
        allowed: Collection[Phase],
        results: Sequence[ResultRecord],
        **fields: Any,
    ) -> bool:
        """Move to COMPLETED with its results, atomically, if in ``allowed``."""
        _fill_start(fields)
        j = schema.job
        with self._writing() as conn:
            moved = conn.execute(
                j.update()
                .where(j.c.id == job_id, j.c.phase.in_([p.value for p in allowed]))
                .values(phase=Phase.COMPLETED.value, deadline=None, **fields)
            ).rowcount
            if moved != 1:
                return False
            if results:
                conn.execute(
                    schema.result.insert(),
                    [
                        {
                            "job_id": job_id,
                            "position": i,
                            "result_id": r.id,
                            "location": r.location,
                            "mime_type": r.mime_type,
                            "size": r.size,
                        }
                        for i, r in enumerate(results)
                    ],
                )
        return True

    def replace_parameters(
        self, job_id: str, parameters: JobParameters, uploads: dict[str, str]
    ) -> bool:
        """Replace the job's parameters (and add uploads), only while it is PENDING."""
        with self._writing() as conn:
            # a no-op UPDATE first: it takes the row's write lock and checks the phase at once
            locked = conn.execute(
                schema.job.update()
                .where(schema.job.c.id == job_id, schema.job.c.phase == Phase.PENDING.value)
                .values(phase=Phase.PENDING.value)
            ).rowcount
            if locked != 1:
                return False
            conn.execute(schema.parameter.delete().where(schema.parameter.c.job_id == job_id))
            _insert_parameters(conn, job_id, parameters.pairs())
            conn.execute(
                schema.upload.delete().where(
                    schema.upload.c.job_id == job_id, schema.upload.c.name.in_(list(uploads))
                )
            )
            _insert_uploads(conn, job_id, uploads.items())
        return True

    def archive(self, job_id: str, now: dt.datetime) -> bool:
        """Destruction time reached: ARCHIVED, results forgotten, the record kept."""
        with self._writing() as conn:
            moved = conn.execute(
                schema.job.update()
                .where(schema.job.c.id == job_id, schema.job.c.phase != Phase.ARCHIVED.value)
                .values(
                    phase=Phase.ARCHIVED.value,
                    deadline=None,
                    end_time=sa.func.coalesce(schema.job.c.end_time, _instant(now)),
                )
            ).rowcount
            if moved == 1:
                conn.execute(schema.result.delete().where(schema.result.c.job_id == job_id))
        return moved == 1

    def delete(self, job_id: str) -> bool:
        with self._writing() as conn:
            for table in (schema.result, schema.upload, schema.parameter):
                conn.execute(table.delete().where(table.c.job_id == job_id))
            return conn.execute(schema.job.delete().where(schema.job.c.id == job_id)).rowcount == 1


def _instant(when: dt.datetime) -> sa.BindParameter[dt.datetime]:
    """A bound UTC instant (typed, so PostgreSQL never shifts it by the session zone)."""
    return sa.literal(when, schema.UTCDateTime())


def _fill_start(fields: dict[str, Any]) -> None:
    ran_until = fields.pop("ran_until", None)
    if ran_until is not None:
        start = schema.job.c.start_time
        fields["start_time"] = sa.func.coalesce(start, _instant(ran_until))
        # the outcome's clock reading may predate "started": Dask reports that through a
        # queue, the outcome through the task's future, on another thread
        for name in ("end_time", "progress_time"):
            if name in fields:
                when = _instant(fields[name])
                fields[name] = sa.case((start > when, start), else_=when)


def _owner_is(owner: str | None) -> sa.ColumnElement[bool]:
    column = schema.job.c.owner
    return column.is_(None) if owner is None else column == owner


def _insert_parameters(conn: sa.Connection, job_id: str, pairs: Iterable[tuple[str, str]]) -> None:
    rows = [
        {"job_id": job_id, "position": i, "name": name, "value": value}
        for i, (name, value) in enumerate(pairs)
    ]
    if rows:
        conn.execute(schema.parameter.insert(), rows)


def _insert_uploads(conn: sa.Connection, job_id: str, items: Iterable[tuple[str, str]]) -> None:
    rows = [{"job_id": job_id, "name": name, "location": where} for name, where in items]
    if rows:
        conn.execute(schema.upload.insert(), rows)


def _record(row: Any, params: Any, uploads: Any, results: Any) -> JobRecord:
    error = None
    if row.error_message is not None:
        error = ErrorInfo(
            message=row.error_message,
            detail=row.error_detail,
            type=ErrorType(row.error_type or ErrorType.FATAL.value),
        )
    return JobRecord(
        id=row.id,
        job_list=row.job_list,
        owner=row.owner,
        phase=Phase(row.phase),
        creation_time=row.creation_time,
        run_id=row.run_id,
        quote=row.quote,
        start_time=row.start_time,
        end_time=row.end_time,
        execution_duration=row.execution_duration,
        destruction=row.destruction,
        parameters=JobParameters((p.name, p.value) for p in params),
        uploads={u.name: u.location for u in uploads},
        results=tuple(ResultRecord(r.result_id, r.location, r.mime_type, r.size) for r in results),
        error=error,
        progress=row.progress,
        progress_message=row.progress_message,
        progress_time=row.progress_time,
        worker=row.worker,
        parent=row.parent,
    )
