"""The operations the revisions use: Alembic's, made only where the database lacks them.

A ``var/`` made before alvo used Alembic has no version table, so every revision
runs on it from the first; guarded, each one adds only what that database is
missing (see :mod:`service.store.migrations`).

Structure is frozen in the revisions. Descriptions are not: column and table
comments (which PostgreSQL keeps) are taken from :mod:`service.store.schema` as it
words them today, so a new database reads like ``schema.metadata`` and a column
no longer there simply gets none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from service.store.schema import has_index, metadata

__all__ = ["add_column", "create_index", "create_table"]


def create_table(name: str, *elements: sa.Column | sa.Constraint) -> None:
    """``op.create_table`` unless the table exists, its columns described as today."""
    if sa.inspect(op.get_bind()).has_table(name):
        return
    for element in elements:
        if isinstance(element, sa.Column):
            element.comment = _comment(name, element.name)
    op.create_table(name, *elements, comment=_table_comment(name))


def add_column(table: str, column: sa.Column) -> None:
    """``op.add_column`` unless the table has it; a foreign key is written inline
    (``ADD COLUMN ... REFERENCES``), the one form SQLite and PostgreSQL both take."""
    if column.name in {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}:
        return
    column.comment = _comment(table, column.name)
    op.add_column(table, column, inline_references=bool(column.foreign_keys))


def create_index(
    name: str,
    table: str,
    columns: Sequence[str | sa.TextClause],
    unique: bool = False,
    **dialect_options: Any,
) -> None:
    """``op.create_index`` unless the table has an index of that name (``sqlite_where=``,
    ``postgresql_where=``: a partial index)."""
    if not has_index(op.get_bind(), name):
        op.create_index(name, table, list(columns), unique=unique, **dialect_options)


def _comment(table: str, column: str) -> str | None:
    found = metadata.tables.get(table)
    return found.c[column].comment if found is not None and column in found.c else None


def _table_comment(table: str) -> str | None:
    found = metadata.tables.get(table)
    return found.comment if found is not None else None
