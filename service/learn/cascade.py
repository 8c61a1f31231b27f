"""A cascade in front of the reference net: a cheap gate decides which spectra need it.

The reference net costs ~34 MFLOP a spectrum; nearly all of a LAMOST pool is plainly
absorption, and the oracle only ever sees the most uncertain few hundred. The gate is
two small networks side by side on the 140 feature pixels (standardised per pixel): a
two-layer perceptron (``GATE_MLP`` ReLU units) and a two-layer 1-D CNN
(``GATE_CONV`` filters, stride 2, then ``GATE_CONV_DENSE`` units), each with its own
softmax head; :meth:`Gate.flops` ~0.2 MFLOP a spectrum, 1/160 of the reference net.
A row's absorption log-odds is the *smaller* of the two heads': a row skips the
reference net only when both are sure. They fail on different rows (the perceptron
on line shapes it saw few of, the CNN on single odd rows such as a spike far from
H-alpha), so their minimum has a far thinner tail among the rows that need the
reference net: on 300 000 simulated LAMOST spectra and 300 000 with another
emission-line model (three trained reference nets each), the pair skipped 87-95 % of
the pool at <= 1 emission row lost in ~2 400-3 500, where the perceptron of before
skipped 41-93 % (docs/performance.md, "The cascade"). Both are trained each iteration
on the iteration's labels and on the reference net's own probabilities for a random
sample of the pool (distillation; an unsure net's sharpened:
:func:`distillation_temperature`), and score every pool row. Rows whose log-odds
reach a threshold keep the gate's probabilities (the mean of the two heads; "scored
by gate"); every other row, and a random audit sample, is scored by the reference net.

The thresholds are chosen per pool and iteration from the audit (:func:`audit`):

* the rows of the audit that **need the reference net** are those it predicts as an
  emission class (p(absorption) below :data:`SURE`): the query batch, the precision
  sample and the candidates are all drawn among them, so all of them are scored by the
  reference net and the batch is the one full scoring would give;
* the needed rows the gate is surest of are noisy spectra the reference net itself
  hesitates on (p(absorption) 0.35-0.5), so one threshold for all would be set by the
  noisiest few. The audit is split into :data:`NOISE_BINS` by each row's
  :func:`noise_level`, and each bin's threshold is the largest gate log-odds among its
  needed rows plus :data:`MARGIN`: on the audit no such row is skipped (argmax
  agreement 100 %, emission recall lost 0, no uncertain row lost), and the quiet
  spectra, most of a pool, skip at a lower cut than the noisy ones;
* the audit **fails**, and the whole pool is scored by the reference net, when (a) on
  a held-out half of the audit the threshold chosen on the other half skips more
  than 0.1 % of its rows that need the reference net (argmax, :data:`AGREEMENT`)
  or more than 0.1 % of its emission rows (:data:`RECALL_LOST`), a single row
  allowed (on a small audit one row is no evidence either way, as for int8), (b) more than
  :data:`UNSEEN_SHARE` of the audit lies outside the feature range the gate was
  trained on (a pool the gate has not seen: another survey, a flux-scale error), or
  (c) the gate would skip less than :data:`MIN_SKIP` of the pool (it would save less
  than it costs).

No I/O: the job (``service.jobs.learning``) feeds it rows. TensorFlow runs the gate
(as it runs the reference net), in chunks of :data:`SCORE_BATCH` rows.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

#: The gate's perceptron: two hidden ReLU layers. Alone it skipped 81-92 % of the
#: pools above (one row lost on two of six); one layer of 128 units, the gate of
#: before, 41-93 %.
GATE_MLP = (256, 64)
#: The gate's CNN: filters of its two stride-2 convolutions (kernels 9 and 7), and
#: the ReLU units after them. Alone it skipped 83-96 % on five of six, 3.5 % on the
#: sixth (a single spiked row set its threshold).
GATE_CONV = (8, 16)
GATE_CONV_KERNELS = (9, 7)
GATE_CONV_DENSE = 32
#: Its training: 10 epochs of batch 1 024 at Adam's 6e-3 took 5-7 s on 43 000 rows and
#: skipped 79-96 % of the six pools above at margin 4 with no emission row lost; batch
#: 256 at 3e-3 (four times the steps) 65-89 %.
GATE_EPOCHS = 10
GATE_BATCH = 1024
GATE_LEARNING_RATE = 6e-3
#: Rows per call of the gate's forward pass (memory: ~3 MB of activations per 1 000).
SCORE_BATCH = 16_384
#: A row "needs the reference net" unless the reference is at least this sure of absorption:
#: 0.5 is its argmax. The query batch (entropy, margin, exploit, the precision sample) is
#: drawn among the rows predicted as emission, which all go through the reference net; a
#: stricter 0.9 halved the share skipped (71 % instead of 86-89 %) for no row the batch
#: can reach with the default ``PADDING=0``.
SURE = 0.5
#: Log-odds added to the largest gate score among the audit rows that need the reference.
#: The better the gate fits its distillation rows, the lower that largest score, while
#: the rows it never saw keep their tail: with 40 000 distillation rows (3 reference nets
#: x 2 pools x 2 seeds, 300 000 rows each, docs/performance.md "The cascade") a margin of
#: 2 skipped 90-98 % and lost up to 10 emission rows (0.44 pt of recall), 4 skipped 82-96 %
#: and lost at most one (0.04 pt).
MARGIN = 4.0
#: Held-out half of the audit: at most this share of argmax disagreements ...
AGREEMENT = 0.999
#: ... and at most this share of its emission rows skipped (the recall lost).
RECALL_LOST = 0.001
#: At most this share of the audit may lie outside the gate's training range.
UNSEEN_SHARE = 0.01
#: The cascade is used only if the gate skips at least this share of the audit.
MIN_SKIP = 0.2
#: Audit rows: 1 % of the pool, within these bounds. The floor is what lets a 1 M pool
#: have noise bins: its 10 000 audit rows of before held < 200 that need the reference
#: net (one bin, :data:`NEEDED_PER_BIN`); 20 000 cost the reference net ~0.6 s more.
AUDIT_ROWS = (20_000, 40_000)
#: Distillation rows: 4 % of the pool, within these bounds. On a 1 M campaign's first
#: net 10 000 rows (1 %) let the gate skip 4.5 % of the pool (the audit then fails: full
#: scoring), 40 000 rows 41 % (39.5 s against full scoring's 56.9 s, the same answers).
#: A campaign's early nets are less sure of absorption than a converged one (median
#: p(absorption) 0.996, not 1.0): on three such nets (200 000-row pool, one seed)
#: 40 000 rows skipped 0.2-49 % at one threshold, 80 000 rows 23-63 %.
DISTIL_ROWS = (10_000, 80_000)
DISTIL_SHARE = 25
#: An unsure reference net's distillation probabilities are sharpened to ``p ** (1 / T)``
#: (renormalised) before the gate learns them. Its 0.996 is a log-odds of 5.5, and a
#: gate fitted to it squeezes the pool into a few log-odds above the needed rows, so
#: that :data:`MARGIN` alone spans most of the pool. At T = 0.5 the same three nets
#: skipped 43-89 % (80 000 rows, seeds 0-2) with no needed row lost. A net as sure as
#: the bench nets :data:`MARGIN` was chosen on (median log-odds 69, its tenth percentile
#: 11) is left as it is: sharpened, the margin would shrink to half, and on one of
#: three seeds an emission row was skipped.
DISTIL_TEMPERATURE = 0.5
#: A net is unsure when the median absorption log-odds of its absorption rows among the
#: distillation sample is below this (the campaign nets above: 5.5-10.3).
UNSURE_LOG_ODDS = 12.0
#: The audit's noise bins (quantiles of :func:`noise_level`), each with its own threshold.
#: On two of the nets above (seeds 0-1, 80 000 rows, T = 0.5): one bin skipped 43-75 %,
#: 2 bins 62-81 %, 4 bins 73-83 %, all with no needed row lost; 8 bins 81-86 % with a
#: needed row lost in 2 of 4 runs (each bin's largest needed score is then a less
#: extreme quantile of fewer rows).
NOISE_BINS = 4
#: Rows that need the reference net an audit must have per noise bin (a 40 000-row audit
#: of a campaign's early net has 300-800; a 10 000-row one of a sharp net ~80: one bin).
NEEDED_PER_BIN = 100


def sample_sizes(pool: int) -> tuple[int, int]:
    """(distillation rows, audit rows) for a pool of ``pool`` rows (together <= pool/2)."""
    distil = int(np.clip(pool // DISTIL_SHARE, *DISTIL_ROWS))
    audit = int(np.clip(pool // 100, *AUDIT_ROWS))
    half = pool // 4
    return min(distil, half), min(audit, half)


def _network(m: int, k: int, mean: np.ndarray, scale: np.ndarray) -> Any:
    """The gate's Keras model: standardise, then the CNN and the perceptron side by side,
    each ending in k logits; one output of (n, 2k) logits (CNN's first)."""
    import keras

    layers = keras.layers
    inputs = keras.Input((m,))
    z = layers.Normalization(mean=mean, variance=np.square(scale))(inputs)
    conv = layers.Reshape((m, 1))(z)
    for filters, kernel in zip(GATE_CONV, GATE_CONV_KERNELS, strict=True):
        conv = layers.Conv1D(filters, kernel, strides=2, padding="same", activation="relu")(conv)
    conv = layers.Dense(GATE_CONV_DENSE, activation="relu")(layers.Flatten()(conv))
    mlp = z
    for units in GATE_MLP:
        mlp = layers.Dense(units, activation="relu")(mlp)
    logits = layers.Concatenate()([layers.Dense(k)(conv), layers.Dense(k)(mlp)])
    return keras.Model(inputs, logits)


def _flops(network: Any) -> int:
    """Floating-point operations per spectrum of the gate (multiply-add = 2)."""
    import keras

    total = 0
    for layer in network.layers:
        if isinstance(layer, keras.layers.Conv1D):
            length, channels = layer.output.shape[1], layer.input.shape[-1]
            total += 2 * length * layer.filters * layer.kernel_size[0] * channels
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
        elif isinstance(layer, keras.layers.Normalization):
            total += 2 * layer.input.shape[-1]
    return int(total)


@dataclasses.dataclass
class Gate:
    """The cheap model (module docstring) and the feature range it was trained on."""

    network: Any  # keras.Model: (n, m) features -> (n, 2k) logits of the two heads
    low: np.ndarray  # (m,) per-pixel range of the training rows, widened by half its span
    high: np.ndarray  # (m,)
    _forward: Any = dataclasses.field(default=None, repr=False)

    @property
    def flops(self) -> int:
        """Floating-point operations per spectrum (multiply-add = 2)."""
        return _flops(self.network)

    def logits(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The two heads' (n, k) logits (CNN, perceptron) of finite (n, m) features."""
        import tensorflow as tf

        if self._forward is None:
            forward = lambda z: self.network(z, training=False)  # noqa: E731
            self._forward = tf.function(forward, autograph=False)  # nothing to convert
        x = np.asarray(x, np.float32)
        if not len(x):
            k = self.network.output.shape[-1] // 2
            return np.zeros((0, k), np.float32), np.zeros((0, k), np.float32)
        out = np.concatenate(
            [self._forward(x[i : i + SCORE_BATCH]).numpy() for i in range(0, len(x), SCORE_BATCH)]
        )
        k = out.shape[1] // 2
        return out[:, :k], out[:, k:]

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return self.score(x, 0)[0]

    def log_odds(self, x: np.ndarray, absorption: int) -> np.ndarray:
        """log p(absorption) - log p(any other class) of each row (NaN rows: -inf)."""
        return self.score(x, absorption)[1]

    def score(self, x: np.ndarray, absorption: int) -> tuple[np.ndarray, np.ndarray]:
        """((n, k) probabilities, (n,) absorption log-odds) of (n, m) features in one pass:
        the two heads' mean probabilities and the smaller of their log-odds."""
        x = np.asarray(x, np.float32)
        finite = np.isfinite(x).all(axis=1)
        if not finite.all():  # a copy only when needed: 4.1 M rows pass through here
            x = np.where(finite[:, None], x, 0.0).astype(np.float32)
        heads = self.logits(x)
        odds = np.minimum(*(_absorption_log_odds(h, absorption) for h in heads))
        odds[~finite] = -np.inf
        probabilities = (softmax(heads[0]) + softmax(heads[1])) / 2
        return probabilities, np.asarray(odds, np.float32)

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
        temperature: float = 1.0,
    ) -> Gate:
        """Fit on (n, m) features and (n, k) target probabilities (one-hot labels and the
        reference net's soft outputs alike, sharpened by ``temperature``:
        :func:`distillation_temperature`): Adam on the cross-entropy of each head."""
        import keras

        x = np.asarray(x, np.float32)
        t = np.asarray(targets, np.float32)
        keep = np.isfinite(x).all(axis=1) & np.isfinite(t).all(axis=1)
        x, t = x[keep], sharpen(t[keep], temperature)
        keras.utils.set_random_seed(seed)
        mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-3
        k = t.shape[1]
        network = _network(x.shape[1], k, mean, scale)

        def both_heads(target: Any, logits: Any) -> Any:
            loss = keras.losses.categorical_crossentropy
            return loss(target, logits[:, :k], from_logits=True) + loss(
                target, logits[:, k:], from_logits=True
            )

        network.compile(keras.optimizers.Adam(GATE_LEARNING_RATE), loss=both_heads)
        network.fit(x, t, epochs=epochs, batch_size=GATE_BATCH, shuffle=True, verbose=0)
        span = x.max(axis=0) - x.min(axis=0)
        return cls(network, x.min(axis=0) - span / 2, x.max(axis=0) + span / 2)


def _absorption_log_odds(logits: np.ndarray, absorption: int) -> np.ndarray:
    """log p(absorption) - log p(any other class), from (n, k) logits."""
    others = np.delete(logits, absorption, axis=1)
    top = others.max(axis=1, keepdims=True)
    rest = top[:, 0] + np.log(np.exp(others - top).sum(axis=1))
    return np.asarray(logits[:, absorption] - rest, np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return np.asarray(e / e.sum(axis=1, keepdims=True), np.float32)


def noise_level(x: np.ndarray) -> np.ndarray:
    """(n,) mean absolute second difference of each row's pixels: its noise (white noise
    of sigma gives ~1.95 sigma; a line adds a little). NaN rows: NaN. The median would
    ignore lines and spikes, at 7 s instead of 1 s per 4.1 M rows, for bins that are
    nearly the same (correlation 0.986 on a campaign pool)."""
    x = np.asarray(x, np.float32)
    second = x[:, 2:] - 2 * x[:, 1:-1] + x[:, :-2]
    return np.asarray(np.abs(second, out=second).mean(axis=1), np.float32)


def sharpen(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """``p ** (1 / temperature)``, renormalised per row (one-hot rows stay one-hot)."""
    logs = np.log(np.clip(np.asarray(probabilities, np.float64), 1e-30, None)) / temperature
    return softmax(logs).astype(np.float32)


def distillation_temperature(reference: np.ndarray, absorption: int) -> float:
    """:data:`DISTIL_TEMPERATURE` for a reference net that is unsure of absorption across
    the pool (:data:`UNSURE_LOG_ODDS`), else 1 (the probabilities as they are)."""
    reference = np.asarray(reference, np.float64)
    reference = reference[np.isfinite(reference).all(axis=1)]
    absorbing = reference[reference.argmax(axis=1) == absorption]
    if not len(absorbing):
        return 1.0
    odds = _absorption_log_odds(np.log(np.clip(absorbing, 1e-30, None)), absorption)
    return DISTIL_TEMPERATURE if float(np.median(odds)) < UNSURE_LOG_ODDS else 1.0


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
class Cut:
    """A threshold per noise bin: ``edges`` (bins - 1 noise levels, ascending) split rows
    into bins, ``thresholds`` the log-odds at which a row of each bin skips."""

    edges: np.ndarray
    thresholds: np.ndarray

    @classmethod
    def chosen(
        cls, log_odds: np.ndarray, noise: np.ndarray, reference: np.ndarray, absorption: int
    ) -> Cut:
        """Each bin's :func:`threshold` on the audit rows that fall in it; bins are
        :data:`NOISE_BINS` quantiles of the rows' noise, fewer where the audit has less
        than :data:`NEEDED_PER_BIN` rows that need the reference net for each (a bin's
        largest score is then too mild a quantile). A bin with no needed row says
        little of the rows it would skip: it takes the threshold of the whole audit."""
        needed = needs_reference(reference, absorption) | ~np.isfinite(log_odds)
        bins = int(np.clip(needed.sum() // NEEDED_PER_BIN, 1, NOISE_BINS))
        finite = noise[np.isfinite(noise)]
        quantiles = np.linspace(0, 1, bins + 1)[1:-1]
        edges = np.quantile(finite, quantiles) if len(finite) else np.zeros(0)
        cut = cls(np.asarray(edges, np.float32), np.full(bins, np.inf))
        which = cut.bins(noise)
        overall = threshold(log_odds, reference, absorption)
        thresholds = [
            threshold(log_odds[which == b], reference[which == b], absorption)
            if needed[which == b].any()
            else overall
            for b in range(bins)
        ]
        return cls(cut.edges, np.asarray(thresholds, np.float64))

    def bins(self, noise: np.ndarray) -> np.ndarray:
        """Each row's bin (NaN noise: the noisiest)."""
        return np.searchsorted(self.edges, np.asarray(noise), side="right")

    def skips(self, log_odds: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """(n,) bool: rows whose log-odds reach their bin's threshold."""
        return np.asarray(log_odds >= self.thresholds[self.bins(noise)])

    def to_dict(self) -> dict[str, list[float | None]]:
        finite = lambda v: round(float(v), 4) if np.isfinite(v) else None  # noqa: E731
        return {"noise_edges": [finite(v) for v in self.edges],
                "thresholds": [finite(v) for v in self.thresholds]}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Audit:
    """What the audit decided, for the job's summary and jobInfo."""

    passed: bool
    cut: Cut
    rows: int  # audit rows
    skip_share: float  # share of the audit the gate would skip at the threshold
    held_out_agreement: float  # argmax agreement on the held-out half at its threshold
    held_out_recall_lost: float  # emission rows skipped there / its emission rows
    unseen_share: float  # audit rows outside the gate's training range
    reason: str  # why it failed, or "passed"

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "cut"}
        out = {k: (round(v, 6) if isinstance(v, float) and np.isfinite(v) else v)
               for k, v in out.items()}  # fmt: skip
        return {**out, **self.cut.to_dict()}


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
    noise = noise_level(features)
    cut = Cut.chosen(odds, noise, reference, absorption)
    skip_share = float(np.mean(cut.skips(odds, noise))) if len(odds) else 0.0
    # held-out check: thresholds chosen on one half, judged on the other
    order = np.random.default_rng(seed).permutation(len(odds))
    first, second = order[: len(order) // 2], order[len(order) // 2 :]
    half_cut = Cut.chosen(odds[first], noise[first], reference[first], absorption)
    skipped = half_cut.skips(odds[second], noise[second])
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
        cut=cut,
        rows=len(odds),
        skip_share=skip_share,
        held_out_agreement=agreement,
        held_out_recall_lost=recall_lost,
        unseen_share=unseen,
        reason=reason,
    )
