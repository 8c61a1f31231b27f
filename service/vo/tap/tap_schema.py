"""TAP_SCHEMA (TAP 1.1 §4): the published tables described in the database itself.

The rows are derived from :data:`service.store.schema.metadata` -- the same
``Column.info`` that VOTables use -- plus the five TAP_SCHEMA tables, which
describe themselves. :func:`ensure_tap_schema` (re)writes them at service
start, so they never drift from the code.

Where they live: on PostgreSQL in the schema ``tap_schema`` (``tap_schema.tables``);
on SQLite, which has no schemas in one file, as ``tap_schema_tables`` and so on.
:func:`published_tables` maps ADQL names to those SQL names for the translator.
"""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa

from service.store import schema
from service.store.schema import col

TAP_SCHEMA = "TAP_SCHEMA"
SCHEMA_DESCRIPTIONS = {
    TAP_SCHEMA: "Metadata of the tables and columns this TAP service publishes (TAP 1.1).",
    schema.SCHEMA: "alvo results: datasets, spectra, oracle labels, models, predictions and "
    "the metrics of each active-learning iteration.",
}


def _tap_schema_metadata(dialect: str) -> dict[str, sa.Table]:
    """The five TAP_SCHEMA tables as SQLAlchemy tables named for ``dialect``."""
    md = sa.MetaData()
    pg = dialect == "postgresql"

    def table(name: str, description: str, *columns: sa.Column) -> sa.Table:
        return sa.Table(
            name if pg else f"tap_schema_{name}",
            md,
            *columns,
            schema="tap_schema" if pg else None,
            comment=description,
        )

    text, integer = sa.String(512), sa.Integer

    def ident(name: str, what: str, ucd: str = "meta.id") -> sa.Column:
        return col(name, text, what, ucd, principal=True)

    def about(thing: str) -> tuple[sa.Column, sa.Column]:
        return (col("utype", text, f"Utype of the {thing}", "meta.ucd"),
                col("description", text, f"Description of the {thing}", "meta.note",
                    principal=True))  # fmt: skip

    def flag(name: str, what: str) -> sa.Column:
        return col(name, integer, what, "meta.code")

    def order(name: str, what: str) -> sa.Column:
        return col(name, integer, f"Order in which {what} are shown", "meta.number")

    table_name = "meta.id;meta.table"
    names = {
        "schemas": table(
            "schemas", "Schemas published by this service",
            ident("schema_name", "Schema name, as used in queries"), *about("schema"),
            order("schema_index", "schemas"),
        ),
        "tables": table(
            "tables", "Tables published by this service",
            ident("schema_name", "Schema the table belongs to"),
            ident("table_name", "Fully qualified table name", table_name),
            ident("table_type", "table or view", "meta.code"), *about("table"),
            order("table_index", "tables"),
        ),
        "columns": table(
            "columns", "Columns of the published tables",
            ident("table_name", "Fully qualified table name", table_name),
            ident("column_name", "Column name"), *about("column"),
            ident("ucd", "UCD of the column", "meta.ucd"),
            ident("unit", "Unit (VOUnit)", "meta.unit"),
            ident("datatype", "VOTable datatype", "meta.code"),
            col("arraysize", text, "VOTable arraysize", "meta.code"),
            col("xtype", text, "VOTable xtype", "meta.code"),
            col("size", integer, "Length of variable-length columns (deprecated; use arraysize)",
                "meta.number"),
            flag("principal", "1 if the column is of principal interest"),
            flag("indexed", "1 if the column is indexed"),
            flag("std", "1 if the column is defined by a standard"),
            order("column_index", "columns"),
        ),
        "keys": table(
            "keys", "Foreign keys between the published tables",
            ident("key_id", "Key identifier"),
            ident("from_table", "Table holding the foreign key", table_name),
            ident("target_table", "Table the key points to", table_name), *about("key"),
        ),
        "key_columns": table(
            "key_columns", "Columns making up the foreign keys",
            ident("key_id", "Key identifier"),
            ident("from_column", "Column in the from_table"),
            ident("target_column", "Column in the target_table"),
        ),
    }  # fmt: skip
    return {f"{TAP_SCHEMA}.{name}": table_ for name, table_ in names.items()}


def published(dialect: str) -> dict[str, sa.Table]:
    """Every published table by its ADQL name (``alvo.spectrum``, ``TAP_SCHEMA.columns``)."""
    tables = {f"{schema.SCHEMA}.{t.name}": t for t in schema.PUBLISHED}
    tables.update(_tap_schema_metadata(dialect))
    return tables


