"""A cascade in front of the reference net: a cheap gate decides which spectra need it.

The reference net costs ~34 MFLOP a spectrum; nearly all of a LAMOST pool is plainly
absorption, and the oracle only ever sees the most uncertain few hundred. The gate is
a one-hidden-layer perceptron on the 140 feature pixels (standardised per pixel,
``GATE_HIDDEN`` ReLU units, softmax over the classes: :meth:`Gate.flops` ~37 kFLOP a
spectrum, 1/900 of the reference net). It is trained each iteration on the
iteration's labels and on the reference net's own probabilities for a random sample
of the pool (distillation), and scores every pool row. Rows whose absorption
log-odds reach a threshold keep the gate's probabilities and skip the reference net
("scored by gate"); every other row, and a random audit sample, is scored by the
reference net.

The threshold is chosen per pool and iteration from the audit (:func:`audit`):

* the rows of the audit that **need the reference net** are those it predicts as an
  emission class (p(absorption) below :data:`SURE`): the query batch, the precision
  sample and the candidates are all drawn among them, so all of them are scored by the
  reference net and the batch is the one full scoring would give;
* the threshold is the largest gate log-odds among them plus :data:`MARGIN`: on the
  audit no such row is skipped (argmax agreement 100 %, emission recall lost 0, no
  uncertain row lost);
* the audit **fails**, and the whole pool is scored by the reference net, when (a) on
  a held-out half of the audit the threshold chosen on the other half skips more
  than 0.1 % of its rows that need the reference net (argmax, :data:`AGREEMENT`)
  or more than 0.1 % of its emission rows (:data:`RECALL_LOST`), a single row
  allowed (on a small audit one row is no evidence either way, as for int8), (b) more than
  :data:`UNSEEN_SHARE` of the audit lies outside the feature range the gate was
  trained on (a pool the gate has not seen: another survey, a flux-scale error), or
  (c) the gate would skip less than :data:`MIN_SKIP` of the pool (it would save less
  than it costs).

Plain numpy: no TensorFlow, no I/O; the job (``service.jobs.learning``) feeds it rows.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

#: Hidden ReLU units of the gate, and its training epochs. On 20 000 simulated LAMOST
#: spectra (trained reference net, 10 000 distillation rows, three seeds) 128 units let
#: the gate take 88-93 % of the pool at zero emission rows lost; 32 units 80-92 %.
GATE_HIDDEN = 128
GATE_EPOCHS = 10
#: Weight in the gate's loss of the rows the reference net is not sure are absorption
#: (10 was tried: no gain, and a worse skip share on one seed of three).
NEED_WEIGHT = 1.0
#: A row "needs the reference net" unless the reference is at least this sure of absorption:
#: 0.5 is its argmax. The query batch (entropy, margin, exploit, the precision sample) is
#: drawn among the rows predicted as emission, which all go through the reference net; a
#: stricter 0.9 halved the share skipped (71 % instead of 86-89 %) for no row the batch
#: can reach with the default ``PADDING=0``.
SURE = 0.5
#: Log-odds added to the largest gate score among the audit rows that need the reference.
#: On 100 000 simulated LAMOST spectra (1.6 % emission, two gate seeds) a margin of 1 lost
#: 0.06-0.58 pt of emission recall and up to 9 of the top-100 entropy batch; 2 lost at
#: most 0.13 pt and 2 of 100 (docs/performance.md, "The cascade").
MARGIN = 2.0
#: Held-out half of the audit: at most this share of argmax disagreements ...
AGREEMENT = 0.999
#: ... and at most this share of its emission rows skipped (the recall lost).
RECALL_LOST = 0.001
#: At most this share of the audit may lie outside the gate's training range.
UNSEEN_SHARE = 0.01
#: The cascade is used only if the gate skips at least this share of the audit.
MIN_SKIP = 0.2
#: Audit rows: 1 % of the pool, within these bounds; distillation rows likewise.
AUDIT_ROWS = (10_000, 40_000)
DISTIL_ROWS = (10_000, 20_000)


def sample_sizes(pool: int) -> tuple[int, int]:
    """(distillation rows, audit rows) for a pool of ``pool`` rows (together <= pool/2)."""
    distil = int(np.clip(pool // 100, *DISTIL_ROWS))
    audit = int(np.clip(pool // 100, *AUDIT_ROWS))
    half = pool // 4
    return min(distil, half), min(audit, half)


@dataclasses.dataclass
class Gate:
    """The cheap model: standardise -> Dense(GATE_HIDDEN, relu) -> Dense(k) softmax."""

    mean: np.ndarray  # (m,)
    scale: np.ndarray  # (m,)
    w1: np.ndarray  # (m, h)
    b1: np.ndarray  # (h,)
    w2: np.ndarray  # (h, k)
    b2: np.ndarray  # (k,)
    low: np.ndarray  # (m,) per-pixel range of the training rows, widened by half its span
    high: np.ndarray  # (m,)

    @property
    def flops(self) -> int:
        """Floating-point operations per spectrum (multiply-add = 2)."""
        m, h = self.w1.shape
        return 2 * m + 2 * m * h + h + 2 * h * self.w2.shape[1] + 4 * self.w2.shape[1]

    def logits(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, np.float32) - self.mean) / self.scale
        hidden = np.maximum(z @ self.w1 + self.b1, 0.0)
        return np.asarray(hidden @ self.w2 + self.b2, np.float32)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return softmax(self.logits(x))

    def log_odds(self, x: np.ndarray, absorption: int) -> np.ndarray:
        """log p(absorption) - log p(any other class) of each row (NaN rows: -inf)."""
        return self.score(x, absorption)[1]

    def score(self, x: np.ndarray, absorption: int) -> tuple[np.ndarray, np.ndarray]:
        """((n, k) probabilities, (n,) absorption log-odds) of (n, m) features in one pass."""
        logits = self.logits(np.nan_to_num(x, nan=0.0))
        others = np.delete(logits, absorption, axis=1)
        top = others.max(axis=1, keepdims=True)
        rest = top[:, 0] + np.log(np.exp(others - top).sum(axis=1))
        out = logits[:, absorption] - rest
        out[~np.isfinite(np.asarray(x)).all(axis=1)] = -np.inf
        return softmax(logits), np.asarray(out, np.float32)

    def unseen(self, x: np.ndarray) -> np.ndarray:
        """(n,) bool: rows with a pixel outside the range the gate was trained on."""
        x = np.asarray(x, np.float32)
        return np.asarray(((x < self.low) | (x > self.high)).any(axis=1))

    @classmethod
    def fit(
        cls,
        x: np.ndarray,
        targets: np.ndarray,
        absorption: int,
        seed: int = 0,
        epochs: int = GATE_EPOCHS,
    ) -> Gate:
        """Fit on (n, m) features and (n, k) target probabilities (one-hot labels and the
        reference net's soft outputs alike): minibatch Adam on the cross-entropy, rows
        the reference is not :data:`SURE` of absorption weighted :data:`NEED_WEIGHT` times
        (a missed one costs recall; a needlessly kept one only time)."""
        x = np.asarray(x, np.float32)
        t = np.asarray(targets, np.float32)
        keep = np.isfinite(x).all(axis=1) & np.isfinite(t).all(axis=1)
        x, t = x[keep], t[keep]
        weight = np.where(t[:, absorption] < SURE, NEED_WEIGHT, 1.0).astype(np.float32)
        weight /= weight.mean()
        rng = np.random.default_rng(seed)
        mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-3
        span = x.max(axis=0) - x.min(axis=0)
        z = (x - mean) / scale
        m, k = x.shape[1], t.shape[1]
        params = [
            rng.normal(0, np.sqrt(2 / m), (m, GATE_HIDDEN)).astype(np.float32),
            np.zeros(GATE_HIDDEN, np.float32),
            rng.normal(0, np.sqrt(1 / GATE_HIDDEN), (GATE_HIDDEN, k)).astype(np.float32),
            np.zeros(k, np.float32),
        ]
        moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
        rate, beta1, beta2, step = 3e-3, 0.9, 0.999, 0
        for _ in range(epochs):
            order = rng.permutation(len(z))
            for start in range(0, len(z), 256):
                rows = order[start : start + 256]
                xb, tb = z[rows], t[rows]
                w1, b1, w2, b2 = params
                pre = xb @ w1 + b1
                hidden = np.maximum(pre, 0.0)
                p = softmax(hidden @ w2 + b2)
                d_out = (p - tb) * weight[rows, None] / len(rows)
                d_hidden = (d_out @ w2.T) * (pre > 0)
                grads = [
                    xb.T @ d_hidden + 1e-4 * w1,
                    d_hidden.sum(0),
                    hidden.T @ d_out,
                    d_out.sum(0),
                ]
                step += 1
                for i, (g, (m1, m2)) in enumerate(zip(grads, moments, strict=True)):
                    m1 *= beta1
                    m1 += (1 - beta1) * g
                    m2 *= beta2
                    m2 += (1 - beta2) * g * g
                    corrected = (m1 / (1 - beta1**step)) / (np.sqrt(m2 / (1 - beta2**step)) + 1e-8)
                    params[i] = (params[i] - rate * corrected).astype(np.float32)
        low, high = x.min(axis=0) - span / 2, x.max(axis=0) + span / 2
        w1, b1, w2, b2 = params
        return cls(mean, scale, w1, b1, w2, b2, low, high)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return np.asarray(e / e.sum(axis=1, keepdims=True), np.float32)


def needs_reference(reference: np.ndarray, absorption: int) -> np.ndarray:
    """(n,) bool: rows the reference predicts as emission or is not :data:`SURE` about."""
    reference = np.asarray(reference)
    return (reference.argmax(axis=1) != absorption) | (reference[:, absorption] < SURE)


def threshold(log_odds: np.ndarray, reference: np.ndarray, absorption: int) -> float:
    """The smallest gate log-odds at which a row skips the reference net: above every
    audit row that needs it, by :data:`MARGIN` (+inf when the audit is empty)."""
    needed = needs_reference(reference, absorption) | ~np.isfinite(log_odds)
    if not len(log_odds):
        return float("inf")
    highest = np.max(log_odds[needed], initial=-np.inf)
    if not np.isfinite(highest):  # nothing needs the reference: skip what the gate is surest of
        highest = float(np.min(log_odds[np.isfinite(log_odds)], initial=0.0))
    return float(highest + MARGIN)


@dataclasses.dataclass(frozen=True)
class Audit:
    """What the audit decided, for the job's summary and jobInfo."""

    passed: bool
    threshold: float
    rows: int  # audit rows
    skip_share: float  # share of the audit the gate would skip at the threshold
    held_out_agreement: float  # argmax agreement on the held-out half at its threshold
    held_out_recall_lost: float  # emission rows skipped there / its emission rows
    unseen_share: float  # audit rows outside the gate's training range
    reason: str  # why it failed, or "passed"

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        return {k: (round(v, 6) if isinstance(v, float) and np.isfinite(v) else v)
                for k, v in out.items()}  # fmt: skip


def audit(
    gate: Gate,
    features: np.ndarray,
    reference: np.ndarray,
    absorption: int,
    seed: int = 0,
) -> Audit:
    """Choose the threshold on the audit rows (``features``, the reference net's
    ``reference`` probabilities) and decide whether the cascade may be used (module
    docstring: the rule and the three ways to fail)."""
    features = np.asarray(features, np.float32)
    reference = np.asarray(reference, np.float32)
    finite = np.isfinite(features).all(axis=1) & np.isfinite(reference).all(axis=1)
    features, reference = features[finite], reference[finite]
    odds = gate.log_odds(features, absorption)
    cut = threshold(odds, reference, absorption)
    skip_share = float(np.mean(odds >= cut)) if len(odds) else 0.0
    # held-out check: a threshold chosen on one half, judged on the other
    order = np.random.default_rng(seed).permutation(len(odds))
    first, second = order[: len(order) // 2], order[len(order) // 2 :]
    half_cut = threshold(odds[first], reference[first], absorption)
    skipped = odds[second] >= half_cut
    emission = reference[second].argmax(axis=1) != absorption
    disagree = int(np.sum(skipped & emission))
    agreement = 1 - disagree / max(1, len(second))
    recall_lost = disagree / max(1, int(emission.sum()))
    # a single row is no evidence either way on a small audit (as for int8's check)
    allowed = max(1, min(int((1 - AGREEMENT) * len(second)), int(RECALL_LOST * emission.sum())))
    unseen = float(np.mean(gate.unseen(features))) if len(features) else 0.0
    if not len(odds):
        reason = "no finite audit rows"
    elif unseen > UNSEEN_SHARE:
        reason = (f"{100 * unseen:.1f} % of the audit lies outside the features the gate "
                  f"was trained on (at most {100 * UNSEEN_SHARE:g} %)")  # fmt: skip
    elif disagree > allowed:
        reason = (f"on the held-out half of the audit the gate skipped {disagree} rows the "
                  f"reference net predicts as emission (at most {allowed})")  # fmt: skip
    elif skip_share < MIN_SKIP:
        reason = (f"the gate would skip {100 * skip_share:.1f} % of the pool "
                  f"(at least {100 * MIN_SKIP:g} % pays)")  # fmt: skip
    else:
        reason = "passed"
    return Audit(
        passed=reason == "passed",
        threshold=cut,
        rows=len(odds),
        skip_share=skip_share,
        held_out_agreement=agreement,
        held_out_recall_lost=recall_lost,
        unseen_share=unseen,
        reason=reason,
    )
