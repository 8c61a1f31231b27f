"""Local executor: one fresh process per job, at most ``workers`` at a time.

Why a process per job rather than a long-lived pool: abort and the
executionDuration limit must stop the work for real, and the only reliable way
to stop arbitrary Python (a TensorFlow fit, a C extension in a loop) is to kill
its process. With a process per job, killing one never takes another job down,
and a job that dies (``kill -9``, the OOM killer) is seen at once through the
process sentinel and reported as lost. Processes come from ``forkserver`` (or
``spawn``): a clean parent that never imported TensorFlow, so nothing unsafe is
inherited across fork.

Workers die with the service, however it dies. A forkserver's children are the
fork server's, not the service's, and each holds the fork server's "alive" pipe
open, so after a ``kill -9`` of the service neither the worker nor the fork
server (nor the resource tracker, whose pipe both hold) would ever notice. So
each worker gets a *lifeline*: the read end of a pipe whose only write end stays
in the service process. A watchdog thread in the worker blocks on it; when the
service is gone, for any reason, the read sees end-of-file and the worker kills
its own process group (itself and any children it started). With the workers
gone the fork server and the resource tracker see their pipes close and exit.
On Linux ``PR_SET_PDEATHSIG`` also kills a worker whose fork server dies.

Each worker leads its own process group, so ABORT (and the executionDuration
limit) kills the job's children with it.

One monitor thread waits (``multiprocessing.connection.wait``) on every job's
pipe and process sentinel plus a wake-up pipe: no polling.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import dataclasses
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from uws.executors.base import ExecutionSink, Executor
from uws.runner import WorkOrder, execute

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


@dataclasses.dataclass
class _Slot:
    order: WorkOrder
    process: Any  # multiprocessing process (BaseProcess lacks sentinel in stubs)
    conn: Connection
    aborted: bool = False
    reported: bool = False


class LocalExecutor(Executor):
    """Run each job in its own process, ``workers`` at a time.

    ``start_method`` is ``"forkserver"`` (fast, default) or ``"spawn"``;
    ``preload`` lists modules the fork server imports once (only fork-safe ones:
    never TensorFlow).
    """

    name = "local"

    def __init__(
        self,
        workers: int = 2,
        start_method: str = "forkserver",
        preload: Sequence[str] = ("uws.runner",),
    ) -> None:
        if start_method not in ("forkserver", "spawn"):
            raise ValueError("start_method must be 'forkserver' or 'spawn' (fork is not safe)")
        self.workers = max(1, workers)
        self._context: Any = multiprocessing.get_context(start_method)
        if start_method == "forkserver":
            self._context.set_forkserver_preload(list(preload))
        self._pending: collections.deque[WorkOrder] = collections.deque()
        self._running: dict[str, _Slot] = {}
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = multiprocessing.Pipe(duplex=False)
        # never written to: its end-of-file tells the workers the service is gone
        self._lifeline_r, self._lifeline_w = self._context.Pipe(duplex=False)
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._sink: ExecutionSink | None = None
        self._host = socket.gethostname()

    # -- interface -------------------------------------------------------------------------

    def start(self, sink: ExecutionSink) -> None:
        self._sink = sink
        self._thread = threading.Thread(
            target=self._monitor, name="uws-local-executor", daemon=True
        )
        self._thread.start()

    def submit(self, order: WorkOrder) -> None:
        with self._lock:
            self._pending.append(order)
        self._wake()

    def abort(self, job_id: str, worker: str | None = None) -> None:
        with self._lock:
            for order in list(self._pending):
                if order.job_id == job_id:
                    self._pending.remove(order)
            slot = self._running.get(job_id)
            if slot is not None:
                slot.aborted = True
                _kill(slot.process)
                return
        pid = self._live_worker_pid(worker)
        if pid is not None:  # started by an earlier or a sibling service process
            _kill_group(pid)

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            self._pending.clear()
            for slot in self._running.values():
                slot.aborted = True
                _kill(slot.process)
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            for slot in self._running.values():
                slot.process.join(timeout=5)
            self._running.clear()
        self._lifeline_w.close()  # any job process still alive now ends itself

    def owns(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._running or any(o.job_id == job_id for o in self._pending)

    def still_running(self, job_id: str, worker: str | None) -> bool:
        """True if ``worker`` is a live job process on this host (a sibling service
        process runs it); a crashed service's workers die with it (their lifeline)."""
        return self._live_worker_pid(worker) is not None

    def _live_worker_pid(self, worker: str | None) -> int | None:
        """The pid of ``worker`` (``local:host:pid``) if it is a live job process here."""
        host, _, pid = (worker or "").removeprefix("local:").rpartition(":")
        if host != self._host or not pid.isdigit():
            return None
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return None
        alive = b"multiprocessing" in command and state not in ("Z", "X")
        # a job process leads its own process group; a fork server or a reused pid does not
        return int(pid) if alive and _leads_group(int(pid)) else None

    def health(self) -> tuple[bool, str]:
        """Healthy while the monitor thread that launches job processes runs."""
        if self._thread is None or not self._thread.is_alive() or self._closed.is_set():
            return False, "local executor not running (service starting or stopping)"
        return True, f"local executor, {len(self.running())} of {self.workers} workers busy"

    def running(self) -> list[str]:
        """Ids of the jobs whose processes are alive now."""
        with self._lock:
            return list(self._running)

    # -- monitor thread --------------------------------------------------------------------

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send_bytes(b"!")

    def _monitor(self) -> None:
        while not self._closed.is_set():
            try:
                self._launch()
                with self._lock:
                    conns = {slot.conn: slot for slot in self._running.values()}
                    sentinels = {slot.process.sentinel: slot for slot in self._running.values()}
                ready = multiprocessing.connection.wait([self._wake_r, *conns, *sentinels])
                for handle in ready:
                    if handle is self._wake_r:
                        while self._wake_r.poll():
                            self._wake_r.recv_bytes()
                    elif handle in conns:
                        self._receive(conns[handle])
                    elif handle in sentinels:
                        self._reap(sentinels[handle])
            except Exception:  # the monitor must survive anything one job does
                log.exception("UWS local executor monitor error")

    def _launch(self) -> None:
        while True:
            with self._lock:
                if self._closed.is_set() or not self._pending or len(self._running) >= self.workers:
                    return
                order = self._pending.popleft()
                parent_end, child_end = self._context.Pipe(duplex=False)
                process = self._context.Process(
                    target=_child_main,
                    args=(order, child_end, self._lifeline_r),
                    name=f"uws-job-{order.job_id}",
                )
                process.start()
                child_end.close()
                self._running[order.job_id] = _Slot(order, process, parent_end)
            assert self._sink is not None
            if not self._sink.on_started(order.job_id, f"local:{self._host}:{process.pid}"):
                self.abort(order.job_id)

    def _receive(self, slot: _Slot) -> None:
        try:
            message = slot.conn.recv()
        except (EOFError, OSError):
            return  # the process is gone; its sentinel will say so
        self._dispatch(slot, message)

    def _dispatch(self, slot: _Slot, message: tuple[Any, ...]) -> None:
        assert self._sink is not None
        job_id = slot.order.job_id
        if message[0] == "progress":
            self._sink.on_progress(job_id, message[1], message[2])
        elif message[0] == "outcome":
            slot.reported = True
            if not slot.aborted:
                self._sink.on_outcome(job_id, message[1])

    def _reap(self, slot: _Slot) -> None:
        with contextlib.suppress(EOFError, OSError):
            while slot.conn.poll():
                self._dispatch(slot, slot.conn.recv())
        slot.process.join(timeout=5)
        slot.conn.close()
        if not slot.reported and not slot.aborted:  # report while still owning the job
            assert self._sink is not None
            self._sink.on_lost(slot.order.job_id, _death(slot.process.exitcode))
        with self._lock:
            self._running.pop(slot.order.job_id, None)


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"the worker process running the job was killed ({name})"
    return f"the worker process running the job exited unexpectedly (exit status {exitcode})"


