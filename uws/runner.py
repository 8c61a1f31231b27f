"""The worker side: how a job's runner function is called, wherever it runs.

A runner is a plain function ``run(job, workdir, progress) -> results``:

``job`` (:class:`RunnerJob`)
    ``id``, ``owner``, ``job_list``, ``parameters`` (case-insensitive,
    multi-valued :class:`uws.models.JobParameters`) and ``uploads`` (name ->
    local path or URL, from DALI ``UPLOAD=name,param:part`` or ``name,URL``).
``workdir`` (:class:`pathlib.Path`)
    A directory owned by this job; write result files here.
``progress(fraction, message="")``
    Reports progress (fraction in [0, 1] or None) shown in the job's
    ``jobInfo``. Under the Dask executor it also raises :class:`JobAbortedError` when
    the job was aborted, so long loops should call it now and then.
``results``
    A dict ``{result_id: location}`` or a list of :class:`Result` /
    ``(id, location[, mime_type])`` tuples. A location is a file path (absolute
    inside ``workdir``, or relative to it) or an ``http(s)://`` URL; a value may
    also be ``(location, mime_type)``.

Any exception puts the job in ERROR; raise :class:`UWSJobError` for a clean,
user-facing message. Any other exception is a bug or an unforeseen failure:
its text and traceback may hold internal paths, addresses or file content, so
they go to the service log (under the job ID) and the client sees only
:data:`INTERNAL_ERROR` with the job ID.

Executors call :func:`execute` with a picklable :class:`WorkOrder`; it imports the
runner, calls it and turns whatever happens into one :data:`Outcome`.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import mimetypes
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from uws.models import JobParameters, ResultRecord

__all__ = [
    "JobAbortedError",
    "Outcome",
    "Progress",
    "Result",
    "ResultLocation",
    "Results",
    "Runner",
    "RunnerJob",
    "UWSJobError",
    "WorkOrder",
    "execute",
]

log = logging.getLogger(__name__)

#: The error summary of a job whose runner raised something else than UWSJobError.
INTERNAL_ERROR = (
    "INTERNAL_ERROR: the job stopped on an unexpected error; "
    "the service log holds the details under job {job_id}"
)


class UWSJobError(Exception):
    """Raise from a runner to end the job in ERROR with this exact message.

    ``detail`` (optional) is shown in the job's ``/error`` document;
    ``fatal=False`` marks the error transient (worth retrying).
    """

    def __init__(self, message: str, detail: str | None = None, fatal: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.fatal = fatal


class JobAbortedError(Exception):
    """Raised by ``progress()`` when the job has been aborted (cooperative abort)."""


class Progress(Protocol):
    def __call__(self, fraction: float | None, message: str = "") -> None: ...


@dataclasses.dataclass(frozen=True)
class Result:
    """A result a runner returns: a file path (in the workdir) or a URL."""

    id: str
    location: str | Path
    mime_type: str | None = None


@dataclasses.dataclass(frozen=True)
class RunnerJob:
    """What a runner sees of its job."""

    id: str
    owner: str | None
    job_list: str
    parameters: JobParameters
    uploads: Mapping[str, str]


#: Where a result is: a file path (inside the workdir, or relative to it) or an
#: ``http(s)://`` URL, alone or as ``(location, mime_type)``.
ResultLocation = str | Path | tuple[str | Path, str | None]
#: What a runner returns: ``{result_id: location}``, a sequence of :class:`Result` or
#: ``(id, location[, mime_type])`` tuples, or None (no results).
Results = Mapping[str, ResultLocation] | Iterable[Result | tuple[Any, ...]] | None
#: The runner function itself: ``run(job, workdir, progress) -> results``.
Runner = Callable[[RunnerJob, Path, Progress], Results]


@dataclasses.dataclass(frozen=True)
class WorkOrder:
    """Everything a worker needs to run one job; picklable, sent to worker processes."""

    job_id: str
    job_list: str
    runner: str
    owner: str | None
    parameters: tuple[tuple[str, str], ...]
    uploads: tuple[tuple[str, str], ...]
    workdir: str

    def job(self) -> RunnerJob:
        return RunnerJob(
            id=self.job_id,
            owner=self.owner,
            job_list=self.job_list,
            parameters=JobParameters(self.parameters),
            uploads=dict(self.uploads),
        )


#: ``("completed", [ResultRecord...])`` or ``("failed", message, detail, fatal)``
#: or ``("aborted",)``.
Outcome = tuple[Any, ...]


def load_runner(spec: str) -> Runner:
    module_name, _, function_name = spec.partition(":")
    module = importlib.import_module(module_name)
    runner = getattr(module, function_name, None)
    if not callable(runner):
        raise UWSJobError(f"job runner {spec!r} is not a function")
    return runner


def execute(order: WorkOrder, progress: Progress) -> Outcome:
    """Run ``order``'s runner and describe the outcome; never raises."""
    workdir = Path(order.workdir)
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        runner = load_runner(order.runner)
        returned = runner(order.job(), workdir, progress)
        return ("completed", normalise_results(returned, workdir))
    except JobAbortedError:
        return ("aborted",)
    except UWSJobError as error:
        return ("failed", error.message, error.detail, error.fatal)
    except Exception:  # any runner bug must end as ERROR, not kill the worker
        log.exception("UWS job %s (%s) failed on an unexpected error", order.job_id, order.runner)
        return ("failed", INTERNAL_ERROR.format(job_id=order.job_id), None, True)


def normalise_results(returned: Results, workdir: Path) -> list[ResultRecord]:
    """Turn a runner's return value into result records (files checked, sized, typed)."""
    if returned is None:
        return []
    items: list[tuple[str, Any]]
    if isinstance(returned, Mapping):
        items = list(returned.items())
    else:
        items = []
        for entry in returned:
            if isinstance(entry, Result):
                items.append((entry.id, (entry.location, entry.mime_type)))
            else:
                ident, *rest = entry
                items.append((ident, tuple(rest) if len(rest) > 1 else rest[0]))
    records = []
    seen: set[str] = set()
    for ident, value in items:
        location, mime = value if isinstance(value, tuple) else (value, None)
        if ident in seen or not str(ident) or "/" in str(ident):
            raise UWSJobError(f"the runner returned an invalid or duplicate result id {ident!r}")
        seen.add(str(ident))
        records.append(_record(str(ident), location, mime, workdir))
    return records


def _record(ident: str, location: str | Path, mime: str | None, workdir: Path) -> ResultRecord:
    text = str(location)
    if "://" in text:
        return ResultRecord(id=ident, location=text, mime_type=mime)
    path = Path(text)
    path = (workdir / path if not path.is_absolute() else path).resolve()
    root = workdir.resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise UWSJobError(f"result {ident!r}: {text} is not a file inside the job's workdir")
    guessed = mime or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return ResultRecord(
        id=ident,
        location=str(path.relative_to(root)),
        mime_type=guessed,
        size=path.stat().st_size,
    )