def published_tables(dialect: str) -> dict[str, str]:
    """ADQL table name (lower case, qualified or not for alvo's) -> SQL name."""
    mapping = {}
    for adql_name, table in published(dialect).items():
        sql_name = f"{table.schema}.{table.name}" if table.schema else table.name
        mapping[adql_name.lower()] = sql_name
        if adql_name.startswith(schema.SCHEMA + "."):
            mapping[table.name] = sql_name
    return mapping


def rows(dialect: str) -> dict[str, list[dict[str, object]]]:
    """The rows of each TAP_SCHEMA table (by short name: schemas, tables...)."""
    tables = published(dialect)
    out: dict[str, list[dict[str, object]]] = {
        "schemas": [
            {"schema_name": name, "description": text, "schema_index": i}
            for i, (name, text) in enumerate(SCHEMA_DESCRIPTIONS.items())
        ],
        "tables": [],
        "columns": [],
        "keys": [],
        "key_columns": [],
    }
    for index, (adql_name, table) in enumerate(tables.items()):
        schema_name = adql_name.split(".")[0]
        out["tables"].append(
            {
                "schema_name": schema_name,
                "table_name": adql_name,
                "table_type": "table",
                "description": table.comment,
                "table_index": index,
            }
        )
        for position, column in enumerate(table.columns):
            meta = schema.column_meta(column)
            out["columns"].append(
                {
                    "table_name": adql_name,
                    "column_name": meta.name,
                    "utype": meta.utype,
                    "ucd": meta.ucd,
                    "unit": meta.unit,
                    "description": meta.description,
                    "datatype": meta.datatype,
                    "arraysize": meta.arraysize,
                    "xtype": meta.xtype,
                    "size": None,
                    "principal": int(meta.principal),
                    "indexed": int(meta.indexed),
                    "std": int(schema_name == TAP_SCHEMA),
                    "column_index": position,
                }
            )
    for key in foreign_keys(dialect):
        out["keys"].append(
            {
                "key_id": key.key_id,
                "from_table": key.from_table,
                "target_table": key.target_table,
                "description": key.description,
            }
        )
        out["key_columns"].append(
            {
                "key_id": key.key_id,
                "from_column": key.from_column,
                "target_column": key.target_column,
            }
        )
    return out


@dataclasses.dataclass(frozen=True)
class ForeignKey:
    """A single-column foreign key between published tables (ADQL names)."""

    key_id: str
    from_table: str
    from_column: str
    target_table: str
    target_column: str

    @property
    def description(self) -> str:
        return f"{self.from_column} refers to {self.target_table}.{self.target_column}"


#: TAP 1.1 §4: how the TAP_SCHEMA tables refer to each other.
_TAP_SCHEMA_KEYS = (
    ("tables", "schema_name", "schemas", "schema_name"),
    ("columns", "table_name", "tables", "table_name"),
    ("keys", "from_table", "tables", "table_name"),
    ("keys", "target_table", "tables", "table_name"),
    ("key_columns", "key_id", "keys", "key_id"),
)


def foreign_keys(dialect: str) -> list[ForeignKey]:
    """Every foreign key: those of the result tables (SQLAlchemy) and TAP_SCHEMA's own."""
    tables = published(dialect)
    by_table = {t: name for name, t in tables.items()}
    keys = [
        ForeignKey(
            f"{table.name}_{fk.parent.name}",
            adql_name,
            fk.parent.name,
            by_table[fk.column.table],
            fk.column.name,
        )
        for adql_name, table in tables.items()
        for fk in sorted(table.foreign_keys, key=lambda f: f.parent.name)
        if fk.column.table in by_table
    ]
    keys += [
        ForeignKey(f"tap_schema_{a}_{b}", f"{TAP_SCHEMA}.{a}", b, f"{TAP_SCHEMA}.{c}", d)
        for a, b, c, d in _TAP_SCHEMA_KEYS
    ]
    return keys


def ensure_tap_schema(engine: sa.Engine) -> None:
    """Create the result tables and (re)write TAP_SCHEMA from the code's metadata."""
    schema.create_all(engine)
    dialect = engine.dialect.name
    tap_tables = _tap_schema_metadata(dialect)
    with engine.begin() as conn:
        if dialect == "postgresql":
            conn.execute(sa.text("CREATE SCHEMA IF NOT EXISTS tap_schema"))
        for table in tap_tables.values():
            table.create(conn, checkfirst=True)
        content = rows(dialect)
        for adql_name, table in tap_tables.items():
            conn.execute(table.delete())
            records = content[adql_name.split(".", 1)[1]]
            if records:
                conn.execute(table.insert(), records)
