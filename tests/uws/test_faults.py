"""Faults: a worker killed with kill -9, the service stopped and restarted (gracefully or
with kill -9) with jobs in every phase, a WAIT in flight across the restart."""

from __future__ import annotations

import datetime as dt
import os
import signal
import threading
import time

import httpx
import pytest

from tests.uws.conftest import client, wait_until
from tests.uws.helpers import (
    create,
    job,
    phase,
    progress_pid,
    results,
    text,
    wait_final,
    wait_phase,
)
from tests.uws.test_conformance import _alive, _iso, _with_progress


def test_worker_killed_with_sigkill_puts_the_job_in_error(server_factory, uws_schema) -> None:
    server = server_factory("sqlite", "local")
    with client(server, uws_schema) as http:
        url = create(http, TASK="sleep", SECONDS=60, PHASE="RUN")
        wait_phase(http, url, "EXECUTING")
        pid = progress_pid(wait_until(lambda: _with_progress(http, url)))  # type: ignore[arg-type]
        assert pid is not None
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        document = wait_final(http, url)
        assert time.monotonic() - killed < 3
        assert text(document, "phase") == "ERROR"
        message = document.findtext(
            "{http://www.ivoa.net/xml/UWS/v1.0}errorSummary/"
            "{http://www.ivoa.net/xml/UWS/v1.0}message"
        )
        assert message == "WORKER_LOST: the worker process running the job was killed (SIGKILL)"
        # the service goes on: the next job runs normally
        assert (
            text(wait_final(http, create(http, TASK="echo", PHASE="RUN")), "phase") == "COMPLETED"
        )


@pytest.mark.parametrize(
    ("store", "stop_signal"),
    [("sqlite", signal.SIGTERM), ("postgres", signal.SIGKILL)],
    ids=["sqlite-graceful", "postgres-kill9"],
)
def test_restart_with_jobs_in_every_phase(server_factory, uws_schema, store, stop_signal) -> None:
    server = server_factory(store, "local", workers=1)
    with client(server, uws_schema) as http:
        pending = create(http, TASK="echo")
        completed = create(http, TASK="echo", PHASE="RUN")
        wait_final(http, completed)
        errored = create(http, TASK="fail", PHASE="RUN")
        wait_final(http, errored)
        aborted = create(http, TASK="sleep", SECONDS=60)
        http.post(aborted + "/phase", data={"PHASE": "ABORT"})
        archived = create(http, TASK="echo")
        soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.5)
        http.post(archived + "/destruction", data={"DESTRUCTION": _iso(soon)})
        assert text(job(http, archived, WAIT=10), "phase") == "ARCHIVED"
        executing = create(http, TASK="sleep", SECONDS=60, PHASE="RUN")
        wait_phase(http, executing, "EXECUTING")
        pid = progress_pid(wait_until(lambda: _with_progress(http, executing)))  # type: ignore[arg-type]
        queued = create(http, TASK="echo", PHASE="RUN")  # the only worker is busy
        assert phase(http, queued) == "QUEUED"
        before = {u: phase(http, u) for u in (pending, completed, errored, aborted, archived)}
        result_link = results(job(http, completed))["parameters"]

    # a WAIT is in flight on the PENDING job while the service goes down
    answer: dict[str, object] = {}

    def wait_on_pending() -> None:
        started = time.monotonic()
        try:
            response = httpx.get(pending, params={"WAIT": "-1"}, timeout=60)
            answer["status"], answer["body"] = response.status_code, response.text
        except httpx.HTTPError as error:
            answer["error"] = error
        answer["seconds"] = time.monotonic() - started

    waiter = threading.Thread(target=wait_on_pending)
    waiter.start()
    wait_until(lambda: _waiting(server), timeout=10, what="the WAIT to be held")
    server.restart(stop_signal)
    waiter.join(timeout=60)
    assert answer["seconds"] < 20  # released at shutdown, not held to the 30 s maximum
    if stop_signal == signal.SIGTERM:
        assert answer["status"] == 200 and "PENDING" in str(answer["body"])
    else:  # the process vanished: the client sees a broken connection, not a hang
        assert "error" in answer

    assert pid is not None
    wait_until(lambda: not _alive(pid), timeout=10, what="the old worker to be gone")
    with client(server, uws_schema) as http:
        assert {u: phase(http, u) for u in before} == before
        assert http.get(result_link).status_code == 200
        lost = wait_final(http, executing)
        assert text(lost, "phase") == "ERROR"
        assert "stopped or restarted while the job was EXECUTING" in (
            lost.findtext(
                "{http://www.ivoa.net/xml/UWS/v1.0}errorSummary/"
                "{http://www.ivoa.net/xml/UWS/v1.0}message"
            )
            or ""
        )
        assert text(wait_final(http, queued), "phase") == "COMPLETED"  # re-queued and run
        # a WAIT after the restart blocks and is woken normally
        http.post(pending + "/phase", data={"PHASE": "RUN"})
        assert text(wait_final(http, pending), "phase") == "COMPLETED"


def _waiting(server) -> bool:  # type: ignore[no-untyped-def]
    """Whether the server holds a WAIT now (the test server's counter endpoint)."""
    response = httpx.get(server.url + "/_uws/waiting", timeout=5)
    return response.status_code == 200 and int(response.text) > 0


def test_replicas_on_one_postgres_store_wake_each_others_waits(
    request, workroot, uws_schema
) -> None:
    """Two service processes, one PostgreSQL store: a WAIT held by one replica is answered
    when the other changes the job (LISTEN/NOTIFY), not at the end of the WAIT."""
    from pathlib import Path

    from tests.uws.conftest import LiveServer

    pg = request.getfixturevalue("postgres")
    store = pg.create_database("uws_replicas")
    shared = Path(workroot) / "replicas"
    first = LiveServer(store, "local", shared).start()
    second = LiveServer(store, "local", shared).start()
    try:
        with client(first, uws_schema) as one, client(second, uws_schema) as two:
            url = create(one, TASK="echo")
            answer: dict[str, float] = {}

            def wait_on_first() -> None:
                document = job(one, url, WAIT=-1)  # PENDING: blocks up to 30 s
                answer["phase"] = text(document, "phase")  # type: ignore[assignment]
                answer["at"] = time.monotonic()

            waiter = threading.Thread(target=wait_on_first)
            waiter.start()
            wait_until(lambda: _waiting(first), timeout=10, what="the WAIT to be held")
            other_url = url.replace(first.url, second.url)
            changed = time.monotonic()
            assert two.post(other_url + "/phase", data={"PHASE": "RUN"}).status_code == 303
            waiter.join(timeout=40)
            assert answer["phase"] != "PENDING"
            assert answer["at"] - changed < 2  # woken by the other replica's change
            assert text(wait_final(one, url), "phase") == "COMPLETED"
    finally:
        first.stop()
        second.stop()
