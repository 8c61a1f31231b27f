"""The ``classify`` job: a trained model x a dataset -> predictions and a candidate list.

Parameters: ``MODEL_ID`` (a model from a ``train`` or ``iterate`` job; the
``model`` table over TAP lists them), ``DATASET`` and ``RESPONSEFORMAT``
(``application/x-votable+xml;serialization=BINARY2`` for BINARY2) and
``BROADCAST=true`` (send the candidates to SAMP clients when done). A model trained on
features of another adaptation is refused. Results: the candidates VOTable
(spectra predicted as single- or double-peak emission, most uncertain first,
with the Hou et al. rule's verdict beside the CNN's) and a JSON summary. The
whole dataset's scores go to a Parquet file (``alvo.prediction_file``); only the
candidates become ``alvo.prediction`` rows, tagged with the model and this job's id.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from service.jobs.learning import (
    classify,
    load_model,
    model_file,
    scoring_precision,
    start_job,
    write_predictions,
)
from service.jobs.params import JobParams
from service.jobs.results import rows_votable
from service.jobs.runner import job_runner
from service.reasons import AlvoError, Reason
from service.store import archive_roots
from service.store.campaigns import Campaigns
from service.store.models import model_path
from service.store.predictions import Scoring
from service.vo import dali
from service.vo.samp import broadcast_tables
from service.vocabulary import CANDIDATE, CLASSES, HOU_EMISSION, HOU_NONE
from uws.runner import Progress, Results, RunnerJob


@dataclasses.dataclass(frozen=True)
class ClassifyRequest:
    model_id: int
    dataset: str
    serialization: str
    broadcast: bool

    @classmethod
    def from_params(cls, params: JobParams) -> ClassifyRequest:
        params.required("MODEL_ID")
        return cls(
            model_id=params.integer("MODEL_ID", 0, 1, 2**31 - 1),
            dataset=params.identifier("DATASET"),
            serialization=dali.response_format(params).serialization,
            broadcast=params.flag("BROADCAST"),
        )


@job_runner
def run(job: RunnerJob, workdir: Path, progress: Progress) -> Results:
    settings, request = start_job(job, workdir, ClassifyRequest)
    campaigns = Campaigns(settings)
    dataset = campaigns.datasets.require(request.dataset)
    stored = model_path(campaigns.engine, request.model_id)
    if stored is None:
        raise AlvoError(
            Reason.UNKNOWN_MODEL,
            f"no model with MODEL_ID={request.model_id}: the alvo.model table lists them",
        )
    path = model_file(settings.home, stored)
    load_model(path)  # a model of another adaptation is refused before any work
    precision = scoring_precision(settings, len(dataset.features))
    progress(0.1, f"classifying {len(dataset.features)} spectra ({precision})")
    predictions = classify(path, dataset.feature_path, progress, (0.1, 0.8), precision=precision)
    precision = predictions.arithmetic
    roles = np.where(predictions.candidates(), CANDIDATE, "").astype(object)
    ids = campaigns.spectrum_ids(dataset)
    progress(0.8, "recording predictions")
    scoring = Scoring(None, None, request.model_id, job.id, precision)  # no iteration
    labelled = np.zeros(len(ids), dtype=bool)
    write_predictions(settings, ids, predictions, roles, labelled, scoring)
    spectra = campaigns.datasets.spectra(dataset)
    chosen = np.flatnonzero(predictions.candidates())
    chosen = chosen[np.argsort(-predictions.entropy[chosen], kind="stable")]
    rows = [
        {
            **{name: spectra[name][i] for name in spectra},
            "predicted_class": CLASSES[predictions.predicted[i]],
            "p_single_peak": float(predictions.probabilities[i, 0]),
            "p_double_peak": float(predictions.probabilities[i, 1]),
            "p_absorption": float(predictions.probabilities[i, 2]),
            "entropy": float(predictions.entropy[i]),
            "hou_verdict": HOU_EMISSION if predictions.hou[i] else HOU_NONE,
            "role": CANDIDATE,
            "iteration": None,
        }
        for i in chosen
    ]
    info = {"kind": "candidates", "model": str(request.model_id)}
    rows = archive_roots.load(settings).served_rows(rows, settings.public_url)
    (workdir / "candidates.vot").write_bytes(rows_votable(rows, info, request.serialization))
    summary = {
        "dataset": dataset.name,
        "model_id": request.model_id,
        "classified": int(predictions.finite.sum()),
        "candidates": len(chosen),
        "hou_verdict": {  # the name of the column in the candidates table and over TAP
            HOU_EMISSION: int(predictions.hou.sum()),
            HOU_NONE: int((~predictions.hou & predictions.finite).sum()),
        },
        "seconds": round(predictions.seconds, 3),
        "arithmetic": precision,
        "int8_agreement": predictions.int8_agreement,
    }
    if request.broadcast:
        summary["samp"] = broadcast_tables({"candidates": (workdir / "candidates.vot").as_uri()})
    (workdir / "summary.json").write_text(json.dumps(summary, indent=1))
    return {
        "candidates": (workdir / "candidates.vot", "application/x-votable+xml"),
        "summary": (workdir / "summary.json", "application/json"),
    }
