"""A standalone IVOA UWS 1.1 job system (knows nothing of spectra; never imports ``service``).

Public API
----------
Declare job lists, build one service, mount its routes, run its lifespan::

    from starlette.applications import Starlette
    from uws import JobList, UWSService, HeaderAuthenticator

    ingest = JobList("ingest", "service.jobs.ingest.served:run", validator=check_ingest,
                     max_execution_duration=6 * 3600)
    tap = JobList("tap", "service.vo.tap.execute:run_async", path="/tap/async")
    jobs = UWSService("sqlite:///var/alvo.sqlite", executor="local", workdir="var/jobs",
                      job_lists=[ingest, tap], authenticator=HeaderAuthenticator())
    app = Starlette(routes=jobs.routes(), lifespan=jobs.lifespan)

:class:`JobList` (``uws.joblist``)
    name, runner ``"module:function"``, optional validator, path, limits
    (executionDuration, destruction, WAIT, upload size).
:class:`UWSService` (``uws.service``)
    store URL (SQLite in WAL mode or PostgreSQL; Alembic migrations run on
    start), executor (``"local"``, ``"dask"`` or an :class:`Executor`), workdir
    root, authenticator, base URL. ``routes()`` gives the Starlette routes of
    every list; ``lifespan`` (or ``start()``/``stop()``) runs the executor, the
    recovery after a restart and the destruction/executionDuration sweeper.
    Call ``release_waits()`` when the server starts shutting down (uvicorn
    waits for open requests, i.e. blocked WAITs, before the lifespan ends).
    With PostgreSQL, replicas sharing the store wake each other's WAITs
    (LISTEN/NOTIFY, ``uws.broadcast``).
Runner contract (``uws.runner``)
    ``run(job, workdir, progress) -> results``; ``job.parameters`` is
    case-insensitive and multi-valued (``get``, ``getall``), ``job.uploads`` maps
    upload names to files or URLs; ``progress(fraction, message)`` fills
    ``jobInfo``; return ``{result_id: path_or_url}`` (or ``(path, mime_type)``
    values); raise :class:`UWSJobError` for a clean error message.
Executors (``uws.executors``)
    :class:`LocalExecutor` (a process per job, forkserver/spawn, abort = kill),
    :class:`DaskExecutor` (dask.distributed; abort = cancel + cooperative flag:
    ``progress()`` raises :class:`JobAbortedError`);
    ``make_executor("dask", workers, "tcp://scheduler:8786")``.
Authenticators (``uws.auth``)
    :func:`anonymous` (default), :class:`HeaderAuthenticator` (behind a proxy).

Run again (``UWSService.again``, ``POST /{list}/{id}/again``)
    a new job from an old one's parameters with some replaced and its uploads
    copied; ``JobRecord.parent`` and ``jobInfo``'s ``<parent jobId href>`` name
    the old job; ``GET /{list}/{id}/again`` is an HTML form with the old values.

The HTTP surface is all of UWS 1.1: see ``docs/uws.md``.
"""

from uws.auth import HeaderAuthenticator, anonymous
from uws.executors import Executor, make_executor
from uws.executors.local import LocalExecutor
from uws.joblist import JobList
from uws.models import BadRequestError, JobParameters, Phase, UWSError
from uws.runner import JobAbortedError, Progress, Result, RunnerJob, UWSJobError
from uws.service import UWSService

__all__ = [
    "BadRequestError",
    "Executor",
    "HeaderAuthenticator",
    "JobAbortedError",
    "JobList",
    "JobParameters",
    "LocalExecutor",
    "Phase",
    "Progress",
    "Result",
    "RunnerJob",
    "UWSError",
    "UWSJobError",
    "UWSService",
    "anonymous",
    "make_executor",
]


def __getattr__(name: str) -> object:
    if name == "DaskExecutor":  # imported lazily: dask.distributed is heavy
        from uws.executors.dask import DaskExecutor

        return DaskExecutor
    raise AttributeError(name)
