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
from service.learn.precision import (
    catalogue_precision,
    clopper_pearson_lower,
    oracle_catalogue,
    stratified_precision,
)
from service.learn.query import emission_probability
from service.learn.shift import (
    decide_candidates,
    em_priors,
    expected_count_candidates,
    recall_target_candidates,
    reweight,
    train_priors,
)
from service.learn.stability import (
    StoppingRule,
    candidate_agreement,
    churn,
    stopping_rule,
    uncertain,
)
from service.learn.step import select_batch
from service.vocabulary import (
    ABSORPTION,
    CLASSES,
    PADDING,
    PRECISION_SAMPLE,
    QUERY,
    TARGET_CLASSES,
)


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
    exploit: float = 0.0  # fraction of the batch given to the most likely emission stars
    label_shift: bool = False  # re-weight probabilities to the pool's EM-estimated priors
    #: the candidate rule (:data:`service.learn.shift.CANDIDATE_RULES`); argmax: the seed's
    candidates: str = "argmax"
    stopping: StoppingRule = dataclasses.field(default_factory=StoppingRule)


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
    # --- the pool (what the oracle is asked about), scored against ground truth
    pool_emission: int = 0  # emission stars in the pool
    emission_shown: int = 0  # of them, labelled by the oracle up to and including this batch
    pool_precision: float = float("nan")  # this model's predicted-emission set, all the pool
    pool_recall: float = float("nan")
    precision_estimate: float = float("nan")  # stratified estimate of pool_precision
    precision_estimate_lower: float = float("nan")
    churn: float = float("nan")  # share of pool spectra whose class changed since the last model
    candidate_agreement: float = float("nan")  # Jaccard of the two predicted-emission sets
    flipped: int = 0  # labelled absorption by the oracle, predicted emission by this model
    n_uncertain: int = 0  # open pool spectra with emission probability in (0.1, 0.9)
    stop: bool = False  # the stopping rule's decision after this iteration
    stop_reason: str = ""
    pool_priors: str = ""  # EM-estimated pool class priors (label shift on), "a/b/c"
    # --- the catalogue: the oracle's verdict where it gave one, the network elsewhere
    catalogue_precision: float = float("nan")
    catalogue_recall: float = float("nan")
    catalogue_estimate: float = float("nan")  # its stratified estimate (labelled: exact)
    catalogue_estimate_lower: float = float("nan")
    # --- other operating points of the same model on the pool (iteration-0 threshold)
    shift_precision: float = float("nan")  # argmax after EM re-weighting to the pool priors
    shift_recall: float = float("nan")
    prior_precision: float = float("nan")  # the K most likely, K from the EM priors
    prior_recall: float = float("nan")
    target_precision: float = float("nan")  # the top j whose EM-expected recall is 95 %
    target_recall: float = float("nan")
    ranking_precision_at_95: float = float("nan")  # best any threshold on p(emission) can do
    # --- the pool's confusion (truth x prediction, the network's own classes): the pool
    # holds far more emission stars than the test set, so single vs double is measurable
    pool_confusion: np.ndarray | None = None

    def row(self, classes: Sequence[str]) -> dict[str, Any]:
        """Flat dict for a CSV row."""
        out = {k: v for k, v in dataclasses.asdict(self).items() if np.ndim(v) == 0}
        for i, name in enumerate(classes):
            out[f"precision_{name}"] = float(self.precision[i])
            out[f"recall_{name}"] = float(self.recall[i])
            for j, predicted in enumerate(classes):  # test-set confusion: truth x prediction
                out[f"confusion_{name}_as_{predicted}"] = int(self.confusion[i, j])
                if self.pool_confusion is not None:
                    out[f"pool_{name}_as_{predicted}"] = int(self.pool_confusion[i, j])
        return out


