"""Surprise ranking: how unlike the rest of the pool each spectrum is, without labels.

The classes say what the network was taught; the objects worth a second look are the
ones it was not (P Cygni profiles, absorption-line binaries, broken spectra, redshifted
galaxies: Škoda et al.'s "surprises"). Each iteration scores every pool spectrum by an
unsupervised anomaly score on the network's projected embedding
(:mod:`service.learn.similar`): higher is more surprising. Two scores are offered and
were measured against each other on a pool with planted out-of-class spectra
(``benchmarks/bench_surprise.py``, docs/discovery.md):

``isolation-forest``  scikit-learn's IsolationForest (the mean depth at which random
                      axis-aligned cuts isolate a row; fitted on a sample of the pool)
``reconstruction``    the squared error of the row rebuilt from the pool's first
                      principal components (what a linear autoencoder cannot explain)

Once the oracle has answered on some surprises (``interesting`` / ``boring``), the next
iteration re-ranks them as Astronomaly does (Lochner & Bassett 2021): a model of the
oracle's *relevance* on the same embedding, combined with the anomaly score
(:func:`relevance_model`, :func:`rerank`).

Arrays in, arrays out; NaN rows (no features) get NaN.
"""

from __future__ import annotations

import numpy as np

METHODS = ("isolation-forest", "reconstruction")
#: The one iterate uses (chosen by benchmarks/bench_surprise.py; docs/discovery.md).
DEFAULT_METHOD = "isolation-forest"
#: Rows an IsolationForest is fitted on (trees draw 256 each; more only costs time).
FIT_SAMPLE = 100_000
TREES = 200
COMPONENTS = 8


def surprise_scores(x: np.ndarray, method: str = DEFAULT_METHOD, seed: int = 0) -> np.ndarray:
    """(n,) float32 anomaly scores of (n, d) rows; higher = more surprising."""
    x = np.asarray(x, np.float32)
    finite = np.isfinite(x).all(axis=1)
    scores = np.full(len(x), np.nan, np.float32)
    rows = np.flatnonzero(finite)
    if len(rows) < 2:
        return scores
    rng = np.random.default_rng(seed)
    fit = x[rng.choice(rows, min(len(rows), FIT_SAMPLE), replace=False)]
    if method == "isolation-forest":
        from sklearn.ensemble import IsolationForest

        forest = IsolationForest(n_estimators=TREES, random_state=seed).fit(fit)
        for start in range(0, len(rows), 200_000):  # bounded memory on a 4 M pool
            part = rows[start : start + 200_000]
            scores[part] = -forest.score_samples(x[part])
    elif method == "reconstruction":
        mean = fit.mean(axis=0)
        _, _, vt = np.linalg.svd(fit - mean, full_matrices=False)
        axes = vt[: min(COMPONENTS, len(vt))].T
        centred = x[rows] - mean
        rebuilt = centred @ axes @ axes.T
        scores[rows] = ((centred - rebuilt) ** 2).sum(axis=1)
    else:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    return scores


