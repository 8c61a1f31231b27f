"""Executors run work orders somewhere else and report back through a sink.

Two implementations share the :class:`Executor` interface:

* :class:`uws.executors.local.LocalExecutor` -- one fresh OS process per job
  (``forkserver`` or ``spawn``, never plain ``fork``: TensorFlow and CUDA are
  not fork-safe), at most ``workers`` at once. Abort kills the process and the
  children it started; job processes die with the service (even ``kill -9``);
  a process that dies (``kill -9``, out of memory) is noticed at once through
  its sentinel.
* :class:`uws.executors.dask.DaskExecutor` -- a ``dask.distributed`` client;
  each job is one task (which may fan out with ``distributed.worker_client``).
  Abort cancels the future and sets a distributed Event that the job's
  ``progress()`` checks, so a running task stops at its next progress report.

Executors never touch the job store: they call the :class:`ExecutionSink`
(implemented by :class:`uws.service.UWSService`) from their own threads, and the
sink decides -- by compare-and-set in the store -- whether a report still
matters (a job aborted a moment ago ignores its worker's late "completed").
"""

from __future__ import annotations

import abc
from typing import Protocol

from uws.runner import Outcome, WorkOrder

__all__ = ["ExecutionSink", "Executor", "make_executor"]


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


def make_executor(kind: str, workers: int = 2, address: str = "") -> Executor:
    """``local`` (process per job) or ``dask`` (``address`` of a scheduler, or a LocalCluster)."""
    if kind == "local":
        from uws.executors.local import LocalExecutor

        return LocalExecutor(workers=workers)
    if kind == "dask":
        from uws.executors.dask import DaskExecutor

        return DaskExecutor(address=address or None, workers=workers)
    raise ValueError(f"unknown executor {kind!r}: use 'local' or 'dask'")
