"""The job service in-process (no HTTP): WAIT semantics against spurious wake-ups."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from uws import models
from uws.example import job_lists
from uws.models import JobParameters, JobRecord, Phase
from uws.service import UWSService


def _service(tmp_path: Path, orphan_check: float = 30.0) -> UWSService:
    """A job service on SQLite with the demo job lists, run by local processes."""
    return UWSService(
        f"sqlite:///{tmp_path / 'jobs.sqlite'}",
        "local",
        tmp_path / "work",
        job_lists=job_lists(),
        orphan_check=orphan_check,
    )


def test_wait_ignores_a_wake_up_without_a_phase_change(tmp_path: Path) -> None:
    async def scenario() -> tuple[Phase, float, Phase, float]:
        service = _service(tmp_path)
        demo = service.lists["demo"]
        await service.start()
        try:
            job = await service.create(demo, None, JobParameters([("task", "echo")]))
            started = time.monotonic()
            waiting = asyncio.create_task(service.wait(demo, None, job.id, 1.0))
            await asyncio.sleep(0.1)
            assert service.waiting() == 1
            service._changed(job.id)  # a notification with no change behind it
            unchanged = await waiting
            blocked = time.monotonic() - started
            # a real change wakes it at once
            started = time.monotonic()
            waiting = asyncio.create_task(service.wait(demo, None, job.id, 30.0))
            await asyncio.sleep(0.1)
            await service.abort(demo, None, job.id)
            changed = await waiting
            return unchanged.phase, blocked, changed.phase, time.monotonic() - started
        finally:
            await service.stop()

    unchanged, blocked, changed, woken = asyncio.run(scenario())
    assert unchanged == Phase.PENDING and blocked >= 0.95
    assert changed == Phase.ABORTED and woken < 5


def test_an_executing_job_whose_worker_vanished_goes_to_error(tmp_path: Path) -> None:
    """A replica that crashed leaves EXECUTING jobs behind: the survivor resolves them."""

    async def scenario() -> tuple[Phase, str]:
        service = _service(tmp_path, orphan_check=0.2)
        demo = service.lists["demo"]
        await service.start()
        try:
            job = await service.create(demo, None, JobParameters([("task", "echo")]))
            # as if another service process had started it on a worker that has since died
            service.store.update(
                job.id, None, phase=Phase.EXECUTING.value, worker="local:elsewhere:4242"
            )
            done = await service.wait(demo, None, job.id, 10.0)
            assert done.error is not None
            return done.phase, done.error.message
        finally:
            await service.stop()

    phase, message = asyncio.run(scenario())
    assert phase == Phase.ERROR
    assert "while the job was EXECUTING, and its worker is gone" in message


def test_wait_on_an_executing_job_returns_at_its_next_progress_report(tmp_path: Path) -> None:
    """Issue 23: WAIT with PHASE=EXECUTING returned only on a phase change, so a page
    following a job (WAIT=3) saw a new jobInfo fraction up to 3 s late. UWS 1.1 lets
    the server answer before the timeout: a progress report wakes the WAIT, at most
    once per job every PROGRESS_GAP seconds (a report inside the gap at its end)."""

    async def scenario() -> list[tuple[float | None, float]]:
        service = _service(
            tmp_path, orphan_check=3600.0
        )  # its worker is no process: never resolved as lost here
        demo = service.lists["demo"]
        await service.start()
        seen: list[tuple[float | None, float]] = []
        try:
            job = await service.create(demo, None, JobParameters([("task", "echo")]))
            # as if a worker ran it (a report of the demo's own jobs would race this test)
            service.store.update(job.id, None, phase=Phase.EXECUTING.value, worker="test")

            async def report_while_waited(fraction: float, message: str, timeout: float) -> None:
                started = time.monotonic()
                waiting = asyncio.create_task(
                    service.wait(demo, None, job.id, timeout, Phase.EXECUTING)
                )
                deadline = time.monotonic() + 10
                while service.waiting() < 1:  # the WAIT is held before the report
                    assert time.monotonic() < deadline, "the WAIT was never held"
                    await asyncio.sleep(0.01)
                await asyncio.to_thread(service.on_progress, job.id, fraction, message)
                answer = await waiting
                assert answer.phase == Phase.EXECUTING
                seen.append((answer.progress, time.monotonic() - started))

            await report_while_waited(0.25, "a quarter", 30.0)
            await report_while_waited(0.5, "half", 30.0)  # inside the gap: at its end
            await report_while_waited(0.5, "half", 1.0)  # nothing changed: WAIT goes on
            return seen
        finally:
            await service.stop()

    (first, after_first), (second, after_second), (same, after_same) = asyncio.run(scenario())
    assert first == 0.25 and after_first < 5  # not the 30 s of the WAIT
    assert second == 0.5 and after_second < 5
    assert same == 0.5 and after_same >= 0.95


@contextlib.asynccontextmanager
async def _queued_job(tmp_path: Path) -> AsyncIterator[tuple[UWSService, JobRecord]]:
    """A started service and a job of it in QUEUED, as if handed to an executor whose
    reports the test makes itself (the orphan check never resolves it meanwhile)."""
    service = _service(tmp_path, orphan_check=3600.0)
    await service.start()
    try:
        job = await service.create(service.lists["demo"], None, JobParameters([("task", "echo")]))
        service.store.update(job.id, None, phase=Phase.QUEUED.value)
        yield service, job
    finally:
        await service.stop()


def test_progress_is_never_stamped_before_the_job_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """startTime comes from the process's monotonic ``utcnow``; the progress stamp came
    from the raw wall clock, which a virtual machine may step back. Here it steps back
    1 s between the two."""

    async def scenario() -> tuple[dt.datetime | None, dt.datetime | None]:
        async with _queued_job(tmp_path) as (service, job):
            # the clock as last read is 1 s ahead of the wall clock from now on
            monkeypatch.setattr(
                models, "_last_now", dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
            )
            assert await asyncio.to_thread(service.on_started, job.id, "test")
            await asyncio.to_thread(service.on_progress, job.id, 0.5, "half")
            seen = service.store.get(job.id)
            assert seen is not None
            return seen.start_time, seen.progress_time

    start, progress = asyncio.run(scenario())
    assert start is not None and progress is not None
    assert start <= progress


def test_an_outcome_read_before_started_was_recorded_ends_no_earlier_than_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CI saw a COMPLETED job's progress time 1 ms before its startTime, twice, on
    postgres-dask: Dask reports "started" through a queue and the outcome through the
    task's future, on two threads, so a fast job's outcome can read the clock before
    "started" is recorded and be written after it. endTime was already kept >= startTime
    for that; the final progress stamp was not. Here "started" lands, 1 s later on the
    clock, between the outcome's reading and its write."""

    async def scenario() -> tuple[dt.datetime | None, ...]:
        async with _queued_job(tmp_path) as (service, job):
            complete = service.store.complete

            def started_meanwhile(*args: Any, **fields: Any) -> bool:
                monkeypatch.setattr(
                    models, "_last_now", dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
                )
                assert service.on_started(job.id, "test")
                return complete(*args, **fields)

            monkeypatch.setattr(service.store, "complete", started_meanwhile)
            await asyncio.to_thread(service.on_outcome, job.id, ("completed", []))
            seen = service.store.get(job.id)
            assert seen is not None and seen.phase == Phase.COMPLETED
            return seen.start_time, seen.progress_time, seen.end_time

    start, progress, end = asyncio.run(scenario())
    assert start is not None and progress is not None and end is not None
    assert start <= progress and start <= end