def _embed_rows(
    model: SpectrumClassifier, target_x: np.ndarray, unlabelled: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """Network embeddings of the pool rows ``unlabelled[rows]`` (for diverse-entropy)."""
    return model.embed(np.asarray(target_x[unlabelled[rows]]))


def _mc_rows(
    model: SpectrumClassifier,
    target_x: np.ndarray,
    unlabelled: np.ndarray,
    seed: int,
    rows: np.ndarray,
) -> np.ndarray:
    """(T, len(rows), k) Monte-Carlo dropout passes of the pool rows ``unlabelled[rows]``."""
    x = np.asarray(target_x[unlabelled[rows]])
    return model.mc_dropout(x, MC_PASSES, np.random.default_rng(seed))


#: Monte-Carlo dropout passes per spectrum for ``bald``.
MC_PASSES = 20


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
    pool_truth = training_targets(problem.target_truth[pool], classes, extra)
    pool_emission = np.isin(pool_truth, positive)
    absorption = classes.index(ABSORPTION) if ABSORPTION in classes else -1
    history_churn: list[float | None] = []
    history_agree: list[float | None] = []
    previous_class: np.ndarray | None = None
    for iteration in range(config.iterations + 1):
        started = time.perf_counter()
        codes = training_targets(oracle.truth[labelled], classes, extra)
        trained = labelled[codes != NOT_TRAINED]
        x = np.concatenate([problem.source_x, np.asarray(problem.target_x[trained])])
        y = np.concatenate([problem.source_y, codes[codes != NOT_TRAINED]])
        is_oracle = np.r_[np.zeros(len(problem.source_y), bool), np.ones(trained.size, bool)]
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
            oracle=is_oracle,
        )
        p_test = model.predict_proba(test_x)
        p_all = model.predict_proba(problem.target_x[pool])  # the whole pool, labelled too
        raw_all = p_all
        priors = ""
        raw_priors = train_priors(y, len(classes), train.balancing)
        shifted, _ = em_priors(p_all, raw_priors)
        by_count, _ = expected_count_candidates(p_all, positive, raw_priors)
        by_recall, _ = recall_target_candidates(p_all, positive, 0.95, raw_priors)
        if config.label_shift:
            p_all, pool_priors = em_priors(p_all, train_priors(y, len(classes), train.balancing))
            p_test = reweight(p_test, pool_priors, train_priors(y, len(classes), train.balancing))
            priors = "/".join(f"{v:.4f}" for v in pool_priors)
        # the served job's decision (CANDIDATES): argmax unless config.candidates says
        cut, pool_class = decide_candidates(
            raw_all, p_all, config.candidates, int(trained.size), positive, raw_priors
        )
        pool_candidate = cut.candidate
        is_labelled = np.isin(pool, labelled)
        confusion = confusion_matrix(test_y, p_test.argmax(axis=1), len(classes))
        precision, recall = precision_recall(confusion)
        emission_score = p_test[:, positive].sum(axis=1)
        cand_p, cand_r = binary_precision_recall(
            test_emission[scored], np.isin(p_test.argmax(axis=1), positive)[scored]
        )
        at_hou, _ = precision_at_recall(test_emission[scored], emission_score[scored], hou_recall)
        confirmed = sample = 0
        if previous_class is not None:
            history_churn.append(churn(previous_class, pool_class))
            history_agree.append(
                candidate_agreement(np.isin(previous_class, positive), pool_candidate)
            )
        else:
            history_churn.append(None)
            history_agree.append(None)
        previous_class = pool_class
        open_em = emission_probability(p_all[~is_labelled], positive)
        n_uncertain = uncertain(open_em)
        stopping = stopping_rule(history_churn, history_agree, n_uncertain, config.stopping)
        known = is_labelled & (pool_truth != NOT_TRAINED)
        flipped = int(np.sum(known & (pool_truth == absorption) & pool_candidate))
        pool_p, pool_r = binary_precision_recall(
            pool_emission[pool_truth != NOT_TRAINED], pool_candidate[pool_truth != NOT_TRAINED]
        )
        trainable = pool_truth != NOT_TRAINED
        shift_p, shift_r = binary_precision_recall(
            pool_emission[trainable], np.isin(shifted.argmax(axis=1), positive)[trainable]
        )
        prior_p, prior_r = binary_precision_recall(pool_emission[trainable], by_count[trainable])
        target_p, target_r = binary_precision_recall(pool_emission[trainable], by_recall[trainable])
        ranked, _ = precision_at_recall(
            pool_emission[trainable], emission_probability(p_all[trainable], positive), 0.95
        )
        catalogue = oracle_catalogue(pool_candidate, known, pool_emission)
        cat_p, cat_r = binary_precision_recall(pool_emission[trainable], catalogue[trainable])
        estimate = (float("nan"), float("nan"))
        cat_estimate = (float("nan"), float("nan"))
        # every iteration draws its batch: the last one's sample still estimates its precision
        if pool.size:
            unlabelled = np.setdiff1d(pool, labelled, assume_unique=True)
            p_pool = p_all[~is_labelled]  # pool and labelled are sorted: same row order
            step = select_batch(
                p_pool,
                np.zeros(len(unlabelled), dtype=bool),
                config.batch,
                config.precision_sample,
                rng,
                config.strategy,
                positive,
                embed=functools.partial(_embed_rows, model, problem.target_x, unlabelled),
                exploit=config.exploit,
                candidate=pool_candidate[~is_labelled],
                mc=functools.partial(
                    _mc_rows, model, problem.target_x, unlabelled, config.seed * 1000 + iteration
                ),
            )
            query, check = step.rows(QUERY, PADDING), step.rows(PRECISION_SAMPLE)
            verdicts = training_targets(oracle(unlabelled[check]), classes, extra)
            judged = verdicts != NOT_TRAINED
            confirmed, sample = int(np.isin(verdicts, positive).sum()), int(judged.sum())
            labelled_candidates = known & pool_candidate
            estimate = stratified_precision(
                int(np.sum(labelled_candidates & pool_emission)),
                int(labelled_candidates.sum()),
                step.n_open_candidates,
                confirmed,
                sample,
            )
            cat_estimate = catalogue_precision(
                int(np.sum(known & pool_emission)), step.n_open_candidates, confirmed, sample
            )
            if iteration < config.iterations:
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
            pool_emission=int(pool_emission.sum()),
            emission_shown=int(np.sum(np.isin(pool, labelled) & pool_emission)),
            pool_precision=pool_p,
            pool_recall=pool_r,
            precision_estimate=estimate[0],
            precision_estimate_lower=estimate[1],
            churn=float("nan") if history_churn[-1] is None else float(history_churn[-1]),
            candidate_agreement=(
                float("nan") if history_agree[-1] is None else float(history_agree[-1])
            ),
            flipped=flipped,
            n_uncertain=n_uncertain,
            stop=stopping.stop,
            stop_reason=stopping.reason,
            pool_priors=priors,
            catalogue_precision=cat_p,
            catalogue_recall=cat_r,
            catalogue_estimate=cat_estimate[0],
            catalogue_estimate_lower=cat_estimate[1],
            shift_precision=shift_p,
            shift_recall=shift_r,
            prior_precision=prior_p,
            prior_recall=prior_r,
            target_precision=target_p,
            target_recall=target_r,
            ranking_precision_at_95=ranked,
            pool_confusion=confusion_matrix(
                pool_truth[trainable], pool_class[trainable], len(classes)
            ),
        )
        results.append(result)
        if progress is not None:
            progress(result)
    return results
