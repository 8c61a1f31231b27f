"""The ``iterate`` job: one active-learning step of a campaign.

Train on every label so far (the adapted source set plus the oracle's class
verdicts) -> classify the whole pool -> pick the next query batch among the
spectra predicted as emission (highest entropy by default) and a random
precision sample of predicted positives -> record it all.

Parameters (case-insensitive; UWS ``/iterate``):

``CAMPAIGN``      the campaign (required); created when ``SOURCE`` and ``TARGET``
                  datasets are given and it does not exist yet
``STRATEGY``      entropy (default), margin, least-confidence, random, diverse-entropy,
                  random-pool (at random among all open spectra, not only candidates),
                  exploit (most likely emission first), bald (BALD on Monte-Carlo dropout
                  passes of an entropy shortlist)
``EXPLOIT``       fraction of the batch given to the most likely emission stars
                  (p(single) + p(double)) before the strategy picks the rest (default
                  0.5, chosen by the rare-regime benchmark: docs/learning.md; 0: the original)
``CANDIDATES``    how the candidate set (the spectra decided emission) is cut: auto
                  (default: recall-target while the campaign has no oracle label of the
                  pool, argmax from then on), argmax (the seed's: most probable class),
                  recall-target (the top j by EM-corrected p(single) + p(double), j where
                  the expected recall reaches 95 %; :mod:`service.learn.shift`). The query
                  restriction, precision sample, padding, ``n_candidates``, the recorded
                  ``predicted_class`` and the catalogue all follow it
``LABEL_SHIFT``   true: re-weight the pool's probabilities to its class priors as
                  estimated by EM (Saerens et al. 2002) before choosing and recording
``BATCH``         spectra for the oracle (default: the campaign's, 100)
``PRECISION_SAMPLE``  random predicted positives to label for precision (default 30)
``PADDING``       when fewer than ``BATCH`` candidates are left, add at most this many
                  spectra predicted as absorption, drawn at random (default 0: the
                  batch is only what the network predicts as emission)
``MODEL``         network variant (default ``reference``, the published one)
``RESPONSEFORMAT``  VOTable serialization of the tables: TABLEDATA (default) or BINARY2
``SURPRISES``     how many of the most surprising pool spectra the ``surprises`` result
                  lists (default 100; 0: none): an anomaly score on the network's
                  embedding, stored per spectrum (``prediction.surprise``), re-ranked by
                  the oracle's interesting/boring answers (``prediction.surprise_rank``;
                  the page's surprises view shows them in that order)
``BROADCAST``     true: send the query batch and candidates to SAMP clients (TOPCAT,
                  Aladin) when done -- for a service on the astronomer's own desktop
``CASCADE``       on: a cheap gate in front of the reference net decides which spectra
                  it must score; its audit falls back to scoring every spectrum when the
                  gate cannot be trusted on this pool (:mod:`service.learn.cascade`);
                  auto (default): on for pools of 250 000 spectra or more; off
                  (docs/performance.md, "The cascade")
``EPOCHS``, ``PATIENCE``, ``BALANCE`` (smote | class-weight | none), ``SEED``,
``ORACLE_WEIGHT`` (copies of each oracle label in training; default 10, 1: the original)
``LR_SCHEDULE``, ``LEARNING_RATE``  one-cycle over ``EPOCHS`` (default 4) or constant
                  with early stopping -- see docs/jobs.md
``NOISE_AUGMENT``  noisy training spectra, sigma up to this many z-units (default 1.0;
                  0 trains as the original did) -- see docs/learning.md, "Domain gap"
``NOISE_DRAW``    per-epoch (default: fresh noise each epoch) or stored (one noisy copy)

Before training it scores the *previous* iteration against the labels the
oracle has since given: the error of its query batch and the precision (with
its Clopper-Pearson lower bound) of its precision sample, as the original did,
and the stratified precision estimate of its whole predicted-emission set
(:func:`service.learn.precision.stratified_precision`).

After classifying it measures stability against the previous iteration (churn,
candidate agreement, labelled-absorption spectra predicted emission) and applies
the stopping rule (:mod:`service.learn.stability`); all go into the iteration's row
and the summary, with the size of the campaign's emission catalogue (``n_catalogue``:
the oracle's verdicts where given, the predictions elsewhere) and, once its sample is
labelled, that catalogue's stratified precision (``catalogue_estimate``).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from service.jobs.eta import (
    Rates,
    Stages,
    TrainTimes,
    job_started,
    previous_job,
    read_rates,
    record_rates,
)
from service.jobs.learning import (
    CASCADE,
    CASCADE_CHOICES,
    FIRST_BEST_EPOCH,
    Predictions,
    cascade_wanted,
    classify,
    classify_cascade,
    fit_classifier,
    load_model,
    prediction_table,
    record_model,
    scoring_precision,
    start_job,
    training_config,
    write_batch,
    write_predictions,
)
from service.jobs.params import JobParams
from service.jobs.results import (
    candidates_votable,
    learning_curve_png,
    metrics_votable,
    surprises_votable,
)
from service.jobs.runner import job_runner
from service.learn import STRATEGIES, configure_threads
from service.learn.precision import catalogue_precision, oracle_catalogue, stratified_precision
from service.learn.query import emission_probability
from service.learn.shift import (
    CANDIDATE_RULES,
    CandidateCut,
    decide_candidates,
    em_priors,
    train_priors,
)
from service.learn.similar import Projection, SimilarityIndex, fit_projection, sample_rows
from service.learn.stability import candidate_agreement, churn, stopping_rule, uncertain
from service.learn.step import score_batch, select_batch
from service.learn.surprise import DEFAULT_METHOD as SURPRISE_METHOD
from service.learn.surprise import (
    class_centres,
    nearest_class,
    relevance_model,
    rerank,
    surprise_scores,
)
from service.net.simbad import BATCH as SIMBAD_BATCH
from service.net.simbad import simbad_identify
from service.reasons import AlvoError, Reason
from service.settings import Settings
from service.store import schema
from service.store.campaigns import Campaigns
from service.store.engine import engine_for
from service.store.models import training_record
from service.store.ownership import may_change, refusal
from service.store.predictions import Scoring, read_file, similarity_index_file
from service.vo import dali
from service.vo.samp import broadcast_tables
from service.vocabulary import (
    ABSORPTION,
    BATCH_ROLES,
    CANDIDATE,
    CLASSES,
    PADDING,
    PRECISION_SAMPLE,
    QUERY,
    ROLES,
    TARGET_CLASSES,
)
from uws.runner import Progress, Results, RunnerJob

#: Share of each batch given to the most likely emission stars: at 1 % emission it
#: showed the oracle 82 % of the pool's stars in the first 130 answers instead of 58 %
#: (entropy alone), with equal precision later (docs/learning.md, "The rare regime").
EXPLOIT = 0.5


@dataclasses.dataclass(frozen=True)
class IterateRequest:
    campaign: str
    source: str | None
    target: str | None
    strategy: str
    batch: int | None
    precision_sample: int
    padding: int
    training: Any  # service.learn.TrainConfig
    serialization: str
    broadcast: bool
    exploit: float = 0.0
    label_shift: bool = False
    surprises: int = 100
    cascade: str = CASCADE
    candidates: str = "auto"

    @classmethod
    def from_params(cls, params: JobParams) -> IterateRequest:
        return cls(
            campaign=params.identifier("CAMPAIGN"),
            source=params.identifier("SOURCE", "") if params.get("SOURCE") else None,
            target=params.identifier("TARGET", "") if params.get("TARGET") else None,
            strategy=params.choice("STRATEGY", STRATEGIES, "entropy"),
            batch=params.integer("BATCH", 0, 1, 100_000) or None,
            precision_sample=params.integer("PRECISION_SAMPLE", 30, 0, 100_000),
            padding=params.integer("PADDING", 0, 0, 100_000),
            training=training_config(params),
            serialization=dali.response_format(params).serialization,
            broadcast=params.flag("BROADCAST"),
            exploit=params.number("EXPLOIT", EXPLOIT, 0.0, 1.0),
            label_shift=params.flag("LABEL_SHIFT"),
            surprises=params.integer("SURPRISES", 100, 0, 100_000),
            cascade=params.choice("CASCADE", CASCADE_CHOICES, CASCADE),
            candidates=params.choice("CANDIDATES", CANDIDATE_RULES, "auto"),
        )


#: Before a campaign's first iteration, on a service that has measured no iterate job
#: yet (:func:`service.jobs.eta.read_rates`): the rates of the steps after the training
#: (saving and reloading the model, classifying the pool, choosing and recording the
#: batch), measured on the demo campaign (2 000 spectra; `benchmarks/bench_eta.py` on a
#: 2-core machine, load 1-4, docs/oracle-page.md, *Time left*; the steps after the fit,
#: a fresh service's first job's: 1.4-1.7 s since their one trace (3.5 s with two; the
#: later jobs' 0.7-1.1 s); the rest without writing the results: 1.5-1.9e-4 s a
#: row; the fit's seconds after its last epoch: 0.01-0.15 s; a later epoch over the first
#: epoch's batches alone: 1.19-1.38, four quiet demo jobs); and the row-epoch rate
#: they were measured beside: once the job's first training batches have run, they are
#: scaled by its own training speed against that one (:meth:`Iteration.rescale`). The
#: training itself is not guessed: its seconds per row vary 3x with this machine's load
#: alone. SIMBAD's lookup (``ALVO_SIMBAD=on``) is not in those offline rates: it adds
#: :data:`SIMBAD_SECONDS` (the earlier default, not measured again).
DEFAULT_RATES = Rates(
    prepare=2.0, setup=1.9, row_epoch=9e-4, epoch_ratio=1.3, after_fit=1.5,
    classify_row=1.8e-4, rest_row=1.7e-4, train_tail=0.1, batch_ratio=1.25,
)  # fmt: skip
SIMBAD_SECONDS = 2.0
#: The job's last stage, from its results writing to its UWS completion, where neither the
#: campaign's previous job nor the service's rates measured it (:class:`~service.jobs.eta.
#: PreviousJob`): 0.08-0.15 s on the demo campaign (bench_eta.py, docs/oracle-page.md).
FINISH_SECONDS = 0.1


@job_runner
def run(job: RunnerJob, workdir: Path, progress: Progress) -> Results:
    settings, request = start_job(job, workdir, IterateRequest, threads=False)
    campaigns = Campaigns(settings)
    campaign = campaigns.get(request.campaign)
    if campaign is None:
        if not (request.source and request.target):
            raise AlvoError(
                Reason.UNKNOWN_CAMPAIGN,
                f"no campaign named {request.campaign!r}: give SOURCE and TARGET datasets "
                "to create it",
            )
        campaign = campaigns.create(
            request.campaign, request.source, request.target, request.batch or 100,
            owner=job.owner,
        )  # fmt: skip
    if not may_change(campaign.owner, job.owner):
        raise refusal("campaign", campaign.name, campaign.owner, "only its owner iterates")
    iteration = Iteration(settings, campaigns, campaign, request, workdir, progress)
    iteration.begin()  # a first time left, before TensorFlow's import (seconds when busy)
    configure_threads()
    return iteration.run()


class Iteration:
    """The steps of one iteration, in the order they run."""

    #: set by the steps: the model trained and the arithmetic the pool was scored in
    model_id: int | None = None
    precision: str = "fp32"
    #: EM-estimated class priors of the pool (LABEL_SHIFT), else None
    pool_priors: list[float] | None = None
    projection: Projection | None = None  # the pool's embedding axes, for the similarity index
    surprise: np.ndarray | None = None  # (n,) anomaly score of each pool row
    relevance: np.ndarray | None = None  # (n,) estimated relevance (0.5: nothing known)
    surprise_rank: np.ndarray | None = None  # (n,) place in the surprises list (NaN: not in it)
    top_surprises: np.ndarray = np.zeros(0, np.int64)  # pool rows of the list, in its order
    centres: np.ndarray | None = None  # (classes, k) class centres in the projected embedding
    embedding: np.ndarray | None = None  # (n, k) the pool's projected embedding
    labelled: tuple[np.ndarray, np.ndarray] | None = None  # training (features, classes)
    cascade: dict[str, Any] | None = None  # what the cascade did (None: not run)
    cascade_note = ""
    n_labels = 0  # oracle class labels of the pool the model was trained on
    cut: CandidateCut | None = None  # the candidate decision (CANDIDATES)

    def __init__(
        self,
        settings: Settings,
        campaigns: Any,
        campaign: Any,
        request: IterateRequest,
        workdir: Path,
        progress: Progress,
    ) -> None:
        self.settings = settings
        self.campaigns = campaigns
        self.campaign = campaign
        self.request = request
        self.workdir = workdir
        self.progress = progress
        last = campaigns.last_iteration(campaign)
        self.number = 0 if last is None else last + 1
        self.timings: dict[str, float] = {}
        self.simbad = "not attempted"
        self.rows = 0  # training rows per epoch (oracle labels with their weight)
        self.train_times = TrainTimes()
        self.rates: Rates | None = None  # the service's (:meth:`plan`)
        self.planned: Rates | None = None  # what the later stages were planned from
        self.unscaled: dict[str, float | None] = {}
        #: previous iteration's query batch: oracle verdict (rows) x prediction (columns)
        self.confusion: np.ndarray | None = None

    def begin(self) -> None:
        """The job's stages and their expected seconds (:meth:`plan`); the first report."""
        self.started = schema.utcnow()
        job_id = self.workdir.name  # a UWS job's directory is named after the job
        begun = job_started(self.settings.sqlalchemy_url, job_id)
        self.stages = Stages(self.progress, self.plan(), started=begun)
        self.stages.begin("score", "scoring the previous iteration against new labels")

    def run(self) -> dict[str, Any]:
        if not hasattr(self, "stages"):
            self.begin()
        started = self.started
        self.score_previous()
        model_path, n_labels = self.train()
        predictions = self.classify(model_path)
        self.stages.begin(
            "rest", f"selecting the query batch{self.cascade_note}; {self.candidate_note()}"
        )
        roles = self.choose_batch(predictions, model_path)
        self.stages.begin("rest", "recording the query batch")
        self.record_batch(predictions, roles, n_labels, started)
        self.stages.begin("rest", "query batch ready for the oracle; scoring surprises")
        self.score_surprises(predictions)
        self.stages.begin("rest", "query batch ready; recording the pool's predictions")
        self.record(predictions, roles)
        self.stages.begin("rest", "indexing the pool for 'more like this'")
        self.index_similar(predictions)
        self.stages.begin("rest", "identifying candidates in SIMBAD")
        self.crossmatch(roles)
        # before the results are written: from here to the UWS completion is the finish stage
        self.stages.begin("finish", f"writing results; {self.candidate_note()}")
        results = self.results(predictions.probabilities, roles)
        self.record_rates()
        return results

    def plan(self) -> list[tuple[str, float | None]]:
        """Each stage's expected seconds (:mod:`service.jobs.eta`): the previous
        iteration's where the campaign had one; else the rates this service measured in
        its earlier iterate jobs (any campaign's) times this job's work: training rows
        x epochs, the pool's rows; on a service with none, the training's time is
        unknown until its first batches have shown its speed (see :meth:`train`)."""
        earlier = self.campaigns.iterations(self.campaign)
        last = earlier[-1] if earlier else {}
        #: epochs the previous training ran (its model's provenance)
        self.prior_epochs: int | None = None
        if earlier:
            engine = engine_for(self.settings.sqlalchemy_url)
            record = training_record(engine, self.campaign.campaign_id, last["number"])
            if record and isinstance(record.get("epochs_run"), int):
                self.prior_epochs = record["epochs_run"]
        train, classify = last.get("train_seconds"), last.get("classify_seconds")
        rest = None
        if last.get("started") and last.get("finished") and train and classify:
            total = (last["finished"] - last["started"]).total_seconds()
            rest = max(0.0, total - train - classify)
        #: the campaign's previous iterate job, stage by stage, as its summary accounts them,
        #: and its seconds from its results writing to its UWS completion
        previous = None
        if earlier:
            previous = previous_job(
                self.settings.sqlalchemy_url, "iterate", "CAMPAIGN", self.campaign.name,
                self.workdir.parent,
            )  # fmt: skip
        #: the finish this job saw of its campaign's previous one (kept with its rates)
        self.finish_seen = previous.finish if previous is not None else None
        pool = len(self.campaign.target.features)
        sample = len(sample_rows(pool))
        #: the service's measured rates: a first iteration's every stage; any training's
        #: later epochs from its first (the epoch ratio)
        self.rates = rates = read_rates(self.settings.home)
        score, after_fit = 1.0, 0.0  # the previous iteration's rest holds the after-fit
        self.planned = None
        stages = ("score", "train", "after-fit", "classify", "rest")
        if previous is not None and all(name in previous.took for name in stages):
            # a later iteration: each stage as long as the previous job's (its training
            # refined by its epochs, below: :meth:`train`); but the steps that vary most
            # from one job to the next -- scoring, the steps after the fit with their
            # traced forward pass (0.4-13 s at load 2-5 on two cores), the rest -- by the
            # service's median over its last jobs, the previous one among them: one
            # job's 0.6 s planned for 2.2 s had made the time left -62 % at half way
            score, train, after_fit, classify, rest = (previous.took[n] for n in stages)
            if rates is not None:  # not scaled by the training's speed: 12 demo jobs'
                # after-fit seconds (0.4-6.5 s) did not follow their row-epoch rate
                score, after_fit = rates.prepare, rates.after_fit_seconds(sample)
                rest = rates.rest_row * pool
        elif not (train and classify and rest is not None):
            # a first iteration: the service's rates (else the defaults) x this job's work
            base = self.planned = rates or DEFAULT_RATES
            train = None  # the defaults do not guess the training
            if rates is not None:
                score = rates.prepare
                train = rates.training_seconds(self.training_rows(), self.expected_epochs())
            simbad = SIMBAD_SECONDS if rates is None and self.settings.simbad == "on" else 0.0
            after_fit = base.after_fit_seconds(sample)
            classify, rest = base.classify_row * pool, base.rest_row * pool + simbad
        elif rates is not None and rest is not None:
            # a later iteration: its training and classification from the previous one;
            # the previous job's other seconds split by what the service measured of each
            # stage, not all put last (where 2.6 s of scoring and saving, already past by
            # then, made the time left +57-100 % long during the training and after it)
            score = rates.prepare
            after_fit = rates.after_fit_seconds(sample)
            rest = max(rates.rest_row * pool, rest - score - after_fit)
        self.unscaled = {"after-fit": after_fit, "classify": classify, "rest": rest}
        finish = FINISH_SECONDS
        if rates is not None and rates.finish is not None:
            finish = rates.finish  # the median of the finishes the last jobs saw
        elif previous is not None:
            finish = previous.finish
        return [
            ("score", score),
            ("train", train or None),
            ("after-fit", after_fit),
            ("classify", classify),
            ("rest", rest),
            ("finish", finish),
        ]

    def rescale(self, per_epoch: float) -> None:
        """Once this training's speed is measured (``per_epoch``: a later epoch's
        seconds), the stages after it that were planned from rates, scaled by it against
        theirs: a machine busier than when they were measured is slower at every step.
        At most 4x either way."""
        if self.planned is None or not self.rows or self.planned.row_epoch <= 0:
            return
        factor = per_epoch / (self.planned.row_epoch * self.rows)
        factor = min(4.0, max(0.25, factor))
        for name, seconds in self.unscaled.items():
            if seconds is not None:
                self.stages.set(name, seconds * factor)

    def train_tail(self) -> float:
        """Seconds the fit takes after its last epoch: the service's median, else the
        default (:data:`DEFAULT_RATES`): small in the demo's one-cycle jobs (0.01-0.15 s),
        1.2 s in an early-stopped training that restored its best weights."""
        measured = self.rates.train_tail if self.rates is not None else None
        return measured if measured is not None else (DEFAULT_RATES.train_tail or 0.0)

    def training_rows(self) -> int:
        """Rows a training sees per epoch, before balancing: the labelled source spectra
        and the oracle's pool labels, each ``ORACLE_WEIGHT`` times."""
        source = self.campaigns.datasets.source_labels(self.campaign.source)
        pool = self.campaigns.pool_labels(self.campaign, CLASSES)[0]
        weight = self.request.training.oracle_weight
        return sum(v in CLASSES for v in source.values()) + weight * len(pool)

    def expected_epochs(self) -> int:
        """Epochs a first training is expected to run: every one asked for under the
        one-cycle schedule (no early stopping), else the measured best epoch plus the
        patience (:data:`~service.jobs.learning.FIRST_BEST_EPOCH`), the cap at most."""
        config = self.request.training
        if config.schedule == "one-cycle":
            return int(config.epochs)
        return int(min(FIRST_BEST_EPOCH + config.patience, config.epochs))

    def record_rates(self) -> None:
        """This job's rates per unit of work (:class:`~service.jobs.eta.Rates`), for the
        time estimates of later campaigns' first iterations."""
        began, times = self.stages.began, self.train_times
        pool = len(self.campaign.target.features)
        stages = ("score", "train", "after-fit", "classify", "rest", "finish")
        ratio, setup = times.epoch_ratio, times.measured_setup()
        if setup is None or times.per_epoch is None or ratio is None:
            return  # a training of one epoch: no rate per epoch to keep
        if not self.rows or not pool:
            return
        if any(name not in began for name in stages):
            return
        classify_row = (began["rest"] - began["classify"]) / pool
        after = began["classify"] - began["after-fit"] - classify_row * len(sample_rows(pool))
        rates = Rates(
            prepare=max(0.0, began["train"] - began["score"]),
            setup=setup,
            row_epoch=times.per_epoch / self.rows,
            epoch_ratio=ratio,
            after_fit=max(0.0, after),
            classify_row=max(0.0, classify_row),
            rest_row=max(0.0, (began["finish"] - began["rest"]) / pool),
            train_tail=times.tail,
            batch_ratio=times.batch_ratio,
            finish=self.finish_seen,
        )
        record_rates(self.settings.home, rates)

    # --- steps ----------------------------------------------------------------------------------
    def score_previous(self) -> None:
        """Metrics of the last iteration's row, from the labels given since on its batch
        (:func:`service.learn.step.score_batch`): each row describes its own model."""
        if self.number == 0:
            return
        previous = self.number - 1
        verdicts = self.campaigns.labels(self.campaign)
        rows = self.campaigns.batch_predictions(self.campaign, previous)
        predicted = [p for _, _, p, _ in rows]
        role = [r for _, _, _, r in rows]
        verdict = [verdicts.get(s) for _, s, _, _ in rows]
        values = score_batch(predicted, role, verdict, CLASSES, TARGET_CLASSES)
        values.update(self.precision_estimate(previous, role, verdict, verdicts))
        batch = zip(predicted, role, verdict, strict=True)
        query = [(p, v) for p, r, v in batch if r == QUERY and v in CLASSES]
        if query:
            self.confusion = np.zeros((len(CLASSES), len(CLASSES)), dtype=np.int64)
            for p, v in query:
                self.confusion[CLASSES.index(v), CLASSES.index(p)] += 1
        self.campaigns.record_metrics(self.campaign, previous, values)

    def precision_estimate(
        self,
        previous: int,
        role: list[str],
        verdict: list[str | None],
        verdicts: dict[int, str],
    ) -> dict[str, float]:
        """The previous iteration's whole predicted-emission set: labelled stratum by its
        verdicts, open stratum by the precision sample (with its bound)."""
        row = next(
            (it for it in self.campaigns.iterations(self.campaign) if it["number"] == previous),
            None,
        )
        if row is None or row.get("n_candidates") is None:
            return {}
        known = [
            verdicts.get(s) for s in self.campaigns.labelled_candidates(self.campaign, previous)
        ]
        judged = [v for v in known if v in CLASSES]
        sample = [v for r, v in zip(role, verdict, strict=True) if r == PRECISION_SAMPLE]
        sample_judged = [v for v in sample if v in CLASSES]
        open_candidates = int(row["n_candidates"]) - len(known)
        hits = sum(v in TARGET_CLASSES for v in sample_judged)
        value, lower = stratified_precision(
            sum(v in TARGET_CLASSES for v in judged),
            len(judged),
            open_candidates,
            hits,
            len(sample_judged),
        )
        out = {}
        if np.isfinite(value):
            out = {"precision_estimate": value, "precision_estimate_lower": lower}
        stars = self.campaigns.labelled_at(self.campaign, previous)  # verdicts win there
        value, lower = catalogue_precision(
            sum(verdicts.get(s) in TARGET_CLASSES for s in stars),
            open_candidates,
            hits,
            len(sample_judged),
        )
        if np.isfinite(value):
            out |= {"catalogue_estimate": value, "catalogue_estimate_lower": lower}
        return out

    def train(self) -> tuple[Path, int]:
        """Train on every label so far; returns the saved model's path and the number
        of oracle labels of the pool it used."""
        features, y, target_rows = self.campaigns.training_set(self.campaign, CLASSES)
        self.labelled = (features, y)  # the cascade's gate learns from the same labels
        started = time.perf_counter()
        provenance = {"campaign": self.campaign.name, "iteration": self.number}
        folder = self.settings.home / "models" / self.campaign.name
        previous = folder / f"iteration-{self.number - 1}.keras"  # WARM_START's weights
        stage = self.stages.begin("train", f"training on {len(y)} labelled spectra")
        oracle = np.arange(len(y)) >= len(y) - len(target_rows)  # pool labels come last
        self.rows = len(y) + (self.request.training.oracle_weight - 1) * len(target_rows)
        self.train_times = TrainTimes()
        classifier = fit_classifier(
            features, y, self.request.training, provenance, stage, previous, self.prior_epochs,
            oracle, self.train_times, (self.rates or DEFAULT_RATES).epoch_ratio, self.rescale,
            self.train_tail(), (self.rates or DEFAULT_RATES).batch_ratio,
            self.rates.row_epoch * self.rows if self.rates is not None else None,
        )  # fmt: skip
        self.timings["train"] = time.perf_counter() - started
        self.stages.begin("after-fit", "saving the model; embedding a sample of the pool")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"iteration-{self.number}.keras"
        self.model_id = record_model(
            self.settings, classifier, path, self.campaign.campaign_id, self.number
        )
        self.n_labels = len(target_rows)
        return path, len(target_rows)

    def classify(self, model_path: Path) -> Predictions:
        """Score the pool; its embeddings come out projected for the similarity index, on
        axes fitted to a sample of the pool (:mod:`service.learn.similar`)."""
        pool = self.campaign.target
        precision = scoring_precision(self.settings, len(pool.features))
        features = pool.features.array()
        sample = np.asarray(features[sample_rows(len(features))])
        # in the arithmetic the pool is then scored in: its traced forward pass (1-4 s on two
        # cores, the most variable step after the fit) is then paid once, not twice
        model, arithmetic = load_model(model_path), _embedding_precision(precision)
        projection = None
        if len(sample):
            projection = fit_projection(model.embed(sample, precision=arithmetic))
        self.projection = projection
        stage = self.stages.begin("classify", f"classifying {len(pool.features)} spectra")
        if cascade_wanted(self.request.cascade, len(pool.features)) and self.labelled:
            predictions = classify_cascade(
                model_path,
                pool.feature_path,
                self.labelled,
                stage.fraction,
                precision=precision,
                projection=projection,
                seed=self.request.training.seed + self.number,
            )
            self.cascade = predictions.cascade
            assert self.cascade is not None
            audit = self.cascade["audit"]
            said = (
                f"cascade: the gate scored {self.cascade['scored_by_gate']} spectra, "
                f"the reference net {self.cascade['scored_by_reference']}"
                if self.cascade["used"]
                else f"cascade audit failed ({audit['reason']}): the reference net "
                f"scored all {len(pool.features)} spectra"
            )
            self.cascade_note = f"; {said}"  # jobInfo says it while the job goes on
        else:
            predictions = classify(
                model_path,
                pool.feature_path,
                stage.fraction,
                precision=precision,
                projection=projection,
            )
        self.precision = predictions.arithmetic
        self.timings["classify"] = predictions.seconds
        raw = predictions.probabilities
        if self.request.label_shift:  # the pool's priors by EM; what is chosen and recorded
            adjusted, priors = em_priors(predictions.probabilities)
            predictions = dataclasses.replace(predictions, probabilities=adjusted)
            self.pool_priors = [round(float(v), 5) for v in priors]
        return self.decide(predictions, raw)

    def decide(self, predictions: Predictions, raw: np.ndarray) -> Predictions:
        """The candidate set under ``CANDIDATES`` (:func:`service.learn.shift.candidate_cut`),
        and each row's class under it: what every later step takes as "predicted".

        The recall-targeted cut re-weights the network's own posteriors (``raw``, under
        the priors it was trained with) by EM itself; argmax takes the probabilities the
        job records (re-weighted when ``LABEL_SHIFT``), as before."""
        among = [CLASSES.index(c) for c in TARGET_CLASSES]
        y = self.labelled[1] if self.labelled else np.zeros(0, np.int64)
        priors = train_priors(y, len(CLASSES), self.request.training.balancing)
        self.cut, decided = decide_candidates(
            raw, predictions.probabilities, self.request.candidates, self.n_labels, among, priors
        )
        return dataclasses.replace(predictions, decided=decided)

    def candidate_note(self) -> str:
        """The candidate rule and its cut, in words (jobInfo)."""
        if self.cut is None:
            return "candidates: not decided yet"
        said = f"candidates: {self.cut.rule} ({int(self.cut.candidate.sum())} spectra"
        if self.cut.j is not None and self.cut.expected_recall is not None:
            said += f", the top {self.cut.j}, expected recall {self.cut.expected_recall:.3f}"
        why = "" if self.request.candidates != "auto" else f", auto at {self.n_labels} pool labels"
        return f"{said}{why})"

    def choose_batch(self, predictions: Predictions, model_path: Path) -> Any:
        """The shared active-learning step (:func:`service.learn.step.select_batch`) on
        the pool's predictions, with the network's embeddings for diverse-entropy."""
        features = self.campaign.target.features.array()

        def embed(rows: np.ndarray) -> np.ndarray:
            return np.asarray(load_model(model_path).embed(np.asarray(features[rows])))

        def mc(rows: np.ndarray) -> np.ndarray:  # STRATEGY=bald: on its shortlist only
            rng = np.random.default_rng(self.request.training.seed + self.number)
            return np.asarray(
                load_model(model_path).mc_dropout(np.asarray(features[rows]), 20, rng)
            )

        step = select_batch(
            predictions.probabilities,
            self.campaigns.judged_pool_rows(self.campaign),
            self.request.batch or self.campaign.batch_size,
            self.request.precision_sample,
            np.random.default_rng(self.request.training.seed + self.number),
            self.request.strategy,
            [CLASSES.index(c) for c in TARGET_CLASSES],
            embed=embed,
            exploit=self.request.exploit,
            padding=self.request.padding,
            mc=mc,
            candidate=predictions.candidates(),
        )
        self.step = step
        self.stability = self.measure_stability(predictions)
        return step.role

    def measure_stability(self, predictions: Predictions) -> dict[str, Any]:
        """Churn and candidate agreement against the previous iteration's pool file,
        labelled-absorption spectra predicted emission, uncertain open spectra, and the
        stopping rule's decision over the campaign's history."""
        among = [CLASSES.index(c) for c in TARGET_CLASSES]
        current = np.where(predictions.finite, predictions.predicted, -1)
        out: dict[str, Any] = {"churn": None, "candidate_agreement": None}
        path = None if self.number == 0 else self.campaigns.prediction_file(
            self.campaign, self.number - 1
        )  # fmt: skip
        if path is not None and (self.settings.home / path).exists():
            before = read_file(self.settings.home / path, ["spectrum_id", "predicted_class"])
            ids = np.asarray(self.campaigns.spectrum_ids(self.campaign.target), dtype=np.int64)
            order = np.argsort(before["spectrum_id"])
            known = np.asarray(before["spectrum_id"], dtype=np.int64)[order]
            at = np.clip(np.searchsorted(known, ids), 0, max(len(known) - 1, 0))
            found = known.size > 0
            hit = (known[at] == ids) if found else np.zeros(len(ids), bool)
            names = np.asarray(before["predicted_class"], dtype=object)[order]
            previous = np.full(len(ids), -1)
            previous[hit] = [CLASSES.index(str(c)) for c in names[at[hit]]]
            out["churn"] = churn(previous, current)
            both = (previous >= 0) & (current >= 0)
            out["candidate_agreement"] = candidate_agreement(
                np.isin(previous[both], among), np.isin(current[both], among)
            )
        verdicts = self.campaigns.pool_verdicts(self.campaign)
        absorbed = np.array([r for r, v in verdicts.items() if v == ABSORPTION], dtype=np.int64)
        candidate = predictions.candidates()
        out["n_flipped"] = int(candidate[absorbed].sum()) if absorbed.size else 0
        out["n_catalogue"] = int(self.catalogue(candidate, verdicts).sum())
        open_rows = np.ones(len(current), bool)
        open_rows[np.asarray(self.campaigns.judged_pool_rows(self.campaign), dtype=np.int64)] = (
            False
        )
        open_rows &= predictions.finite
        out["n_uncertain"] = uncertain(
            emission_probability(predictions.probabilities[open_rows], among)
        )
        history = self.campaigns.iterations(self.campaign)
        decision = stopping_rule(
            [it.get("churn") for it in history] + [out["churn"]],
            [it.get("candidate_agreement") for it in history] + [out["candidate_agreement"]],
            out["n_uncertain"],
        )
        out["stop"], out["stop_reason"] = decision.stop, decision.reason
        self.stopping = decision.to_dict()
        return out

    @staticmethod
    def catalogue(candidate: np.ndarray, verdicts: dict[int, str]) -> np.ndarray:
        """(n,) bool, the campaign's emission catalogue: the oracle's class verdict where
        it gave one, the network's prediction elsewhere (:func:`oracle_catalogue`)."""
        labelled = np.zeros(len(candidate), dtype=bool)
        emission = np.zeros(len(candidate), dtype=bool)
        for row, verdict in verdicts.items():
            if verdict in CLASSES:
                labelled[row], emission[row] = True, verdict in TARGET_CLASSES
        return oracle_catalogue(candidate, labelled, emission)

    def scoring(self) -> Scoring:
        job_id = self.workdir.name  # a UWS job's directory is named after the job
        return Scoring(
            self.campaign.campaign_id, self.number, self.model_id, job_id, self.precision
        )

    def labelled_rows(self, n: int) -> np.ndarray:
        labelled = np.zeros(n, dtype=bool)
        labelled[list(self.campaigns.pool_verdicts(self.campaign))] = True
        return labelled

    def record_batch(
        self, predictions: Predictions, roles: np.ndarray, n_labels: int, started: Any
    ) -> None:
        """The query batch, precision sample and candidates first, and the iteration's row:
        the labelling page can show the batch while the whole pool is still being
        recorded (:func:`service.store.predictions.record_selected`)."""
        clock = time.perf_counter()
        ids = self.campaigns.spectrum_ids(self.campaign.target)
        table = prediction_table(ids, predictions, roles, self.labelled_rows(len(ids)))
        write_batch(self.settings, table, self.scoring())
        self.campaigns.record_iteration(
            self.campaign,
            self.number,
            strategy=self.request.strategy,
            n_labels=n_labels,
            n_candidates=self.step.n_candidates,
            **self.stability,
            train_seconds=self.timings.get("train"),
            classify_seconds=self.timings.get("classify"),
            started=started,
            finished=schema.utcnow(),
        )
        self.timings["record-batch"] = time.perf_counter() - clock

    def record(self, predictions: Predictions, roles: np.ndarray) -> None:
        """The whole pool: a Parquet file, then every row in SQL in bulk, replacing the
        batch's rows in one transaction; jobInfo counts the rows."""
        clock = time.perf_counter()
        ids = self.campaigns.spectrum_ids(self.campaign.target)

        def progress(done: int, total: int) -> None:
            self.stages.begin("rest", f"query batch ready; recorded {done} of {total} predictions")

        write_predictions(
            self.settings, ids, predictions, roles, self.labelled_rows(len(ids)),
            self.scoring(), self.surprise, self.surprise_rank, progress,
        )  # fmt: skip
        self.timings["record-pool"] = time.perf_counter() - clock

    def score_surprises(self, predictions: Predictions) -> None:
        """Each pool spectrum's anomaly score on the projected embedding
        (:mod:`service.learn.surprise`), and the class centres the top ones are said to be
        nearest to."""
        if predictions.embedding is None:
            return
        started = time.perf_counter()
        seed = self.request.training.seed + self.number
        self.surprise = surprise_scores(predictions.embedding, SURPRISE_METHOD, seed)
        self.centres = class_centres(predictions.embedding, predictions.probabilities)
        self.embedding = predictions.embedding
        # the oracle's interesting/boring answers so far re-rank the list (Astronomaly-style)
        answered, relevance = self.campaigns.pool_relevance(self.campaign)
        estimate, trust = relevance_model(self.embedding, answered, relevance)
        self.relevance = (0.5 + trust * (estimate - 0.5)).astype(np.float32)
        ranking = rerank(self.surprise, estimate, trust) if len(answered) else self.surprise
        self.surprise_rank = np.full(len(self.surprise), np.nan)
        ids = self.campaigns.spectrum_ids(self.campaign.target)
        listed = np.isfinite(ranking) & (ids[: len(ranking)] >= 0)
        listed[answered] = False  # answered already: not asked again
        scores = np.where(listed, ranking, -np.inf)
        n = min(self.request.surprises, int(listed.sum()))
        top = np.argpartition(-scores, n - 1)[:n] if n else np.zeros(0, np.int64)
        self.top_surprises = top[np.argsort(-scores[top], kind="stable")]
        self.surprise_rank[self.top_surprises] = np.arange(1, n + 1)
        self.timings["surprise"] = time.perf_counter() - started

    def surprises(self) -> list[dict[str, Any]]:
        """The ``SURPRISES`` pool rows to look at, in order (the anomaly score re-ranked by
        the oracle's relevance answers, answered ones left out), with why."""
        if self.surprise is None or self.centres is None or self.embedding is None:
            return []
        assert self.relevance is not None
        ids = self.campaigns.spectrum_ids(self.campaign.target)
        top = self.top_surprises
        nearest, distance = nearest_class(self.embedding[top], self.centres)
        return [
            {
                "spectrum_id": int(ids[r]),
                "surprise": float(self.surprise[r]),
                "relevance": float(self.relevance[r]),
                "nearest_class": CLASSES[int(c)],
                "class_distance": float(d),
            }
            for r, c, d in zip(top, nearest, distance, strict=True)
        ]

    def index_similar(self, predictions: Predictions) -> None:
        """The pool's "more like this" index (HNSW over the projected embedding), saved
        where the store looks for it (``/similar``, docs/discovery.md)."""
        if predictions.embedding is None:
            return
        started = time.perf_counter()
        index = SimilarityIndex.build(predictions.embedding, self.projection)
        path = similarity_index_file(self.settings.home, self.campaign.campaign_id, self.number)
        index.save(path)
        self.timings["similar-index"] = time.perf_counter() - started

    def crossmatch(self, roles: np.ndarray) -> None:
        """SIMBAD ids for the spectra the oracle will see first; skipped (and said) offline."""
        if self.settings.simbad != "on":
            self.simbad = "skipped: switched off (ALVO_SIMBAD=off)"
            return
        order = [*self.step.rows(*BATCH_ROLES), *self.step.rows(CANDIDATE)]
        spectra = self.campaigns.datasets.spectra(
            self.campaign.target, ["spectrum_id", "ra", "dec", "simbad_id"]
        )
        rows = [r for r in order if not spectra["simbad_id"][r]][:SIMBAD_BATCH]
        if not rows:
            self.simbad = "nothing new to identify"
            return
        match = simbad_identify(
            [spectra["ra"][r] or np.nan for r in rows], [spectra["dec"][r] or np.nan for r in rows]
        )
        if match.skipped:
            self.simbad = f"skipped: {match.skipped}"
            return
        pairs = zip(rows, match.identifiers, strict=True)
        found = [(spectra["spectrum_id"][r], name) for r, name in pairs if name]
        self.campaigns.datasets.record_simbad_ids(found)
        self.simbad = f"{len(found)} of {len(rows)} identified"

    def results(self, probabilities: np.ndarray, roles: np.ndarray) -> dict[str, Any]:
        workdir, campaign, number = self.workdir, self.campaign, self.number
        base = self.settings.public_url
        outputs: dict[str, Any] = {}
        for name, kinds in (("query", BATCH_ROLES), ("candidates", None)):
            path = workdir / f"{name}.vot"
            path.write_bytes(
                candidates_votable(
                    self.settings, campaign, number, kinds, name, self.request.serialization
                )
            )
            outputs[name] = (path, "application/x-votable+xml")
        if self.request.surprises and self.surprise is not None:
            path = workdir / "surprises.vot"
            path.write_bytes(
                surprises_votable(
                    self.settings, campaign, number, self.surprises(),
                    f"{SURPRISE_METHOD} on the projected network embedding",
                    self.request.serialization,
                )
            )  # fmt: skip
            outputs["surprises"] = (path, "application/x-votable+xml")
        iterations = self.campaigns.iterations(campaign)
        (workdir / "metrics.vot").write_bytes(metrics_votable(campaign, iterations))
        outputs["metrics"] = (workdir / "metrics.vot", "application/x-votable+xml")
        (workdir / "learning-curve.png").write_bytes(learning_curve_png(campaign, iterations))
        outputs["learning-curve"] = (workdir / "learning-curve.png", "image/png")
        if self.confusion is not None:
            from service.plots import confusion_figure, save_png  # matplotlib: only to draw

            title = f"iteration {number - 1}: its query batch as the oracle labelled it"
            save_png(confusion_figure(self.confusion, CLASSES, title), workdir / "confusion.png")
            outputs["confusion"] = (workdir / "confusion.png", "image/png")
        summary = {
            "campaign": campaign.name,
            "iteration": number,
            "strategy": self.step.strategy,
            "embeddings": "network" if self.step.embedded else "none",
            "query": int(np.sum(roles == QUERY)),
            "precision_sample": int(np.sum(roles == PRECISION_SAMPLE)),
            "padding": int(np.sum(roles == PADDING)),
            "why": {role: self.step.reason(role) for role in ROLES},
            "candidates": self.step.n_candidates,
            "exploit": self.step.n_exploit,
            "label_shift": self.pool_priors,
            "candidate_rule": {
                **(self.cut.to_dict() if self.cut else {}),
                "requested": self.request.candidates,
                "pool_labels": self.n_labels,
            },
            "churn": self.stability["churn"],
            "candidate_agreement": self.stability["candidate_agreement"],
            "flipped": self.stability["n_flipped"],
            "catalogue": self.stability["n_catalogue"],
            "uncertain": self.stability["n_uncertain"],
            "stopping": self.stopping,
            "pool": len(probabilities),
            "seconds": {k: round(v, 3) for k, v in self.timings.items()},
            "time_left": self.stages.account(),
            "arithmetic": self.precision,
            "cascade": self.cascade or "off",
            "simbad": self.simbad,
            "similar": "indexed" if self.projection is not None else "not indexed",
        }
        if self.request.broadcast:
            tables = {
                name: Path(outputs[name][0]).resolve().as_uri() for name in ("query", "candidates")
            }
            summary["samp"] = broadcast_tables(tables)
        (workdir / "summary.json").write_text(json.dumps(summary, indent=1))
        outputs["summary"] = (workdir / "summary.json", "application/json")
        outputs["page"] = (f"{base}/oracle/{campaign.name}", "text/html")
        return outputs


def _embedding_precision(scoring: str) -> str:
    """The arithmetic of the projection's sample embedding: the pool's own, but float32 for
    int8 (quantised per pool on calibration rows the sample does not need)."""
    return "fp32" if scoring == "int8" else scoring
