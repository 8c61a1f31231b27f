"""The "more like this" index against exact search: recall@10 >= 0.95 on a few thousand rows."""

from __future__ import annotations

import numpy as np

from service.learn.similar import (
    SimilarityIndex,
    exact_neighbours,
    fit_projection,
    recall_at,
    sample_rows,
)
from tests.test_learning_jobs import profiles


def test_hnsw_recall_at_10_against_exact_search(tmp_path):
    rng = np.random.default_rng(5)
    kinds = rng.choice(3, 4000, p=[0.3, 0.2, 0.5])
    features = profiles(kinds, rng)  # (4000, 140) H-alpha profiles of three classes
    projection = fit_projection(features[sample_rows(len(features), 1000)], 32)
    vectors = projection(features)
    vectors[7] = np.nan  # a spectrum without finite features is not indexed
    index = SimilarityIndex.build(vectors, projection)
    saved = SimilarityIndex.load(index.save(tmp_path / "pool.hnsw"))
    assert len(saved) == 3999 and 7 not in saved and 8 in saved
    queries = rng.choice(np.flatnonzero(np.isfinite(vectors).all(1)), 300, replace=False)
    truth = exact_neighbours(vectors, vectors[queries], 11)[:, 1:]  # less the spectrum itself
    found = np.array([saved.neighbours(saved.vector(q), 10, exclude=q)[0] for q in queries])
    assert recall_at(found, truth) >= 0.95
    assert not any(q in f for q, f in zip(queries, found, strict=True))
    # alike to the network means alike in class, here: neighbours share the class
    same = np.mean([np.mean(kinds[f] == kinds[q]) for q, f in zip(queries, found, strict=True)])
    assert same > 0.9
    # and random rows would not do: the bar above is not met by chance
    shuffled = rng.permutation(len(vectors))[: 10 * len(queries)].reshape(len(queries), 10)
    assert recall_at(shuffled, truth) < 0.05


def test_projection_keeps_the_largest_variance():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 8)) * np.array([10, 5, 1, 1, 1, 1, 1, 1])
    projection = fit_projection(x, 2)
    assert projection(x).shape == (500, 2)
    assert np.allclose(np.abs(projection.axes[:2, :2]), np.eye(2), atol=0.1)
