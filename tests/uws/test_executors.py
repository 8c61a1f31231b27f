"""The executors alone, with a recording sink: outcomes, abort, lost workers."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.uws.helpers import heartbeat_stops
from uws.executors import Executor
from uws.executors.local import LocalExecutor
from uws.runner import WorkOrder, execute


class RecordingSink:
    """Records every report; ``started`` answers True (the job is wanted)."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.changed = threading.Condition()

    def _add(self, *event: Any) -> None:
        with self.changed:
            self.events.append(event)
            self.changed.notify_all()

    def on_started(self, job_id: str, worker: str) -> bool:
        self._add("started", job_id, worker)
        return True

    def on_progress(self, job_id: str, fraction: float | None, message: str) -> None:
        self._add("progress", job_id, fraction, message)

    def on_outcome(self, job_id: str, outcome: tuple[Any, ...]) -> None:
        self._add("outcome", job_id, outcome)

    def on_lost(self, job_id: str, reason: str) -> None:
        self._add("lost", job_id, reason)

    def wait_for(self, kind: str, job_id: str, timeout: float = 30) -> tuple[Any, ...]:
        def found() -> tuple[Any, ...] | None:
            return next((e for e in self.events if e[0] == kind and e[1] == job_id), None)

        with self.changed:
            assert self.changed.wait_for(found, timeout=timeout), (kind, job_id, self.events)
            event = found()
        assert event is not None
        return event


def order(tmp_path: Path, job_id: str, **params: str) -> WorkOrder:
    return WorkOrder(
        job_id=job_id,
        job_list="demo",
        runner="uws.example:demo",
        owner=None,
        parameters=tuple(params.items()),
        uploads=(),
        workdir=str(tmp_path / job_id),
    )


def _started(running: Any) -> Iterator[tuple[Any, RecordingSink]]:
    sink = RecordingSink()
    running.start(sink)
    yield running, sink
    running.close()


@pytest.fixture(params=["local-spawn", "dask"])
def executor(request: pytest.FixtureRequest) -> Iterator[tuple[Executor, RecordingSink]]:
    if request.param == "dask":
        from uws.executors.dask import DaskExecutor

        running: Executor = DaskExecutor(workers=2)
    else:
        running = LocalExecutor(workers=2, start_method="spawn")
    yield from _started(running)


def test_a_job_runs_and_reports(executor, tmp_path: Path) -> None:
    running, sink = executor
    running.submit(order(tmp_path, "echo1", task="echo", colour="red"))
    outcome = sink.wait_for("outcome", "echo1")[2]
    assert outcome[0] == "completed"
    assert [r.id for r in outcome[1]] == ["parameters"]
    assert (tmp_path / "echo1" / "params.txt").read_text() == "task=echo\ncolour=red"
    assert sink.wait_for("progress", "echo1")[2:] == (0.5, "echoing")
    assert sink.wait_for("started", "echo1")


def test_abort_stops_a_running_job(executor, tmp_path: Path) -> None:
    running, sink = executor
    running.submit(order(tmp_path, "long", task="sleep", seconds="60"))
    sink.wait_for("progress", "long")
    running.abort("long")
    heartbeat = tmp_path / "long" / "heartbeat"
    if isinstance(running, LocalExecutor):
        wait = threading.Event()
        for _ in range(400):  # the process is gone within a few seconds
            if "long" not in running.running():
                break
            wait.wait(0.05)
        assert "long" not in running.running()
        assert not any(e[0] in ("outcome", "lost") for e in sink.events)  # abort is silent
    else:
        assert sink.wait_for("outcome", "long")[2] == ("aborted",)
    heartbeat_stops(heartbeat)


@pytest.fixture
def one_slot() -> Iterator[tuple[LocalExecutor, RecordingSink]]:
    """A local executor with a single worker slot (forkserver, the default)."""
    yield from _started(LocalExecutor(workers=1))


def test_a_killed_local_worker_is_reported_lost(one_slot, tmp_path: Path) -> None:
    running, sink = one_slot
    running.submit(order(tmp_path, "victim", task="sleep", seconds="60"))
    message = sink.wait_for("progress", "victim")[3]
    os.kill(int(message.removeprefix("pid=")), signal.SIGKILL)
    reason = sink.wait_for("lost", "victim", timeout=5)[2]
    assert reason == "the worker process running the job was killed (SIGKILL)"
    running.submit(order(tmp_path, "next", task="echo"))  # the slot is free again
    assert sink.wait_for("outcome", "next")[2][0] == "completed"


def test_execute_turns_every_failure_into_an_outcome(tmp_path: Path) -> None:
    def silent(fraction: float | None, message: str = "") -> None:
        return None

    missing = WorkOrder("x", "demo", "no.such.module:run", None, (), (), str(tmp_path / "x"))
    outcome = execute(missing, silent)  # the operator's mistake: logged, not shown to the client
    assert outcome[0] == "failed" and outcome[1].startswith("INTERNAL_ERROR: ")
    assert "job x" in outcome[1] and "No module" not in outcome[1] and outcome[2] is None
    not_callable = WorkOrder("y", "demo", "uws.example:TASKS", None, (), (), str(tmp_path / "y"))
    assert execute(not_callable, silent)[:2] == (
        "failed",
        "job runner 'uws.example:TASKS' is not a function",
    )
    clean = order(tmp_path, "z", task="fail")
    assert execute(clean, silent)[:2] == ("failed", "the demo job failed as asked")


def test_still_running_recognises_live_job_processes_only(one_slot, tmp_path: Path) -> None:
    running, sink = one_slot
    running.submit(order(tmp_path, "alive", task="sleep", seconds="60"))
    worker = sink.wait_for("started", "alive")[2]
    sink.wait_for("progress", "alive")
    assert running.still_running("alive", worker)  # e.g. run by a sibling service process
    running.abort("alive")
    pid = int(worker.rsplit(":", 1)[1])
    for _ in range(200):
        if not running.still_running("alive", worker):
            break
        threading.Event().wait(0.05)
    assert not running.still_running("alive", worker), pid
    assert not running.still_running("x", f"local:{os.uname().nodename}:1")  # init: no job
    assert not running.still_running("x", "local:elsewhere:123")
    assert not running.still_running("x", "dask:tcp://10.0.0.1:8786")
    assert not running.still_running("x", None)


def test_a_dask_worker_that_leaves_mid_job_is_reported_lost(tmp_path: Path) -> None:
    """The worker running a job goes (here: killed, its nanny starts a new one; on SLURM:
    its batch job cancelled). The job is lost at once and not run again on the new
    worker -- the scheduler alone would retry the task, or wait for a worker forever."""
    from distributed import Client, LocalCluster

    from uws.executors.dask import DaskExecutor

    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        running = DaskExecutor(client=client)
        sink = RecordingSink()
        running.start(sink)
        try:
            running.submit(order(tmp_path, "doomed", task="sleep", seconds="60"))
            sink.wait_for("progress", "doomed")
            client.restart_workers(list(client.scheduler_info()["workers"]))  # kill, respawn
            reason = sink.wait_for("lost", "doomed", timeout=30)[2]
            assert "left the cluster" in reason
            assert not running.owns("doomed")
            started = [e for e in sink.events if e[0] == "started"]
            assert len(started) == 1  # never started again on the fresh worker
        finally:
            running.close()
