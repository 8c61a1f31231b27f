"""Query strategies, the precision sample and its bound, verdict handling, metrics."""

from __future__ import annotations

import numpy as np
import pytest

from service.learn.labels import NOT_TRAINED, training_targets, verdict_codes
from service.learn.metrics import confusion_matrix, error_rate, precision_at_recall
from service.learn.precision import clopper_pearson_lower, precision_sample, wald_lower
from service.learn.query import (
    NEEDS_SAMPLES,
    STRATEGIES,
    bald_sampling,
    entropy,
    mc_bald_sampling,
    mutual_information,
    select_query,
)
from service.reasons import AlvoError

RNG = np.random.default_rng


def _probabilities(n: int, seed: int = 0) -> np.ndarray:
    return RNG(seed).dirichlet([1.0, 1.0, 1.0], size=n)


def _passes(p: np.ndarray, t: int = 8, seed: int = 0) -> np.ndarray:
    """(t, m, k) noisy copies of p: stand-in Monte-Carlo dropout passes."""
    noisy = p[None] * RNG(seed).uniform(0.5, 1.5, (t, *p.shape))
    return noisy / noisy.sum(axis=2, keepdims=True)


def test_entropy_is_natural_log() -> None:
    p = np.array([[1 / 3, 1 / 3, 1 / 3], [1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])
    assert entropy(p) == pytest.approx([np.log(3), 0.0, np.log(2)])


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_strategies_return_distinct_rows(name: str) -> None:
    extra = {"samples": _passes(_probabilities(500))} if name in NEEDS_SAMPLES else {}
    picked = STRATEGIES[name](_probabilities(500), 40, RNG(1), **extra)
    assert picked.shape == (40,) and np.unique(picked).size == 40
    assert picked.min() >= 0 and picked.max() < 500


def test_uncertainty_strategies_pick_the_uncertain() -> None:
    p = np.tile([0.98, 0.01, 0.01], (100, 1))
    p[[7, 42]] = [0.34, 0.33, 0.33]
    for name in ("entropy", "margin", "least-confidence"):
        assert set(STRATEGIES[name](p, 2, RNG(0))) == {7, 42}, name


def test_ties_are_broken_at_random() -> None:
    p = np.full((1000, 3), 1 / 3)
    first = STRATEGIES["entropy"](p, 10, RNG(0))
    assert first.max() > 10  # not simply the lowest row numbers


def test_diverse_entropy_spreads_over_clusters() -> None:
    """Two tight groups of equally uncertain spectra: entropy takes one, diversity both."""
    rng = RNG(3)
    p = np.tile([0.4, 0.35, 0.25], (200, 1))
    p[:100] = [0.38, 0.34, 0.28]  # group A slightly more uncertain than group B
    p /= p.sum(axis=1, keepdims=True)
    embeddings = np.r_[rng.normal(0, 0.01, (100, 8)), rng.normal(5, 0.01, (100, 8))]
    h = entropy(p)
    top = STRATEGIES["entropy"](p, 10, rng)
    assert len({int(i >= 100) for i in top}) == 1 and h[top].min() >= h.max() - 1e-12
    diverse = STRATEGIES["diverse-entropy"](p, 10, rng, embeddings=embeddings, shortlist_factor=20)
    assert {int(i >= 100) for i in diverse} == {0, 1}


def test_select_query_restricts_to_predicted_candidates_then_tops_up() -> None:
    p = _probabilities(300, 5)
    predicted = p.argmax(axis=1)
    n_candidates = int(np.isin(predicted, [0, 1]).sum())
    picked = select_query(p, 50, RNG(0), "entropy", among=[0, 1])
    assert np.isin(predicted[picked], [0, 1]).all()
    everything = select_query(p, n_candidates + 20, RNG(0), "entropy", among=[0, 1])
    assert everything.size == n_candidates + 20 and np.unique(everything).size == everything.size
    assert np.isin(predicted[everything[:n_candidates]], [0, 1]).all()
    with pytest.raises(AlvoError, match="BAD_PARAMETER"):
        select_query(p, 5, RNG(0), "greedy")


def test_precision_sample_draws_predicted_positives_outside_the_query() -> None:
    p = _probabilities(1000, 2)
    query = select_query(p, 100, RNG(0), among=[0, 1])
    sample = precision_sample(p, 30, RNG(1), positive=[0, 1], exclude=query)
    assert sample.size == 30 and not np.isin(sample, query).any()
    assert np.isin(p[sample].argmax(axis=1), [0, 1]).all()


def test_lower_bounds_match_the_paper_and_the_exact_interval() -> None:
    # The paper's 0.875 (92/100) and 0.800 (70/81) are the one-sided Wald bound.
    assert wald_lower(92, 100) == pytest.approx(0.875, abs=1e-3)
    assert wald_lower(70, 81) == pytest.approx(0.800, abs=2e-3)
    # Exact bound: P(X >= k | p = bound) = 5 %.
    from scipy import stats

    bound = clopper_pearson_lower(27, 30)
    assert stats.binom.sf(26, 30, bound) == pytest.approx(0.05, rel=1e-6)
    assert clopper_pearson_lower(0, 30) == 0.0


def test_extra_verdicts_are_kept_but_not_trained_unless_mapped() -> None:
    codes = verdict_codes(["single-peak", "not-sure", "bad", "absorption"])
    assert list(training_targets(codes)) == [0, NOT_TRAINED, NOT_TRAINED, 2]
    assert list(training_targets(codes, extra={"bad": "single-peak"})) == [0, NOT_TRAINED, 0, 2]
    with pytest.raises(AlvoError, match="verdict 'maybe'"):
        verdict_codes(["maybe"])


def test_metrics() -> None:
    truth = np.array([0, 0, 1, 2, 2, -1])
    predicted = np.array([0, 1, 1, 2, 0, 0])
    cm = confusion_matrix(truth, predicted, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]
    assert error_rate(cm) == pytest.approx(0.4)
    score = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    positive = np.array([True, False, True, True, False])
    assert precision_at_recall(positive, score, 2 / 3)[0] == pytest.approx(2 / 3)
    assert precision_at_recall(positive, score, 1.0)[0] == pytest.approx(3 / 4)


def test_bald_has_the_strategy_shape_and_prefers_disagreement_to_ambiguity() -> None:
    """(T, m, k) samples in, at most n distinct indices out. Row 3's passes disagree
    (half say single-peak, half absorption); row 5's all say 50/50. Their mean
    predictions, hence their entropies, are equal: only BALD tells them apart."""
    samples = np.tile([0.9, 0.05, 0.05], (10, 20, 1))
    samples[:, 3] = [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]] * 5
    samples[:, 5] = [0.5, 0.0, 0.5]
    assert entropy(samples[:, 3].mean(axis=0, keepdims=True)) == pytest.approx(
        entropy(samples[:, 5].mean(axis=0, keepdims=True))
    )
    info = mutual_information(samples)
    assert info.shape == (20,) and info[3] == pytest.approx(np.log(2)) and info[5] == 0
    assert bald_sampling(samples, 1, RNG(0)).tolist() == [3]
    picked = bald_sampling(samples, 7, RNG(0))
    assert picked.shape == (7,) and np.unique(picked).size == 7 and picked[0] == 3


def test_mc_bald_samples_only_its_entropy_shortlist() -> None:
    from service.learn.step import LazyEmbeddings

    p = _probabilities(1000)
    asked: list[int] = []

    def mc(rows: np.ndarray) -> np.ndarray:
        asked.append(len(rows))
        return _passes(p[rows])

    picked = mc_bald_sampling(p, 10, RNG(0), LazyEmbeddings(mc, np.arange(1000)), 5)  # type: ignore[arg-type]
    assert asked == [50] and picked.size == 10
    assert set(picked) <= set(np.argsort(-entropy(p))[:50])
    with pytest.raises(ValueError, match="samples"):
        mc_bald_sampling(p, 10, RNG(0))