def _kill(process: Any) -> None:
    """Kill a job's process and its process group (the children the job started)."""
    with contextlib.suppress(OSError, AttributeError, ValueError):
        if process.is_alive():
            _kill_group(process.pid)
            process.kill()  # in case it had not made its own group yet


def _leads_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except (OSError, AttributeError):
        return False


def _kill_group(pid: int) -> None:
    """SIGKILL the process group ``pid`` leads (a job process and its children)."""
    with contextlib.suppress(OSError):
        if _leads_group(pid):
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent (the fork server) dies."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _die_with_service(lifeline: Connection) -> None:
    """Watchdog thread of a job process: wait for the service to vanish, then kill
    this process group. Nobody ever writes to the lifeline, so the wait ends only
    when its last write end -- held by the service process alone -- is closed."""
    with contextlib.suppress(EOFError, OSError):
        while True:
            lifeline.poll(None)
            lifeline.recv_bytes()  # raises EOFError once the service is gone
    if hasattr(os, "killpg") and os.getpgid(0) == os.getpid():  # never the service's group
        with contextlib.suppress(OSError):
            os.killpg(os.getpid(), signal.SIGKILL)
    os._exit(1)


def _child_main(order: WorkOrder, conn: Connection, lifeline: Connection) -> None:
    _die_with_parent()
    if hasattr(os, "setpgid"):
        os.setpgid(0, 0)  # lead a process group: abort kills the job's children too
    threading.Thread(target=_die_with_service, args=(lifeline,), daemon=True).start()
    os.environ.setdefault("UWS_JOB_ID", order.job_id)

    def progress(fraction: float | None, message: str = "") -> None:
        value = None if fraction is None else min(1.0, max(0.0, float(fraction)))
        conn.send(("progress", value, str(message)))

    outcome = execute(order, progress)
    conn.send(("outcome", outcome))
    conn.close()
