"""Run a job's chunks where they run fastest: Dask tasks, forked processes, or in turn.

One loop for every chunked job (both ingest doors, classification), three places:

* A runner under the ``dask`` executor is itself a task on a Dask worker; it
  fans its chunks out to the cluster through ``worker_client`` (which secedes
  from the worker's thread pool while it waits, so a cluster of one worker does
  not deadlock). Chunks there run with the allocator settings of a plain
  process (:mod:`uws.executors.allocator`).
* Given a pool of :func:`processes` (``alvo ingest tree --workers``), chunks
  run in processes forked from a fork server that imported the chunk's code
  once.
* Otherwise they run one after another in the caller's process.

Results come back in input order with at most ``window`` chunks in flight, as
they are needed, so the caller stores chunk by chunk with bounded memory, and
the chunks themselves may come from a generator that reads what is already
stored (a re-run skipping what it has).
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import importlib
import itertools
import multiprocessing
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

from uws.executors.allocator import job_allocator

T = TypeVar("T")
R = TypeVar("R")


def on_dask_worker() -> bool:
    """Whether this runs in a task on a Dask worker (which imported Dask long before: not
    importing it here saves a local run 0.2 s of CPU)."""
    if "distributed" not in sys.modules:
        return False
    try:  # dask.distributed (0.3 s to import): imported here only on a Dask worker
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return False
    return True


@contextlib.contextmanager
def processes(workers: int, preload: Sequence[str]) -> Iterator[Executor | None]:
    """``workers`` processes for :func:`map_chunks`, or None (in turn) for one or fewer.

    They are forked from a clean fork server (never from this process, which
    may hold threads or TensorFlow) that imports ``preload`` once for all of
    them (~0.45 s of CPU each otherwise), or spawned where there is none
    (Windows). They start booting at once, while the caller does its own
    preparation (reading what a dataset holds already).
    """
    if workers <= 1:
        yield None
        return
    context: multiprocessing.context.BaseContext
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(list(preload))  # no effect once a server runs
    else:
        context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        for _ in range(workers):
            pool.submit(_boot, tuple(preload))
        yield pool


def _boot(modules: Sequence[str]) -> None:
    """Import ``modules`` in a worker (already there when forked from the fork server)."""
    for module in modules:
        importlib.import_module(module)


def _chunk_task(function: Callable[..., R], chunk: T, *args: Any) -> R:
    with job_allocator():
        return function(chunk, *args)


def _key(function: Callable[..., Any]) -> str:
    """Named after the chunk's function, not the wrapper: the dashboard's task stream and
    ``get_task_stream`` show what runs (``_classify_rows-<hex>``)."""
    return f"{getattr(function, '__name__', 'chunk')}-{uuid.uuid4().hex}"


def map_chunks(
    function: Callable[..., R],
    chunks: Iterable[T],
    *args: Any,
    window: int = 8,
    pool: Executor | None = None,
) -> Iterator[R]:
    """``function(chunk, *args)`` for each chunk, yielded in order.

    On a Dask worker the chunks are cluster tasks; else on ``pool`` (see
    :func:`processes`) when given; else in turn, here.
    """
    if on_dask_worker():
        from distributed import worker_client

        with worker_client() as client:

            def task(chunk: T) -> Future[R]:
                return client.submit(  # type: ignore[no-any-return]
                    _chunk_task, function, chunk, *args, key=_key(function), pure=False
                )

            yield from _in_order(task, chunks, window)
    elif pool is not None:
        yield from _in_order(lambda chunk: pool.submit(function, chunk, *args), chunks, window)
    else:
        for chunk in chunks:
            yield function(chunk, *args)


def _in_order(submit: Callable[[T], Future[R]], chunks: Iterable[T], window: int) -> Iterator[R]:
    """Results of ``submit`` (a future per chunk) in input order, ``window`` in flight."""
    remaining = iter(chunks)
    in_flight = collections.deque(submit(chunk) for chunk in itertools.islice(remaining, window))
    while in_flight:
        result = in_flight.popleft().result()
        for chunk in itertools.islice(remaining, 1):  # keep `window` chunks in flight
            in_flight.append(submit(chunk))
        yield result
