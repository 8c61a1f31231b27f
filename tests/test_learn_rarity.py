"""Issue 25's learning pieces on arrays: exploitation, label shift, the stratified
precision estimate, churn and the stopping rule."""

from __future__ import annotations

import numpy as np
import pytest

from service.learn.precision import (
    catalogue_precision,
    clopper_pearson_lower,
    oracle_catalogue,
    stratified_precision,
)
from service.learn.query import STRATEGIES, exploit_sampling
from service.learn.shift import (
    candidate_cut,
    candidate_rule,
    decided_classes,
    em_priors,
    expected_count_candidates,
    recall_target_candidates,
)
from service.learn.stability import (
    StoppingRule,
    candidate_agreement,
    churn,
    latest_stopping,
    stopping_rule,
    uncertain,
)
from service.learn.step import select_batch
from service.vocabulary import PADDING, PRECISION_SAMPLE, QUERY


def _probabilities(m: int, rng: np.random.Generator) -> np.ndarray:
    p = rng.dirichlet([1.0, 1.0, 1.0], m)
    return p


def test_exploit_is_a_strategy_of_the_usual_shape_most_likely_emission_first():
    rng = np.random.default_rng(0)
    p = _probabilities(500, rng)
    assert STRATEGIES["exploit"] is exploit_sampling
    picked = exploit_sampling(p, 40, rng)
    assert picked.dtype == np.int64 and picked.shape == (40,) and len(set(picked)) == 40
    score = p[:, 0] + p[:, 1]
    assert np.all(np.diff(score[picked]) <= 0)  # most likely first
    assert score[picked].min() >= np.sort(score)[-40]  # and exactly the top 40
    assert exploit_sampling(p, 0, rng).size == 0
    assert exploit_sampling(p[:5], 10, rng).size == 5


def test_a_batch_with_an_exploit_part_shows_the_likely_stars_entropy_skips():
    """A pool where the source model ranks well but thresholds badly (issue 25): 20 true
    stars at p(emission) ~0.95, 300 absorption stars predicted emission at ~0.55 (high
    entropy), the rest certain absorption. Entropy asks about the 0.55 ones only."""
    stars = np.tile([0.9, 0.05, 0.05], (20, 1))
    confusing = np.tile([0.5, 0.05, 0.45], (300, 1))
    certain = np.tile([0.0, 0.0, 1.0], (2000, 1))
    p = np.r_[stars, confusing, certain]
    labelled = np.zeros(len(p), bool)
    plain = select_batch(p, labelled, 100, 0, np.random.default_rng(1))
    mixed = select_batch(p, labelled, 100, 0, np.random.default_rng(1), exploit=0.3)
    assert np.sum(plain.rows(QUERY) < 20) == 0  # entropy never shows a star
    assert np.sum(mixed.rows(QUERY) < 20) == 20  # the exploit part shows all of them
    assert mixed.rows(QUERY, PADDING).size == 100 and mixed.n_exploit == 30
    assert "most likely emission" in mixed.reason(QUERY)
    with pytest.raises(ValueError):
        select_batch(p, labelled, 100, 0, np.random.default_rng(1), exploit=1.5)


def test_exploit_never_takes_the_precision_sample_or_labelled_rows():
    rng = np.random.default_rng(2)
    p = _probabilities(400, rng)
    labelled = np.arange(50)
    step = select_batch(p, labelled, 60, 20, rng, exploit=1.0)
    chosen = step.rows(QUERY, PADDING)
    assert chosen.size == 60 and not set(chosen) & set(labelled)
    assert not set(chosen) & set(step.rows(PRECISION_SAMPLE))


