"""Processes die with the service, ABORT kills for real, a restart resolves every job.

Issue 12: after ``kill -9`` of ``alvo serve`` its fork server, resource tracker
and running job process lived on (a forkserver child's parent is the fork
server, and it keeps the fork server's "alive" pipe open), the restarted
service left the job EXECUTING, and ABORT could mark a job ABORTED while its
process ran on. Every check here looks at the operating system (psutil), and
every wait is bounded by a deadline.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from service.net.uws_client import job_status, submit
from tests.peers.postgres import postgres  # noqa: F401  (the session fixture)
from tests.security.processes import (
    HoldingServer,
    ServiceProcess,
    alive,
    alvo_serve,
    family,
    free_port,
    role,
    survivors,
    wait_until,
)
from uws.service import SERVICE_RESTARTED

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="psutil + /proc")

#: Seconds allowed for a whole process tree to vanish after kill -9 (it takes < 1 s).
GONE_WITHIN = 30


def status(job_url: str):  # type: ignore[no-untyped-def]
    return job_status(job_url, httpx.get(job_url, timeout=30).content)


def running_jobs(base: str, job_list: str) -> list[str]:
    """Ids of the list's jobs that claim to be EXECUTING or QUEUED."""
    answer = httpx.get(f"{base}/{job_list}", params=[("PHASE", "EXECUTING"), ("PHASE", "QUEUED")])
    answer.raise_for_status()
    return [part.split('"')[0] for part in answer.text.split('id="')[1:]]


def family_service(root: Path, store: str) -> ServiceProcess:
    port = free_port()
    command = [
        sys.executable, "-m", "tests.security.family_app", "--store", store,
        "--workdir", str(root / "jobs"), "--port", str(port),
    ]  # fmt: skip
    return ServiceProcess(command, {}, port, root / f"family-{port}.log")


def start_family_job(service: ServiceProcess, root: Path) -> tuple[str, psutil.Process]:
    """A running job whose child process is up: (job URL, the child)."""
    job_url = submit(f"{service.url}/family", [])
    child_pid = root / "jobs" / job_url.rsplit("/", 1)[1] / "child.pid"
    wait_until(child_pid.is_file, 60, "the job to start its child")
    pid = int(wait_until(lambda: child_pid.read_text().strip(), 10, "the child's pid"))  # type: ignore[arg-type]
    return job_url, psutil.Process(pid)


def test_kill9_leaves_no_process_and_restart_resolves_the_job(tmp_path):
    store = f"sqlite:///{tmp_path / 'uws.sqlite'}"
    service = family_service(tmp_path, store).start("/family")
    try:
        job_url, child = start_family_job(service, tmp_path)
        tree = family(service.pid)
        roles = sorted(role(p) for p in tree)
        assert {"forkserver", "resource tracker", "job", "job child"} <= set(roles), roles
        assert child in tree

        service.kill9()
        wait_until(lambda: not survivors(tree), GONE_WITHIN, "the service's processes to die")
        assert not alive(child)

        restarted = family_service(tmp_path, store)
        started = time.monotonic()
        restarted.start("/family")
        up = time.monotonic()
        try:
            job_url = job_url.replace(service.url, restarted.url)
            final = wait_until(
                lambda: (s := status(job_url)).finished and s, 30, "the restart to resolve the job"
            )
            assert final.phase == "ERROR"  # type: ignore[attr-defined]
            assert final.error.startswith(f"{SERVICE_RESTARTED}: ")  # type: ignore[attr-defined]
            assert running_jobs(restarted.url, "family") == []
            print(f"uws: up in {up - started:.2f} s, resolved {time.monotonic() - up:.2f} s later")
        finally:
            restarted.stop()
    finally:
        service.stop()


def test_abort_kills_the_job_process_and_its_children(tmp_path):
    service = family_service(tmp_path, f"sqlite:///{tmp_path / 'uws.sqlite'}").start("/family")
    try:
        job_url, child = start_family_job(service, tmp_path)
        worker = [p for p in family(service.pid) if role(p) == "job"]
        assert len(worker) == 1
        answer = httpx.post(job_url + "/phase", data={"PHASE": "ABORT"})
        assert answer.status_code == 303
        wait_until(lambda: not survivors([*worker, child]), 20, "the job's processes to die")
        assert status(job_url).phase == "ABORTED"
        assert not (tmp_path / "jobs" / job_url.rsplit("/", 1)[1] / "done.txt").exists()
    finally:
        service.stop()