def test_stop_ends_the_sweeper_even_when_it_was_just_woken(tmp_path: Path) -> None:
    """CI hung 10 min in ``service.stop()``: a job had started just before, and its
    "started" woke the sweeper (``_poke``) as stop cancelled it. Python 3.11's
    ``asyncio.wait_for`` returns the inner result when the inner wait completes in the
    same loop turn as the cancellation, so the cancellation was lost and the sweeper
    went back to sleep for an hour. Here the alarm is set and stop called at once, with
    the sweeper parked on it: stop must return."""

    async def scenario() -> None:
        service = _service(tmp_path, orphan_check=3600.0)
        await service.start()
        alarm = service._alarm
        assert alarm is not None
        async with asyncio.timeout(30):  # the sweeper parked on its alarm
            while not getattr(alarm, "_waiters", None):
                await asyncio.sleep(0.01)
        alarm.set()  # as _poke does, from a job's "started"
        # a lost cancellation leaves stop() waiting until this timeout cancels it too,
        # which reaches the sweeper (stop() awaits it) and which stop() then suppresses:
        # so it is the time stop() took that tells (0.04 s here; the hour, cut to 20 s)
        began = time.monotonic()
        async with asyncio.timeout(20):
            await service.stop()
        assert time.monotonic() - began < 10, "stop() waited for a sweeper that slept on"

    asyncio.run(scenario())
