"""Surprise ranking finds planted out-of-class spectra that random order does not.

The pool and its planted spectra are the benchmark's (``benchmarks/bench_surprise.py``:
P Cygni, absorption-line binaries, flat/bad spectra, redshifted galaxies); the network
is the ``small`` one, trained briefly, its embedding projected as the iterate job does.
"""

from __future__ import annotations

import numpy as np

from benchmarks.bench_surprise import classes, planted, recall
from service.adapt import AdaptConfig
from service.learn import TrainConfig
from service.learn.model import SpectrumClassifier
from service.learn.similar import fit_projection
from service.learn.surprise import (
    class_centres,
    nearest_class,
    relevance_model,
    rerank,
    surprise_scores,
)
from service.vocabulary import CLASSES


def test_isolation_forest_on_the_embedding_ranks_planted_spectra_first():
    rng = np.random.default_rng(0)
    source_kinds = rng.choice(3, 1200, p=[0.4, 0.2, 0.4])
    source = classes(source_kinds, rng)
    pool_kinds = rng.choice(3, 3000, p=[0.05, 0.03, 0.92])
    pool = np.concatenate([classes(pool_kinds, rng), planted(10, rng)])
    truth = np.arange(len(pool)) >= 3000
    adapt = AdaptConfig()
    config = TrainConfig(variant="small", epochs=10, patience=3, balancing="class-weight")
    model = SpectrumClassifier.train(
        source, source_kinds, config, adapt_config=adapt.to_dict(),
        adapt_fingerprint=adapt.fingerprint,
    )  # fmt: skip
    probabilities, embedding = model.score(pool)
    projected = fit_projection(embedding)(embedding)
    scores = surprise_scores(projected, "isolation-forest", seed=0)
    order = np.argsort(-scores)
    at100, at300 = recall(order, truth, 100), recall(order, truth, 300)
    # random order finds 100/3040 = 3 % and 300/3040 = 10 % of them on average
    chance = [recall(rng.permutation(len(pool)), truth, 300) for _ in range(200)]
    assert at300 > np.percentile(chance, 99.5) and at300 >= 0.3, (at100, at300)
    assert at100 >= 0.15, (at100, at300)
    # why: the nearest class centre of each (the centres are the sure members' means)
    centres = class_centres(projected, probabilities)
    nearest, distance = nearest_class(projected[order[:10]], centres)
    assert set(nearest) <= set(range(len(CLASSES))) and np.all(distance > 0)
    bulk = nearest_class(projected[order[-100:]], centres)[1]
    assert np.median(distance) > np.median(bulk)  # surprises lie far from every class


def test_relevance_answers_bring_the_interesting_kind_forward():
    """One round of answers on the top surprises (one kind interesting, the rest boring)
    lifts that kind's unanswered members into the next list, pushes the boring kind back,
    and leaves the order alone where nobody answered."""
    rng = np.random.default_rng(3)
    bulk = rng.normal(0, 1, (3000, 8))
    loud = rng.normal(0, 1, (20, 8)) + 8 * np.eye(8)[0]  # far out: boring
    quiet = rng.normal(0, 1, (20, 8)) + 5 * np.eye(8)[1]  # less far: interesting
    x = np.concatenate([bulk, loud, quiet]).astype(np.float32)
    kind = np.repeat([0, 1, 2], [3000, 20, 20])
    anomaly = surprise_scores(x, "isolation-forest", seed=0)
    first = np.argsort(-anomaly)[:50]
    assert 0 < (kind[first] == 2).sum() <= 5  # the loud ones and the bulk's tail come first
    answers = (kind[first] == 2).astype(np.float32)
    estimate, trust = relevance_model(x, first, answers)
    assert estimate[kind == 2].mean() > estimate[kind == 1].mean() + 0.3
    combined = rerank(anomaly, estimate, trust)
    seen = np.isin(np.arange(len(x)), first)

    def next_list(score: np.ndarray) -> np.ndarray:
        return np.array([r for r in np.argsort(-score) if not seen[r]][:50])

    plain, again = next_list(anomaly), next_list(combined)
    unseen_quiet = int(((kind == 2) & ~seen).sum())
    assert (kind[again] == 2).sum() >= 0.8 * unseen_quiet  # the interesting ones come next
    assert (kind[again] == 2).sum() >= 2 * (kind[plain] == 2).sum()
    assert (kind[again] == 1).sum() < (kind[plain] == 1).sum()
    # no answers: the anomaly order itself
    unanswered = rerank(anomaly, *relevance_model(x, np.zeros(0, int), np.zeros(0)))
    np.testing.assert_array_equal(np.argsort(-unanswered, kind="stable")[:100],
                                  np.argsort(-anomaly, kind="stable")[:100])  # fmt: skip
