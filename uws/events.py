"""Change notification for WAIT: asyncio events, woken from any thread.

A WAIT request subscribes *before* it reads the job, so a change that lands
between the read and the wait is never missed. Executors and request threads
call :meth:`PhaseNotifier.notify` on a phase change, which hops onto the event
loop with ``call_soon_threadsafe``; nothing sleeps or polls. A progress report
(jobInfo) calls :meth:`PhaseNotifier.notify_progress`: the same wake, at most
once per job every :data:`PROGRESS_GAP` seconds (a report inside the gap is
delivered at its end, never dropped), so a job that reports 20 times a second
does not make every follower re-read it 20 times a second.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Iterator

#: Seconds between two progress wakes of one job's WAITs (UWS 1.1 lets a WAIT return
#: before its timeout; a follower then sees a new jobInfo fraction within this).
PROGRESS_GAP = 0.5


class PhaseNotifier:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiters: defaultdict[str, set[asyncio.Event]] = defaultdict(set)
        self._closed = False
        #: per job: the loop time of its last progress wake, and whether one is pending
        self._woken: dict[str, float] = {}
        self._pending: set[str] = set()

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

    def notify_progress(self, job_id: str) -> None:
        """Wake the WAITs on ``job_id`` for a progress report, at most once every
        :data:`PROGRESS_GAP` seconds (a later report inside the gap wakes them at its
        end); safe from any thread."""
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._progressed, job_id)

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

    def _progressed(self, job_id: str) -> None:
        if job_id in self._pending or job_id not in self._waiters:
            return  # a wake is already due; or no one waits (the next WAIT reads the job)
        delay = self._woken.get(job_id, -PROGRESS_GAP) + PROGRESS_GAP - self._loop.time()
        if delay <= 0:
            self._wake(job_id)
            return
        self._pending.add(job_id)
        self._loop.call_later(delay, self._wake, job_id)

    def _wake(self, job_id: str) -> None:
        self._pending.discard(job_id)
        now = self._loop.time()
        self._woken[job_id] = now
        if len(self._woken) > 256:  # forget jobs whose gap is long over
            self._woken = {k: t for k, t in self._woken.items() if now - t < PROGRESS_GAP}
        self._fire(job_id)

    def _fire(self, job_id: str) -> None:
        for event in self._waiters.get(job_id, ()):
            event.set()
