"""TAP on PostgreSQL + pgSphere: the same answers as SQLite, and the same confinement."""

from __future__ import annotations

import math

import pytest
import sqlalchemy as sa

from service.reasons import Reason
from service.vo.tap import adql
from service.vo.tap.query import TAP_ROLE, TapDatabase
from tests.peers.postgres import postgres  # noqa: F401  (the session fixture)
from tests.tap_support import CROSS_DATABASE_QUERIES, postgres_demo, sqlite_demo

pytestmark = pytest.mark.peers


@pytest.fixture(scope="module")
def databases(postgres, tmp_path_factory):  # noqa: F811
    """The same generated rows (same seed) in SQLite and in PostgreSQL."""
    lite = TapDatabase(sqlite_demo(tmp_path_factory.mktemp("tap-sqlite"), 1500))
    pg = TapDatabase(postgres_demo(postgres, "tap_cross", 1500), timeout_s=2.0)
    lite.setup()
    pg.setup()
    yield lite, pg
    lite.dispose()
    pg.dispose()


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


@pytest.mark.parametrize("query", CROSS_DATABASE_QUERIES)
def test_same_answers_on_sqlite_and_postgresql(databases, query):
    lite, pg = databases
    a, b = lite.run(query, 100_000), pg.run(query, 100_000)
    assert a.nrows == b.nrows
    assert a.nrows > 0 or "0 = CONTAINS" in query, "a query that selects nothing proves nothing"
    for column_a, column_b in zip(a.columns, b.columns, strict=True):
        mismatches = [(x, y) for x, y in zip(column_a, column_b, strict=True) if not _same(x, y)]
        assert not mismatches, mismatches[:5]


def test_geometry_selects_some_but_not_all(databases):
    lite, _ = databases
    total = lite.run("SELECT COUNT(*) AS n FROM alvo.spectrum", 10).columns[0][0]
    for query in CROSS_DATABASE_QUERIES[3:8]:
        assert 0 < lite.run(query, 100_000).nrows < total * 2, query


def test_query_runs_as_restricted_read_only_role(databases):
    _, pg = databases
    assert pg._role == TAP_ROLE
    for sql in ("SELECT rolname, rolpassword FROM pg_authid", "SELECT pg_read_file('PG_VERSION')"):
        with pytest.raises(adql.AdqlError, match=r"permission denied|not allowed"):
            _raw(pg, sql)
    # DDL cannot even be declared as the server-side cursor the results stream from
    with pytest.raises(adql.AdqlError, match=r"syntax error|read-only"):
        _raw(pg, "CREATE TABLE evil (a int)")
    # and a SELECT that would write meets the read-only transaction
    with pytest.raises(adql.AdqlError, match=r"read-only|permission denied"):
        _raw(pg, "SELECT nextval('spectrum_spectrum_id_seq')")


def test_statement_timeout(databases):
    _, pg = databases
    with pytest.raises(Exception) as raised:
        _raw(pg, "SELECT pg_sleep(5)")
    assert getattr(raised.value, "reason", None) is Reason.QUERY_TIMEOUT


def test_adql_refusals_are_the_same(databases):
    _, pg = databases
    for query in ("SELECT pg_sleep(1) FROM alvo.spectrum", "SELECT * FROM pg_catalog.pg_roles",
                  "SELECT * FROM alvo.spectrum; DELETE FROM alvo.spectrum"):  # fmt: skip
        with pytest.raises(adql.AdqlError):
            pg.run(query, 10)


def _raw(db: TapDatabase, sql: str) -> None:
    """Run SQL that bypassed the ADQL checks, to prove the database's own defences."""
    translation = adql.Translation(sql, frozenset())
    with db._engine.connect() as conn:
        try:
            db._run_postgresql(conn, translation, {}, 10, 5.0)
        except sa.exc.DBAPIError as error:
            from service.vo.tap.query import _query_error

            raise _query_error(error, db.timeout_s) from None
