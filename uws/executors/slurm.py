"""Dask workers as SLURM batch jobs: the cluster of a :class:`uws.executors.dask.DaskExecutor`
on a machine where jobs go through ``sbatch``.

:class:`SlurmWorkers` says how many worker jobs to keep and what each asks for;
its :meth:`SlurmWorkers.cluster` is the executor's ``cluster`` factory. It makes a
dask-jobqueue ``SLURMCluster``: the Dask scheduler runs in the calling process
(the UWS service), each worker is one ``sbatch`` job running ``python -m
distributed.cli.dask_worker`` with the service's own interpreter and
environment (SLURM's default ``--export=ALL``: the same ``PYTHONPATH``, the
same ``ALVO_*`` settings), so the machines must share the file system the jobs'
files live on. Closing the cluster cancels the worker jobs.

A worker job cancelled (``scancel``), preempted or past its walltime takes its
running UWS job with it, which ends in ERROR with the lost-worker reason
(:class:`uws.executors.dask.DaskExecutor`). The worker jobs are named
``job_name`` in ``squeue``; their logs are in ``log_directory``.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class SlurmWorkers:
    """``jobs`` SLURM jobs, one Dask worker each with ``cores`` threads and ``memory``."""

    jobs: int = 1
    cores: int = 2
    memory: str = "4GiB"
    partition: str = ""
    walltime: str = "24:00:00"
    log_directory: str = ""
    job_name: str = "uws-worker"

    def cluster(self) -> Any:
        """A started ``SLURMCluster`` with :attr:`jobs` worker jobs submitted."""
        try:
            from dask_jobqueue import SLURMCluster
        except ImportError as missing:
            raise RuntimeError(
                "SLURM workers need dask-jobqueue: pip install 'alvo[slurm]' (or dask-jobqueue)"
            ) from missing

        cluster = SLURMCluster(
            cores=self.cores,
            processes=1,
            memory=self.memory,
            queue=self.partition or None,
            walltime=self.walltime,
            job_name=self.job_name,
            log_directory=self.log_directory or None,
        )
        cluster.scale(jobs=self.jobs)
        return cluster
