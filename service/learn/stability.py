"""How much one iteration's predictions moved from the last, and when to stop asking.

Each iteration retrains the network, so a spectrum may change class from one
iteration to the next without any new label about it. Measured here, on arrays:

* **churn** -- the share of pool spectra whose predicted class changed;
* **candidate agreement** -- Jaccard overlap of the two predicted-emission sets
  (the catalogue the astronomer would publish);
* **flipped** -- spectra the oracle labelled absorption that the model still (or
  again) predicts as emission: it should have learnt them.

:func:`stopping_rule` turns the history of these into a decision with its
evidence: stop when, for ``k`` iterations in a row, churn and the candidate set
have settled, and no open spectrum is left whose emission probability is
uncertain (between ``band`` ends). Whoever labels reads the evidence beside
the decision (``GET /campaigns/{name}`` -> ``stopping``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def churn(previous: np.ndarray, current: np.ndarray) -> float:
    """Share of rows whose predicted class (any labels, e.g. class index) changed.

    Rows where either side is negative (no prediction) are left out; NaN when none remain.
    """
    a, b = np.asarray(previous), np.asarray(current)
    both = (a >= 0) & (b >= 0)
    return float(np.mean(a[both] != b[both])) if both.any() else float("nan")


def candidate_agreement(previous: np.ndarray, current: np.ndarray) -> float:
    """Jaccard index |A ∩ B| / |A ∪ B| of two boolean candidate masks (1 when both empty)."""
    a, b = np.asarray(previous, bool), np.asarray(current, bool)
    union = int(np.sum(a | b))
    return 1.0 if union == 0 else float(np.sum(a & b) / union)


def uncertain(emission_probability: np.ndarray, band: tuple[float, float] = (0.1, 0.9)) -> int:
    """How many spectra have an emission probability strictly inside ``band``."""
    p = np.asarray(emission_probability, dtype=np.float64)
    return int(np.sum((p > band[0]) & (p < band[1])))


@dataclasses.dataclass(frozen=True)
class StoppingRule:
    """Thresholds of :func:`stopping_rule` (defaults: what the rare-regime benchmark used)."""

    max_churn: float = 0.005
    min_agreement: float = 0.98
    max_uncertain: int = 10
    k: int = 2


@dataclasses.dataclass(frozen=True)
class Stopping:
    stop: bool
    reason: str
    evidence: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """``{"stop": bool, "reason": str, "evidence": {...}}`` (the API's ``stopping``)."""
        return {"stop": self.stop, "reason": self.reason, "evidence": self.evidence}


def stopping_rule(
    churns: Sequence[float | None],
    agreements: Sequence[float | None],
    n_uncertain: int | None,
    rule: StoppingRule = StoppingRule(),
) -> Stopping:
    """Whether the oracle may stop after the latest iteration, and why.

    churns, agreements : per iteration, oldest first (None/NaN for iteration 0,
        which has nothing to compare with); n_uncertain : open pool spectra of the
        latest iteration whose emission probability is uncertain (:func:`uncertain`)
    Stop when the last ``rule.k`` iterations each had churn <= ``max_churn`` and
    candidate agreement >= ``min_agreement``, and ``n_uncertain <= max_uncertain``.
    """
    recent_c = [_num(c) for c in churns][-rule.k :]
    recent_a = [_num(a) for a in agreements][-rule.k :]
    evidence: dict[str, Any] = {
        "churn": recent_c,
        "candidate_agreement": recent_a,
        "n_uncertain": n_uncertain,
        "thresholds": dataclasses.asdict(rule),
    }
    if len(recent_c) < rule.k or any(c is None for c in recent_c + recent_a):
        return Stopping(False, f"fewer than {rule.k} iterations to compare yet", evidence)
    moving = [c for c in recent_c if c is not None and c > rule.max_churn]
    if moving:
        return Stopping(
            False,
            f"predictions still churn: {max(moving):.2%} of the pool changed class "
            f"(threshold {rule.max_churn:.2%})",
            evidence,
        )
    unsettled = [a for a in recent_a if a is not None and a < rule.min_agreement]
    if unsettled:
        return Stopping(
            False,
            f"the candidate set still moves: agreement {min(unsettled):.3f} "
            f"(threshold {rule.min_agreement:.3f})",
            evidence,
        )
    if n_uncertain is None or n_uncertain > rule.max_uncertain:
        return Stopping(
            False,
            f"{n_uncertain} unlabelled spectra still have an uncertain emission probability "
            f"(at most {rule.max_uncertain} allowed)",
            evidence,
        )
    return Stopping(
        True,
        f"stable for {rule.k} iterations (churn <= {rule.max_churn:.2%}, candidate agreement "
        f">= {rule.min_agreement:.3f}) and {n_uncertain} uncertain spectra left",
        evidence,
    )


def _num(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def latest_stopping(
    iterations: Sequence[Mapping[str, Any]], rule: StoppingRule = StoppingRule()
) -> Stopping:
    """The stopping rule for the latest of a campaign's ``iteration`` rows (oldest first,
    with ``churn``, ``candidate_agreement``, ``n_uncertain``), as the API shows it."""
    if not iterations:
        return Stopping(False, "no iteration yet", {})
    return stopping_rule(
        [it.get("churn") for it in iterations],
        [it.get("candidate_agreement") for it in iterations],
        iterations[-1].get("n_uncertain"),
        rule,
    )
