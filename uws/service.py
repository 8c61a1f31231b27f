"""The job service: UWS operations on top of a store, an executor and a notifier.

:class:`UWSService` is the one object an application builds. It

* answers the operations the HTTP routes need (create, list, get, WAIT, RUN,
  ABORT, parameters, executionDuration, destruction, DELETE), applying the
  rules of :mod:`uws.models` and checking that the caller owns the job;
* is the :class:`uws.executors.ExecutionSink` its executor reports to, turning
  "started / progress / outcome / lost" into compare-and-set phase changes;
* runs one sweeper task that sleeps until the next destruction time or
  executionDuration deadline (woken early when one changes) and enforces it;
* on start, migrates the database and recovers: QUEUED jobs (never started)
  are submitted again; EXECUTING jobs whose worker is gone go to ERROR with
  ``SERVICE_RESTARTED`` (a job is never re-run behind its owner's back: it may
  have written part of its output; the owner decides, and an ingest re-run is
  idempotent). Workers die with the service that started them, so after a
  crash no EXECUTING job is left without a live worker.

Several service processes may share a PostgreSQL store: phase changes are
also announced with LISTEN/NOTIFY (:mod:`uws.broadcast`), so a WAIT held by one
replica wakes when another changes the job, and a restarting replica leaves
alone the jobs whose worker processes are alive. With SQLite, run one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import secrets
import shutil
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread

from uws import models
from uws.broadcast import Broadcast
from uws.events import PROGRESS_GAP, PhaseNotifier
from uws.executors import Executor, make_executor
from uws.joblist import JobList
from uws.models import (
    ABORTABLE,
    RUNNABLE,
    ErrorInfo,
    JobFilter,
    JobParameters,
    JobRecord,
    NotFoundError,
    Phase,
)
from uws.runner import Outcome, WorkOrder
from uws.store import JobRef, JobStore, is_busy, is_unavailable, retrying

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Phases in which a worker's report is still wanted.
_RUNNING = frozenset({Phase.QUEUED, Phase.EXECUTING})
#: Error summaries of jobs resolved by a restart; the leading word is the reason's
#: name, as the applications built on uws write theirs (``CODE: detail``).
SERVICE_RESTARTED = "SERVICE_RESTARTED"
WORKER_LOST = "WORKER_LOST"
_RESTART_MESSAGE = (
    f"{SERVICE_RESTARTED}: the service process running the job stopped or restarted while "
    "the job was EXECUTING, and its worker is gone; the job did not finish (create a new "
    "job to run it)"
)


class UWSService:
    """All UWS job lists of an application, their store and their executor.

    store_url
        SQLAlchemy URL of the job store (``sqlite:///var/uws.sqlite`` or
        ``postgresql+psycopg://...``); the schema is migrated on :meth:`start`.
    executor
        An :class:`uws.executors.Executor`, or ``"local"`` / ``"dask"``.
    workdir
        Root of the per-job directories (uploads and result files).
    authenticator
        ``callable(request) -> owner or None``; see :mod:`uws.auth`.
    base_url
        Public URL of the application root, for links in documents behind a
        proxy; default: taken from each request.
    orphan_check
        Seconds between checks for EXECUTING jobs whose worker vanished with
        another service process (replicas sharing a store).
    """

    def __init__(
        self,
        store_url: str,
        executor: Executor | str = "local",
        workdir: str | Path = "var/uws",
        authenticator: Callable[[Any], str | None] | None = None,
        job_lists: Iterable[JobList] = (),
        base_url: str | None = None,
        workers: int = 2,
        orphan_check: float = 30.0,
    ) -> None:
        from uws.auth import anonymous

        self.store = JobStore(store_url)
        self.executor = make_executor(executor, workers) if isinstance(executor, str) else executor
        self.workdir = Path(workdir)
        self.authenticator = authenticator or anonymous
        self.base_url = base_url.rstrip("/") if base_url else None
        self.lists: dict[str, JobList] = {}
        for job_list in job_lists:
            self.add(job_list)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._notifier: PhaseNotifier | None = None
        self._alarm: asyncio.Event | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._orphan_check = orphan_check
        self._broadcast = Broadcast(self.store.engine)
        #: per job: when its last progress notice went to other processes (PostgreSQL)
        self._published: dict[str, float] = {}
        self._published_lock = threading.Lock()

    def add(self, job_list: JobList) -> JobList:
        """Register a job list (before :meth:`routes` is called)."""
        if job_list.name in self.lists:
            raise ValueError(f"job list {job_list.name!r} registered twice")
        self.lists[job_list.name] = job_list
        return job_list

    def routes(self) -> list[Any]:
        """Starlette routes of every job list, each under its ``mount_path``."""
        from uws.routes import job_list_routes, stylesheet_route

        routes = [r for job_list in self.lists.values() for r in job_list_routes(self, job_list)]
        return [*routes, stylesheet_route()]

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._notifier = PhaseNotifier(self._loop)
        self._alarm = asyncio.Event()
        self.workdir.mkdir(parents=True, exist_ok=True)
        await self._io(self.store.migrate)
        await self._io(self._broadcast.listen, self._notifier.notify)
        self.executor.start(self)
        await self._io(self._recover)
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="uws-sweeper")
        self._watchdog = asyncio.create_task(self._watch_orphans(), name="uws-watchdog")

    async def stop(self) -> None:
        if self._notifier is not None:
            self._notifier.close()
        for task in (self._sweeper, self._watchdog):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._io(self.executor.close)
        await self._io(self._broadcast.close)
        self.store.close()

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any = None) -> AsyncIterator[None]:
        """A Starlette ``lifespan``: ``Starlette(routes=..., lifespan=service.lifespan)``."""
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    def release_waits(self) -> None:
        """Answer every blocked WAIT now (call when the server begins to shut down:
        uvicorn waits for open requests before it runs the lifespan's shutdown)."""
        if self._notifier is not None:
            self._notifier.close()

    def waiting(self) -> int:
        """How many WAIT requests are blocked right now."""
        return self._notifier.waiting() if self._notifier else 0

    # -- operations (called by the routes) ----------------------------------------------------

    def job_dir(self, job_id: str) -> Path:
        return self.workdir / job_id

    @staticmethod
    def new_job_id() -> str:
        return secrets.token_hex(8)

    async def create(
        self,
        job_list: JobList,
        owner: str | None,
        parameters: JobParameters,
        *,
        job_id: str | None = None,
        uploads: Mapping[str, str] | None = None,
        run_id: str | None = None,
        execution_duration: str | None = None,
        destruction: str | None = None,
        run: bool = False,
        parent: str | None = None,
    ) -> JobRecord:
        job_list.validate(parameters)
        await self._authorize(job_list, owner, parameters)
        now = models.utcnow()
        duration = job_list.max_execution_duration
        if execution_duration is not None:
            duration = models.choose_execution_duration(
                execution_duration, job_list.max_execution_duration
            )
        until = now + job_list.default_destruction
        if destruction is not None:
            until = models.choose_destruction(
                models.parse_time(destruction, "DESTRUCTION"), now, job_list.max_destruction
            )
        record = JobRecord(
            id=job_id or self.new_job_id(),
            job_list=job_list.name,
            owner=owner,
            phase=Phase.PENDING,
            creation_time=now,
            run_id=run_id,
            execution_duration=duration,
            destruction=until,
            parameters=parameters,
            uploads=dict(uploads or {}),
            parent=parent,
        )
        await self._io(self.store.create, record)
        self._poke()
        if run:
            await self.run(job_list, owner, record.id)
        return record

    async def again(
        self,
        job_list: JobList,
        owner: str | None,
        parent_id: str,
        update: JobParameters,
        *,
        job_id: str | None = None,
        uploads: Mapping[str, str] | None = None,
        run_id: str | None = None,
        execution_duration: str | None = None,
        destruction: str | None = None,
        run: bool = False,
    ) -> JobRecord:
        """Run a job again: a new job whose parameters are the parent's with ``update``'s
        names replaced, and whose ``parent`` names the job it came from.

        Any phase may be run again (a finished job is the usual case). The parent's
        uploaded files are copied into the new job unless ``update`` carries UPLOAD
        (then ``uploads`` are the new job's); a parent's file that is gone (ARCHIVED)
        is a 409. The runId is the parent's unless given.
        """
        parent = await self.get(job_list, owner, parent_id)
        new_id = job_id or self.new_job_id()
        if "upload" not in update:
            uploads = await self._io(self._copy_uploads, parent, new_id)
        return await self.create(
            job_list,
            owner,
            parent.parameters.replaced(update),
            job_id=new_id,
            uploads=uploads,
            run_id=run_id if run_id is not None else parent.run_id,
            execution_duration=execution_duration,
            destruction=destruction,
            run=run,
            parent=parent.id,
        )

    def _copy_uploads(self, parent: JobRecord, job_id: str) -> dict[str, str]:
        copied = {}
        for name, location in parent.uploads.items():
            if location.startswith(("http://", "https://")):
                copied[name] = location
                continue
            source = self.job_dir(parent.id) / location
            if not source.is_file():
                raise models.ConflictError(
                    f"upload {name!r} of job {parent.id} is no longer stored; "
                    f"run it again with a new UPLOAD"
                )
            target = self.job_dir(job_id) / location
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            copied[name] = location
        return copied

    async def get(self, job_list: JobList, owner: str | None, job_id: str) -> JobRecord:
        job = await self._io(self.store.get, job_id)
        if job is None or job.job_list != job_list.name or job.owner != owner:
            raise NotFoundError(f"no job {job_id!r} in {job_list.mount_path}")
        return job

    async def list_jobs(
        self, job_list: JobList, owner: str | None, where: JobFilter
    ) -> list[JobRef]:
        return await self._io(self.store.list_jobs, job_list.name, owner, where)

    async def wait(
        self,
        job_list: JobList,
        owner: str | None,
        job_id: str,
        seconds: float,
        phase: Phase | None = None,
    ) -> JobRecord:
        """UWS 1.1 blocking GET: return when the phase changes, when the job's jobInfo
        progress (fraction or message) changes, or when ``seconds`` pass. UWS 1.1 lets
        the server answer before the timeout: a follower (the page, ``WAIT=3`` in
        ``static/jobs.js``) sees a new fraction as it is reported, not up to its
        WAIT later; progress wakes come at most every
        :data:`uws.events.PROGRESS_GAP` seconds per job.

        A wake-up whose re-read shows the same phase and progress (a late or echoed
        notification) goes back to waiting for the time that is left.
        """
        notifier = self._notifier
        assert notifier is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        with notifier.subscribe(job_id) as changed:
            job = await self.get(job_list, owner, job_id)
            if not models.should_wait(job.phase, phase) or seconds <= 0:
                return job
            first = (job.phase, job.progress, job.progress_message)
            while (job.phase, job.progress, job.progress_message) == first:
                if notifier.closed:
                    break
                try:  # asyncio.timeout, not wait_for: see _sweep_forever
                    async with asyncio.timeout_at(deadline):
                        await changed.wait()
                except TimeoutError:
                    break
                changed.clear()  # before the read: a change after it sets the event again
                job = await self.get(job_list, owner, job_id)
        unchanged = (job.phase, job.progress, job.progress_message) == first
        return await self.get(job_list, owner, job_id) if unchanged else job

    async def run(self, job_list: JobList, owner: str | None, job_id: str) -> None:
        await self.get(job_list, owner, job_id)
        await self._io(self._run, job_list, job_id)

    async def abort(self, job_list: JobList, owner: str | None, job_id: str) -> None:
        await self.get(job_list, owner, job_id)
        await self._io(self._abort, job_id)

    async def set_execution_duration(
        self, job_list: JobList, owner: str | None, job_id: str, value: str
    ) -> None:
        job = await self.get(job_list, owner, job_id)
        if job.phase != Phase.PENDING:
            raise models.ConflictError(
                f"executionDuration can only be changed while the job is PENDING "
                f"(it is {job.phase.value})"
            )
        seconds = models.choose_execution_duration(value, job_list.max_execution_duration)
        if not await self._io(
            self.store.update, job_id, {Phase.PENDING}, execution_duration=seconds
        ):
            raise models.ConflictError(
                "the job left PENDING meanwhile; executionDuration unchanged"
            )

    async def set_destruction(
        self, job_list: JobList, owner: str | None, job_id: str, value: str
    ) -> None:
        job = await self.get(job_list, owner, job_id)
        models.check_settable(job.phase, "destruction time")
        when = models.choose_destruction(
            models.parse_time(value, "DESTRUCTION"), models.utcnow(), job_list.max_destruction
        )
        allowed = set(Phase) - models.FINAL
        if not await self._io(self.store.update, job_id, allowed, destruction=when):
            raise models.ConflictError("the job finished meanwhile; destruction unchanged")
        self._poke()

    async def update_parameters(
        self,
        job_list: JobList,
        owner: str | None,
        job_id: str,
        update: JobParameters,
        uploads: Mapping[str, str] | None = None,
    ) -> None:
        job = await self.get(job_list, owner, job_id)
        models.check_parameters_editable(job.phase)
        merged = job.parameters.replaced(update)
        job_list.validate(merged)
        await self._authorize(job_list, owner, merged)
        if not await self._io(self.store.replace_parameters, job_id, merged, dict(uploads or {})):
            raise models.ConflictError("the job left PENDING meanwhile; parameters unchanged")

    async def delete(self, job_list: JobList, owner: str | None, job_id: str) -> None:
        await self.get(job_list, owner, job_id)
        await self._io(self._delete, job_id)

    async def _authorize(
        self, job_list: JobList, owner: str | None, parameters: JobParameters
    ) -> None:
        if job_list.authorize is not None:
            await self._io(job_list.authorize, owner, parameters)

    # -- blocking work (threads) --------------------------------------------------------------

    def _run(self, job_list: JobList, job_id: str) -> None:
        for _ in range(5):  # retry when another request changed the phase under our feet
            job = self.store.get(job_id)
            if job is None:
                raise NotFoundError(f"job {job_id!r} was deleted")
            if not models.check_run(job.phase):
                return
            if self.store.transition(job_id, Phase.QUEUED, RUNNABLE):
                self.executor.submit(self._order(job_list, job))
                self._changed(job_id)
                return
        raise models.ConflictError("the job's phase keeps changing; try again")

    def _abort(self, job_id: str) -> None:
        for _ in range(5):
            job = self.store.get(job_id)
            if job is None:
                raise NotFoundError(f"job {job_id!r} was deleted")
            if not models.check_abort(job.phase):
                return
            now = models.utcnow()
            if self.store.transition(job_id, Phase.ABORTED, ABORTABLE, end_time=now, deadline=None):
                self.executor.abort(job_id, job.worker)  # kills the worker and its children
                self._changed(job_id)
                return
        raise models.ConflictError("the job's phase keeps changing; try again")

    def _delete(self, job_id: str) -> None:
        job = self.store.get(job_id)
        self.store.update(job_id, ABORTABLE, phase=Phase.ABORTED.value)
        self.executor.abort(job_id, job.worker if job else None)
        self.store.delete(job_id)
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
        self._changed(job_id)

    def _order(self, job_list: JobList, job: JobRecord) -> WorkOrder:
        return WorkOrder(
            job_id=job.id,
            job_list=job.job_list,
            runner=job_list.runner,
            owner=job.owner,
            parameters=tuple(job.parameters.pairs()),
            uploads=tuple(
                (name, where if "://" in where else str(self.job_dir(job.id) / where))
                for name, where in job.uploads.items()
            ),
            workdir=str(self.job_dir(job.id)),
        )

    def _recover(self) -> None:
        """After a (re)start: resolve orphaned EXECUTING jobs, resubmit QUEUED ones."""
        self._resolve_orphans()
        for job_id in self.store.ids_in({Phase.QUEUED}):
            job = self.store.get(job_id)
            job_list = self.lists.get(job.job_list) if job else None
            if job is None or job_list is None:
                continue
            self.executor.submit(self._order(job_list, job))

    def _resolve_orphans(self) -> None:
        """EXECUTING jobs that no executor will ever report on go to ERROR.

        Ours are those this executor owns; a live worker process of a sibling
        replica on this host is left alone; anything else lost its worker
        (the service that ran it stopped, crashed or restarted).
        """
        for job_id in self.store.ids_in({Phase.EXECUTING}):
            if self.executor.owns(job_id):
                continue
            job = self.store.get(job_id)
            if job is None or self.executor.still_running(job_id, job.worker):
                continue
            now = models.utcnow()
            if self.store.set_error(
                job_id, {Phase.EXECUTING}, ErrorInfo(_RESTART_MESSAGE), end_time=now
            ):
                log.warning("UWS job %s: %s", job_id, _RESTART_MESSAGE)
                self._changed(job_id)

    # -- ExecutionSink (executor threads) -----------------------------------------------------

    def on_started(self, job_id: str, worker: str) -> bool:
        return retrying(lambda: self._started(job_id, worker), f"UWS job {job_id} start")

    def _started(self, job_id: str, worker: str) -> bool:
        job = self.store.get(job_id)
        if job is not None and job.phase == Phase.EXECUTING:
            # started again elsewhere (Dask re-runs a task whose worker died): keep it
            return self.store.update(job_id, {Phase.EXECUTING}, worker=worker)
        if job is None or job.phase != Phase.QUEUED:
            return False
        now = models.utcnow()
        deadline = None
        if job.execution_duration > 0:
            deadline = now + dt.timedelta(seconds=job.execution_duration)
        moved = self.store.transition(
            job_id,
            Phase.EXECUTING,
            {Phase.QUEUED},
            start_time=now,
            worker=worker,
            deadline=deadline,
        )
        if moved:
            self._changed(job_id)
            self._poke()
        return moved

    def on_progress(self, job_id: str, fraction: float | None, message: str) -> None:
        try:
            self.store.update(
                job_id, _RUNNING, progress=fraction, progress_message=message,
                progress_time=models.utcnow(),  # never before startTime
            )  # fmt: skip
        except Exception as error:  # progress is a hint: the next one or the outcome follows
            if not (is_busy(error) or is_unavailable(error)):
                raise
            log.warning("UWS job %s progress not recorded: %s", job_id, type(error).__name__)
            return
        self._progressed(job_id)

    def on_outcome(self, job_id: str, outcome: Outcome) -> None:
        """Record how the job ended; a database that is away or busy is waited for
        (:func:`uws.store.retrying`), or the job would stay EXECUTING."""
        retrying(lambda: self._ended(job_id, outcome), f"UWS job {job_id} outcome")

    def _ended(self, job_id: str, outcome: Outcome) -> None:
        now = models.utcnow()
        kind = outcome[0]
        if kind == "completed":
            moved = self.store.complete(
                job_id, _RUNNING, outcome[1], end_time=now, progress=1.0, progress_time=now,
                ran_until=now,
            )  # fmt: skip
        elif kind == "failed":
            error = ErrorInfo(
                message=outcome[1],
                detail=outcome[2],
                type=models.ErrorType.FATAL if outcome[3] else models.ErrorType.TRANSIENT,
            )
            moved = self.store.set_error(job_id, _RUNNING, error, end_time=now, ran_until=now)
        else:
            moved = self.store.transition(
                job_id, Phase.ABORTED, _RUNNING, end_time=now, deadline=None
            )
        if moved:
            self._changed(job_id)

    def on_lost(self, job_id: str, reason: str) -> None:
        error = ErrorInfo(message=f"{WORKER_LOST}: {reason}", type=models.ErrorType.TRANSIENT)
        now = models.utcnow()
        if retrying(
            lambda: self.store.set_error(job_id, _RUNNING, error, end_time=now, ran_until=now),
            f"UWS job {job_id} lost",
        ):
            log.warning("UWS job %s lost: %s", job_id, reason)
            self._changed(job_id)

    # -- destruction and executionDuration ----------------------------------------------------

    async def _sweep_forever(self) -> None:
        assert self._alarm is not None
        while True:
            self._alarm.clear()
            try:
                await self._io(self._enforce, models.utcnow())
                alarm = await self._io(self.store.next_alarm)
            except Exception:
                log.exception("UWS sweeper failed; retrying in 5 s")
                alarm = models.utcnow() + dt.timedelta(seconds=5)
            timeout = 3600.0
            if alarm is not None:
                timeout = min(timeout, max(0.0, (alarm - models.utcnow()).total_seconds()))
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for returns the inner
            # result when the alarm is set in the loop turn that cancels this task (a job
            # "started" as the service stopped), and the cancellation is lost: stop()
            # then waited on a sweeper asleep for an hour
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout + 0.01):
                    await self._alarm.wait()

    async def _watch_orphans(self) -> None:
        """Now and then, resolve EXECUTING jobs whose worker vanished with another
        service process (a replica that crashed); our own are reported by our executor."""
        while True:
            await asyncio.sleep(self._orphan_check)
            try:
                await self._io(self._resolve_orphans)
            except Exception:
                log.exception("UWS orphan check failed")

    def _enforce(self, now: dt.datetime) -> None:
        for job_id, seconds in self.store.overdue(now):
            error = ErrorInfo(
                f"the job exceeded its executionDuration of {seconds} s and was stopped"
            )
            if self.store.set_error(job_id, {Phase.EXECUTING}, error, end_time=now):
                job = self.store.get(job_id)
                self.executor.abort(job_id, job.worker if job else None)
                self._changed(job_id)
        for job_id in self.store.expired(now):
            self.store.update(job_id, ABORTABLE, phase=Phase.ABORTED.value, end_time=now)
            self.executor.abort(job_id)
            if self.store.archive(job_id, now):
                shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
                self._changed(job_id)

    # -- helpers ------------------------------------------------------------------------------

    def _changed(self, job_id: str) -> None:
        """A phase changed: wake this process's WAITs, and other processes' (PostgreSQL)."""
        if self._notifier is not None:
            self._notifier.notify(job_id)
        self._broadcast.publish(job_id)

    def _progressed(self, job_id: str) -> None:
        """A progress report was recorded: wake this process's WAITs on the job (at most
        every :data:`~uws.events.PROGRESS_GAP` s), and, on PostgreSQL, other processes'
        (at most one notice per job per gap; a report inside it reaches their WAITs with
        the next notice or at their timeout)."""
        if self._notifier is not None:
            self._notifier.notify_progress(job_id)
        if not self._broadcast.enabled:
            return
        now = time.monotonic()
        with self._published_lock:
            if now - self._published.get(job_id, -PROGRESS_GAP) < PROGRESS_GAP:
                return
            if len(self._published) > 256:
                self._published = {
                    k: t for k, t in self._published.items() if now - t < PROGRESS_GAP
                }
            self._published[job_id] = now
        self._broadcast.publish(job_id)

    def _poke(self) -> None:
        """Wake the sweeper: a destruction time or deadline may now be earlier."""
        if self._loop is not None and self._alarm is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._alarm.set)

    @staticmethod
    async def _io(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await anyio.to_thread.run_sync(lambda: function(*args, **kwargs))
