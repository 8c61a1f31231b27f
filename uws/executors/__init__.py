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
  Its workers may be SLURM batch jobs (:mod:`uws.executors.slurm`, kind ``slurm``).

Executors never touch the job store: they call the :class:`ExecutionSink`
(implemented by :class:`uws.service.UWSService`) from their own threads, and the
sink decides -- by compare-and-set in the store -- whether a report still
matters (a job aborted a moment ago ignores its worker's late "completed").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from uws.executors.base import ExecutionSink, Executor

if TYPE_CHECKING:
    from uws.executors.slurm import SlurmWorkers

__all__ = ["ExecutionSink", "Executor", "make_executor"]


def make_executor(
    kind: str, workers: int = 2, address: str = "", slurm: SlurmWorkers | None = None
) -> Executor:
    """``local`` (process per job), ``dask`` (``address`` of a scheduler, or a LocalCluster)
    or ``slurm`` (Dask workers as SLURM batch jobs, ``slurm`` says which)."""
    if kind == "local":
        from uws.executors.local import LocalExecutor

        return LocalExecutor(workers=workers)
    if kind == "dask":
        from uws.executors.dask import DaskExecutor

        return DaskExecutor(address=address or None, workers=workers)
    if kind == "slurm":
        from uws.executors.dask import DaskExecutor
        from uws.executors.slurm import SlurmWorkers

        return DaskExecutor(workers=workers, cluster=(slurm or SlurmWorkers()).cluster)
    raise ValueError(f"unknown executor {kind!r}: use 'local', 'dask' or 'slurm'")
