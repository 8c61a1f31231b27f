"""Run translated ADQL against the result tables, read-only and confined.

:class:`TapDatabase` is what TAP sync and async both call. Its defences, in
order:

1. :mod:`service.vo.tap.adql` lets through only one SELECT over published
   tables that calls ADQL functions;
2. SQLite: the database file is opened ``mode=ro``; an authorizer allows only
   reading the published tables (plus this query's uploads) and calling
   allow-listed functions, so ``ATTACH``, ``PRAGMA``, ``load_extension`` and
   ``readfile`` are refused even if they got past (1); a progress handler
   stops the statement after ``timeout_s``;
   PostgreSQL: the query runs in a transaction that is ``READ ONLY``, under
   ``SET LOCAL ROLE alvo_tap`` (a NOLOGIN role that may only SELECT the
   published tables) and with ``statement_timeout``;
3. rows of private datasets the caller may not read (:mod:`service.store.privacy`)
   are filtered out below the query: every published table it names is replaced by
   a common table expression of its visible rows (:func:`visible_rows`), so a join,
   a subquery, an upload join, ``TOP`` or ``COUNT`` all see the same filtered tables;
4. at most ``maxrec + 1`` rows are fetched (a server-side cursor on PostgreSQL),
   so a huge result costs no memory; the extra row only tells of overflow.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import itertools
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from service.reasons import AlvoError, Reason
from service.store import schema
from service.store.privacy import Hidden, hidden_from
from service.store.schema import ColumnMeta, column_meta
from service.vo.tap import adql, sphere, tap_schema
from service.vo.tap.upload import UploadTable, create_temporary

LOG = logging.getLogger(__name__)
TAP_ROLE = "alvo_tap"

#: Functions a SQLite query may call (what the ADQL translation can produce).
SQLITE_FUNCTIONS = frozenset(
    [
        "abs",
        "acos",
        "asin",
        "atan",
        "atan2",
        "ceil",
        "ceiling",
        "cos",
        "cot",
        "degrees",
        "exp",
        "floor",
        "ln",
        "log",
        "log10",
        "mod",
        "pi",
        "power",
        "radians",
        "random",
        "round",
        "sin",
        "sqrt",
        "tan",
        "trunc",
        "count",
        "sum",
        "avg",
        "min",
        "max",
        "lower",
        "upper",
        "like",
        "adql_point",
        "adql_circle",
        "adql_box",
        "adql_polygon",
        "adql_in_circle",
        "adql_sep",
        "adql_distance",
        "adql_contains",
        "adql_intersects",
    ]
)
_SQLITE_OK, _SQLITE_DENY = 0, 1
_SQLITE_READ, _SQLITE_SELECT, _SQLITE_FUNCTION = 20, 21, 31


@dataclasses.dataclass
class QueryResult:
    """Rows of a query, column by column, with what is known of each column."""

    names: list[str]
    metas: list[ColumnMeta]
    columns: list[list[Any]]
    overflow: bool
    query: str

    @property
    def nrows(self) -> int:
        return len(self.columns[0]) if self.columns else 0


class TapDatabase:
    """The result tables as TAP sees them: one SQLAlchemy URL, read-only queries.

    ``timeout_s`` bounds each statement; :meth:`setup` (once, with write access)
    creates the tables, TAP_SCHEMA and, on PostgreSQL, the ``alvo_tap`` role.
    ``links`` turns a column of URLs (UCD ``meta.ref.url``) into what a client can
    open: a tree-ingested spectrum's ``file://`` URL into the service's own
    (:func:`service.store.archive_roots.public_urls`).
    """

    def __init__(
        self,
        url: str,
        timeout_s: float = 60.0,
        links: Callable[[list[Any]], list[Any]] | None = None,
    ) -> None:
        self.url = sa.make_url(url)
        self.dialect = self.url.get_backend_name()
        if self.dialect not in adql.DIALECTS:
            raise ValueError(f"TAP supports sqlite and postgresql, not {self.dialect}")
        self.timeout_s = timeout_s
        self.links = links
        self.tables = tap_schema.published(self.dialect)
        self.sql_names = tap_schema.published_tables(self.dialect)
        self._engine = self._make_engine()
        self._role: str | None = None
        self._role_checked = False
        self._ready = False
        self._lock = threading.Lock()
        #: The queries running now: their start (monotonic) and time limit, for VOSI.
        self.running: dict[int, tuple[float, float]] = {}
        self._count = itertools.count()

    def running_note(self) -> str:
        """``TAP queries running: 2, the longest 12.3 s of its 60 s`` (VOSI availability)."""
        now, queries = time.monotonic(), list(self.running.values())
        if not queries:
            return "TAP queries running: none"
        started, limit = min(queries)
        return (
            f"TAP queries running: {len(queries)}, "
            f"the longest {now - started:.1f} s of its {limit:g} s"
        )

    def _make_engine(self) -> sa.Engine:
        if self.dialect == "sqlite":
            path = self.url.database
            if not path or path == ":memory:":
                raise ValueError("TAP on SQLite needs a database file")
            url = f"sqlite+pysqlite:///file:{path}?mode=ro&uri=true"
            engine = sa.create_engine(url, poolclass=NullPool)
            sa.event.listen(engine, "connect", lambda dbapi, _: sphere.register(dbapi))
            return engine
        # pooled: everything a query does (uploads, SET LOCAL, grants) is rolled back after it
        return sa.create_engine(self.url, pool_pre_ping=True)

    # --- set-up -------------------------------------------------------------------------------
    def setup(self) -> None:
        """Create result tables and TAP_SCHEMA; on PostgreSQL the restricted query role."""
        writer = sa.create_engine(self.url, poolclass=NullPool)
        try:
            tap_schema.ensure_tap_schema(writer)
            if self.dialect == "postgresql":
                with writer.begin() as conn:
                    for statement in _PG_FUNCTIONS:
                        conn.execute(sa.text(statement))
                self._role = _ensure_role(writer, self.tables.values())
                self._role_checked = True
        finally:
            writer.dispose()

    def ensure_ready(self) -> None:
        """Run :meth:`setup` once per process, on the first query (thread-safe)."""
        with self._lock:
            if not self._ready:
                self.setup()
                self._ready = True

    # --- queries ------------------------------------------------------------------------------
    def run(
        self,
        query: str,
        maxrec: int,
        uploads: Mapping[str, UploadTable] | None = None,
        timeout_s: float | None = None,
        user: str | None = None,
    ) -> QueryResult:
        """Run ``query`` as ``user`` (None: anonymous; private datasets' rows not theirs
        are left out); each statement stops after ``timeout_s`` (default: the database's)."""
        timeout = self.timeout_s if timeout_s is None else min(timeout_s, self.timeout_s)
        key = next(self._count)
        self.running[key] = (time.monotonic(), timeout)
        try:
            return self._run(query, maxrec, dict(uploads or {}), timeout, user)
        finally:
            self.running.pop(key, None)

    def _run(
        self,
        query: str,
        maxrec: int,
        uploads: dict[str, UploadTable],
        timeout: float,
        user: str | None,
    ) -> QueryResult:
        with self._engine.connect() as conn:
            hidden = hidden_from(conn, user)
        names = dict(self.sql_names)
        if hidden:
            names.update({a: _VISIBLE + s for a, s in names.items() if s in _ROW_FILTERS})
        for upload in uploads.values():
            names[upload.adql_name.lower()] = upload.sql_name
        translation = adql.translate(query, names, self.dialect)
        if hidden:
            used = {self.sql_names[t] for t in translation.tables if t in self.sql_names}
            translation = dataclasses.replace(
                translation, sql=visible_rows(used, hidden) + translation.sql
            )
        LOG.info("TAP query %r -> %s", query, translation.sql)
        with self._engine.connect() as conn:
            try:
                run = self._run_sqlite if self.dialect == "sqlite" else self._run_postgresql
                rows, description = run(conn, translation, uploads, maxrec, timeout)
            except sa.exc.DBAPIError as error:
                raise _query_error(error, timeout) from None
        overflow = len(rows) > maxrec
        rows = rows[:maxrec]
        metas = self._metas(description, translation, uploads)
        names_out = _unique([m.name for m in metas])
        columns = [[row[i] for row in rows] for i in range(len(description))]
        metas = [dataclasses.replace(m, name=n) for m, n in zip(metas, names_out, strict=True)]
        columns = [_normalise(col, meta) for col, meta in zip(columns, metas, strict=True)]
        if self.links is not None:
            columns = [self.links(c) if m.ucd == "meta.ref.url" else c
                       for c, m in zip(columns, metas, strict=True)]  # fmt: skip
        metas = [_infer(col, meta) for col, meta in zip(columns, metas, strict=True)]
        return QueryResult(names_out, metas, columns, overflow, query)

    def _run_sqlite(
        self,
        conn: sa.Connection,
        translation: adql.Translation,
        uploads: Mapping[str, UploadTable],
        maxrec: int,
        timeout: float,
    ) -> tuple[list, Any]:
        create_temporary(conn, uploads)
        raw: sqlite3.Connection = conn.connection.driver_connection  # type: ignore[assignment]
        readable = {self.sql_names[t].lower() for t in translation.tables if t in self.sql_names}
        readable |= {"spectrum"} if readable & {"label", "relevance", "prediction"} else set()
        readable |= {_VISIBLE + name for name in readable}  # a filter used twice is materialised
        readable |= {u.sql_name for u in uploads.values()}
        deadline = time.monotonic() + timeout

        def authorize(action: int, arg1: str | None, arg2: str | None, *_: Any) -> int:
            if action == _SQLITE_SELECT:
                return _SQLITE_OK
            if action == _SQLITE_READ:
                return _SQLITE_OK if (arg1 or "").lower() in readable else _SQLITE_DENY
            if action == _SQLITE_FUNCTION:
                return _SQLITE_OK if (arg2 or "").lower() in SQLITE_FUNCTIONS else _SQLITE_DENY
            return _SQLITE_DENY

        raw.set_authorizer(authorize)
        raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        try:
            cursor = raw.execute(translation.sql)
            rows = cursor.fetchmany(maxrec + 1)
            description = cursor.description
            cursor.close()
        except sqlite3.Error as error:
            if "user-defined function raised exception" in str(error):
                raise adql.AdqlError(sphere.last_error()) from None
            raise sa.exc.DBAPIError(translation.sql, None, error) from None
        finally:
            raw.set_authorizer(None)
            raw.set_progress_handler(None, 0)
        return rows, description

    def _run_postgresql(
        self,
        conn: sa.Connection,
        translation: adql.Translation,
        uploads: Mapping[str, UploadTable],
        maxrec: int,
        timeout: float,
    ) -> tuple[list, Any]:
        if not self._role_checked:  # a worker process that did not run setup()
            has = conn.execute(
                sa.text(
                    "SELECT pg_has_role(current_user, oid, 'MEMBER') "
                    "FROM pg_roles WHERE rolname = :r"
                ),
                {"r": TAP_ROLE},
            ).scalar()
            conn.rollback()
            self._role, self._role_checked = (TAP_ROLE if has else None), True
        with conn.begin():
            conn.execute(sa.text(f"SET LOCAL statement_timeout = {int(timeout * 1000)}"))
            create_temporary(conn, uploads)
            if self._role:
                for upload in uploads.values():
                    conn.execute(sa.text(f'GRANT SELECT ON "{upload.sql_name}" TO {self._role}'))
                conn.execute(sa.text(f"SET LOCAL ROLE {self._role}"))
            conn.execute(sa.text("SET LOCAL transaction_read_only = on"))
            result = conn.execution_options(stream_results=True).exec_driver_sql(
                translation.sql.replace("%", "%%")
            )
            description = result.cursor.description  # before fetching: the end closes it
            rows = result.fetchmany(maxrec + 1)
            result.close()
            conn.rollback()
        return list(rows), description

    def _metas(
        self,
        description: Sequence[Any],
        translation: adql.Translation,
        uploads: Mapping[str, UploadTable],
    ) -> list[ColumnMeta]:
        """Metadata of each result column: from the table column of that name if unambiguous."""
        tables, aliases = translation.tables, translation.aliases
        known: dict[str, list[ColumnMeta]] = {}
        for name in tables:
            table = self._table(name)
            for column in table.columns if table is not None else ():
                known.setdefault(column.name.lower(), []).append(column_meta(column))
        for upload in uploads.values():
            for name, meta in upload.meta.items():
                known.setdefault(name, []).append(meta)
        metas = []
        for entry in description:
            name = str(entry[0])
            candidates = known.get(aliases.get(name.lower(), name.lower()), [])
            if candidates and all(c.datatype == candidates[0].datatype for c in candidates):
                metas.append(dataclasses.replace(candidates[0], name=name))
            else:
                name = _expression_name(name)
                metas.append(ColumnMeta(name, "", None, "", None, None, None, None, False, False))
        return metas

    def _table(self, adql_name: str) -> sa.Table | None:
        for name, table in self.tables.items():
            if name.lower() == adql_name or table.name == adql_name:
                return table
        return None

    def dispose(self) -> None:
        self._engine.dispose()


#: Prefix of the common table expression that stands for a table's visible rows.
_VISIBLE = "alvo_visible_"
_D, _C = "{datasets}", "{campaigns}"
_BY_CAMPAIGN = f"(campaign_id IS NULL OR campaign_id NOT IN ({_C}))"
_BY_SPECTRUM = f"spectrum_id NOT IN (SELECT spectrum_id FROM spectrum WHERE dataset_id IN ({_D}))"
#: Which rows of each published table belong to hidden datasets or campaigns.
_ROW_FILTERS = {
    schema.dataset.name: f"dataset_id NOT IN ({_D})",
    schema.spectrum.name: f"dataset_id NOT IN ({_D})",
    schema.campaign.name: f"campaign_id NOT IN ({_C})",
    schema.label.name: f"{_BY_CAMPAIGN} AND {_BY_SPECTRUM}",
    schema.relevance.name: f"{_BY_CAMPAIGN} AND {_BY_SPECTRUM}",
    schema.prediction.name: f"{_BY_CAMPAIGN} AND {_BY_SPECTRUM}",
    schema.model.name: _BY_CAMPAIGN,
    schema.prediction_file.name: _BY_CAMPAIGN,
    schema.iteration.name: _BY_CAMPAIGN,
}
assert set(_ROW_FILTERS) == {t.name for t in schema.PUBLISHED}, "a published table unfiltered"


def visible_rows(tables: set[str], hidden: Hidden) -> str:
    """``WITH alvo_visible_spectrum AS (SELECT * FROM spectrum WHERE ...), ...`` for the
    ``tables`` a query reads; the ids are integers from the database, written inline."""

    def ids(values: tuple[int, ...]) -> str:
        return ", ".join(str(int(v)) for v in values) or "-1"  # ids are positive

    parts = []
    for table in sorted(tables & set(_ROW_FILTERS)):
        where = _ROW_FILTERS[table].format(
            datasets=ids(hidden.datasets), campaigns=ids(hidden.campaigns)
        )
        parts.append(f"{_VISIBLE}{table} AS (SELECT * FROM {table} WHERE {where})")
    return f"WITH {', '.join(parts)} " if parts else ""


#: ADQL's ROUND(x, n) and TRUNCATE(x, n) on doubles, which PostgreSQL only has for numeric.
_PG_FUNCTIONS = tuple(
    f"CREATE OR REPLACE FUNCTION public.{name}(double precision, integer) "
    f"RETURNS double precision AS 'SELECT {name}($1::numeric, $2)::double precision' "
    "LANGUAGE sql IMMUTABLE STRICT"
    for name in ("round", "trunc")
)


def _ensure_role(engine: sa.Engine, tables: Any) -> str | None:
    """Create the NOLOGIN role queries run as; None if this user may not (logged)."""
    try:
        with engine.begin() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": TAP_ROLE}
            ).first()
            if not exists:
                conn.execute(sa.text(f"CREATE ROLE {TAP_ROLE} NOLOGIN"))
            conn.execute(sa.text(f"GRANT {TAP_ROLE} TO CURRENT_USER"))
            for table in tables:
                schema_name = table.schema or "public"
                conn.execute(sa.text(f"GRANT USAGE ON SCHEMA {schema_name} TO {TAP_ROLE}"))
                conn.execute(sa.text(f"GRANT SELECT ON {schema_name}.{table.name} TO {TAP_ROLE}"))
        return TAP_ROLE
    except sa.exc.DBAPIError as error:
        LOG.warning(
            "TAP: cannot create role %s (%s); queries run read-only as the service user",
            TAP_ROLE,
            error.orig,
        )
        return None


