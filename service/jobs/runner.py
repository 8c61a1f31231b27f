"""How alvo's job types keep the UWS runner contract: typed, and failing by named reason.

:mod:`uws.runner` calls ``run(job, workdir, progress) -> results``. A runner that
raises :class:`~uws.runner.UWSJobError` ends its job in ERROR with exactly that
message; anything else is an unforeseen failure, logged under the job ID and shown
to the client only as ``INTERNAL_ERROR``. Everything alvo refuses -- an unknown
dataset, model or campaign, someone else's campaign, a spectrum file it cannot
read -- is an :class:`~service.reasons.AlvoError` with a named reason, so
:func:`job_runner` turns each into the job's error summary ``"CODE: detail"`` in
this one place, and the ``run`` of each job module is only its work. A database
that went away for longer than the job's writes wait (:func:`uws.store.retrying`)
ends the job as ``DATABASE_UNAVAILABLE``, a lock held past that wait as
``DATABASE_BUSY``, and a disk that filled up as ``DISK_FULL``: outages with a name,
not an ``INTERNAL_ERROR``.
"""

from __future__ import annotations

import functools
from pathlib import Path

from service.reasons import AlvoError, Reason
from uws.runner import Progress, Results, Runner, RunnerJob, UWSJobError
from uws.store import is_busy, is_disk_full, is_unavailable


def job_runner(work: Runner) -> Runner:
    """``work`` as a UWS runner whose named refusals end the job as ``"CODE: detail"``."""

    @functools.wraps(work)
    def run(job: RunnerJob, workdir: Path, progress: Progress) -> Results:
        try:
            return work(job, workdir, progress)
        except AlvoError as error:
            raise UWSJobError(str(error)) from error
        except Exception as error:  # an outage or a full disk has a name; anything else is a bug
            if is_disk_full(error):
                what = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
                detail = (
                    "no space left for the job's files or the database; free some, run again "
                    f"({what})"
                )
                raise UWSJobError(str(AlvoError(Reason.DISK_FULL, detail))) from error
            for outage, reason in ((is_unavailable, Reason.DATABASE_UNAVAILABLE),
                                   (is_busy, Reason.DATABASE_BUSY)):  # fmt: skip
                if outage(error):
                    detail = "the database was away or busy past the job's wait; run it again"
                    raise UWSJobError(str(AlvoError(reason, detail))) from error
            raise

    return run
