"""Label-shift correction of a classifier's probabilities (Saerens, Latinne & Decaestecker 2002).

The network is trained on a balanced set (SMOTE: one third per class), but a
LAMOST pool holds ~1 % emission stars. Its posteriors are then too generous to
the rare classes: at iteration 0 it calls ~11 % of absorption stars emission,
which the 1 % base rate turns into ~10 % precision although its *ranking* is
nearly perfect (issue 25). If only the class priors differ between training and
pool (p(x | class) shared), the pool's posteriors are the training posteriors
re-weighted by the prior ratio; the pool's priors are not known, but the EM of
Saerens et al. estimates them from the unlabelled pool itself:

    p_new(c | x) ∝ p_train(c | x) · π_pool(c) / π_train(c)
    π_pool(c) ← mean over the pool of p_new(c | x)

until the priors stop moving. Switchable (``LABEL_SHIFT`` of the iterate job,
``--label-shift`` of the benchmark); ranking by one class is unchanged only for
two classes, so the correction also moves which spectra entropy picks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def em_priors(
    probabilities: np.ndarray,
    train_priors: Sequence[float] | np.ndarray | None = None,
    max_iter: int = 200,
    tol: float = 1e-6,
    floor: float = 1e-6,
) -> tuple[np.ndarray, np.ndarray]:
    """``(adjusted probabilities, estimated pool priors)``.

    probabilities : (m, k) posteriors under the training priors (NaN rows are kept NaN
        and left out of the estimate)
    train_priors : (k,) class priors the network was trained under (None: uniform, which
        is what SMOTE balancing makes)
    floor : smallest prior a class may get (keeps a class from vanishing for good)
    """
    p = np.asarray(probabilities, dtype=np.float64)
    k = p.shape[1]
    prior_train = (
        np.full(k, 1.0 / k) if train_priors is None else np.asarray(train_priors, np.float64)
    )
    prior_train = prior_train / prior_train.sum()
    usable = np.isfinite(p).all(axis=1)
    out = np.full_like(p, np.nan)
    if not usable.any():
        return out, prior_train.copy()
    q = p[usable]
    prior = prior_train.copy()
    adjusted = q
    for _ in range(max_iter):
        weights = prior / prior_train
        adjusted = q * weights
        adjusted /= adjusted.sum(axis=1, keepdims=True)
        new = np.maximum(adjusted.mean(axis=0), floor)
        new /= new.sum()
        if np.max(np.abs(new - prior)) < tol:
            prior = new
            break
        prior = new
    out[usable] = reweight(q, prior, prior_train)
    return out.astype(np.asarray(probabilities).dtype, copy=False), prior


def reweight(
    probabilities: np.ndarray, new_priors: np.ndarray, train_priors: np.ndarray | None = None
) -> np.ndarray:
    """Posteriors under ``new_priors`` from posteriors under ``train_priors`` (None: uniform)."""
    p = np.asarray(probabilities, dtype=np.float64)
    k = p.shape[1]
    base = np.full(k, 1.0 / k) if train_priors is None else np.asarray(train_priors, np.float64)
    adjusted = p * (np.asarray(new_priors, np.float64) / (base / base.sum()))
    return adjusted / adjusted.sum(axis=1, keepdims=True)


def expected_count_candidates(
    probabilities: np.ndarray,
    among: Sequence[int] | np.ndarray = (0, 1),
    train_priors: Sequence[float] | np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """``((m,) bool candidates, K)``: the K spectra most likely to be emission, where K
    is the number of emission stars the pool holds by its EM-estimated priors.

    probabilities : (m, k) posteriors under ``train_priors`` (None: uniform, SMOTE's);
        NaN rows are never candidates
    A threshold from the prior rather than from 0.5 on a re-weighted posterior: at
    1 % rarity the source-only network ranks nearly perfectly but its 0.5 cut calls
    ~10 % of absorption stars emission, while re-weighting the posteriors to the
    EM priors and taking argmax is too strict (recall ~0.9, docs/learning.md). K =
    round(m · Σ π_pool(among)) puts the cut where the pool's own class mix says the
    stars end; ranked by the re-weighted p(single) + p(double).
    """
    p = np.asarray(probabilities, dtype=np.float64)
    adjusted, priors = em_priors(p, train_priors)
    usable = np.isfinite(adjusted).all(axis=1)
    score = np.where(usable, adjusted[:, list(among)].sum(axis=1), -np.inf)
    k = min(round(int(usable.sum()) * float(priors[list(among)].sum())), int(usable.sum()))
    chosen = np.zeros(len(p), dtype=bool)
    if k > 0:
        chosen[np.argsort(-score, kind="stable")[:k]] = True
    return chosen, k


def recall_target_candidates(
    probabilities: np.ndarray,
    among: Sequence[int] | np.ndarray = (0, 1),
    recall: float = 0.95,
    train_priors: Sequence[float] | np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """``((m,) bool candidates, j)``: the top j spectra by re-weighted emission
    probability, j the smallest count whose *expected* recall reaches ``recall``.

    Under the EM-corrected posteriors p̂ the pool holds Σ p̂ emission stars in
    expectation, and the top j hold Σ_{i ≤ j} p̂_(i) of them; the cut is where that
    share first reaches ``recall``. A threshold chosen for the recall the astronomer
    asks for, not for the 0.5 of a posterior (issue 25: "iteration 0 ranks well but
    thresholds badly").
    """
    p = np.asarray(probabilities, dtype=np.float64)
    adjusted, _ = em_priors(p, train_priors)
    usable = np.isfinite(adjusted).all(axis=1)
    score = np.where(usable, adjusted[:, list(among)].sum(axis=1), 0.0)
    order = np.argsort(-score, kind="stable")
    expected = np.cumsum(score[order])
    chosen = np.zeros(len(p), dtype=bool)
    if expected.size == 0 or expected[-1] <= 0:
        return chosen, 0
    j = int(np.searchsorted(expected, recall * expected[-1] - 1e-12)) + 1
    j = min(j, int(usable.sum()))
    chosen[order[:j]] = True
    return chosen, j
