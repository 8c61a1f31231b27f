"""The cascade (service.learn.cascade, service.jobs.learning.classify_cascade) on a small pool.

A small network is trained on labelled H-alpha profiles; a pool of them is scored by the
reference net alone and through the cascade: the cascade must agree, and a pool the
gate has not seen (every row 40x brighter) must make the audit fail and fall back to
the reference net for every row, saying why.
"""

from __future__ import annotations

import numpy as np
import pytest

from service.adapt import AdaptConfig
from service.jobs.learning import (
    CASCADE,
    CASCADE_MIN_ROWS,
    cascade_wanted,
    classify,
    classify_cascade,
)
from service.learn import TrainConfig
from service.learn.cascade import (
    DISTIL_TEMPERATURE,
    NEEDED_PER_BIN,
    NOISE_BINS,
    Cut,
    Gate,
    audit,
    distillation_temperature,
    noise_level,
    sample_sizes,
    sharpen,
)
from service.learn.model import SpectrumClassifier
from service.store.features import FeatureStore
from service.vocabulary import CLASSES, SCORED_BY_GATE, SCORED_BY_REFERENCE
from tests.test_learning_jobs import profiles

ABSORPTION = CLASSES.index("absorption")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cascade")
    rng = np.random.default_rng(11)
    y = rng.choice(3, 900, p=[0.4, 0.2, 0.4])
    x = profiles(y, rng)
    adaptation = AdaptConfig()
    model = SpectrumClassifier.train(
        x,
        y,
        TrainConfig(variant="small", epochs=6, seed=1),
        adapt_config=adaptation.to_dict(),
        adapt_fingerprint=adaptation.fingerprint,
    )
    path = model.save(folder / "small.keras")
    kinds = rng.choice(3, 16_000, p=[0.03, 0.02, 0.95])
    pool = profiles(kinds, rng)
    store = FeatureStore.create(folder / "pool.npy", pool.shape[1])
    store.append(pool)
    return path, store.path, (x, y), pool, folder


def test_cascade_agrees_with_full_scoring(trained):
    path, pool_path, labelled, pool, _ = trained
    full = classify(path, pool_path)
    cascade = classify_cascade(path, pool_path, labelled, seed=3)
    summary = cascade.cascade
    assert summary is not None and summary["used"], summary
    assert cascade.scored_by is not None
    gate_rows = cascade.scored_by == SCORED_BY_GATE
    # the gate took most of the (95 % absorption) pool off the reference net, besides
    # the distillation and audit samples the reference net scores first ...
    outside_samples = len(pool) - sum(sample_sizes(len(pool)))
    assert gate_rows.sum() > 0.9 * outside_samples
    assert summary["scored_by_gate"] == gate_rows.sum()
    assert set(cascade.scored_by) == {SCORED_BY_GATE, SCORED_BY_REFERENCE}
    # ... and only rows the reference net calls absorption, so the answers are the same
    assert (full.predicted[gate_rows] == ABSORPTION).all()
    assert (cascade.predicted == full.predicted).mean() >= 0.999
    emission = full.predicted != ABSORPTION
    assert (cascade.predicted[emission] == full.predicted[emission]).all()
    # rows the reference net scored carry its own probabilities, so its query batch holds
    ours = ~gate_rows
    np.testing.assert_allclose(cascade.probabilities[ours], full.probabilities[ours], atol=1e-5)
    top = np.argsort(-np.where(emission, full.entropy, -1))[:100]
    mine = np.argsort(-np.where(cascade.candidates(), cascade.entropy, -1))[:100]
    assert len(set(top) & set(mine)) >= 98
    # the gate is cheap: <= 1/30 of the reference net's 34 MFLOP per spectrum
    assert summary["gate_flops"] <= 34e6 / 30


