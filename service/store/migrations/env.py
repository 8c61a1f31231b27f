"""Alembic environment: runs on the connection that :func:`service.store.migrations.upgrade`
hands over, with its own version table beside the job store's ``uws_alembic_version``."""

from __future__ import annotations

from alembic import context

from service.store.migrations import VERSION_TABLE
from service.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    # autogenerate compares the result tables only: the job store and TAP_SCHEMA share the database
    include_name=lambda name, kind, _parent: kind != "table" or name in metadata.tables,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
