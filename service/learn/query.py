"""Query strategies: which unlabelled spectra the oracle should see next.

Each strategy is a plain function ``strategy(probabilities, n, rng) -> indices``
(modAL's shape): ``probabilities`` is the (m, k) softmax output over the pool,
the result holds at most ``n`` distinct row indices, most useful first. Ties are
broken at random with ``rng`` so equal scores never favour low row numbers.

:func:`select_query` wraps a strategy with the original's restriction: only
spectra *predicted* as a target class (single- or double-peak emission) are
candidates; if there are fewer than ``n`` of them the rest of the batch is
filled from the other spectra by the same strategy.

New here (none of the reference systems has it): :func:`exploit_sampling`, the most
likely emission stars first (ranked by p(single) + p(double)): the astronomer's
goal is the catalogue, and at LAMOST's rarity (~1 % emission) a source-trained
network ranks far better than it thresholds, so the exploitation part of a batch
(``select_batch(..., exploit=f)``) shows the oracle the stars while the entropy
part still teaches the network. And :func:`diverse_entropy_sampling`,
a batch-mode strategy that shortlists the most uncertain spectra by entropy and
then picks one per k-means cluster of their penultimate-layer embeddings, so a
batch of 100 does not spend itself on 100 near-copies of one confusing profile.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from service.reasons import AlvoError, Reason


class Strategy(Protocol):
    def __call__(
        self, probabilities: np.ndarray, n: int, rng: np.random.Generator, /
    ) -> np.ndarray: ...


def entropy(probabilities: np.ndarray) -> np.ndarray:
    """(m,) Shannon entropy of each row, natural log (nats); 0·ln 0 = 0."""
    p = np.asarray(probabilities, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=1)


def margin(probabilities: np.ndarray) -> np.ndarray:
    """(m,) difference between the two largest class probabilities (small = uncertain)."""
    top2 = np.partition(np.asarray(probabilities, dtype=np.float64), -2, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def _top(score: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of the n largest scores, ties in random order."""
    n = min(int(n), score.size)
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    jitter = rng.random(score.size)
    order = np.lexsort((jitter, -score))  # primary key: score descending
    return order[:n].astype(np.int64)


