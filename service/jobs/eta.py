"""A job's progress as a fraction of its expected *time*, from what the job knows.

A page (or pyvo) that reads a UWS job's jobInfo fraction ``f`` and its ``startTime``
estimates the time left as ``elapsed x (1 - f) / f`` (``static/jobs.js`` does). That
is honest only when ``f`` is the part of the job's *time* already spent, not the
part of its epochs or steps: a training that may stop at epoch 15 of a 100-epoch cap
is not 2 % done at epoch 2. :class:`Stages` keeps, for each stage of a job, an
estimate of its seconds -- from an earlier iteration of the campaign, from the
rows per second so far, from the epochs early stopping may still run -- and
reports ``f = elapsed / (elapsed + left)``. Where a stage's time cannot be known
yet (the first training, before its first epoch), the fraction is ``None``: the
page says the time left is not known rather than guess.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

from uws.runner import Progress
from uws.store import JobStore


def job_started(database_url: str, job_id: str) -> float | None:
    """The job's UWS startTime (POSIX seconds), as the service recorded it; None for
    work run outside a UWS service (a benchmark's iteration), which counts from now."""
    store = JobStore(database_url)
    try:
        record = store.get(job_id) if store.holds_jobs() else None
    finally:
        store.close()
    start = record.start_time if record is not None else None
    return start.timestamp() if start is not None else None


def epochs_left(val_losses: Sequence[float], patience: int, cap: int) -> int:
    """Epochs a Keras ``EarlyStopping(patience)`` fit still runs if the validation
    loss improves no more: it stops ``patience`` epochs after its best epoch, and
    at the ``cap`` (the ``EPOCHS`` asked for) at the latest."""
    done = len(val_losses)
    if not done:
        return cap
    best = min(range(done), key=lambda i: (val_losses[i], i))  # the first of equal minima
    since_best = done - 1 - best
    return max(0, min(patience - since_best, cap - done))


@dataclasses.dataclass
class Stage:
    """One stage of a job; its reports move the job's fraction (see :class:`Stages`)."""

    stages: Stages
    name: str
    started: float

    def fraction(self, fraction: float | None, message: str = "") -> None:
        """``fraction``: the part of this stage's *work* done (rows classified...),
        assumed to take time in proportion; a :class:`uws.runner.Progress` itself."""
        done = fraction
        elapsed = self.stages.clock() - self.started
        left = None
        if done is not None and done >= 1:
            left = 0.0
        elif done is not None and done > 0:
            left = elapsed * (1 - done) / done
        self.seconds_left(left if left is not None else self.stages.estimate(self.name), message)

    def seconds_left(self, seconds: float | None, message: str = "") -> None:
        """This stage's own estimate of its seconds left (None: not known)."""
        self.stages.report(self.name, seconds, message)

    def elapsed(self) -> float:
        return self.stages.clock() - self.started


class Stages:
    """The stages of a job in order, each with its estimated seconds (None: unknown).

    ``begin(name)`` starts a stage (the ones before it are over), ``set(name,
    seconds)`` refines the estimate of a later one as the job learns (the pool's
    classification time once the training's speed is known).
    """

    def __init__(
        self,
        progress: Progress,
        plan: Sequence[tuple[str, float | None]],
        clock: Callable[[], float] = time.time,
        started: float | None = None,
    ) -> None:
        self.progress = progress
        self.names = [name for name, _ in plan]
        self.estimates: dict[str, float | None] = dict(plan)
        self.clock = clock
        #: the job's UWS startTime (:func:`job_started`): the page measures from it,
        #: and the seconds a worker takes to start and import are part of the job
        self.started = clock() if started is None else started
        self.current = 0

    def estimate(self, name: str) -> float | None:
        return self.estimates[name]

    def set(self, name: str, seconds: float | None) -> None:
        self.estimates[name] = seconds

    def begin(self, name: str, message: str = "") -> Stage:
        index = self.names.index(name)
        now = self.clock()
        stage = Stage(self, name, now)
        self.current = index
        self.report(name, self.estimates[name], message)
        return stage

    def report(self, name: str, stage_left: float | None, message: str) -> None:
        """jobInfo: fraction = elapsed / (elapsed + time left), None when not known."""
        index = self.names.index(name)
        later = [self.estimates[n] for n in self.names[index + 1 :]]
        elapsed = self.clock() - self.started
        if stage_left is None or any(x is None for x in later):
            self.progress(None, message)
            return
        left = stage_left + sum(x for x in later if x is not None)
        total = elapsed + left
        fraction = elapsed / total if total > 0 else 0.0
        self.progress(round(min(max(fraction, 0.0), 0.999), 4), message)
