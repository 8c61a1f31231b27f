"""What the learning jobs share: fitting a classifier, recording models, classifying a
feature store and recording the predictions (train, classify and iterate)."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from service.adapt import AdaptConfig
from service.jobs.eta import Stage, TrainTimes, epochs_left
from service.jobs.fanout import map_chunks
from service.jobs.params import JobParams
from service.learn import (
    BALANCING,
    VARIANTS,
    SpectrumClassifier,
    TrainConfig,
    choose_precision,
    configure_threads,
    cpu_flags,
    hou_rule,
)
from service.learn import entropy as shannon_entropy
from service.learn.cascade import (
    Gate,
    audit,
    distillation_temperature,
    noise_level,
    sample_sizes,
)
from service.learn.model import CALIBRATION_ROWS, NOISE_DRAWS, SCHEDULES, finite_rows
from service.learn.scoring import INT8_AGREEMENT, agreement
from service.learn.similar import Projection
from service.reasons import AlvoError, Reason
from service.settings import Settings
from service.store import models
from service.store import predictions as prediction_store
from service.store.engine import engine_for
from service.store.features import FeatureStore
from service.store.predictions import Scoring
from service.vocabulary import (
    ABSORPTION,
    CLASSES,
    SCORED_BY_GATE,
    SCORED_BY_REFERENCE,
    TARGET_CLASSES,
)
from uws.runner import Progress, RunnerJob

log = logging.getLogger(__name__)


def start_job(
    job: RunnerJob, workdir: Path, request_type: Any, threads: bool = True
) -> tuple[Settings, Any]:
    """``(settings, request)`` for a learning job's runner, with TensorFlow's threads set
    (``threads=False``: the runner sets them itself, before TensorFlow runs anything;
    importing it takes seconds a first time estimate need not wait for).

    The request is parsed again in the worker (it was validated at creation), so
    a runner always works from the same typed object the validator accepted.
    """
    if threads:
        configure_threads()
    return Settings.for_job(workdir), request_type.from_params(JobParams(job.parameters.pairs()))


#: The service's default ``NOISE_AUGMENT``. The learning core's default is the
#: original's 0; but trained on the high-SNR Ondrejov set alone, the network called
#: 78 % of LAMOST-like absorption spectra emission, and noisy copies cut that
#: source-only error from 81 % to 4 % (docs/learning.md, "Domain gap").
NOISE_AUGMENT = 1.0
#: The service's default ``TRAIN_BATCH_SIZE`` and ``PATIENCE`` (the original's: 64
#: and 10, still the learning core's). What the oracle waits between batches is
#: mostly training; over seeds of the simulated protocol at the demo's size these
#: halved it and lost no accuracy (docs/performance.md, "Iteration turnaround").
TRAIN_BATCH_SIZE = 256
PATIENCE = 3
#: The service's default ``NOISE_DRAW``, ``LR_SCHEDULE``, ``LEARNING_RATE`` and, with
#: that schedule, ``EPOCHS`` (the learning core's: "stored", "constant", 1e-3 and 100
#: with early stopping). Fresh noise every epoch instead of a stored noisy copy halves
#: the steps per epoch; a one-cycle schedule over a fixed few epochs replaces early
#: stopping's patience epochs. Over seeds at the demo's size they cut training
#: to about a third at no loss of accuracy (docs/performance.md, "Iteration turnaround").
NOISE_DRAW = "per-epoch"
LR_SCHEDULE = "one-cycle"
LEARNING_RATE = 3e-3
ONE_CYCLE_EPOCHS = 4
#: Before a campaign's first training ended (no earlier one to go by): the epoch a
#: training's validation loss is expected to stop improving at. Measured on the demo
#: campaign with the defaults above (benchmarks/bench_eta.py, docs/oracle-page.md,
#: *Time left*): best epoch 7-8 of 10-11 run. A run that improves past it is
#: expected to stop ``PATIENCE`` epochs after its latest best, never at the cap.
FIRST_BEST_EPOCH = 8
#: Copies of each oracle label in an ``iterate`` training set (``ORACLE_WEIGHT``; 1: the
#: original). A few hundred target labels beside thousands of source spectra are
#: outvoted otherwise: at 1 % rarity the network kept predicting 13-16 spectra the oracle
#: had labelled absorption as emission; with 10 copies 3-5, and its own precision at 259
#: labels rose from 0.81 to 0.93 (docs/learning.md, "The rare regime", 3 seeds).
ORACLE_WEIGHT = 10


def training_config(params: Any) -> Any:
    """``MODEL``, ``EPOCHS``, ``PATIENCE``, ``BALANCE``, ``SEED``, ``NOISE_AUGMENT``,
    ``NOISE_DRAW``, ``LR_SCHEDULE``, ``LEARNING_RATE``, ``TRAIN_BATCH_SIZE``,
    ``WARM_START``, ``ORACLE_WEIGHT`` as a learn TrainConfig.

    ``EPOCHS`` defaults to the one-cycle schedule's length (:data:`ONE_CYCLE_EPOCHS`)
    under that schedule, else to 100, an upper limit for early stopping."""
    schedule = params.choice("LR_SCHEDULE", SCHEDULES, LR_SCHEDULE)
    constant = schedule == "constant"
    rate = 1e-3 if constant else LEARNING_RATE
    return TrainConfig(
        variant=params.choice("MODEL", VARIANTS, "reference"),
        epochs=params.integer("EPOCHS", 100 if constant else ONE_CYCLE_EPOCHS, 1, 10_000),
        schedule=schedule,
        learning_rate=params.number("LEARNING_RATE", rate, 1e-6, 0.1),
        noise_draw=params.choice("NOISE_DRAW", NOISE_DRAWS, NOISE_DRAW),
        patience=params.integer("PATIENCE", PATIENCE, 1, 1_000),
        balancing=params.choice("BALANCE", BALANCING, "smote"),
        seed=params.integer("SEED", 0, 0, 2**31 - 1),
        noise_augment=params.number("NOISE_AUGMENT", NOISE_AUGMENT, 0.0, 10.0),
        batch_size=params.integer("TRAIN_BATCH_SIZE", TRAIN_BATCH_SIZE, 8, 4096),
        warm_start=params.flag("WARM_START"),
        oracle_weight=params.integer("ORACLE_WEIGHT", ORACLE_WEIGHT, 1, 1000),
    )


def fit_classifier(
    x: np.ndarray,
    y: np.ndarray,
    config: Any,
    provenance: dict[str, Any],
    stage: Stage | None = None,
    initial_path: Path | None = None,
    prior_epochs: int | None = None,
    oracle: np.ndarray | None = None,
    times: TrainTimes | None = None,
    epoch_ratio: float = 1.0,
    on_speed: Callable[[float], None] | None = None,
    tail: float = 0.0,
    batch_ratio: float | None = None,
    epoch_prior: float | None = None,
) -> Any:
    """A CNN trained on features made with the service's adaptation (recorded in the model).

    ``initial_path``: a model to warm-start from when ``config.warm_start`` (the
    previous iteration's); ignored when missing or of another shape. ``oracle``: (n,)
    bool, the rows that are oracle labels (``config.oracle_weight`` copies each).

    With ``stage``, each epoch reports the training's time left (:mod:`service.jobs.eta`):
    the seconds per epoch so far times the epochs early stopping may still run
    (:func:`~service.jobs.eta.epochs_left`: ``patience`` after the best validation
    loss, the cap at most), or, when more, what is left of ``prior_epochs`` (the
    epochs the campaign's previous training ran: epochs, not seconds, so a machine
    busier or idler than then changes only the seconds per epoch). Without a
    previous training, what is left of :data:`FIRST_BEST_EPOCH` + patience; under
    the one-cycle schedule, every epoch asked for (it has no early stopping). During
    the first epoch, its batches so far give the seconds per epoch. Never the whole
    way to the epoch cap. What follows the fit is the job's next stages. ``times``:
    filled with the speed measured (:class:`~service.jobs.eta.TrainTimes`).
    ``epoch_ratio``: a later epoch's seconds over the first's, as the service measured
    it before (:class:`~service.jobs.eta.Rates`); until this training has run a
    second epoch, its first epoch's speed times this is a later epoch's. ``on_speed``:
    called with that estimate of a later epoch's seconds before each report (a job
    scales the stages it has not measured yet by it). ``tail``: the seconds the fit
    takes after its last epoch (:attr:`~service.jobs.eta.TrainTimes.tail`, as measured
    before), in every time left; this training's own is measured into ``times``.
    ``batch_ratio``: a later epoch's seconds over the first epoch's batches alone, as
    the service measured it (:attr:`~service.jobs.eta.TrainTimes.batch_ratio`); during
    the first epoch it makes whole epochs of the batches run so far (else
    ``epoch_ratio`` does, which leaves each epoch's validation out). ``epoch_prior``:
    a later epoch's seconds as the service's earlier jobs measured them, counted as one
    more epoch among those this training has run after its first: epochs of one demo
    training took 0.5-1.5 s, and one fast epoch alone had made the next estimate 40 %
    short.
    """
    losses: list[float] = []
    ends: list[float] = []
    batch_ends: list[float] = []
    #: epochs the whole training is expected to run: the previous one's, else the prior
    expected = prior_epochs if prior_epochs is not None else FIRST_BEST_EPOCH + config.patience
    scheduled = config.schedule == "one-cycle"  # runs every epoch it is given
    if scheduled:
        expected = config.epochs

    def first_batch_seconds() -> float | None:
        """Seconds per batch of the first epoch from its 3rd batch on (the 1st builds
        the graph, the 2nd is often slow too), None before the 4th has ended: one
        batch's seconds had made a fresh service's first estimate +96 % long."""
        if len(batch_ends) < 4:
            return None
        return (batch_ends[-1] - batch_ends[1]) / (len(batch_ends) - 2)

    def on_first_batches(done: int, batches: int) -> None:
        """Time left while the first epoch runs, from the rows per second so far."""
        assert stage is not None
        batch_ends.append(stage.elapsed())
        per_batch = first_batch_seconds()
        if per_batch is None or done >= batches:
            return
        more = max(1, min(expected, config.epochs)) - 1
        steady = per_batch * batches  # the first epoch's batches, no validation
        later = steady * (batch_ratio or epoch_ratio)  # a whole later epoch
        # this epoch's batches left, and its validation as a later epoch's
        left = per_batch * (batches - done) + max(0.0, later - steady) + later * more + tail
        if on_speed is not None:
            on_speed(later)
        if times is not None:
            times.setup = batch_ends[0] - per_batch  # the graph built in the 1st batch
            times.first_batches = steady
        stage.seconds_left(left, f"training: epoch 1, batch {done} of {batches}")

    def on_epoch(epoch: int, epochs: int, logs: Any) -> None:
        assert stage is not None  # passed to training only with a stage
        ends.append(stage.elapsed())
        durations = np.diff([0.0, *ends])
        later = [*durations[1:], *([epoch_prior] if epoch_prior else [])]
        per_epoch = float(np.mean(later) if len(durations) > 1 else durations[0])
        per_batch = first_batch_seconds()
        if len(durations) == 1 and per_batch is not None:
            # the 1st epoch built the graph in its 1st batch: count that one as a typical
            # batch (the rest, validation included, is what every epoch costs)
            per_epoch = min(per_epoch, ends[0] - batch_ends[0] + per_batch)
        if times is not None and len(durations) == 1:
            times.first_end = ends[0]
            times.first_epoch = per_epoch if per_batch is not None else None
        elif times is not None:
            times.per_epoch = float(np.mean(durations[1:]))  # this training's own
        if len(durations) == 1:
            per_epoch *= epoch_ratio  # what a later epoch takes
        if "val_loss" in logs:
            losses.append(float(logs["val_loss"]))
            best = int(np.argmin(losses)) + 1
            more = epochs_left(losses, config.patience, epochs)  # if it improves no more
            # the previous training's epochs, or the measured prior for a first one
            more = max(more, min(expected, epochs) - epoch)
            why = f"best validation loss at epoch {best}; stops {config.patience} epochs after it"
            if scheduled:
                more = epochs - epoch
                why = f"best validation loss at epoch {best}; one-cycle schedule of {epochs}"
        else:
            more, why = epochs - epoch, "no validation set: runs every epoch"
        left = per_epoch * more + tail
        if on_speed is not None:
            on_speed(per_epoch)
        shown = ", ".join(f"{k} {v:.3f}" for k, v in logs.items() if "loss" in k)
        stage.seconds_left(left, f"training: epoch {epoch} ({shown}; {why}, at most {epochs})")

    adaptation = AdaptConfig()
    initial = None
    if config.warm_start and initial_path is not None and Path(initial_path).exists():
        initial = load_model(initial_path)
    classifier = SpectrumClassifier.train(
        x,
        y,
        config,
        classes=CLASSES,
        adapt_config=adaptation.to_dict(),
        adapt_fingerprint=adaptation.fingerprint,
        extra_provenance=provenance,
        on_epoch=on_epoch if stage is not None else None,
        initial=initial,
        on_first_batches=on_first_batches if stage is not None else None,
        oracle=oracle,
    )
    if stage is not None and times is not None and ends:
        times.tail = max(0.0, stage.elapsed() - ends[-1])
    return classifier


def record_model(
    settings: Settings,
    classifier: Any,
    path: Path,
    campaign_id: int | None = None,
    iteration: int | None = None,
) -> int:
    """Save the model file and its ``model`` row; returns the ``model_id`` (``MODEL_ID``).

    The row holds the path relative to the service's home (``models/be/...``):
    the table is published over TAP, and a server's file paths are nobody's business.
    :func:`model_file` resolves it again.
    """
    classifier.save(path)
    stored, home = Path(path), Path(settings.home).resolve()
    if stored.resolve().is_relative_to(home):
        stored = stored.resolve().relative_to(home)
    return models.record_model(
        engine_for(settings.sqlalchemy_url),
        str(stored),
        classifier.adapt_fingerprint,
        classifier.classes,
        json.dumps(classifier.provenance, default=str),
        campaign_id,
        iteration,
    )


def model_file(home: Path, stored: str) -> Path:
    """The file of a ``model.path`` value (relative to ``home``; older rows: absolute)."""
    return Path(stored) if Path(stored).is_absolute() else Path(home) / stored


@dataclasses.dataclass
class Predictions:
    """Per feature row: class probabilities (NaN rows where the features were NaN)."""

    probabilities: np.ndarray  # (n, 3) float32, columns in CLASSES order
    hou: np.ndarray  # (n,) bool, Hou et al. (2016) rule on the same features
    seconds: float
    arithmetic: str = "fp32"  # what the pool was scored in (int8 may fall back to fp32)
    int8_agreement: float | None = None  # int8's argmax agreement with fp32 on a check sample
    #: (n, k) float32 projected network embedding (:mod:`service.learn.similar`), if asked
    embedding: np.ndarray | None = None
    #: (n,) who scored each row (gate | reference) under the cascade; None: the reference
    scored_by: np.ndarray | None = None
    #: the cascade's audit, counts and seconds (:func:`classify_cascade`); None: not run
    cascade: dict[str, Any] | None = None
    #: (n,) class index per row under the job's candidate rule
    #: (:func:`service.learn.shift.decided_classes`); None: argmax, the seed's
    decided: np.ndarray | None = None

    @property
    def finite(self) -> np.ndarray:
        return np.isfinite(self.probabilities).all(axis=1)

    @property
    def predicted(self) -> np.ndarray:
        """(n,) class index: the candidate rule's decision, else argmax."""
        if self.decided is not None:
            return self.decided
        return np.argmax(np.nan_to_num(self.probabilities, nan=-1.0), axis=1)

    @property
    def entropy(self) -> np.ndarray:
        return np.asarray(shannon_entropy(np.nan_to_num(self.probabilities, nan=1 / 3)))

    def candidates(self) -> np.ndarray:
        """Rows predicted as an emission class (the original's positives; under a candidate
        rule, its candidate set)."""
        among = [CLASSES.index(c) for c in TARGET_CLASSES]
        return np.isin(self.predicted, among) & self.finite


#: Feature rows per classification chunk: the unit of bounded memory and, under the
#: dask executor, one task (about 3 minutes of the reference net on 2 CPU cores).
CLASSIFY_CHUNK = 200_000


def load_model(path: str | Path) -> Any:
    """A saved model, refused if its features were made by another adaptation.

    Cached per process, so the chunks of one pool that land on the same worker (or
    all of them, in the job's own process) load the file once; the file's size and
    modification time are part of the key, so a long-lived Dask worker never uses
    a model file that has since been replaced.
    """
    try:
        stat = Path(path).stat()
    except OSError as error:
        raise AlvoError(Reason.BAD_MODEL_FILE, f"{path}: {error.strerror}") from error
    return _load_model(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=2)
def _load_model(path: str, mtime_ns: int, size: int) -> Any:
    return SpectrumClassifier.load(path, AdaptConfig().fingerprint)


def classify(
    model_path: str | Path,
    feature_path: str | Path,
    progress: Progress | None = None,
    span: tuple[float, float] = (0.0, 1.0),
    chunk: int = CLASSIFY_CHUNK,
    precision: str = "fp32",
    projection: Projection | None = None,
) -> Predictions:
    """Classify a whole feature store with a saved model, chunk by chunk.

    Under the dask executor the chunks are Dask tasks that read their rows from
    the shared feature file, so a LAMOST-sized pool is spread over the cluster;
    otherwise they run in turn in the job's process. Either way memory stays at
    one chunk of features plus the (n, 3) result. ``precision`` is a resolved one
    (:func:`scoring_precision`); int8 calibrates every chunk on the same rows, the
    first finite ones of the store, so the chunks share one quantisation, and is
    used only if it agrees with float32 on a check sample of this pool
    (:func:`checked_precision`). With a ``projection`` each chunk also returns its
    rows' network embedding projected by it (``Predictions.embedding``: k values a
    row, so a chunk's answer stays small under Dask).
    """
    n = len(FeatureStore(feature_path))
    chunks = [(start, min(start + chunk, n)) for start in range(0, n, chunk)]
    started = time.perf_counter()
    precision, agreement = checked_precision(model_path, feature_path, precision)
    probabilities = np.full((n, len(CLASSES)), np.nan, dtype=np.float32)
    hou = np.zeros(n, dtype=bool)
    embedding = None
    if projection is not None:
        embedding = np.full((n, projection.axes.shape[1]), np.nan, dtype=np.float32)
    parts = map_chunks(
        _classify_rows, chunks, str(model_path), str(feature_path), precision, projection
    )
    for done, ((start, stop), (p, h, e)) in enumerate(zip(chunks, parts, strict=True), 1):
        probabilities[start:stop], hou[start:stop] = p, h
        if embedding is not None:
            embedding[start:stop] = e
        if progress is not None:
            fraction = span[0] + (span[1] - span[0]) * done / len(chunks)
            progress(fraction, f"classified {stop} of {n} spectra ({precision})")
    seconds = time.perf_counter() - started
    return Predictions(probabilities, hou, seconds, precision, agreement, embedding)


#: Rows of a pool on which int8 is checked against float32 (spread over the pool):
#: 1 % of it, within these bounds.
CHECK_ROWS = (4096, 65536)


def check_rows(pool: int) -> int:
    """How many rows judge int8 on a pool of ``pool`` rows.

    Why 1 %: a fallback costs 4.6x the scoring time (47 instead of 10 minutes at
    4.1 M), and the 1 M campaign's net, at 99.93 % agreement, judged on 4 096 rows
    fails the 99.9 % bar one time in six (Poisson: 2.9 disagreements expected, 5
    fail); it fell back on a 600 000-row prefix. On 1 % of the pool it fails one
    time in ten at 1 M (10 000 rows, +7 s beside 151 s of scoring) and one in 86
    at 4.1 M (41 000 rows, +35 s beside ~600 s). Nets at 99.975 % or better (the
    multi-seed check) pass all but never either way.
    """
    low, high = CHECK_ROWS
    return int(min(max(pool // 100, low), high))


def checked_precision(
    model_path: str | Path, feature_path: str | Path, precision: str
) -> tuple[str, float | None]:
    """``precision``, unless it is int8 and disagrees with float32 on this pool.

    The check rows are spread over the pool after the calibration rows (the first
    finite ones), so int8 is judged on rows it was not calibrated on. It passes at
    :data:`~service.learn.scoring.INT8_AGREEMENT`, or with a single disagreement
    (on a small pool one row is no evidence either way). Returns the precision to
    use and the agreement measured (None when nothing was checked).
    """
    if precision != "int8":
        return precision, None
    store = FeatureStore(feature_path).array()
    first = min(4 * CALIBRATION_ROWS, len(store) // 2)
    count = check_rows(len(store))
    picked = np.unique(np.linspace(first, len(store) - 1, count).astype(np.int64))
    rows = np.asarray(store[picked], dtype=np.float32) if len(store) else store[:0]
    rows = rows[np.isfinite(rows).all(axis=1)]
    model = load_model(model_path)
    share = agreement(model.scorer("fp32"), model.scorer("int8", finite_rows(store)), rows)
    model.forget_scorer("fp32")  # its traced graph and buffers: ~0.5 GiB the pool never uses
    passed = share >= INT8_AGREEMENT or round((1 - share) * len(rows)) <= 1
    if not passed:
        log.warning("int8 agreed with float32 on %.3f%% of %d rows of %s: scoring in float32",
                    100 * share, len(rows), feature_path)  # fmt: skip
    return ("int8" if passed else "fp32"), share


def _classify_rows(
    rows: tuple[int, int],
    model_path: str,
    feature_path: str,
    precision: str = "fp32",
    projection: Projection | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One chunk: CNN probabilities, the Hou rule's verdicts and (with a projection) the
    projected embedding for rows start..stop."""
    configure_threads()  # a fresh Dask worker has not limited TF's threads yet
    store = FeatureStore(feature_path)
    features = store.read(rows[0], rows[1])
    calibration = finite_rows(store.array()) if precision == "int8" else None
    probabilities, embedding = load_model(model_path).score(
        features, precision=precision, calibration=calibration
    )
    projected = projection(embedding) if projection is not None else None
    return probabilities.astype(np.float32), hou_rule(features, AdaptConfig().grid()), projected


#: ``CASCADE``: auto (the default), off or on. auto: on for pools of at least
#: :data:`CASCADE_MIN_ROWS`, where the gate's fixed costs (its training, ~80 000 sample
#: rows through the reference net) are a small part of what it saves: at 300 000
#: simulated LAMOST spectra the cascade took 2.7x less time than full scoring with the
#: same answers; a demo pool of a few thousand is scored whole (docs/performance.md,
#: "The cascade").
CASCADE_CHOICES = ("auto", "off", "on")
CASCADE = "auto"
CASCADE_MIN_ROWS = 250_000


def cascade_wanted(choice: str, n_rows: int) -> bool:
    """Whether a pool of ``n_rows`` goes through the cascade under ``CASCADE=choice`` (a
    pool too small for its samples does under "on", and its audit fails: "no finite audit
    rows")."""
    return choice == "on" or (choice == "auto" and n_rows >= CASCADE_MIN_ROWS)


def classify_cascade(
    model_path: str | Path,
    feature_path: str | Path,
    labelled: tuple[np.ndarray, np.ndarray],
    progress: Progress | None = None,
    span: tuple[float, float] = (0.0, 1.0),
    chunk: int = CLASSIFY_CHUNK,
    precision: str = "fp32",
    projection: Projection | None = None,
    seed: int = 0,
    gate: Gate | None = None,
) -> Predictions:
    """:func:`classify` with a cheap gate in front of the reference net
    (:mod:`service.learn.cascade`).

    ``labelled``: the iteration's training features and class indices. The reference net
    scores a random distillation sample and a random audit sample first; the gate is
    trained on the labels plus the distillation sample's probabilities (unless a trained
    ``gate`` is given), scores every row, and the audit chooses its threshold. If the
    audit passes, rows at or above it keep the gate's probabilities (``scored_by`` gate,
    no embedding); else every row is scored by the reference net and the audit's
    reason is kept in ``Predictions.cascade``.
    """
    started = time.perf_counter()
    store = FeatureStore(feature_path)
    n = len(store)
    precision, int8_share = checked_precision(model_path, feature_path, precision)
    absorption = CLASSES.index(ABSORPTION)
    rng = np.random.default_rng(seed)
    n_distil, n_audit = sample_sizes(n)
    order = rng.permutation(n)
    distil, audit_rows = np.sort(order[:n_distil]), np.sort(order[n_distil : n_distil + n_audit])
    first = np.sort(order[: n_distil + n_audit])
    probabilities = np.full((n, len(CLASSES)), np.nan, dtype=np.float32)
    hou = np.zeros(n, dtype=bool)
    embedding = None
    if projection is not None:
        embedding = np.full((n, projection.axes.shape[1]), np.nan, dtype=np.float32)
    scored = np.zeros(n, dtype=bool)
    times: dict[str, float] = {}

    def reference(rows: np.ndarray, share: tuple[float, float]) -> None:
        parts = [rows[i : i + chunk] for i in range(0, len(rows), chunk)]
        results = map_chunks(
            _classify_indexed, parts, str(model_path), str(feature_path), precision, projection
        )
        for done, (part, (p, h, e)) in enumerate(zip(parts, results, strict=True), 1):
            probabilities[part], hou[part] = p, h
            if embedding is not None:
                embedding[part] = e
            scored[part] = True
            if progress is not None:
                fraction = share[0] + (share[1] - share[0]) * done / len(parts)
                said = f"reference net: {int(scored.sum())} of {n} spectra ({precision})"
                progress(span[0] + (span[1] - span[0]) * fraction, said)

    clock = time.perf_counter()
    reference(first, (0.0, 0.1))
    times["reference_samples"] = time.perf_counter() - clock
    clock = time.perf_counter()
    temperature = None  # a given gate was trained elsewhere
    if gate is None:
        x_labelled, y_labelled = labelled
        targets = np.eye(len(CLASSES), dtype=np.float32)[np.asarray(y_labelled, np.int64)]
        temperature = distillation_temperature(probabilities[distil], absorption)
        gate = Gate.fit(
            np.concatenate([np.asarray(x_labelled, np.float32), _gather(store, distil)]),
            np.concatenate([targets, probabilities[distil]]),
            absorption,
            seed=seed,
            temperature=temperature,
        )
    times["gate_train"] = time.perf_counter() - clock
    clock = time.perf_counter()
    odds = np.empty(n, np.float32)
    noise = np.empty(n, np.float32)
    gate_p = np.empty((n, len(CLASSES)), np.float32)
    gate_hou = np.zeros(n, dtype=bool)
    for start in range(0, n, chunk):
        rows = store.read(start, start + chunk)
        gate_p[start : start + len(rows)], odds[start : start + len(rows)] = gate.score(
            rows, absorption
        )
        noise[start : start + len(rows)] = noise_level(rows)
        gate_hou[start : start + len(rows)] = hou_rule(rows, AdaptConfig().grid())
    times["gate_score"] = time.perf_counter() - clock
    audited = _gather(store, audit_rows)
    decision = audit(gate, audited, probabilities[audit_rows], absorption, seed)
    skip = decision.cut.skips(odds, noise) & ~scored if decision.passed else np.zeros(n, bool)
    if not decision.passed:
        log.warning("cascade audit failed on %s (%s): the reference net scores every row",
                    feature_path, decision.reason)  # fmt: skip
    clock = time.perf_counter()
    reference(np.flatnonzero(~skip & ~scored), (0.1, 1.0))
    times["reference_rest"] = time.perf_counter() - clock
    probabilities[skip], hou[skip] = gate_p[skip], gate_hou[skip]
    # two shared str objects, not 4.1 M new ones (astype(object) of a str array makes those)
    scored_by = np.array([SCORED_BY_REFERENCE, SCORED_BY_GATE], dtype=object)[skip.astype(np.intp)]
    summary = {
        "used": decision.passed,
        "audit": decision.to_dict(),
        "gate_flops": gate.flops,
        "distillation_rows": int(n_distil),
        "distillation_temperature": temperature,
        "scored_by_gate": int(skip.sum()),
        "scored_by_reference": int(n - skip.sum()),
        "seconds": {k: round(v, 2) for k, v in times.items()},
    }
    seconds = time.perf_counter() - started
    return Predictions(
        probabilities, hou, seconds, precision, int8_share, embedding, scored_by, summary
    )


def _gather(store: FeatureStore, rows: np.ndarray) -> np.ndarray:
    """The (sorted) rows of ``store``, through a memory map that ends with the call (its
    pages leave the process's resident memory with it: :meth:`FeatureStore.read`)."""
    return np.asarray(store.array()[rows], dtype=np.float32)


def _classify_indexed(
    rows: np.ndarray,
    model_path: str,
    feature_path: str,
    precision: str = "fp32",
    projection: Projection | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """:func:`_classify_rows` for the (sorted) pool rows ``rows``."""
    configure_threads()
    store = FeatureStore(feature_path)
    features = _gather(store, rows)
    calibration = finite_rows(store.array()) if precision == "int8" else None
    probabilities, embedding = load_model(model_path).score(
        features, precision=precision, calibration=calibration
    )
    projected = projection(embedding) if projection is not None else None
    return probabilities.astype(np.float32), hou_rule(features, AdaptConfig().grid()), projected


def prediction_table(
    spectrum_ids: np.ndarray,
    predictions: Predictions,
    roles: np.ndarray,
    labelled: np.ndarray,
    surprise: np.ndarray | None = None,
    surprise_rank: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The prediction columns of a scored pool (:func:`service.store.predictions.columns`)."""
    return prediction_store.columns(
        spectrum_ids,
        predictions.probabilities,
        predictions.entropy,
        predictions.hou,
        roles,
        labelled,
        surprise,
        surprise_rank=surprise_rank,
        scored_by=predictions.scored_by,
        predicted=predictions.predicted,
    )


def write_batch(settings: Settings, table: dict[str, np.ndarray], scoring: Scoring) -> int:
    """The selected and labelled rows of an iteration, before the whole pool
    (:func:`service.store.predictions.record_selected`): the oracle can start."""
    engine = engine_for(settings.sqlalchemy_url)
    return prediction_store.record_selected(engine, table, scoring)


def write_predictions(
    settings: Settings,
    spectrum_ids: np.ndarray,
    predictions: Predictions,
    roles: np.ndarray,
    labelled: np.ndarray,
    scoring: Scoring,
    surprise: np.ndarray | None = None,
    surprise_rank: np.ndarray | None = None,
    progress: Any = None,
) -> dict[str, Any]:
    """Record a pool's predictions (see :mod:`service.store.predictions`): the whole pool in a
    Parquet file, the rows TAP needs in SQL. Returns what :func:`~service.store.predictions.record`
    returns; ``progress(done, total)`` after each chunk of SQL rows."""
    table = prediction_table(spectrum_ids, predictions, roles, labelled, surprise, surprise_rank)
    engine = engine_for(settings.sqlalchemy_url)
    return prediction_store.record(engine, settings.home / "predictions", table, scoring, progress)


def scoring_precision(settings: Settings, n_rows: int | None = None) -> str:
    """The arithmetic this machine scores a pool of ``n_rows`` in: ``ALVO_SCORING_PRECISION``
    where the CPU has its instructions (``ALVO_CPU_FLAGS`` stands in for /proc/cpuinfo),
    else fp32; "auto" keeps small pools in fp32 (:func:`~service.learn.choose_precision`)."""
    flags = cpu_flags(settings.cpu_flags or None)
    return choose_precision(settings.scoring_precision, flags, n_rows)
