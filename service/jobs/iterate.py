"""The ``iterate`` job: one active-learning step of a campaign.

Train on every label so far (the adapted source set plus the oracle's class
verdicts) -> classify the whole pool -> pick the next query batch among the
spectra predicted as emission (highest entropy by default) and a random
precision sample of predicted positives -> record it all.

Parameters (case-insensitive; UWS ``/iterate``):

``CAMPAIGN``      the campaign (required); created when ``SOURCE`` and ``TARGET``
                  datasets are given and it does not exist yet
``STRATEGY``      entropy (default), margin, least-confidence, random, diverse-entropy
``BATCH``         spectra for the oracle (default: the campaign's, 100)
``PRECISION_SAMPLE``  random predicted positives to label for precision (default 30)
``PADDING``       when fewer than ``BATCH`` candidates are left, add at most this many
                  spectra predicted as absorption, drawn at random (default 0: the
                  batch is only what the network predicts as emission)
``MODEL``         network variant (default ``reference``, the published one)
``RESPONSEFORMAT``  VOTable serialization of the tables: TABLEDATA (default) or BINARY2
``BROADCAST``     true: send the query batch and candidates to SAMP clients (TOPCAT,
                  Aladin) when done -- for a service on the astronomer's own desktop
``EPOCHS``, ``PATIENCE``, ``BALANCE`` (smote | class-weight | none), ``SEED``
``NOISE_AUGMENT``  noisy training copies, sigma up to this many z-units (default 1.0;
                  0 trains as the original did) -- see docs/learning.md, "Domain gap"

Before training it scores the *previous* iteration against the labels the
oracle has since given: the error of its query batch and the precision (with
its Clopper-Pearson lower bound) of its precision sample, as the original did.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from service.jobs.eta import Stages, job_started
from service.jobs.learning import (
    Predictions,
    classify,
    fit_classifier,
    load_model,
    record_model,
    scoring_precision,
    start_job,
    training_config,
    write_predictions,
)
from service.jobs.params import JobParams
from service.jobs.results import candidates_votable, learning_curve_png, metrics_votable
from service.jobs.runner import job_runner
from service.learn import STRATEGIES
from service.learn.step import score_batch, select_batch
from service.net.simbad import BATCH as SIMBAD_BATCH
from service.net.simbad import simbad_identify
from service.reasons import AlvoError, Reason
from service.settings import Settings
from service.store import schema
from service.store.campaigns import Campaigns
from service.store.engine import engine_for
from service.store.models import training_record
from service.store.ownership import may_change, refusal
from service.store.predictions import Scoring
from service.vo import dali
from service.vo.samp import broadcast_tables
from service.vocabulary import (
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
        )


#: Before a campaign's first iteration: seconds per pool spectrum to classify (model
#: loading included) and, after it, to select, record and publish the batch (plus a
#: fixed part). Measured on the demo campaign (2 000 spectra, `benchmarks/bench_eta.py`,
#: docs/oracle-page.md, *Time left*); later iterations use the previous one's times.
CLASSIFY_SECONDS, CLASSIFY_PER_ROW = 0.5, 2.5e-4
REST_SECONDS, REST_PER_ROW = 2.0, 2e-4


@job_runner
def run(job: RunnerJob, workdir: Path, progress: Progress) -> Results:
    settings, request = start_job(job, workdir, IterateRequest)
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
    return Iteration(settings, campaigns, campaign, request, workdir, progress).run()


class Iteration:
    """The steps of one iteration, in the order they run."""

    #: set by the steps: the model trained and the arithmetic the pool was scored in
    model_id: int | None = None
    precision: str = "fp32"

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
        #: previous iteration's query batch: oracle verdict (rows) x prediction (columns)
        self.confusion: np.ndarray | None = None

    def run(self) -> dict[str, Any]:
        started = schema.utcnow()
        job_id = self.workdir.name  # a UWS job's directory is named after the job
        begun = job_started(self.settings.sqlalchemy_url, job_id)
        self.stages = Stages(self.progress, self.plan(), started=begun)
        self.stages.begin("score", "scoring the previous iteration against new labels")
        self.score_previous()
        model_path, n_labels = self.train()
        predictions = self.classify(model_path)
        self.stages.begin("rest", "selecting the query batch")
        roles = self.choose_batch(predictions, model_path)
        self.stages.begin("rest", "recording predictions")
        self.record(predictions, roles, n_labels, started)
        self.stages.begin("rest", "identifying candidates in SIMBAD")
        self.crossmatch(roles)
        self.stages.begin("rest", "writing results")
        return self.results(predictions.probabilities, roles)

    def plan(self) -> list[tuple[str, float | None]]:
        """Each stage's expected seconds (:mod:`service.jobs.eta`): the previous
        iteration's where the campaign had one, else unknown until this one's
        training has shown its speed (see :meth:`classify`)."""
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
        pool = len(self.campaign.target.features)
        if classify is None:
            classify = CLASSIFY_SECONDS + CLASSIFY_PER_ROW * pool
        if rest is None:
            rest = REST_SECONDS + REST_PER_ROW * pool
        return [("score", 1.0), ("train", train), ("classify", classify), ("rest", rest)]

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
        batch = zip(predicted, role, verdict, strict=True)
        query = [(p, v) for p, r, v in batch if r == QUERY and v in CLASSES]
        if query:
            self.confusion = np.zeros((len(CLASSES), len(CLASSES)), dtype=np.int64)
            for p, v in query:
                self.confusion[CLASSES.index(v), CLASSES.index(p)] += 1
        self.campaigns.record_metrics(self.campaign, previous, values)

    def train(self) -> tuple[Path, int]:
        """Train on every label so far; returns the saved model's path and the number
        of oracle labels of the pool it used."""
        features, y, target_rows = self.campaigns.training_set(self.campaign, CLASSES)
        started = time.perf_counter()
        provenance = {"campaign": self.campaign.name, "iteration": self.number}
        folder = self.settings.home / "models" / self.campaign.name
        previous = folder / f"iteration-{self.number - 1}.keras"  # WARM_START's weights
        stage = self.stages.begin("train", f"training on {len(y)} labelled spectra")
        classifier = fit_classifier(
            features, y, self.request.training, provenance, stage, previous, self.prior_epochs
        )
        self.timings["train"] = time.perf_counter() - started
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"iteration-{self.number}.keras"
        self.model_id = record_model(
            self.settings, classifier, path, self.campaign.campaign_id, self.number
        )
        return path, len(target_rows)

    def classify(self, model_path: Path) -> Predictions:
        pool = self.campaign.target
        precision = scoring_precision(self.settings, len(pool.features))
        stage = self.stages.begin("classify", f"classifying {len(pool.features)} spectra")
        predictions = classify(model_path, pool.feature_path, stage.fraction, precision=precision)
        self.precision = predictions.arithmetic
        self.timings["classify"] = predictions.seconds
        return predictions

    def choose_batch(self, predictions: Predictions, model_path: Path) -> Any:
        """The shared active-learning step (:func:`service.learn.step.select_batch`) on
        the pool's predictions, with the network's embeddings for diverse-entropy."""
        features = self.campaign.target.features.array()

        def embed(rows: np.ndarray) -> np.ndarray:
            return np.asarray(load_model(model_path).embed(np.asarray(features[rows])))

        step = select_batch(
            predictions.probabilities,
            self.campaigns.judged_pool_rows(self.campaign),
            self.request.batch or self.campaign.batch_size,
            self.request.precision_sample,
            np.random.default_rng(self.request.training.seed + self.number),
            self.request.strategy,
            [CLASSES.index(c) for c in TARGET_CLASSES],
            embed=embed,
            padding=self.request.padding,
        )
        self.step = step
        return step.role

    def record(
        self, predictions: Predictions, roles: np.ndarray, n_labels: int, started: Any
    ) -> None:
        ids = self.campaigns.spectrum_ids(self.campaign.target)
        labelled = np.zeros(len(ids), dtype=bool)
        labelled[list(self.campaigns.pool_verdicts(self.campaign))] = True
        job_id = self.workdir.name  # a UWS job's directory is named after the job
        scoring = Scoring(
            self.campaign.campaign_id, self.number, self.model_id, job_id, self.precision
        )
        write_predictions(self.settings, ids, predictions, roles, labelled, scoring)
        self.campaigns.record_iteration(
            self.campaign,
            self.number,
            strategy=self.request.strategy,
            n_labels=n_labels,
            n_candidates=self.step.n_candidates,
            train_seconds=self.timings.get("train"),
            classify_seconds=self.timings.get("classify"),
            started=started,
            finished=schema.utcnow(),
        )

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
            "pool": len(probabilities),
            "seconds": {k: round(v, 3) for k, v in self.timings.items()},
            "arithmetic": self.precision,
            "simbad": self.simbad,
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
