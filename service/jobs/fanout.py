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
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from uws.executors.allocator import job_allocator

T = TypeVar("T")
R = TypeVar("R")


def on_dask_worker() -> bool:
    try:  # dask.distributed (0.3 s to import) only once a job asks where it runs
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return False
    return True


def _chunk_task(function: Callable[..., R], chunk: T, *args: Any) -> R:
    with job_allocator():
        return function(chunk, *args)


def _key(function: Callable[..., Any]) -> str:
    """Named after the chunk's function, not the wrapper: the dashboard's task stream and
    ``get_task_stream`` show what runs (``_classify_rows-<hex>``)."""
    return f"{getattr(function, '__name__', 'chunk')}-{uuid.uuid4().hex}"


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

        def submit(chunk: T) -> Any:
            return client.submit(
                _chunk_task, function, chunk, *args, key=_key(function), pure=False
            )

        remaining = iter(chunks)
        in_flight = collections.deque(
            submit(chunk) for chunk in itertools.islice(remaining, window)
        )
        while in_flight:
            result = in_flight.popleft().result()
            for chunk in itertools.islice(remaining, 1):  # keep `window` chunks in flight
                in_flight.append(submit(chunk))
            yield result