def _query_error(error: sa.exc.DBAPIError, timeout_s: float) -> AlvoError:
    text = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
    if "interrupted" in text or "statement timeout" in text:
        return AlvoError(Reason.QUERY_TIMEOUT, f"the query ran longer than {timeout_s:g} s")
    if any(word in text for word in ("not authorized", "prohibited", "permission denied")):
        return adql.AdqlError(f"not allowed: {text}")
    return adql.AdqlError(f"the database refused the query: {text}")


def _expression_name(sql_name: str) -> str:
    """A column name for an unaliased expression: ``COUNT (*)`` -> ``count``, as DaCHS
    names it; the database's own text (spaces, parentheses) is no usable VOTable name."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", sql_name):
        return sql_name
    function = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(", sql_name)
    return function.group(1).lower() if function else "expr"


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        key = name.lower()
        if key in seen:
            seen[key] += 1
            name = f"{name}_{seen[key]}"
        else:
            seen[key] = 1
        out.append(name)
    return out


def _normalise(values: list[Any], meta: ColumnMeta) -> list[Any]:
    """Database values to what a VOTable can hold: ISO timestamps, floats for decimals."""
    out = []
    for value in values:
        if isinstance(value, dt.datetime):
            value = value.isoformat()
        elif isinstance(value, str) and meta.xtype == "timestamp":
            value = value.replace(" ", "T", 1)
        elif isinstance(value, decimal.Decimal):
            value = float(value)
        elif isinstance(value, (dt.date, dt.time)):
            value = value.isoformat()
        out.append(value)
    return out


def _infer(values: list[Any], meta: ColumnMeta) -> ColumnMeta:
    """Pick a VOTable datatype from the values when no table column describes them."""
    if meta.datatype:
        return meta
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        datatype, arraysize = "boolean", None
    elif present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        datatype, arraysize = "long", None
    elif present and all(isinstance(v, (int, float)) for v in present):
        datatype, arraysize = "double", None
    else:
        datatype, arraysize = "char", "*"
    return dataclasses.replace(meta, datatype=datatype, arraysize=arraysize)
