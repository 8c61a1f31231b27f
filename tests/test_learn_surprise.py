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
from service.learn.surprise import class_centres, nearest_class, surprise_scores
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
