"""The job service in-process (no HTTP): WAIT semantics against spurious wake-ups."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from uws.example import job_lists
from uws.models import JobParameters, Phase
from uws.service import UWSService


def test_wait_ignores_a_wake_up_without_a_phase_change(tmp_path: Path) -> None:
    async def scenario() -> tuple[Phase, float, Phase, float]:
        service = UWSService(
            f"sqlite:///{tmp_path / 'jobs.sqlite'}",
            "local",
            tmp_path / "work",
            job_lists=job_lists(),
        )
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
        service = UWSService(
            f"sqlite:///{tmp_path / 'jobs.sqlite'}",
            "local",
            tmp_path / "work",
            job_lists=job_lists(),
            orphan_check=0.2,
        )
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
