"""The active-learning protocol of the original, with a simulated oracle.

One iteration, as in Škoda, Podsztavek & Tvrdík (2020): train a fresh network on
the adapted source set plus every oracle label so far -> predict the unlabelled
target pool -> the oracle labels the ``batch`` spectra the query strategy picks
among predicted candidates, and ``precision_sample`` random predicted candidates
(the precision estimate) -> both join the training set and leave the pool. The
choice is :func:`service.learn.step.select_batch`, the same step the served
``iterate`` job runs.

A :class:`SimulatedOracle` answers from ground truth, so the whole protocol can
be measured: after every training the model is scored on a held-out target test
set the oracle never sees (error, per-class precision and recall), beside the
Hou et al. (2016) rule on the same test spectra.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from service.learn.hou import hou_rule
from service.learn.labels import NOT_TRAINED, class_indices, training_targets
from service.learn.metrics import (
    binary_precision_recall,
    confusion_matrix,
    error_rate,
    precision_at_recall,
    precision_recall,
)
from service.learn.model import SpectrumClassifier, TrainConfig
from service.learn.precision import clopper_pearson_lower
from service.learn.step import select_batch
from service.vocabulary import CLASSES, PADDING, PRECISION_SAMPLE, QUERY, TARGET_CLASSES


@dataclasses.dataclass
class Problem:
    """A two-domain task with ground truth.

    source_x : (n_s, m) float32 adapted source features; source_y : (n_s,) class index
    target_x : (n_t, m) float32 adapted target features (may be a memmap)
    target_truth : (n_t,) verdict code (index into vocabulary.VERDICTS) the oracle will give
    grid : (m,) vacuum Å of the features (for the Hou rule)
    adapt_config, adapt_fingerprint : how the features were made (goes into models)
    """

    source_x: np.ndarray
    source_y: np.ndarray
    target_x: np.ndarray
    target_truth: np.ndarray
    grid: np.ndarray
    adapt_config: Mapping[str, Any]
    adapt_fingerprint: str
    classes: tuple[str, ...] = CLASSES


class SimulatedOracle:
    """Answers queries from ground truth and counts how many labels it gave."""

    def __init__(self, truth: np.ndarray) -> None:
        self.truth = np.asarray(truth)
        self.asked = 0

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        self.asked += len(rows)
        return self.truth[rows]


@dataclasses.dataclass(frozen=True)
class ActiveLearningConfig:
    """Protocol settings; defaults are the original's (100 queries + 30 precision sample)."""

    strategy: str = "entropy"
    iterations: int = 10
    batch: int = 100
    precision_sample: int = 30
    test_size: int = 2000
    among: tuple[str, ...] = TARGET_CLASSES
    extra_verdicts: tuple[tuple[str, str], ...] = ()
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    seed: int = 0


@dataclasses.dataclass
class IterationResult:
    """What one trained model achieved; ``labels_used`` oracle labels went into it."""

    strategy: str
    seed: int
    iteration: int
    labels_used: int
    error: float
    balanced_error: float  # 1 - mean per-class recall: not dominated by the majority class
    precision: np.ndarray
    recall: np.ndarray
    confusion: np.ndarray
    candidates_precision: float  # emission (any target class) vs not, on the test set
    candidates_recall: float
    precision_at_hou_recall: float
    hou_precision: float
    hou_recall: float
    sample_confirmed: int  # of the precision sample drawn from this model's candidates
    sample_size: int
    sample_lower_bound: float
    epochs: int
    seconds: float

    def row(self, classes: Sequence[str]) -> dict[str, Any]:
        """Flat dict for a CSV row."""
        out = {k: v for k, v in dataclasses.asdict(self).items() if np.ndim(v) == 0}
        for i, name in enumerate(classes):
            out[f"precision_{name}"] = float(self.precision[i])
            out[f"recall_{name}"] = float(self.recall[i])
        return out