def entropy_sampling(probabilities: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """The n spectra with the highest predictive entropy (the original's strategy)."""
    return _top(entropy(probabilities), n, rng)


def margin_sampling(probabilities: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """The n spectra with the smallest gap between the two most probable classes."""
    return _top(-margin(probabilities), n, rng)


def least_confidence_sampling(
    probabilities: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """The n spectra whose most probable class is least probable."""
    return _top(-np.max(probabilities, axis=1), n, rng)


def random_sampling(probabilities: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n spectra uniformly at random (the baseline every strategy must beat)."""
    m = len(probabilities)
    return rng.choice(m, size=min(int(n), m), replace=False).astype(np.int64)


def emission_probability(
    probabilities: np.ndarray, among: Sequence[int] | np.ndarray = (0, 1)
) -> np.ndarray:
    """(m,) probability of any emission class: p(single-peak) + p(double-peak) by default."""
    p = np.asarray(probabilities, dtype=np.float64)
    return p[:, list(among)].sum(axis=1)


def exploit_sampling(
    probabilities: np.ndarray,
    n: int,
    rng: np.random.Generator,
    among: Sequence[int] | np.ndarray = (0, 1),
) -> np.ndarray:
    """The n spectra most likely to be emission stars: highest p(single) + p(double)
    (the ``among`` columns)."""
    return _top(emission_probability(probabilities, list(np.asarray(among))), n, rng)


def diverse_entropy_sampling(
    probabilities: np.ndarray,
    n: int,
    rng: np.random.Generator,
    embeddings: np.ndarray | None = None,
    shortlist_factor: int = 5,
) -> np.ndarray:
    """Entropy shortlist, then one spectrum per k-means cluster of their embeddings.

    probabilities : (m, k) pool predictions
    embeddings : (m, d) per-spectrum representation (the network's penultimate
        layer, or the 140 features); None falls back to the probabilities themselves
    shortlist_factor : the shortlist holds ``shortlist_factor * n`` most uncertain spectra
    From each of n clusters of the shortlist the most uncertain member is taken,
    so the batch covers n different kinds of confusing spectra.
    """
    from sklearn.cluster import KMeans

    n = min(int(n), len(probabilities))
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    h = entropy(probabilities)
    shortlist = _top(h, shortlist_factor * n, rng)
    if shortlist.size <= n:
        return shortlist
    space = probabilities if embeddings is None else embeddings
    points = np.asarray(space[shortlist], dtype=np.float64)
    points = (points - points.mean(axis=0)) / (points.std(axis=0) + 1e-9)
    seed = int(rng.integers(2**31 - 1))
    labels = KMeans(n_clusters=n, n_init=1, random_state=seed).fit_predict(points)
    # Most uncertain member per cluster: sort shortlist by (cluster, -entropy).
    order = np.lexsort((-h[shortlist], labels))
    first = np.r_[True, labels[order][1:] != labels[order][:-1]]
    chosen = shortlist[order[first]]
    chosen = chosen[np.argsort(-h[chosen], kind="stable")]
    if chosen.size < n:  # empty clusters (duplicates): top up by entropy
        rest = np.setdiff1d(shortlist, chosen, assume_unique=True)
        chosen = np.r_[chosen, rest[np.argsort(-h[rest], kind="stable")][: n - chosen.size]]
    return chosen.astype(np.int64)


def mutual_information(samples: np.ndarray) -> np.ndarray:
    """(m,) BALD score of (T, m, k) posterior samples (e.g. Monte-Carlo dropout passes):
    entropy of the mean prediction minus the mean entropy of each pass, in nats.

    High where the passes *disagree* (the network's weights are unsure), low where every
    pass says the same -- also when they all say 50/50: such a spectrum is ambiguous
    in itself and its label teaches the weights little (Houlsby et al. 2011).
    """
    s = np.asarray(samples, dtype=np.float64)
    return entropy(s.mean(axis=0)) - np.mean([entropy(p) for p in s], axis=0)


def bald_sampling(samples: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """The n spectra with the highest mutual information between their label and the
    network's weights (BALD), from (T, m, k) samples; the shape of every strategy with
    samples in place of probabilities."""
    return _top(mutual_information(samples), n, rng)


def mc_bald_sampling(
    probabilities: np.ndarray,
    n: int,
    rng: np.random.Generator,
    samples: np.ndarray | None = None,
    shortlist_factor: int = 10,
) -> np.ndarray:
    """BALD on an entropy shortlist: Monte-Carlo dropout only where it can matter.

    probabilities : (m, k) the deterministic pool predictions
    samples : a (T, m, k) array, or a lazy view indexed by rows (``samples[rows]`` ->
        the (T, len(rows), k) MC-dropout passes of those rows, computed on demand:
        :class:`service.learn.step.LazyEmbeddings`); None refuses
    The ``shortlist_factor * n`` most uncertain spectra by entropy are sampled (a
    spectrum every pass calls absorption with p ~ 1 has no mutual information to
    find), then the n with the highest BALD score are taken.
    """
    if samples is None:
        raise ValueError("strategy 'bald' needs Monte-Carlo samples (samples=...)")
    n = min(int(n), len(probabilities))
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    shortlist = _top(entropy(probabilities), shortlist_factor * n, rng)
    if isinstance(samples, np.ndarray):  # (T, m, k) already drawn for every row
        drawn = samples[:, shortlist]
    else:  # lazy, indexed by rows: the passes are computed for the shortlist only
        drawn = np.asarray(samples[shortlist])
    return shortlist[bald_sampling(drawn, n, rng)].astype(np.int64)


STRATEGIES: dict[str, Callable[..., np.ndarray]] = {
    "entropy": entropy_sampling,
    "margin": margin_sampling,
    "least-confidence": least_confidence_sampling,
    "random": random_sampling,
    "diverse-entropy": diverse_entropy_sampling,
    "exploit": exploit_sampling,
    "random-pool": random_sampling,
    "bald": mc_bald_sampling,
}
#: Strategies that choose among the whole open pool, not only the predicted candidates
#: (``random-pool``: the baseline of an oracle labelling spectra at random).
UNRESTRICTED = frozenset({"random-pool"})
#: Strategies that also take ``embeddings=`` (the loop computes them only for these).
NEEDS_EMBEDDINGS = frozenset({"diverse-entropy"})
#: Strategies that also take ``samples=`` (Monte-Carlo dropout passes, lazily).
NEEDS_SAMPLES = frozenset({"bald"})


def get_strategy(name: str) -> Callable[..., np.ndarray]:
    """The strategy function called ``name``; a BAD_PARAMETER error names the choices."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise AlvoError(
            Reason.BAD_PARAMETER, f"query strategy {name!r} not one of {sorted(STRATEGIES)}"
        ) from None


def select_query(
    probabilities: np.ndarray,
    n: int,
    rng: np.random.Generator,
    strategy: str = "entropy",
    among: Sequence[int] | np.ndarray | None = None,
    embeddings: np.ndarray | None = None,
    samples: np.ndarray | None = None,
    inside: np.ndarray | None = None,
) -> np.ndarray:
    """Rows of ``probabilities`` for the oracle, restricted to predicted ``among`` classes.

    among : class indices; only spectra whose argmax is one of them are candidates
        (None: all). If fewer than n are, the batch is topped up by the same
        strategy over the remaining spectra so the oracle always gets n.
    inside : (m,) bool, the candidate set when ``among`` is given, instead of argmax
        over it (:func:`service.learn.shift.candidate_cut`)
    """
    func = get_strategy(strategy)
    extra = {"embeddings": embeddings} if strategy in NEEDS_EMBEDDINGS else {}
    if strategy in NEEDS_SAMPLES:
        extra = {"samples": samples}
    rows = np.arange(len(probabilities))
    if among is None:
        groups = [rows]
    else:
        if inside is None:
            inside = np.isin(np.argmax(probabilities, axis=1), np.asarray(among))
        inside = np.asarray(inside, dtype=bool)
        groups = [rows[inside], rows[~inside]]
    chosen: list[np.ndarray] = []
    left = min(int(n), len(rows))
    for group in groups:
        if left <= 0 or group.size == 0:
            continue
        sub = {k: (None if v is None else v[group]) for k, v in extra.items()}
        picked = group[func(probabilities[group], left, rng, **sub)]
        chosen.append(picked)
        left -= picked.size
    return np.concatenate(chosen) if chosen else np.empty(0, dtype=np.int64)
