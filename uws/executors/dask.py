"""Dask executor: each job is one task on a ``dask.distributed`` cluster.

The task reports "started" and progress through a distributed ``Queue`` that a
client-side thread reads (a blocking ``get``, woken by a "stop" message at
close; no timeouts, no polling), and returns its
outcome as the future's result. A Dask thread cannot be killed, so abort is
cooperative: :meth:`DaskExecutor.abort` cancels the future (enough for a job
still queued) and sets a distributed ``Event`` that the job's ``progress()``
checks, raising :class:`uws.runner.JobAbortedError` in the runner at its next
report. A worker that leaves the cluster while it runs a job (killed, out of
memory, its batch job cancelled with ``scancel`` or past its walltime) is
reported as a lost job at once -- the executor follows the scheduler's
``remove-worker`` events -- and the job's task is cancelled rather than left
for the scheduler to retry: with no worker left it would wait for one forever
(the job EXECUTING forever), and a retry elsewhere would run the job twice. A
task that fails on its own (``KilledWorker`` after the scheduler's retries) is
reported as lost too.

The cluster is a scheduler ``address``, a ready ``client``, a ``cluster``
factory called at :meth:`DaskExecutor.start` (a dask-jobqueue cluster whose
workers are batch jobs, :mod:`uws.executors.slurm`) or, with none of these, an
in-process ``LocalCluster``.

Inside a runner, ``distributed.worker_client()`` gives a client to fan the work
out into more Dask tasks. Jobs run with a plain process's malloc thresholds, not
the nanny's (:mod:`uws.executors.allocator`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

from uws.executors.allocator import job_allocator
from uws.executors.base import ExecutionSink, Executor
from uws.runner import JobAbortedError, WorkOrder, execute

log = logging.getLogger(__name__)


def _abort_event_name(job_id: str) -> str:
    return f"uws-abort-{job_id}"


class DaskExecutor(Executor):
    """Run jobs on a Dask cluster: a scheduler ``address``, a ready ``client``, a
    ``cluster`` factory (made at start, closed at close), or (none of them) an
    in-process ``LocalCluster`` with ``workers`` threads."""

    name = "dask"

    def __init__(
        self,
        address: str | None = None,
        client: Any = None,
        workers: int = 2,
        cluster: Callable[[], Any] | None = None,
    ) -> None:
        self.address = address
        self.workers = max(1, workers)
        self._client = client
        self._own_client = client is None
        self._make_cluster = cluster
        self._cluster: Any = None
        self._futures: dict[str, Any] = {}
        self._worker_of: dict[str, str] = {}  # job id -> address of the worker running it
        self._lost: set[str] = set()  # reported lost: their task's end says nothing more
        self._lock = threading.Lock()
        self._queue_name = f"uws-events-{uuid.uuid4().hex}"
        self._queue: Any = None
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._sink: ExecutionSink | None = None

    @property
    def client(self) -> Any:
        return self._client

    def health(self) -> tuple[bool, str]:
        """Healthy while the Dask client is connected to its scheduler."""
        status = getattr(self._client, "status", None)
        if status != "running" or self._closed.is_set():
            return False, f"dask executor not connected to its scheduler (client {status})"
        return True, "dask executor connected"

    def start(self, sink: ExecutionSink) -> None:
        from distributed import Client, LocalCluster, Queue

        self._sink = sink
        if self._client is None:
            if self.address:
                self._client = Client(self.address)
            elif self._make_cluster is not None:
                self._cluster = self._make_cluster()
                self._client = Client(self._cluster)
            else:
                self._cluster = LocalCluster(
                    n_workers=1,
                    threads_per_worker=self.workers,
                    processes=False,
                    dashboard_address=None,
                )
                self._client = Client(self._cluster)
        self._queue = Queue(self._queue_name, client=self._client)
        self._client.subscribe_topic("all", self._on_cluster_event)
        self._thread = threading.Thread(target=self._listen, name="uws-dask-events", daemon=True)
        self._thread.start()

    def submit(self, order: WorkOrder) -> None:
        future = self._client.submit(
            _dask_task, order, self._queue_name, key=f"uws-{order.job_id}", pure=False, retries=0
        )
        with self._lock:
            self._futures[order.job_id] = future
        future.add_done_callback(functools.partial(self._done, order.job_id))

    def abort(self, job_id: str, worker: str | None = None) -> None:
        from distributed import Event

        with contextlib.suppress(Exception):
            Event(_abort_event_name(job_id), client=self._client).set()
        with self._lock:
            future = self._futures.pop(job_id, None)
            self._worker_of.pop(job_id, None)
        if future is not None:
            with contextlib.suppress(Exception):
                future.cancel()

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            job_ids = list(self._futures)
        for job_id in job_ids:
            self.abort(job_id)
        if self._queue is not None:
            with contextlib.suppress(Exception):
                self._queue.put(("stop",))  # wake the listener
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._own_client and self._client is not None:
            self._client.close()
            if self._cluster is not None:
                self._cluster.close()  # a batch system's cluster cancels its worker jobs

    # -- callbacks ------------------------------------------------------------------------

    def _listen(self) -> None:
        while not self._closed.is_set():
            try:
                message = self._queue.get()  # blocks; close() sends ("stop",)
            except Exception:
                if self._closed.is_set():
                    return
                log.exception("UWS Dask event queue failed")
                continue
            self._dispatch(message)

    def _dispatch(self, message: tuple[Any, ...]) -> None:
        assert self._sink is not None
        if message[0] == "stop":
            return
        kind, job_id = message[0], message[1]
        if kind == "started":
            with self._lock:
                if job_id in self._futures:
                    self._worker_of[job_id] = message[2]
            if not self._sink.on_started(job_id, f"dask:{message[2]}"):
                self.abort(job_id)
        elif kind == "progress":
            self._sink.on_progress(job_id, message[2], message[3])

    def _on_cluster_event(self, event: tuple[float, Any]) -> None:
        """The scheduler's event stream (on the client's event loop: hand off, never block)."""
        message = event[1]
        if isinstance(message, dict) and message.get("action") == "remove-worker":
            address = str(message.get("worker", ""))
            with self._lock:
                jobs = [job for job, worker in self._worker_of.items() if worker == address]
            for job_id in jobs:
                threading.Thread(
                    target=self._worker_left, args=(job_id, address), daemon=True
                ).start()

    def _worker_left(self, job_id: str, address: str) -> None:
        """The worker running ``job_id`` left the cluster: the job is lost, its task cancelled."""
        assert self._sink is not None
        with self._lock:
            future = self._futures.pop(job_id, None)
            self._worker_of.pop(job_id, None)
            if future is None or self._closed.is_set():
                return
            self._lost.add(job_id)
        log.warning("UWS job %s: its Dask worker %s left the cluster", job_id, address)
        self._sink.on_lost(
            job_id,
            "the Dask worker running the job left the cluster (killed, out of memory, or its "
            f"batch job cancelled or out of time); the service log holds the details under job "
            f"{job_id}",
        )
        with contextlib.suppress(Exception):
            future.cancel()  # not retried elsewhere: the job ended

    def _done(self, job_id: str, future: Any) -> None:
        assert self._sink is not None
        with self._lock:
            if job_id in self._lost:  # reported when its worker left
                self._lost.discard(job_id)
                return
        try:
            if self._closed.is_set():
                return
            status = future.status
            if status == "cancelled":
                self._sink.on_outcome(job_id, ("aborted",))
            elif status == "error":
                error = future.exception()  # its text names workers and addresses: log only
                log.warning("UWS job %s: its Dask task failed: %r", job_id, error)
                self._sink.on_lost(
                    job_id,
                    f"the Dask task running the job failed ({type(error).__name__}); "
                    f"the service log holds the details under job {job_id}",
                )
            else:
                self._sink.on_outcome(job_id, future.result())
        finally:  # forget the job only once it is reported
            with self._lock:
                if self._futures.get(job_id) is future:
                    del self._futures[job_id]
                    self._worker_of.pop(job_id, None)

    def owns(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._futures


def _dask_task(order: WorkOrder, queue_name: str) -> tuple[Any, ...]:
    """Runs on a Dask worker: report start and progress, honour the abort flag."""
    from distributed import Event, Queue, get_worker

    events = Queue(queue_name)
    aborted = Event(_abort_event_name(order.job_id))
    if aborted.is_set():
        return ("aborted",)
    events.put(("started", order.job_id, get_worker().address))

    def progress(fraction: float | None, message: str = "") -> None:
        if aborted.is_set():
            raise JobAbortedError(order.job_id)
        value = None if fraction is None else min(1.0, max(0.0, float(fraction)))
        events.put(("progress", order.job_id, value, str(message)))

    with job_allocator():
        return execute(order, progress)
