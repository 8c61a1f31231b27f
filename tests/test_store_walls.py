"""All SQL of ``service/`` lives in ``service/store/`` (and the ADQL engine, ``service/vo/tap/``).

Jobs, pages, VO endpoints and commands call named methods of the store; none of them
imports SQLAlchemy, runs a statement or builds one. This test reads every other
module of ``service/`` and names the file and line of anything that does, so the
rule stays true as the tree grows.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from service.store import schema

REPO = Path(__file__).resolve().parents[1]
#: Where SQL belongs: the store, and the ADQL engine that runs users' queries.
SQL_HOMES = ("service/store/", "service/vo/tap/")
#: Modules still holding SQL while they move (none: both ingest doors store through the
#: one writer, ``Datasets.append``, since issue 20).
NOT_YET_MOVED: frozenset[str] = frozenset()
#: Methods that run a statement on a connection or engine.
RUNS_SQL = frozenset({"execute", "exec_driver_sql", "scalar", "scalars", "execution_options"})
#: Table methods that build a statement: ``schema.iteration.update()``.
BUILDS_SQL = frozenset({"insert", "update", "delete", "select"})
#: What names a table: ``schema.<table>`` or a local name for one.
TABLES = frozenset(table.name for table in schema.metadata.tables.values()) | {"table"}
#: SQL written out in a string (docstrings may talk about it).
SQL_TEXT = re.compile(
    r"^\s*(SELECT\b.*\bFROM\b|SELECT\s+1\b|INSERT\s+INTO\b|UPDATE\s+\S+\s+SET\b|DELETE\s+FROM\b)",
    re.DOTALL,
)


def sql_outside_the_store(source: str) -> Iterator[tuple[int, str]]:
    """``(line, what)`` of every piece of SQL in a module's source."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "sqlalchemy":
                    yield node.lineno, f"import {alias.name}"
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] == "sqlalchemy" and node.level == 0:
                yield node.lineno, f"from {node.module} import ..."
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            method, receiver = node.func.attr, node.func.value
            if method in RUNS_SQL:
                yield node.lineno, f".{method}(...)"
            elif method in BUILDS_SQL and not node.args and _names_a_table(receiver):
                yield node.lineno, f"{ast.unparse(receiver)}.{method}()"
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and SQL_TEXT.match(node.value)
        ):
            yield node.lineno, f"SQL text {node.value[:40]!r}"


def _names_a_table(node: ast.expr) -> bool:
    if isinstance(node, ast.Attribute):
        return node.attr in TABLES and ast.unparse(node.value) == "schema"
    return isinstance(node, ast.Name) and node.id in TABLES


def _modules() -> Iterator[str]:
    for path in sorted((REPO / "service").rglob("*.py")):
        name = path.relative_to(REPO).as_posix()
        if not name.startswith(SQL_HOMES) and name not in NOT_YET_MOVED:
            yield name


def test_no_sql_outside_the_store() -> None:
    found = [
        f"{name}:{line}: {what}"
        for name in _modules()
        for line, what in sorted(sql_outside_the_store((REPO / name).read_text("utf-8")))
    ]
    assert found == [], "SQL outside service/store/ (move it behind a store method):\n" + (
        "\n".join(found)
    )


def test_the_allow_list_names_only_files_that_exist() -> None:
    """An entry left behind after its file moved would hide a new module of that name:
    drop it from NOT_YET_MOVED."""
    assert [name for name in NOT_YET_MOVED if not (REPO / name).is_file()] == []


def test_the_check_sees_each_kind_of_sql() -> None:
    source = '''
"""A docstring may say SELECT 1 FROM the_table."""
import sqlalchemy as sa
from sqlalchemy.orm import Session

def f(conn, engine, bar):
    conn.execute(query)
    engine.connect().scalar(query)
    schema.iteration.update()
    label.delete()
    bar.update()
    return "SELECT name FROM alvo.dataset"
'''
    lines = sorted(line for line, _ in sql_outside_the_store(source))
    assert lines == [3, 4, 7, 8, 9, 10, 12]
