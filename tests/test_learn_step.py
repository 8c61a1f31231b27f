"""The one active-learning step (service/learn/step.py) the served job and the benchmark share."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from service.learn.step import score_batch, select_batch
from service.vocabulary import CANDIDATE, PADDING, QUERY
from service.vocabulary import PRECISION_SAMPLE as SAMPLE

CLASSES = ("single-peak", "double-peak", "absorption")
EMISSION = CLASSES[:2]


def _pool(n_emission: int, n_absorption: int, seed: int = 0) -> np.ndarray:
    """n_emission rows predicted emission (uncertain), then certain absorption rows."""
    rng = np.random.default_rng(seed)
    emission = np.c_[rng.uniform(0.5, 0.6, n_emission), rng.uniform(0.1, 0.3, n_emission)]
    emission = np.c_[emission, 1 - emission.sum(axis=1)]
    absorption = np.tile([0.0, 0.0, 1.0], (n_absorption, 1))
    return np.r_[emission, absorption]


def test_precision_sample_is_drawn_even_when_candidates_are_fewer_than_the_batch():
    """Issue 14: with 60 candidates and a batch of 100 the sample used to be empty."""
    p = _pool(60, 500)
    step = select_batch(p, np.zeros(len(p), bool), 100, 30, np.random.default_rng(1))
    assert step.rows(SAMPLE).size == 30
    assert step.rows(QUERY).size == 30 and step.rows(PADDING).size == 70
    assert set(step.rows(SAMPLE, QUERY)) == set(range(60))  # every candidate is shown
    assert (step.rows(PADDING) >= 60).all()  # padding only where no candidate was left
    assert step.n_candidates == 60 and step.n_open_candidates == 60


def test_the_served_job_pads_only_when_asked_with_a_random_sample():
    """Issue 23: the demo's batches were 86-100 % certain absorption nobody asked for."""
    p = _pool(60, 500)
    bare = select_batch(p, np.zeros(len(p), bool), 100, 30, np.random.default_rng(1), padding=0)
    assert bare.rows(QUERY).size == 30 and bare.rows(PADDING).size == 0
    asked = select_batch(p, np.zeros(len(p), bool), 100, 30, np.random.default_rng(1), padding=20)
    assert asked.rows(QUERY).size == 30 and asked.rows(PADDING).size == 20
    assert (asked.rows(PADDING) >= 60).all()
    by_entropy = select_batch(p, np.zeros(len(p), bool), 100, 30, np.random.default_rng(1))
    top = set(
        by_entropy.rows(PADDING)[np.argsort(-by_entropy.score[by_entropy.rows(PADDING)])][:20]
    )
    assert set(asked.rows(PADDING)) != top  # drawn at random, not the most uncertain


def test_each_role_says_why():
    p = _pool(60, 500)
    step = select_batch(p, np.zeros(len(p), bool), 100, 30, np.random.default_rng(1))
    assert "padding was asked for" in step.reason(PADDING) and "60" in step.reason(PADDING)
    assert "at random" in step.reason(SAMPLE) and "precision" in step.reason(SAMPLE)
    assert "entropy" in step.reason(QUERY)
    assert "not in this batch" in step.reason(CANDIDATE)


def test_labelled_and_unusable_rows_are_never_chosen():
    p = _pool(200, 200)
    p[5] = np.nan
    labelled = np.arange(0, 50)
    step = select_batch(p, labelled, 40, 10, np.random.default_rng(2))
    chosen = step.rows(QUERY, SAMPLE, PADDING)
    assert chosen.size == 50 and not set(chosen) & {5, *labelled}
    assert np.isnan(step.score[5]) and step.role[5] == ""


def test_sample_is_drawn_among_all_candidates_not_only_the_certain_ones():
    """Drawn before the query, the sample can hold the most uncertain candidates too."""
    p = _pool(150, 100)
    top = np.argsort(-select_batch(p, [], 1, 0, np.random.default_rng(0)).score)[:100]
    hits = 0
    for seed in range(20):
        step = select_batch(p, np.zeros(len(p), bool), 100, 30, np.random.default_rng(seed))
        hits += len(set(step.rows(SAMPLE)) & set(top))
    assert hits > 0


def test_diverse_entropy_clusters_network_embeddings_of_the_shortlist_only():
    """Served diverse-entropy used to cluster the 3 probabilities: now the embeddings."""
    rng = np.random.default_rng(3)
    p = np.tile([0.4, 0.35, 0.25], (1000, 1))
    p[:20] = [0.38, 0.34, 0.28]  # group A (20 spectra) slightly more uncertain than group B
    embeddings = np.r_[rng.normal(0, 0.01, (20, 8)), rng.normal(5, 0.01, (980, 8))]
    asked: list[np.ndarray] = []

    def embed(rows: np.ndarray) -> np.ndarray:
        asked.append(rows)
        return embeddings[rows]

    entropy_only = select_batch(p, [], 10, 0, np.random.default_rng(0), "entropy")
    assert (entropy_only.rows(QUERY) < 20).all()
    step = select_batch(p, [], 10, 0, np.random.default_rng(0), "diverse-entropy", embed=embed)
    assert step.embedded and "network embeddings" in step.reason(QUERY)
    assert len(asked) == 1 and asked[0].size == 50  # the shortlist (5 x batch), not the pool
    assert {int(i >= 20) for i in step.rows(QUERY)} == {0, 1}
    with pytest.raises(ValueError, match="embeddings"):
        select_batch(p, [], 10, 0, np.random.default_rng(0), "diverse-entropy")


def test_served_job_and_benchmark_share_the_step():
    """One implementation: neither calls the query strategies or the sample draw itself."""
    from service.jobs import iterate
    from service.learn import loop

    for module in (iterate, loop):
        source = inspect.getsource(module)
        assert "select_batch(" in source, module.__name__
        assert "select_query(" not in source and "precision_sample(" not in source


def test_emission_precision_does_not_count_a_double_peak_as_a_miss():
    """Issue 15: 'precision' was exact single-peak precision with not-sure counted as a miss."""
    predicted = ["single-peak"] * 4 + ["double-peak"] * 2 + ["absorption"]
    role = [SAMPLE] * 6 + [QUERY]
    verdict = ["single-peak", "double-peak", "not-sure", "absorption", "double-peak", None]
    verdict += ["absorption"]
    scores = score_batch(predicted, role, verdict, CLASSES, EMISSION)
    assert scores["n_sample_judged"] == 4  # not-sure and unlabelled left out
    assert scores["precision_emission"] == pytest.approx(3 / 4)
    assert scores["precision_single_peak"] == pytest.approx(1 / 3)
    assert scores["precision_double_peak"] == 1.0
    assert 0 < scores["precision_emission_lower"] < 0.75
    assert scores["error"] == 0.0  # the query row was right


def test_error_leaves_out_padding_and_unlabelled_rows():
    scores = score_batch(
        ["absorption", "single-peak", "absorption"],
        [PADDING, QUERY, QUERY],
        ["single-peak", "absorption", None],
        CLASSES,
        EMISSION,
    )
    assert scores["error"] == 1.0 and "precision_emission" not in scores
