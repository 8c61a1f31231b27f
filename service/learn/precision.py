"""Precision estimate per iteration: a random sample of predicted positives, labelled.

Besides the query batch, the original showed the oracle 30 spectra drawn at
random among those predicted as candidates; the share the oracle confirms is an
unbiased estimate of the candidates' precision. We report it with a one-sided
**Clopper-Pearson** (exact binomial) lower bound: it never undercovers, which a
published lower bound must not. The paper's bounds (0.875 for 92/100, 0.800 for
70/81) are the one-sided 95 % normal-approximation (Wald) bound, p - 1.645 sqrt(p(1-p)/n),
which undercovers at small n and p near 1; the exact bound is lower (0.860, 0.785).
:func:`wilson_lower` and :func:`wald_lower` are offered for comparison.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats


def precision_sample(
    probabilities: np.ndarray,
    n: int,
    rng: np.random.Generator,
    positive: Sequence[int] | np.ndarray,
    exclude: np.ndarray | None = None,
) -> np.ndarray:
    """Up to n random rows predicted as one of the ``positive`` classes, not in ``exclude``."""
    predicted = np.argmax(probabilities, axis=1)
    candidates = np.flatnonzero(np.isin(predicted, np.asarray(positive)))
    if exclude is not None and len(exclude):
        candidates = np.setdiff1d(candidates, exclude, assume_unique=False)
    return rng.choice(candidates, size=min(int(n), candidates.size), replace=False).astype(np.int64)


def clopper_pearson_lower(successes: int, trials: int, confidence: float = 0.95) -> float:
    """One-sided exact lower bound of a binomial proportion (0 when no successes)."""
    if trials <= 0:
        return float("nan")
    if successes <= 0:
        return 0.0
    return float(stats.beta.ppf(1.0 - confidence, successes, trials - successes + 1))


def wilson_lower(successes: int, trials: int, confidence: float = 0.95) -> float:
    """One-sided Wilson score lower bound of a binomial proportion."""
    if trials <= 0:
        return float("nan")
    z = float(stats.norm.ppf(confidence))
    p = successes / trials
    centre = p + z * z / (2 * trials)
    spread = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return float((centre - spread) / (1 + z * z / trials))


def wald_lower(successes: int, trials: int, confidence: float = 0.95) -> float:
    """One-sided normal-approximation lower bound (what the 2020 paper's numbers are)."""
    if trials <= 0:
        return float("nan")
    p = successes / trials
    return float(p - stats.norm.ppf(confidence) * np.sqrt(p * (1 - p) / trials))
