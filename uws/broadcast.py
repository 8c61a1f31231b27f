"""Phase changes announced across service processes, through PostgreSQL LISTEN/NOTIFY.

Within one process, :mod:`uws.events` wakes WAIT requests directly. When
several service processes (replicas) share one PostgreSQL job store, a phase
change made by one must also wake the WAITs held by the others: each change is
published with ``pg_notify('uws_phase', job_id)`` and every process keeps one
connection LISTENing, whose thread forwards the job ids to its notifier. The
listener blocks on the connection (no polling); a ``stop:`` message from
:meth:`Broadcast.close` ends it. SQLite has no such channel: one process per
SQLite store.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

log = logging.getLogger(__name__)

CHANNEL = "uws_phase"


class Broadcast:
    """Publish and receive job ids whose phase changed; a no-op unless PostgreSQL."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.enabled = engine.dialect.name == "postgresql"
        self._stop = f"stop:{secrets.token_hex(8)}"
        self._thread: threading.Thread | None = None
        self._connection: Any = None

    def publish(self, job_id: str) -> None:
        if not self.enabled:
            return
        with contextlib.suppress(Exception), self.engine.begin() as conn:
            conn.execute(
                sa.text("SELECT pg_notify(:channel, :id)"), {"channel": CHANNEL, "id": job_id}
            )

    def listen(self, deliver: Callable[[str], None]) -> None:
        """Call ``deliver(job_id)`` from a thread for every change any process publishes."""
        if not self.enabled:
            return
        import psycopg

        url = self.engine.url.set(drivername="postgresql")
        self._connection = psycopg.connect(
            url.render_as_string(hide_password=False), autocommit=True
        )
        self._connection.execute(f"LISTEN {CHANNEL}")

        def run() -> None:
            try:
                for message in self._connection.notifies():
                    if message.payload == self._stop:
                        return
                    deliver(message.payload)
            except Exception:
                log.exception("UWS phase-change listener stopped")

        self._thread = threading.Thread(target=run, name="uws-listen", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is None:
            return
        self.publish(self._stop)
        self._thread.join(timeout=5)
        with contextlib.suppress(Exception):
            self._connection.close()
        self._thread = None
