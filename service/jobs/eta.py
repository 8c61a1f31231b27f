"""A job's progress as a fraction of its expected *time*, from what the job knows.

A page (or pyvo) that reads a UWS job's jobInfo fraction ``f`` and its ``startTime``
estimates the time left as ``elapsed x (1 - f) / f`` (``static/jobs.js`` does). That
is honest only when ``f`` is the part of the job's *time* already spent, not the
part of its epochs or steps: a training that may stop at epoch 15 of a 100-epoch cap
is not 2 % done at epoch 2. :class:`Stages` keeps, for each stage of a job, an
estimate of its seconds -- from an earlier iteration of the campaign, from the
rows per second so far, from the epochs early stopping may still run -- and
reports ``f = elapsed / (elapsed + left)``. Where a stage's time cannot be known
yet, the fraction is ``None``: the page says the time left is not known rather
than guess. A campaign's first iteration has no earlier one to go by; it takes the
rates this service measured in its earlier jobs (:class:`Rates`, kept in the
service's home) times its own work, and, on a service that has run none, its
training's time is not known until its first batches have run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from uws.models import Phase
from uws.runner import Progress
from uws.store import JobStore

log = logging.getLogger(__name__)


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


@dataclasses.dataclass
class PreviousJob:
    """What an earlier job of the same work took (its summary's ``time_left``, see
    :meth:`Stages.account`): each stage's seconds, and ``finish``, the seconds from its
    last stage's beginning (writing its results) to its UWS endTime -- the results
    recorded and the job completed after its last report, which no stage saw."""

    took: dict[str, float]
    finish: float


def previous_job(
    database_url: str, job_list: str, parameter: str, value: str, jobs_dir: Path
) -> PreviousJob | None:
    """The latest COMPLETED job of ``job_list`` with ``parameter`` = ``value`` (a
    campaign's previous iterate job), as its UWS record and its summary's account say;
    None where there is none, its summary is gone (a destroyed job) or it kept no account."""
    store = JobStore(database_url)
    try:
        if not store.holds_jobs():  # work run outside a UWS service (a benchmark's)
            return None
        done = store.with_parameter(job_list, parameter, value, (Phase.COMPLETED,))
        record = store.get(done[-1].id) if done else None
    except Exception as error:  # an estimate is never worth failing a job
        log.warning("previous %s job not read for time estimates (%s)", job_list, error)
        return None
    finally:
        store.close()
    if record is None or record.start_time is None or record.end_time is None:
        return None
    summary = next((r for r in record.results if r.id == "summary"), None)
    if summary is None or "://" in summary.location:
        return None
    try:
        account = json.loads((jobs_dir / record.id / summary.location).read_text())["time_left"]
        took = {k: float(v["took"]) for k, v in account.items() if v.get("took") is not None}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if "start" not in took:
        return None
    # the last stage began when every one before it had taken its time (the account's
    # "finish", where the job kept one, ran to the summary's writing, not to the end)
    begun = record.start_time.timestamp() + sum(t for k, t in took.items() if k != "finish")
    finish = max(0.0, record.end_time.timestamp() - begun)
    return PreviousJob({k: t for k, t in took.items() if k not in ("start", "finish")}, finish)


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
        #: the estimates the job started with, against which :meth:`account` sets its times
        self.planned: dict[str, float | None] = dict(plan)
        self.clock = clock
        #: the job's UWS startTime (:func:`job_started`): the page measures from it,
        #: and the seconds a worker takes to start and import are part of the job
        self.started = clock() if started is None else started
        self.current = 0
        #: when each stage first began (its measured time: :class:`Rates`)
        self.began: dict[str, float] = {}

    def estimate(self, name: str) -> float | None:
        return self.estimates[name]

    def account(self) -> dict[str, dict[str, float | None]]:
        """Each stage's seconds as planned at the job's start, as last estimated, and as
        taken (from its beginning to the next stage's, the last one to now): the summary
        keeps it, so a wrong time left can be traced to the stage that caused it."""
        now = self.clock()
        starts = [self.began.get(name) for name in self.names]
        first = starts[0]
        out: dict[str, dict[str, float | None]] = {
            "start": {"took": None if first is None else round(max(0.0, first - self.started), 3)}
        }
        for i, name in enumerate(self.names):
            begun = starts[i]
            after = next((t for t in starts[i + 1 :] if t is not None), now)
            took = None if begun is None else round(max(0.0, after - begun), 3)
            planned, last = self.planned[name], self.estimates[name]
            out[name] = {
                "planned": None if planned is None else round(planned, 3),
                "estimated": None if last is None else round(last, 3),
                "took": took,
            }
        return out

    def set(self, name: str, seconds: float | None) -> None:
        self.estimates[name] = seconds

    def begin(self, name: str, message: str = "") -> Stage:
        index = self.names.index(name)
        now = self.clock()
        stage = Stage(self, name, now)
        self.began.setdefault(name, now)
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


@dataclasses.dataclass
class TrainTimes:
    """What a training measured of its own speed (filled by ``fit_classifier``): the
    seconds from its stage's start to the end of its graph-building first batch, less
    one typical batch (SMOTE, the input pipeline, the graph); its first epoch without
    that build; and per epoch after the first. ``first_end``: the first epoch's end
    (a training of one batch per epoch measures no batch: its setup is the first
    epoch less a later one). ``tail``: from its last epoch's end to the fit's return
    (0.01-0.15 s in the demo's one-cycle iterate jobs; 1.2 s in one early-stopped
    training that restored its best epoch's weights, on two cores)."""

    setup: float | None = None
    first_epoch: float | None = None
    per_epoch: float | None = None
    first_end: float | None = None
    tail: float | None = None
    #: the first epoch's batches at their steady speed (no graph build, no validation)
    first_batches: float | None = None

    def measured_setup(self) -> float | None:
        if self.setup is not None:
            return self.setup
        if self.first_end is None or self.per_epoch is None:
            return None
        return max(0.0, self.first_end - self.per_epoch)

    @property
    def epoch_ratio(self) -> float | None:
        """A later epoch's seconds over the first's (graph build left out)."""
        if self.per_epoch is None:
            return None
        return self.per_epoch / self.first_epoch if self.first_epoch else 1.0

    @property
    def batch_ratio(self) -> float | None:
        """A later epoch's seconds over the first epoch's batches alone: what the
        batches a training has run in its first epoch say of a whole later epoch, its
        validation and callbacks included."""
        if self.per_epoch is None or not self.first_batches:
            return None
        return self.per_epoch / self.first_batches


#: The service's measured rates (:class:`Rates`), in its home: they describe the machine
#: the service runs on, not a campaign's data, so they live beside the database rather
#: than in it (an export or a backup restored elsewhere does not carry them).
RATES_FILE = "eta-rates.json"
#: Jobs whose rates are kept; an estimate takes the median of each rate over them, so
#: one job that stalled on a busy machine moves it little.
RATES_KEPT = 5


@dataclasses.dataclass
class Rates:
    """How fast this service's iterate jobs ran, per unit of their work.

    ``prepare``: seconds from the job's first step to its training (the previous
    batch scored, the training set read); ``setup``: from the training's start to its
    graph built (:class:`TrainTimes`); ``row_epoch``: seconds per training row (oracle
    labels counted with their weight) per epoch after the first; ``epoch_ratio``: such
    an epoch's seconds over the first's (graph build left out: the first epoch's
    batches run faster than a later epoch, whose first one pays a one-off of its own,
    so the seconds per batch a training measures in its first epoch are scaled by
    it); ``after_fit``: seconds after the
    fit besides embedding the pool's sample (saving the model, recording, loading it
    again); ``classify_row``: seconds per pool row classified (the sample's embedding
    is taken at the same rate); ``rest_row``: seconds per pool row after
    classification (the batch chosen, the predictions recorded, the pool indexed);
    ``train_tail``: seconds from a training's last epoch to the fit's return
    (:class:`TrainTimes`), None in a record from before it was kept;
    ``finish``: seconds from the job's results writing to its UWS completion, as the
    job measured it of its campaign's previous job (:class:`PreviousJob`; a job cannot
    see its own end), None where it had none; ``batch_ratio``: a later epoch's seconds
    over the first epoch's batches alone (:attr:`TrainTimes.batch_ratio`: scaled by
    ``epoch_ratio`` instead, the first epoch's batches had missed every epoch's
    validation, and the first estimates of a training were 20-30 % short), None in a
    record from before it was kept.
    """

    prepare: float
    setup: float
    row_epoch: float
    epoch_ratio: float
    after_fit: float
    classify_row: float
    rest_row: float
    train_tail: float | None = None
    finish: float | None = None
    batch_ratio: float | None = None

    def after_fit_seconds(self, sample_rows: int) -> float:
        """The steps between the fit and the pool's classification, in seconds."""
        return self.after_fit + self.classify_row * sample_rows

    def training_seconds(self, rows: int, epochs: int) -> float:
        """A training of ``epochs`` epochs over ``rows`` rows, graph build included."""
        first = 1 / self.epoch_ratio if self.epoch_ratio > 0 else 1.0
        epochs_seconds = self.row_epoch * rows * (max(epochs, 1) - 1 + first)
        return self.setup + epochs_seconds + (self.train_tail or 0.0)


def read_rates(home: Path) -> Rates | None:
    """The median of each rate over the last jobs this service recorded
    (:func:`record_rates`); None before its first (or when the file is unreadable:
    an estimate is never worth failing a job)."""
    try:
        kept = json.loads((Path(home) / RATES_FILE).read_text())["jobs"]
        # not in every record: the median of those with it
        optional = ("train_tail", "finish", "batch_ratio")
        names = [f.name for f in dataclasses.fields(Rates) if f.name not in optional]
        values = {n: float(np.median([float(job[n]) for job in kept])) for n in names}
        some = {n: [float(job[n]) for job in kept if job.get(n) is not None] for n in optional}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        if not isinstance(error, FileNotFoundError):
            log.warning("%s: not used for time estimates (%s)", RATES_FILE, error)
        return None
    if not kept or not all(np.isfinite(v) and v >= 0 for v in values.values()):
        return None
    medians = {n: float(np.median(v)) if v else None for n, v in some.items()}
    tail, finish, batch_ratio = (v if v is None or v >= 0 else None for v in medians.values())
    return Rates(**values, train_tail=tail, finish=finish, batch_ratio=batch_ratio or None)


def record_rates(home: Path, rates: Rates) -> None:
    """Add one job's measured rates to the service's (the last :data:`RATES_KEPT`),
    written whole and renamed into place, so a reader never sees half a file."""
    path = Path(home) / RATES_FILE
    try:
        kept = json.loads(path.read_text())["jobs"]
        kept = kept if isinstance(kept, list) else []
    except (OSError, ValueError, KeyError, TypeError):
        kept = []
    entry = {k: round(v, 9) for k, v in dataclasses.asdict(rates).items() if v is not None}
    kept = [*kept, {**entry, "recorded": round(time.time(), 1)}][-RATES_KEPT:]
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    try:
        partial.write_text(json.dumps({"jobs": kept}, indent=1))
        os.replace(partial, path)
    except OSError as error:  # a full disk or a read-only home: the job's work is done
        log.warning("%s: not recorded (%s)", RATES_FILE, error)
