"""A job's own write that meets a locked SQLite database waits and retries.

A pool's predictions hold SQLite's write lock for ~50 s at 4 million spectra; a
request meeting that lock answers 503 (tests/test_database_busy.py), but a job
(an ``iterate`` recording its iteration or its model) used to end in ERROR after
the busy timeout. Its writes now go through :func:`uws.store.retrying`: here the
busy timeout is 0.2 s and the lock is held 1.5 s, so a single try must fail.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from service.jobs.runner import job_runner
from service.store import schema
from service.store.campaigns import Campaigns
from service.store.models import record_model
from tests.durability.storm import CAMPAIGN, build_home
from uws.runner import UWSJobError

pytestmark = pytest.mark.durability
HOLD_S = 1.5


def hold_lock(database: Path, seconds: float) -> threading.Event:
    """Take SQLite's write lock from another connection for ``seconds``; set when taken."""
    taken = threading.Event()

    def hold() -> None:
        other = sqlite3.connect(database, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        taken.set()
        time.sleep(seconds)
        other.execute("ROLLBACK")
        other.close()

    threading.Thread(target=hold, daemon=True).start()
    assert taken.wait(10)
    return taken


def test_a_job_write_waits_out_a_locked_database(tmp_path) -> None:
    database = tmp_path / "alvo.sqlite"
    settings = build_home(tmp_path, 10, f"sqlite:///{database}?timeout=0.2")
    campaigns = Campaigns(settings)
    campaign = campaigns.require(CAMPAIGN)
    engine = campaigns.engine

    hold_lock(database, HOLD_S)
    started = time.monotonic()
    campaigns.record_iteration(campaign, 1, strategy="entropy")
    waited = time.monotonic() - started
    assert waited >= HOLD_S * 0.8, waited  # it did meet the lock

    hold_lock(database, HOLD_S)
    model_id = record_model(
        engine, "models/m.keras", "lamost", ["a", "b"], "{}", campaign.campaign_id, 1
    )
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(schema.iteration)) == 1
        assert conn.scalar(sa.select(schema.model.c.model_id)) == model_id


def test_a_request_write_still_answers_at_once(tmp_path) -> None:
    """Only the job-side writes wait: a label POST gets its 503 after the busy timeout."""
    database = tmp_path / "alvo.sqlite"
    settings = build_home(tmp_path, 10, f"sqlite:///{database}?timeout=0.2")
    campaigns = Campaigns(settings)
    hold_lock(database, HOLD_S)
    with pytest.raises(sa.exc.OperationalError), campaigns.engine.begin() as conn:
        conn.execute(schema.iteration.insert().values(campaign_id=1, number=9))


def test_an_outage_ends_a_job_with_a_named_reason() -> None:
    """A database away past the job's wait is DATABASE_UNAVAILABLE, not INTERNAL_ERROR."""

    def work(job, workdir, progress):  # type: ignore[no-untyped-def]
        engine = sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
        with engine.connect():
            pass

    with pytest.raises(UWSJobError, match=r"^DATABASE_UNAVAILABLE: "):
        job_runner(work)(None, Path("."), lambda *a: None)  # type: ignore[arg-type]