def class_centres(x: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """(k, d) centre of each class in ``x``'s space: the mean of the rows predicted as it
    with p >= 0.9 (else of all rows predicted as it; inf where no row is)."""
    x = np.asarray(x, np.float32)
    p = np.nan_to_num(np.asarray(probabilities, np.float32), nan=0.0)
    predicted = p.argmax(axis=1)
    finite = np.isfinite(x).all(axis=1)
    centres = np.full((p.shape[1], x.shape[1]), np.inf, np.float32)
    for c in range(p.shape[1]):
        members = finite & (predicted == c)
        sure = members & (p[:, c] >= 0.9)
        chosen = sure if sure.any() else members
        if chosen.any():
            centres[c] = x[chosen].mean(axis=0)
    return centres


def nearest_class(x: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(class index, Euclidean distance) of each (finite) row of ``x`` to its nearest centre."""
    x = np.asarray(x, np.float32)
    distances = np.sqrt(((x[:, None, :] - centres[None]) ** 2).sum(-1))
    distances = np.where(np.isfinite(distances), distances, np.inf)
    nearest = np.argmin(distances, axis=1)
    return nearest, distances[np.arange(len(x)), nearest].astype(np.float32)


#: Answered spectra each pool row's relevance is estimated from.
RELEVANCE_NEIGHBOURS = 10


def relevance_model(
    x: np.ndarray, answered: np.ndarray, relevance: np.ndarray, k: int = RELEVANCE_NEIGHBOURS
) -> tuple[np.ndarray, np.ndarray]:
    """(n,) estimated relevance in [0, 1] of every row of ``x`` and (n,) how much that
    estimate is to be trusted, in [0, 1].

    The estimate is the inverse-distance weighted mean of the answers (1 interesting,
    0 boring) of the ``k`` nearest answered rows in the embedding (a kNN regression of
    relevance). The trust falls with the distance to the nearest answered row, as a
    Gaussian of scale ``d0``: the median distance from an answered row to its ``k``-th
    nearest pool row (the embedding's local spacing there), so a row among the answered
    ones is judged by them and a row in a region nobody looked at keeps its anomaly rank.

    x : (n, d) projected embedding; answered : (m,) row indices into x; relevance : (m,)
    """
    from sklearn.neighbors import NearestNeighbors

    x = np.asarray(x, np.float32)
    finite = np.isfinite(x).all(axis=1)
    estimate = np.full(len(x), 0.5, np.float32)
    trust = np.zeros(len(x), np.float32)
    answered = np.asarray(answered, np.int64)
    keep = finite[answered] if len(answered) else np.zeros(0, bool)
    answered, relevance = answered[keep], np.asarray(relevance, np.float32)[keep]
    if not len(answered):
        return estimate, trust
    rows = np.flatnonzero(finite)
    pool_index = NearestNeighbors(n_neighbors=min(k + 1, len(rows))).fit(x[rows])
    spacing = pool_index.kneighbors(x[answered])[0][:, -1]
    d0 = max(float(np.median(spacing)), 1e-6)
    index = NearestNeighbors(n_neighbors=min(k, len(answered))).fit(x[answered])
    for start in range(0, len(rows), 200_000):  # bounded memory on a 4 M pool
        part = rows[start : start + 200_000]
        distance, nearest = index.kneighbors(x[part])
        weight = 1.0 / np.maximum(distance, 1e-6 * d0)
        estimate[part] = (weight * relevance[nearest]).sum(axis=1) / weight.sum(axis=1)
        trust[part] = np.exp(-0.5 * (distance[:, 0] / d0) ** 2)
    return estimate, trust


def rerank(anomaly: np.ndarray, estimate: np.ndarray, trust: np.ndarray) -> np.ndarray:
    """(n,) the score the surprises are listed by once the oracle has answered.

    ``a * 2 * (0.5 + trust * (estimate - 0.5))`` with ``a`` the anomaly score's percentile
    in the pool (0-1, so the two scales meet): untouched where nobody answered nearby,
    up to twice the anomaly rank next to interesting answers, down to zero next to boring
    ones (Astronomaly's idea: relevance learnt from the oracle, weighted by how close the
    row is to what the oracle saw). NaN anomaly scores stay NaN.
    """
    anomaly = np.asarray(anomaly, np.float64)
    finite = np.isfinite(anomaly)
    percentile = np.full(len(anomaly), np.nan)
    order = np.argsort(anomaly[finite], kind="stable")
    ranks = np.empty(len(order))
    ranks[order] = np.arange(1, len(order) + 1)
    percentile[finite] = ranks / max(len(order), 1)
    factor = 2.0 * (0.5 + np.asarray(trust) * (np.asarray(estimate) - 0.5))
    return (percentile * factor).astype(np.float32)