def test_abort_through_a_sibling_replica_kills_the_job(request, tmp_path):
    """Two service processes on one PostgreSQL store: an ABORT that reaches the replica
    which did not start the job kills it too (it used to mark it ABORTED and let it run)."""
    cluster = request.getfixturevalue("postgres")
    store = cluster.create_database(f"siblings_{int(time.time() * 1000) % 10**9}")
    first = family_service(tmp_path, store).start("/family")
    second = family_service(tmp_path / "second", store)
    (tmp_path / "second").mkdir()
    second.start("/family")
    try:
        job_url, child = start_family_job(first, tmp_path)
        worker = [p for p in family(first.pid) if role(p) == "job"]
        elsewhere = job_url.replace(first.url, second.url)
        assert httpx.post(elsewhere + "/phase", data={"PHASE": "ABORT"}).status_code == 303
        wait_until(lambda: not survivors([*worker, child]), 20, "the job's processes to die")
        assert status(job_url).phase == status(elsewhere).phase == "ABORTED"
    finally:
        second.stop()
        first.stop()


@pytest.fixture
def holding():  # type: ignore[no-untyped-def]
    with HoldingServer().running() as server:
        yield server


def start_ingest(service: ServiceProcess, holding: HoldingServer) -> str:
    """An ingest job whose worker is certainly running: it waits on the holding server."""
    job_url = submit(
        f"{service.url}/ingest", [("DATASET", "pool"), ("URL", f"{holding.url}/spectrum.fits")]
    )
    assert holding.requested.wait(timeout=120), status(job_url)
    assert status(job_url).phase == "EXECUTING"
    return job_url


def test_kill9_of_alvo_serve_during_an_ingest(tmp_path, holding):
    home = tmp_path / "home"
    service = alvo_serve(home, free_port()).start("/availability")
    try:
        job_url = start_ingest(service, holding)
        tree = family(service.pid)
        roles = sorted(role(p) for p in tree)
        assert {"forkserver", "resource tracker", "job"} <= set(roles), roles

        service.kill9()
        wait_until(lambda: not survivors(tree), GONE_WITHIN, "alvo serve's processes to die")

        restarted = alvo_serve(home, free_port())
        started = time.monotonic()
        restarted.start("/availability")
        up = time.monotonic()
        try:
            job_url = job_url.replace(service.url, restarted.url)
            final = wait_until(lambda: (s := status(job_url)).finished and s, 30, "resolution")
            later = time.monotonic() - up
            print(f"alvo serve: up in {up - started:.2f} s, resolved {later:.2f} s later")
            assert final.phase == "ERROR"  # type: ignore[attr-defined]
            assert final.error.startswith(f"{SERVICE_RESTARTED}: ")  # type: ignore[attr-defined]
            for job_list in ("ingest", "train", "classify", "iterate", "tap/async"):
                assert running_jobs(restarted.url, job_list) == [], job_list
        finally:
            restarted.stop()
    finally:
        service.stop()


def test_abort_of_an_ingest_kills_its_worker(tmp_path, holding):
    service = alvo_serve(tmp_path / "home", free_port()).start("/availability")
    try:
        job_url = start_ingest(service, holding)
        workers = [p for p in family(service.pid) if role(p) == "job"]
        assert len(workers) == 1
        assert httpx.post(job_url + "/phase", data={"PHASE": "ABORT"}).status_code == 303
        wait_until(lambda: not survivors(workers), 20, "the ingest's worker to die")
        assert status(job_url).phase == "ABORTED"
    finally:
        service.stop()


def test_restart_reasons_are_documented_reasons():
    """uws (which knows nothing of alvo) names its restart errors with alvo's reason codes."""
    from service.reasons import Reason
    from uws.service import WORKER_LOST

    assert Reason[SERVICE_RESTARTED].code == SERVICE_RESTARTED
    assert Reason[WORKER_LOST].code == WORKER_LOST
