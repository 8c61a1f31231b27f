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

import dataclasses
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
    cut = recall_target_cut(probabilities, among, recall, train_priors)
    return cut.candidate, int(cut.j or 0)


#: How the served ``iterate`` job decides its candidate set (its ``CANDIDATES``):
#: ``auto`` is the recall-targeted cut while the campaign has no oracle label of the
#: pool (iteration 0) and argmax from then on, the measured best of each
#: (docs/learning.md, "Which decision, when").
CANDIDATE_RULES = ("auto", "argmax", "recall-target")
ARGMAX, RECALL_TARGET = "argmax", "recall-target"


@dataclasses.dataclass(frozen=True)
class CandidateCut:
    """One candidate decision over a pool.

    rule : the rule applied (``argmax`` or ``recall-target``, never ``auto``)
    candidate : (m,) bool, the spectra decided emission (NaN rows never)
    j : recall-target: the cut's rank (the top j); argmax: None
    expected_recall : recall-target: Σ_top p̂ / Σ p̂ at the cut; argmax: None
    """

    rule: str
    candidate: np.ndarray
    j: int | None = None
    expected_recall: float | None = None

    def to_dict(self) -> dict[str, object]:
        """The summary's ``candidate_rule`` (no arrays)."""
        return {
            "rule": self.rule,
            "candidates": int(self.candidate.sum()),
            "j": self.j,
            "expected_recall": (
                None if self.expected_recall is None else round(self.expected_recall, 4)
            ),
        }


def candidate_rule(requested: str, pool_labels: int) -> str:
    """The rule ``requested`` resolves to for a campaign with ``pool_labels`` oracle
    class labels of its pool: ``auto`` is recall-target at 0 labels, argmax after."""
    if requested not in CANDIDATE_RULES:
        raise ValueError(f"candidate rule {requested!r} not one of {CANDIDATE_RULES}")
    if requested == "auto":
        return RECALL_TARGET if pool_labels == 0 else ARGMAX
    return requested


def train_priors(y: np.ndarray, k: int, balancing: str) -> np.ndarray:
    """Class priors a network was trained under: uniform when balanced, else the counts."""
    if balancing in ("smote", "class-weight"):
        return np.full(k, 1.0 / k)
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=k).astype(np.float64) + 1.0
    return counts / counts.sum()


def argmax_candidates(
    probabilities: np.ndarray, among: Sequence[int] | np.ndarray = (0, 1)
) -> np.ndarray:
    """(m,) bool: finite rows whose most probable class is one of ``among`` (the seed's)."""
    p = np.asarray(probabilities)
    usable = np.isfinite(p).all(axis=1)
    predicted = np.argmax(np.where(usable[:, None], p, -1.0), axis=1)
    return usable & np.isin(predicted, np.asarray(among))


def recall_target_cut(
    probabilities: np.ndarray,
    among: Sequence[int] | np.ndarray = (0, 1),
    recall: float = 0.95,
    train_priors: Sequence[float] | np.ndarray | None = None,
) -> CandidateCut:
    """:func:`recall_target_candidates` with its cut: j and the expected recall there."""
    p = np.asarray(probabilities, dtype=np.float64)
    adjusted, _ = em_priors(p, train_priors)
    usable = np.isfinite(adjusted).all(axis=1)
    score = np.where(usable, adjusted[:, list(among)].sum(axis=1), 0.0)
    order = np.argsort(-score, kind="stable")
    expected = np.cumsum(score[order])
    chosen = np.zeros(len(p), dtype=bool)
    if expected.size == 0 or expected[-1] <= 0:
        return CandidateCut(RECALL_TARGET, chosen, 0, None)
    j = int(np.searchsorted(expected, recall * expected[-1] - 1e-12)) + 1
    j = min(j, int(usable.sum()))
    chosen[order[:j]] = True
    reached = float(expected[j - 1] / expected[-1]) if j else 0.0
    return CandidateCut(RECALL_TARGET, chosen, j, reached)


def candidate_cut(
    probabilities: np.ndarray,
    rule: str,
    among: Sequence[int] | np.ndarray = (0, 1),
    train_priors: Sequence[float] | np.ndarray | None = None,
    recall: float = 0.95,
) -> CandidateCut:
    """The candidate set of a pool under ``rule`` (``argmax`` or ``recall-target``):
    the one function the served job and the benchmark take candidates from."""
    if rule == ARGMAX:
        return CandidateCut(ARGMAX, argmax_candidates(probabilities, among))
    if rule == RECALL_TARGET:
        return recall_target_cut(probabilities, among, recall, train_priors)
    raise ValueError(f"candidate rule {rule!r} is neither {ARGMAX!r} nor {RECALL_TARGET!r}")


def decide_candidates(
    raw: np.ndarray,
    recorded: np.ndarray,
    requested: str,
    pool_labels: int,
    among: Sequence[int] | np.ndarray = (0, 1),
    train_priors: Sequence[float] | np.ndarray | None = None,
) -> tuple[CandidateCut, np.ndarray]:
    """``(cut, (m,) class per row)`` of a pool under the rule ``requested`` resolves to
    (:func:`candidate_rule`): what the served ``iterate`` job and the benchmarked loop
    both call. ``raw``: the network's posteriors under ``train_priors``, which the
    recall-targeted cut re-weights itself; ``recorded``: the probabilities the caller
    records (re-weighted already under ``LABEL_SHIFT``), which argmax takes, as before."""
    rule = candidate_rule(requested, pool_labels)
    cut = candidate_cut(recorded if rule == ARGMAX else raw, rule, among, train_priors)
    return cut, decided_classes(recorded, cut.candidate, among)


def decided_classes(
    probabilities: np.ndarray, candidate: np.ndarray, among: Sequence[int] | np.ndarray = (0, 1)
) -> np.ndarray:
    """(m,) class index per row under a candidate set: a candidate's most probable of
    the ``among`` classes, any other row's most probable of the rest. Equal to argmax
    when the candidate set is argmax's; NaN rows stay argmax of -1s (class 0), as
    :attr:`Predictions.predicted` does, and are never candidates."""
    p = np.nan_to_num(np.asarray(probabilities, dtype=np.float64), nan=-1.0)
    inside = np.zeros(p.shape[1], dtype=bool)
    inside[list(np.asarray(among))] = True
    as_emission = np.argmax(np.where(inside, p, -np.inf), axis=1)
    as_other = np.argmax(np.where(inside, -np.inf, p), axis=1)
    decided = np.where(np.asarray(candidate, dtype=bool), as_emission, as_other)
    finite = np.isfinite(np.asarray(probabilities, dtype=np.float64)).all(axis=1)
    return np.where(finite, decided, np.argmax(p, axis=1))
