"""The ``train`` job: a CNN on a labelled dataset, with a held-out test and its confusion matrix.

Parameters: ``DATASET`` (a labelled dataset, e.g. the adapted Ondrejov set),
``MODEL`` (network variant, default ``reference``), ``EPOCHS``, ``PATIENCE``,
``LR_SCHEDULE`` (one-cycle | constant), ``LEARNING_RATE``,
``BALANCE`` (smote | class-weight | none), ``SEED``, ``TEST_FRACTION`` (0.2),
``NOISE_AUGMENT`` (default 1.0: noisy training spectra, noise sigma up to that
many z-units, so a high-SNR source set prepares the network for a noisy survey;
0 trains as the original did), ``NOISE_DRAW`` (per-epoch | stored): see docs/jobs.md.
Results: the model file (``.keras`` + metadata sidecar, usable by ``classify``
as ``MODEL_ID``), the test confusion matrix as VOTable and PNG, the training
curve as PNG, and a JSON summary.
"""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

from service.jobs.eta import Stages, job_started
from service.jobs.learning import fit_classifier, record_model, start_job, training_config
from service.jobs.params import JobParams
from service.jobs.runner import job_runner
from service.learn.metrics import confusion_matrix
from service.reasons import AlvoError, Reason
from service.store.datasets import Datasets
from service.vocabulary import CLASSES
from uws.runner import Progress, Results, RunnerJob


@dataclasses.dataclass(frozen=True)
class TrainRequest:
    dataset: str
    training: Any  # service.learn.TrainConfig
    test_fraction: float

    @classmethod
    def from_params(cls, params: JobParams) -> TrainRequest:
        return cls(
            dataset=params.identifier("DATASET"),
            training=training_config(params),
            test_fraction=params.number("TEST_FRACTION", 0.2, 0.0, 0.9),
        )


def stratified_test(y: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of a held-out test set with ``fraction`` of each class."""
    test = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == c))
        test[rows[: round(fraction * len(rows))]] = True
    return test


@job_runner
def run(job: RunnerJob, workdir: Path, progress: Progress) -> Results:
    settings, request = start_job(job, workdir, TrainRequest)
    datasets = Datasets(settings)
    dataset = datasets.require(request.dataset)
    labels = {row: v for row, v in datasets.source_labels(dataset).items() if v in CLASSES}
    if not labels:
        raise AlvoError(
            Reason.UNLABELLED_DATASET,
            f"dataset {request.dataset!r} has no class labels to train on",
        )
    rows = np.array(sorted(labels), dtype=np.int64)
    y = np.array([CLASSES.index(labels[r]) for r in rows], dtype=np.int64)
    x = np.asarray(dataset.features.array()[rows])
    test = stratified_test(y, request.test_fraction, np.random.default_rng(request.training.seed))
    begun = job_started(settings.sqlalchemy_url, job.id)
    stages = Stages(progress, [("train", None), ("test", 1.0)], started=begun)
    stage = stages.begin("train", f"training on {int((~test).sum())} spectra")
    provenance = {"dataset": dataset.name, "job": job.id}
    classifier = fit_classifier(x[~test], y[~test], request.training, provenance, stage)
    stages.begin("test", "testing")
    predicted = np.argmax(classifier.predict_proba(x[test]), axis=1) if test.any() else y[:0]
    confusion = confusion_matrix(y[test], predicted, len(CLASSES))
    model_path = workdir / "model.keras"
    model_id = record_model(settings, classifier, model_path)
    (workdir / "confusion.png").write_bytes(_confusion_png(confusion, dataset.name))
    (workdir / "training-curve.png").write_bytes(_training_curve_png(classifier.provenance))
    (workdir / "confusion.vot").write_bytes(confusion_votable(confusion))
    summary = {
        "model_id": model_id,
        "dataset": dataset.name,
        "n_train": int((~test).sum()),
        "n_test": int(test.sum()),
        "test_error": float(1 - np.trace(confusion) / max(confusion.sum(), 1))
        if test.any()
        else None,
        "epochs_run": classifier.provenance.get("epochs_run"),
        "seconds": classifier.provenance.get("seconds"),
    }
    (workdir / "summary.json").write_text(json.dumps(summary, indent=1))
    return {
        "summary": (workdir / "summary.json", "application/json"),
        "model": (model_path, "application/octet-stream"),
        "model-metadata": (workdir / "model.keras.json", "application/json"),
        "confusion": (workdir / "confusion.vot", "application/x-votable+xml"),
        "confusion-plot": (workdir / "confusion.png", "image/png"),
        "training-curve": (workdir / "training-curve.png", "image/png"),
    }


def _confusion_png(confusion: np.ndarray, name: str) -> bytes:
    from service.plots import confusion_figure, save_png  # matplotlib: only to draw

    out = io.BytesIO()
    save_png(confusion_figure(confusion, CLASSES, title=f"held-out part of {name}"), out)
    return out.getvalue()


def confusion_votable(confusion: np.ndarray) -> bytes:
    """The confusion matrix as a VOTable: one row per (true, predicted) pair."""
    pairs = [
        (t, p, int(confusion[i, j])) for i, t in enumerate(CLASSES) for j, p in enumerate(CLASSES)
    ]
    table = Table(rows=pairs, names=("true_class", "predicted_class", "count"))
    table["true_class"].description = "Class the test spectrum has (its label)"
    table["predicted_class"].description = "Class the model predicted"
    table["count"].description = "Number of test spectra"
    out = io.BytesIO()
    table.write(out, format="votable")
    return out.getvalue()


def _training_curve_png(provenance: dict[str, Any]) -> bytes:
    """Loss per epoch, training and validation: where early stopping stopped, and why."""
    from service.plots import learning_curve_figure, save_png  # matplotlib: only to draw

    history = provenance.get("history", {})
    epochs = range(1, 1 + max((len(v) for v in history.values()), default=0))
    names = {"loss": "training", "val_loss": "validation"}
    series = {names.get(key, key): values for key, values in history.items()}
    out = io.BytesIO()
    figure = learning_curve_figure(epochs, series, "epoch", "cross-entropy loss", "training curve")
    save_png(figure, out)
    return out.getvalue()