def _embed_rows(
    model: SpectrumClassifier, target_x: np.ndarray, unlabelled: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """Network embeddings of the pool rows ``unlabelled[rows]`` (for diverse-entropy)."""
    return model.embed(np.asarray(target_x[unlabelled[rows]]))


def split_target(n: int, test_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(pool rows, test rows) of n target spectra, test rows drawn at random."""
    order = rng.permutation(n)
    test = np.sort(order[: min(test_size, n // 2)])
    return np.sort(order[test.size :]), test


def run_active_learning(
    problem: Problem,
    config: ActiveLearningConfig = ActiveLearningConfig(),
    progress: Callable[[IterationResult], None] | None = None,
) -> list[IterationResult]:
    """Run ``config.iterations`` query rounds; returns iterations + 1 results (0 = source only)."""
    rng = np.random.default_rng(config.seed)
    classes = problem.classes
    positive = class_indices(config.among, classes)
    extra = dict(config.extra_verdicts)
    pool, test = split_target(len(problem.target_x), config.test_size, rng)
    test_x = np.asarray(problem.target_x[test], dtype=np.float32)
    test_y = training_targets(problem.target_truth[test], classes, extra)
    test_emission = np.isin(test_y, positive)
    scored = test_y != NOT_TRAINED
    hou_precision, hou_recall = binary_precision_recall(
        test_emission[scored], hou_rule(test_x, problem.grid)[scored]
    )
    oracle = SimulatedOracle(problem.target_truth)
    labelled = np.empty(0, dtype=np.int64)  # target rows the oracle has answered
    results = []
    model: SpectrumClassifier | None = None  # the previous iteration's, for a warm start
    for iteration in range(config.iterations + 1):
        started = time.perf_counter()
        codes = training_targets(oracle.truth[labelled], classes, extra)
        trained = labelled[codes != NOT_TRAINED]
        x = np.concatenate([problem.source_x, np.asarray(problem.target_x[trained])])
        y = np.concatenate([problem.source_y, codes[codes != NOT_TRAINED]])
        train = dataclasses.replace(
            config.train, seed=config.train.seed + 1000 * config.seed + iteration
        )
        model = SpectrumClassifier.train(
            x,
            y,
            train,
            classes=classes,
            adapt_config=problem.adapt_config,
            adapt_fingerprint=problem.adapt_fingerprint,
            initial=model,
        )
        p_test = model.predict_proba(test_x)
        confusion = confusion_matrix(test_y, p_test.argmax(axis=1), len(classes))
        precision, recall = precision_recall(confusion)
        emission_score = p_test[:, positive].sum(axis=1)
        cand_p, cand_r = binary_precision_recall(
            test_emission[scored], np.isin(p_test.argmax(axis=1), positive)[scored]
        )
        at_hou, _ = precision_at_recall(test_emission[scored], emission_score[scored], hou_recall)
        confirmed = sample = 0
        if iteration < config.iterations:
            unlabelled = np.setdiff1d(pool, labelled, assume_unique=True)
            p_pool = model.predict_proba(problem.target_x[unlabelled])
            step = select_batch(
                p_pool,
                np.zeros(len(unlabelled), dtype=bool),
                config.batch,
                config.precision_sample,
                rng,
                config.strategy,
                positive,
                embed=functools.partial(_embed_rows, model, problem.target_x, unlabelled),
            )
            query, check = step.rows(QUERY, PADDING), step.rows(PRECISION_SAMPLE)
            verdicts = training_targets(oracle(unlabelled[check]), classes, extra)
            confirmed, sample = int(np.isin(verdicts, positive).sum()), len(check)
            oracle(unlabelled[query])
            labelled = np.concatenate([labelled, unlabelled[query], unlabelled[check]])
        result = IterationResult(
            strategy=config.strategy,
            seed=config.seed,
            iteration=iteration,
            labels_used=len(codes),  # oracle labels given before this training
            error=error_rate(confusion),
            balanced_error=float(1.0 - np.nanmean(recall)),
            precision=precision,
            recall=recall,
            confusion=confusion,
            candidates_precision=cand_p,
            candidates_recall=cand_r,
            precision_at_hou_recall=at_hou,
            hou_precision=hou_precision,
            hou_recall=hou_recall,
            sample_confirmed=confirmed,
            sample_size=sample,
            sample_lower_bound=clopper_pearson_lower(confirmed, sample),
            epochs=int(model.provenance["epochs_run"]),
            seconds=time.perf_counter() - started,
        )
        results.append(result)
        if progress is not None:
            progress(result)
    return results
