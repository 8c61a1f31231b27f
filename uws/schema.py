"""The job store's tables (SQLAlchemy Core); Alembic migrations in ``uws/migrations`` build them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

metadata = sa.MetaData()


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """A UTC instant, stored naive (SQLite has no zones) and read back timezone-aware."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC)


def _job_id() -> sa.Column[str]:
    """The owning job of a parameter / upload / result row (deleted with the job)."""
    return sa.Column(
        "job_id", sa.String(32), sa.ForeignKey("uws_job.id", ondelete="CASCADE"), primary_key=True
    )


job = sa.Table(
    "uws_job",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("job_list", sa.String(64), nullable=False),
    sa.Column("owner", sa.String(255), nullable=True),
    sa.Column("phase", sa.String(16), nullable=False),
    sa.Column("run_id", sa.Text, nullable=True),
    sa.Column("creation_time", UTCDateTime, nullable=False),
    sa.Column("start_time", UTCDateTime, nullable=True),
    sa.Column("end_time", UTCDateTime, nullable=True),
    sa.Column("quote", UTCDateTime, nullable=True),
    sa.Column("execution_duration", sa.Integer, nullable=False, default=0),
    sa.Column("destruction", UTCDateTime, nullable=True),
    # start_time + execution_duration while EXECUTING with a limit; the sweeper's alarm clock
    sa.Column("deadline", UTCDateTime, nullable=True),
    sa.Column("error_message", sa.Text, nullable=True),
    sa.Column("error_detail", sa.Text, nullable=True),
    sa.Column("error_type", sa.String(16), nullable=True),
    sa.Column("progress", sa.Float, nullable=True),
    sa.Column("progress_message", sa.Text, nullable=True),
    sa.Column("progress_time", UTCDateTime, nullable=True),  # when the job last reported
    sa.Column("worker", sa.String(255), nullable=True),
    # the job this one was run again from (no foreign key: the parent may be deleted first)
    sa.Column("parent", sa.String(32), nullable=True),
    sa.Index("ix_uws_job_list_owner_creation", "job_list", "owner", "creation_time"),
    sa.Index("ix_uws_job_list_owner_phase_creation", "job_list", "owner", "phase", "creation_time"),
    sa.Index("ix_uws_job_phase", "phase"),
    sa.Index("ix_uws_job_destruction", "destruction"),
    sa.Index("ix_uws_job_deadline", "deadline"),
)

parameter = sa.Table(
    "uws_parameter",
    metadata,
    _job_id(),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("value", sa.Text, nullable=False),
)

upload = sa.Table(
    "uws_upload",
    metadata,
    _job_id(),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("location", sa.Text, nullable=False),
)

result = sa.Table(
    "uws_result",
    metadata,
    _job_id(),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("result_id", sa.String(255), nullable=False),
    sa.Column("location", sa.Text, nullable=False),
    sa.Column("mime_type", sa.String(255), nullable=True),
    sa.Column("size", sa.BigInteger, nullable=True),
)
