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
