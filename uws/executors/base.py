"""The executor contract: what runs jobs, behind one small interface.

``Executor`` (an abstract base) is what the UWS service drives; ``ExecutionSink``
(a Protocol) is what an executor reports phases and outcomes to.
"""

from __future__ import annotations

import abc
from typing import Protocol

from uws.runner import Outcome, WorkOrder


class ExecutionSink(Protocol):
    def on_started(self, job_id: str, worker: str) -> bool:
        """The job began running on ``worker``; False means "it was aborted meanwhile, stop it"."""
        ...

    def on_progress(self, job_id: str, fraction: float | None, message: str) -> None: ...

    def on_outcome(self, job_id: str, outcome: Outcome) -> None:
        """The runner finished (completed / failed / aborted), see :func:`uws.runner.execute`."""
        ...

    def on_lost(self, job_id: str, reason: str) -> None:
        """The worker vanished without an outcome (killed, crashed); ``reason`` says how."""
        ...


class Executor(abc.ABC):
    """Runs :class:`uws.runner.WorkOrder` s and reports to a sink."""

    name = "executor"

    @abc.abstractmethod
    def start(self, sink: ExecutionSink) -> None:
        """Begin accepting work; reports go to ``sink``."""

    @abc.abstractmethod
    def submit(self, order: WorkOrder) -> None:
        """Queue a job; it starts when a worker is free."""

    @abc.abstractmethod
    def abort(self, job_id: str, worker: str | None = None) -> None:
        """Stop the job for real, queued or running, with any processes it started.

        ``worker`` is the job's recorded worker: a job this executor did not
        start (an earlier or a sibling service process did) is stopped through
        it where possible. No-op if the job is unknown.
        """

    @abc.abstractmethod
    def owns(self, job_id: str) -> bool:
        """Whether this executor has the job queued or running (it will report on it)."""

    def still_running(self, job_id: str, worker: str | None) -> bool:
        """After a (re)start: is the job's recorded ``worker`` still alive somewhere?

        False (the default) lets the service put the job in ERROR.
        """
        return False

    @abc.abstractmethod
    def close(self) -> None:
        """Stop all work and release the workers."""

    def health(self) -> tuple[bool, str]:
        """``(can run jobs now, why in words)`` for VOSI availability."""
        return True, f"{self.name} executor"