def test_a_pool_the_gate_has_not_seen_falls_back_to_the_reference_net(trained):
    path, _, labelled, pool, folder = trained
    # the gate learns on this pool (labels + the reference net's probabilities) ...
    x, y = labelled
    model = SpectrumClassifier.load(path)
    distil = pool[: sample_sizes(len(pool))[0]]
    targets = np.concatenate([np.eye(3)[y], model.predict_proba(distil)])
    gate = Gate.fit(np.concatenate([x, distil]), targets, ABSORPTION, seed=0)
    assert audit(gate, pool[-2000:], model.predict_proba(pool[-2000:]), ABSORPTION).passed
    # ... and is then put in front of a pool 40x brighter
    bright = FeatureStore.create(folder / "bright.npy", pool.shape[1])
    bright.append(pool[:6000] * 40)
    fallback = classify_cascade(path, bright.path, labelled, seed=3, gate=gate)
    summary = fallback.cascade
    assert summary is not None and not summary["used"]
    assert "outside the features the gate was trained on" in summary["audit"]["reason"]
    assert summary["scored_by_gate"] == 0 and summary["scored_by_reference"] == 6000
    assert fallback.scored_by is not None and set(fallback.scored_by) == {SCORED_BY_REFERENCE}
    full = classify(path, bright.path)
    np.testing.assert_allclose(fallback.probabilities, full.probabilities, atol=1e-5)


def test_auto_puts_the_cascade_in_front_of_large_pools_only():
    # a demo pool is scored whole (the gate's samples would be most of it); a survey's is not
    assert CASCADE == "auto"
    assert not cascade_wanted(CASCADE, CASCADE_MIN_ROWS - 1)
    assert cascade_wanted(CASCADE, CASCADE_MIN_ROWS)
    assert cascade_wanted("on", 1000) and not cascade_wanted("off", 10 * CASCADE_MIN_ROWS)


def test_noisy_spectra_do_not_set_the_quiet_ones_threshold():
    """The needed rows the gate is surest of are noisy ones: with a threshold per noise
    bin, the quiet rows skip at a lower cut than the noisy rows, and no needed row of
    the audit is skipped in any bin."""
    rng = np.random.default_rng(5)
    n = 40_000
    noise = rng.uniform(0, 1, n).astype(np.float32)
    needed = rng.random(n) < 0.02  # 800 rows: NOISE_BINS bins
    # the gate's log-odds: sure for absorption; needed rows low, the noisier the higher
    odds = np.where(needed, -2 + 8 * noise, 10 + rng.normal(0, 1, n)).astype(np.float32)
    reference = np.tile(np.float32([0.0, 0.0, 1.0]), (n, 1))
    reference[needed] = [0.7, 0.0, 0.3]
    cut = Cut.chosen(odds, noise, reference, ABSORPTION)
    assert len(cut.thresholds) == NOISE_BINS
    assert np.all(np.diff(cut.thresholds) > 0), cut  # noisier bins, higher cuts
    skips = cut.skips(odds, noise)
    assert not skips[needed].any()
    one = Cut.chosen(odds, np.zeros(n, np.float32), reference, ABSORPTION)  # all in one bin
    assert skips.mean() > one.skips(odds, noise).mean() + 0.1
    few = reference.copy()
    few[np.flatnonzero(needed)[NEEDED_PER_BIN:]] = [0.0, 0.0, 1.0]  # too few for two bins
    assert len(Cut.chosen(odds, noise, few, ABSORPTION).thresholds) == 1


def test_noise_level_grows_with_the_noise():
    rng = np.random.default_rng(2)
    quiet, loud = rng.normal(0, 0.01, (50, 140)), rng.normal(0, 0.1, (50, 140))
    assert noise_level(loud).min() > 5 * noise_level(quiet).max()


def test_only_an_unsure_reference_net_is_sharpened():
    unsure = np.tile(np.float32([0.002, 0.002, 0.996]), (100, 1))  # log-odds 5.5
    sure = np.tile(np.float32([1e-7, 1e-7, 1 - 2e-7]), (100, 1))
    assert distillation_temperature(unsure, ABSORPTION) == DISTIL_TEMPERATURE < 1
    assert distillation_temperature(sure, ABSORPTION) == 1.0
    sharper = sharpen(unsure, DISTIL_TEMPERATURE)
    assert sharper[0, ABSORPTION] > unsure[0, ABSORPTION]
    np.testing.assert_allclose(sharper.sum(axis=1), 1, rtol=1e-6)
    one_hot = np.eye(3, dtype=np.float32)
    np.testing.assert_allclose(sharpen(one_hot, DISTIL_TEMPERATURE), one_hot, atol=1e-12)
