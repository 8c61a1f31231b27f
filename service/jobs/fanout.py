"""Run a job's chunks where the job runs: as Dask tasks on a cluster, else in turn.

A runner under the ``dask`` executor is itself a task on a Dask worker; it
fans its chunks out to the cluster through ``worker_client`` (which secedes
from the worker's thread pool while it waits, so a cluster of one worker does
not deadlock). Under the local executor the chunks run one after another in
the job's own process. Results come back in order, as they are needed, so the
runner appends chunk by chunk with bounded memory. Chunks on a worker run with
the allocator settings of a plain process (:mod:`uws.executors.allocator`).
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from uws.executors.allocator import job_allocator

T = TypeVar("T")
R = TypeVar("R")


def on_dask_worker() -> bool:
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return False
    return True


def _chunk_task(function: Callable[..., R], chunk: T, *args: Any) -> R:
    with job_allocator():
        return function(chunk, *args)


def map_chunks(
    function: Callable[..., R], chunks: Sequence[T], *args: Any, window: int = 8
) -> Iterator[R]:
    """``function(chunk, *args)`` for each chunk, yielded in order."""
    if not on_dask_worker():
        for chunk in chunks:
            yield function(chunk, *args)
        return
    from distributed import worker_client

    with worker_client() as client:
        remaining = iter(chunks)
        in_flight = collections.deque(
            client.submit(_chunk_task, function, chunk, *args, pure=False)
            for chunk in itertools.islice(remaining, window)
        )
        while in_flight:
            result = in_flight.popleft().result()
            for chunk in itertools.islice(remaining, 1):  # keep `window` chunks in flight
                in_flight.append(client.submit(_chunk_task, function, chunk, *args, pure=False))
            yield result
