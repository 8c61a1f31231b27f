"""Phase-change notification for WAIT: asyncio events, woken from any thread.

A WAIT request subscribes *before* it reads the job, so a change that lands
between the read and the wait is never missed. Executors and request threads
call :meth:`PhaseNotifier.notify`, which hops onto the event loop with
``call_soon_threadsafe``; nothing sleeps or polls.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Iterator


class PhaseNotifier:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiters: defaultdict[str, set[asyncio.Event]] = defaultdict(set)
        self._closed = False

    @contextlib.contextmanager
    def subscribe(self, job_id: str) -> Iterator[asyncio.Event]:
        """An event set at the job's next phase change (or at shutdown); call on the loop."""
        event = asyncio.Event()
        if self._closed:
            event.set()
        self._waiters[job_id].add(event)
        try:
            yield event
        finally:
            waiters = self._waiters.get(job_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[job_id]

    def notify(self, job_id: str) -> None:
        """Wake every WAIT on ``job_id``; safe from any thread."""
        with contextlib.suppress(RuntimeError):  # loop already closed at shutdown
            self._loop.call_soon_threadsafe(self._fire, job_id)

    def close(self) -> None:
        """Release every WAIT (shutdown): they answer with the job as it is now."""
        self._closed = True
        for waiters in self._waiters.values():
            for event in waiters:
                event.set()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` released the WAITs (the service is shutting down)."""
        return self._closed

    def waiting(self) -> int:
        return sum(len(w) for w in self._waiters.values())

    def _fire(self, job_id: str) -> None:
        for event in self._waiters.get(job_id, ()):
            event.set()
