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
    inside: np.ndarray | None = None,
) -> np.ndarray:
    """Up to n random rows predicted as one of the ``positive`` classes, not in ``exclude``;
    ``inside`` ((m,) bool): the candidate set, instead of argmax over ``positive``."""
    if inside is None:
        inside = np.isin(np.argmax(probabilities, axis=1), np.asarray(positive))
    candidates = np.flatnonzero(inside)
    if exclude is not None and len(exclude):
        candidates = np.setdiff1d(candidates, exclude, assume_unique=False)
    return rng.choice(candidates, size=min(int(n), candidates.size), replace=False).astype(np.int64)


def stratified_precision(
    labelled_hits: int,
    labelled_judged: int,
    open_candidates: int,
    sample_hits: int,
    sample_judged: int,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Precision of *every* spectrum predicted as emission, with its lower bound.

    Two strata of the predicted-emission set: the ``labelled_judged`` already labelled
    (a class verdict; ``labelled_hits`` of them emission) -- known exactly, no
    sampling error -- and the ``open_candidates`` not labelled, estimated by the
    precision sample drawn uniformly among them (``sample_hits`` of ``sample_judged``
    confirmed), bounded by Clopper-Pearson. Combined by stratum size:

        P = (hits_L + N_U · p_U) / (N_L + N_U),   P_lower = (hits_L + N_U · lower_U) / (N_L + N_U)

    The bound covers at ``confidence`` since only one stratum is sampled. Why: by
    convergence the unlabelled candidates are leftovers (the oracle has seen the
    stars), so the sample alone read 0.000 for a set that was 99 % right (issue 25).
    ``(nan, nan)`` when the open stratum is not empty but none of its sample was judged.
    """
    n_l, n_u = int(labelled_judged), int(open_candidates)
    if n_l + n_u == 0:
        return float("nan"), float("nan")
    if n_u == 0:
        value = labelled_hits / n_l
        return value, value
    if sample_judged <= 0:
        return float("nan"), float("nan")
    p_u = sample_hits / sample_judged
    lower_u = clopper_pearson_lower(sample_hits, sample_judged, confidence)
    total = n_l + n_u
    return (labelled_hits + n_u * p_u) / total, (labelled_hits + n_u * lower_u) / total


def oracle_catalogue(
    candidate: np.ndarray, labelled: np.ndarray, verdict_emission: np.ndarray
) -> np.ndarray:
    """(n,) bool: the emission catalogue a campaign publishes -- the oracle's verdict
    where it gave a class, the network's prediction elsewhere.

    candidate : (n,) bool, predicted emission; labelled : (n,) bool, the oracle gave a
    class verdict (``not-sure``/``bad`` rows are not labelled here); verdict_emission :
    (n,) bool, that verdict was an emission class (ignored where not labelled).
    Why: at 1 % rarity nearly every false positive left after a few iterations is a
    spectrum the oracle had already called absorption (issue 25, ``flipped``); an
    astronomer publishes the verdict, not the network's second opinion.
    """
    labelled = np.asarray(labelled, dtype=bool)
    return np.where(labelled, np.asarray(verdict_emission, bool), np.asarray(candidate, bool))


def catalogue_precision(
    labelled_emission: int,
    open_candidates: int,
    sample_hits: int,
    sample_judged: int,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """:func:`stratified_precision` of :func:`oracle_catalogue`: its labelled stratum
    (``labelled_emission`` spectra the oracle called emission) is right by definition,
    its open stratum (``open_candidates``) is estimated by the precision sample."""
    return stratified_precision(
        labelled_emission,
        labelled_emission,
        open_candidates,
        sample_hits,
        sample_judged,
        confidence,
    )


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
