"""A job list: one UWS endpoint (``/ingest``, ``/tap/async``...) and the policy of its jobs."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

from uws.models import BadRequestError, JobParameters

#: A parameter validator: raises :class:`uws.models.BadRequestError` (or ValueError) to refuse.
Validator = Callable[[JobParameters], None]
#: An admission check: may this owner (None: anonymous) run a job with these parameters?
#: Raises :class:`uws.models.ForbiddenError` to refuse (HTTP 403). Runs in a thread.
Authorizer = Callable[[str | None, JobParameters], None]


@dataclasses.dataclass(frozen=True)
class JobList:
    """One UWS job list.

    name
        Identifies the list in the store (and, by default, its URL path ``/{name}``).
    runner
        ``"package.module:function"`` with the contract ``run(job, workdir, progress)
        -> results`` (see :mod:`uws.runner`). A string, not a function, so that a
        worker process or a Dask worker imports it itself.
    validator
        Called with the job's parameters on creation and on every POST to
        ``/parameters``; raise :class:`uws.models.BadRequestError` or ``ValueError`` to
        refuse them (HTTP 400 with your message).
    path
        URL path the list is mounted at (``/tap/async``); default ``/{name}``.
    max_execution_duration
        Seconds; a job may not run longer (0 = unlimited). Also the default.
    default_destruction / max_destruction
        How long after creation a job is destroyed (ARCHIVED), and the latest a
        client may push it to.
    max_wait
        Seconds a ``WAIT=-1`` request blocks at most.
    max_upload_bytes
        Largest request body accepted when creating a job (HTTP 413 above).
    authorize
        Called with the owner and the parameters on creation and on every
        parameter change, after the validator: the place for "may this user
        touch what the job names" (raise :class:`uws.models.ForbiddenError`).
    """

    name: str
    runner: str
    validator: Validator | None = None
    path: str | None = None
    max_execution_duration: int = 3600
    default_destruction: dt.timedelta = dt.timedelta(days=7)
    max_destruction: dt.timedelta | None = dt.timedelta(days=30)
    max_wait: float = 60.0
    max_upload_bytes: int = 100 * 1024 * 1024
    description: str = ""
    authorize: Authorizer | None = None

    def __post_init__(self) -> None:
        if ":" not in self.runner:
            raise ValueError(f"runner must be 'module:function', not {self.runner!r}")

    @property
    def mount_path(self) -> str:
        return "/" + (self.path or self.name).strip("/")

    def validate(self, parameters: JobParameters) -> None:
        if self.validator is None:
            return
        try:
            self.validator(parameters)
        except ValueError as error:
            raise BadRequestError(str(error)) from error