def test_em_recovers_the_pool_priors_and_lifts_precision_at_one_percent():
    """Saerens et al. 2002: posteriors of a balanced-trained model on a 1 %-emission pool."""
    rng = np.random.default_rng(3)
    n = 20_000
    truth = rng.choice(3, n, p=[0.007, 0.003, 0.99])
    # class-conditional scores: a Gaussian per class; balanced (uniform) training posteriors
    means = np.array([[2.0, 0.0], [0.0, 2.0], [-1.0, -1.0]])
    x = means[truth] + rng.normal(0, 1.0, (n, 2))
    log_lik = -0.5 * ((x[:, None, :] - means[None]) ** 2).sum(axis=2)
    p = np.exp(log_lik - log_lik.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    adjusted, priors = em_priors(p)
    assert priors[2] == pytest.approx(0.99, abs=0.01)

    def precision(q: np.ndarray) -> float:
        called = q.argmax(axis=1) < 2
        return float(np.mean(truth[called] < 2))

    assert precision(p) < 0.3 < precision(adjusted)
    nan_row = em_priors(np.r_[p[:10], [[np.nan] * 3]])[0]
    assert np.isnan(nan_row[-1]).all() and np.isfinite(nan_row[:-1]).all()


def test_stratified_precision_reads_99_percent_where_the_old_sample_read_zero():
    """Issue 25 at convergence: 500 candidates labelled (495 right), 5 left unlabelled of
    which the sample judged 1 -- wrong. The old estimate (the sample alone) read 0.000."""
    old = 0 / 1
    value, lower = stratified_precision(495, 500, 5, 0, 1)
    truth = (495 + 4) / 505  # the 5 leftovers: 4 true stars, 1 not
    assert old == 0.0 and value == pytest.approx(495 / 505)
    assert abs(value - truth) < 0.01 and 0.97 < lower <= value
    # early: no labelled candidate, the sample is the estimate, bounded by Clopper-Pearson
    assert stratified_precision(0, 0, 1000, 27, 30) == pytest.approx(
        (0.9, clopper_pearson_lower(27, 30))
    )
    assert stratified_precision(99, 100, 0, 0, 0) == (0.99, 0.99)  # all labelled: exact
    assert np.isnan(stratified_precision(10, 10, 50, 0, 0)[0])  # open stratum unsampled


def test_churn_agreement_uncertain():
    assert churn(np.array([0, 1, 2, 2]), np.array([0, 2, 2, 2])) == 0.25
    assert churn(np.array([-1, 1]), np.array([0, 1])) == 0.0  # unpredicted rows left out
    assert candidate_agreement(np.array([1, 1, 0, 0], bool), np.array([1, 0, 1, 0], bool)) == (
        pytest.approx(1 / 3)
    )
    assert candidate_agreement(np.zeros(3, bool), np.zeros(3, bool)) == 1.0
    assert uncertain(np.array([0.05, 0.5, 0.95, 0.2])) == 2


def test_stopping_rule_stops_only_when_stable_for_k_iterations_and_nothing_uncertain():
    rule = StoppingRule(max_churn=0.01, min_agreement=0.95, max_uncertain=5, k=2)
    settled = stopping_rule([None, 0.2, 0.005, 0.004], [None, 0.7, 0.99, 0.97], 3, rule)
    assert settled.stop and "stable for 2" in settled.reason
    assert settled.to_dict()["evidence"]["churn"] == [0.005, 0.004]
    assert set(settled.to_dict()) == {"stop", "reason", "evidence"}
    churning = stopping_rule([None, 0.2, 0.005, 0.03], [None, 0.7, 0.99, 0.99], 3, rule)
    assert not churning.stop and "churn" in churning.reason
    moving = stopping_rule([None, 0.001, 0.001], [None, 0.9, 0.99], 0, rule)
    assert not moving.stop and "candidate set" in moving.reason
    open_ = stopping_rule([None, 0.001, 0.001], [None, 0.99, 0.99], 40, rule)
    assert not open_.stop and "40 unlabelled" in open_.reason
    young = stopping_rule([None], [None], 0, rule)
    assert not young.stop and "fewer than 2" in young.reason
    assert latest_stopping([]).to_dict() == {
        "stop": False,
        "reason": "no iteration yet",
        "evidence": {},
    }
    rows = [
        {"churn": None, "candidate_agreement": None, "n_uncertain": 50},
        {"churn": 0.001, "candidate_agreement": 0.999, "n_uncertain": 8},
        {"churn": 0.002, "candidate_agreement": 0.995, "n_uncertain": 2},
    ]
    assert latest_stopping(rows).stop


def test_random_pool_draws_among_every_open_spectrum_not_only_candidates():
    rng = np.random.default_rng(5)
    p = np.r_[np.tile([0.8, 0.1, 0.1], (100, 1)), np.tile([0.05, 0.05, 0.9], (900, 1))]
    step = select_batch(p, np.zeros(len(p), bool), 200, 0, rng, "random-pool")
    chosen = step.rows(QUERY)
    assert chosen.size == 200 and np.sum(chosen >= 100) > 100  # mostly predicted absorption
    assert step.rows(PADDING).size == 0 and "all unlabelled spectra" in step.reason(QUERY)
    restricted = select_batch(p, np.zeros(len(p), bool), 200, 0, rng, "random")
    assert np.sum(restricted.rows(QUERY) >= 100) == 0  # the service's random: candidates first


def test_the_catalogue_takes_the_oracles_verdict_over_the_network():
    """Issue 25: at 260 labels nearly every false positive was labelled absorption by the
    oracle; the catalogue drops them, and keeps a labelled star the network missed."""
    candidate = np.array([True, True, True, False, False])
    labelled = np.array([True, False, True, True, False])
    verdict_emission = np.array([False, False, True, True, False])
    catalogue = oracle_catalogue(candidate, labelled, verdict_emission)
    assert catalogue.tolist() == [False, True, True, True, False]
    # 90 labelled stars (right by definition), 10 open candidates, sample 3 of 5 right
    value, lower = catalogue_precision(90, 10, 3, 5)
    assert value == pytest.approx((90 + 10 * 0.6) / 100)
    assert lower == pytest.approx((90 + 10 * clopper_pearson_lower(3, 5)) / 100)
    assert catalogue_precision(90, 0, 0, 0) == (1.0, 1.0)


def test_the_em_count_threshold_cuts_where_the_pool_priors_say_the_stars_end():
    """A balanced-trained model on a 1 %-emission pool: argmax at 0.5 calls far too many
    emission; the K most likely, K from the EM priors, keeps recall and lifts precision."""
    rng = np.random.default_rng(3)
    n = 20_000
    truth = rng.choice(3, n, p=[0.007, 0.003, 0.99])
    means = np.array([[2.5, 0.0], [0.0, 2.5], [-1.0, -1.0]])
    x = means[truth] + rng.normal(0, 1.0, (n, 2))
    log_lik = -0.5 * ((x[:, None, :] - means[None]) ** 2).sum(axis=2)
    p = np.exp(log_lik - log_lik.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    stars = truth < 2
    chosen, k = expected_count_candidates(p, (0, 1))
    assert chosen.sum() == k and abs(k - stars.sum()) < 0.3 * stars.sum()
    argmax = p.argmax(axis=1) < 2

    def precision(called: np.ndarray) -> float:
        return float(np.mean(stars[called]))

    assert precision(argmax) < 0.35 < precision(chosen)
    assert np.mean(chosen[stars]) > 0.6
    with_nan = expected_count_candidates(np.r_[p[:100], [[np.nan] * 3]], (0, 1))[0]
    assert not with_nan[-1]
    # the cut for an EM-expected recall of 95 %: more stars, at a lower precision
    wide, j = recall_target_candidates(p, (0, 1), 0.95)
    assert wide.sum() == j > k and np.mean(wide[stars]) > 0.9 > np.mean(chosen[stars])
    assert precision(wide) > precision(argmax) * 0.9  # never worse than argmax by much


def _rare_pool(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(posteriors of a balanced-trained model on a 1 %-emission pool, truth)."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(3, n, p=[0.007, 0.003, 0.99])
    means = np.array([[2.5, 0.0], [0.0, 2.5], [-1.0, -1.0]])
    x = means[truth] + rng.normal(0, 1.0, (n, 2))
    log_lik = -0.5 * ((x[:, None, :] - means[None]) ** 2).sum(axis=2)
    p = np.exp(log_lik - log_lik.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True), truth


def test_auto_candidates_are_the_recall_cut_without_pool_labels_and_argmax_with_some():
    """CANDIDATES=auto: the measured best of each regime (docs/learning.md)."""
    assert candidate_rule("auto", 0) == "recall-target"
    assert candidate_rule("auto", 1) == candidate_rule("auto", 259) == "argmax"
    assert candidate_rule("argmax", 0) == "argmax"
    assert candidate_rule("recall-target", 130) == "recall-target"
    with pytest.raises(ValueError):
        candidate_rule("psychic", 0)
    p, truth = _rare_pool(20_000, 5)
    p = np.r_[p, [[np.nan] * 3]]
    cut = candidate_cut(p, candidate_rule("auto", 0), (0, 1))
    chosen, j = recall_target_candidates(p, (0, 1), 0.95)
    assert cut.rule == "recall-target" and cut.j == j == cut.candidate.sum()
    assert np.array_equal(cut.candidate, chosen) and not cut.candidate[-1]
    assert cut.expected_recall is not None and 0.95 <= cut.expected_recall < 0.96
    assert np.mean(cut.candidate[:-1][truth < 2]) > 0.9  # the true recall near the expected
    argmax = candidate_cut(p, candidate_rule("auto", 10), (0, 1))
    assert argmax.rule == "argmax" and argmax.j is None and argmax.expected_recall is None
    assert np.array_equal(argmax.candidate[:-1], p[:-1].argmax(axis=1) < 2)
    assert not argmax.candidate[-1]
    assert argmax.candidate.sum() > 1.3 * cut.candidate.sum()  # argmax is generous at 1 %
    # each row's class follows the cut: argmax's are argmax, the cut's are emission
    assert np.array_equal(decided_classes(p, argmax.candidate)[:-1], p[:-1].argmax(axis=1))
    decided = decided_classes(p, cut.candidate)
    assert np.array_equal(decided[:-1] < 2, cut.candidate[:-1])  # NaN: as argmax, never in
    emission = cut.candidate & (p.argmax(axis=1) < 2)  # emission either way: the same class
    assert np.array_equal(decided[emission], p[emission].argmax(axis=1))


def test_a_batch_takes_its_candidates_from_the_cut_given():
    """select_batch's restriction, precision sample, padding and n_candidates follow
    the candidate set it is given; none given: argmax, draw for draw the same."""
    p, _ = _rare_pool(5000, 6)
    cut = candidate_cut(p, "recall-target", (0, 1))
    labelled = np.zeros(len(p), bool)
    plain = select_batch(p, labelled, 40, 10, np.random.default_rng(1), padding=40)
    same = select_batch(
        p, labelled, 40, 10, np.random.default_rng(1), padding=40,
        candidate=candidate_cut(p, "argmax", (0, 1)).candidate,
    )  # fmt: skip
    assert np.array_equal(plain.role, same.role) and plain.n_candidates == same.n_candidates
    step = select_batch(
        p, labelled, 40, 10, np.random.default_rng(1), padding=40, candidate=cut.candidate
    )
    assert step.n_candidates == cut.candidate.sum() < plain.n_candidates
    assert cut.candidate[step.rows(PRECISION_SAMPLE, QUERY)].all()
    assert not cut.candidate[step.rows(PADDING)].any()


def test_a_bald_batch_runs_monte_carlo_dropout_on_its_shortlist_only():
    rng = np.random.default_rng(4)
    p = _probabilities(2000, rng)
    calls: list[int] = []

    def mc(rows: np.ndarray) -> np.ndarray:
        calls.append(len(rows))
        noisy = p[rows][None] * rng.uniform(0.5, 1.5, (6, len(rows), 3))
        return noisy / noisy.sum(axis=2, keepdims=True)

    with pytest.raises(ValueError, match="Monte-Carlo"):
        select_batch(p, np.arange(10), 20, 5, rng, "bald")
    step = select_batch(p, np.arange(10), 20, 5, rng, "bald", exploit=0.5, mc=mc)
    assert step.rows(QUERY, PADDING).size == 20 and step.n_exploit == 10
    assert calls and max(calls) <= 10 * 10  # the shortlist of the exploration part, not 2000
