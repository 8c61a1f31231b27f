"""Alembic environment: runs on the connection that :mod:`uws.store` hands over."""

from __future__ import annotations

from alembic import context

from uws.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table="uws_alembic_version",
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
