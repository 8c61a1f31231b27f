"""Faster iterations (issue 21): noise drawn afresh per epoch, a one-cycle schedule,
and the job parameters that choose them (docs/performance.md, *Iteration turnaround*)."""

from __future__ import annotations

import numpy as np
import pytest

from service.jobs.learning import (
    LEARNING_RATE,
    ONE_CYCLE_EPOCHS,
    fit_classifier,
    training_config,
)
from service.jobs.params import JobParams
from service.learn import configure_threads
from service.learn.model import SpectrumClassifier, TrainConfig, noise_layer
from service.reasons import AlvoError

configure_threads(2, 1)
KEYS = {"adapt_config": {"scaling": "zscore"}, "adapt_fingerprint": "0123456789abcdef"}


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three separable classes: a bump, two horns, a dip at pixel 30."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    pix = np.arange(140)
    bump = np.exp(-0.5 * ((pix - 30) / 2.0) ** 2)
    horns = np.exp(-0.5 * ((pix - 27) / 1.5) ** 2) + np.exp(-0.5 * ((pix - 33) / 1.5) ** 2)
    x = np.stack([bump, horns, -bump])[y] * rng.uniform(0.5, 2, (n, 1))
    return (x + rng.normal(0, 0.2, (n, 140))).astype(np.float32), y


def test_noise_is_drawn_afresh_at_each_step_at_the_stored_copies_levels() -> None:
    x, _ = _data(2000)
    layer = noise_layer(1.0, seed=0)
    first = np.asarray(layer(x[:, :, None], training=True))[:, :, 0]
    second = np.asarray(layer(x[:, :, None], training=True))[:, :, 0]
    assert not np.allclose(first, second)  # a new draw every time
    residual = (first - x).std(axis=1)  # per spectrum: its sigma ~ U(0, 1)
    assert 0.4 < residual.mean() < 0.6 and residual.max() < 1.2 and residual.min() < 0.1
    np.testing.assert_array_equal(np.asarray(layer(x[:, :, None]))[:, :, 0], x)  # inference


def test_per_epoch_noise_trains_half_the_steps_reproducibly() -> None:
    x, y = _data(600)
    base = TrainConfig(variant="small", epochs=3, patience=10, noise_augment=1.0, batch_size=64)
    stored = SpectrumClassifier.train(x, y, base, **KEYS).provenance
    config = TrainConfig(**{**base.to_dict(), "noise_draw": "per-epoch"})
    trained = SpectrumClassifier.train(x, y, config, **KEYS)
    fresh = trained.provenance
    rows = 600 - stored["n_validation"]  # balanced classes: SMOTE adds a few rows at most
    assert stored["steps_per_epoch"] >= -(-2 * rows // 64)
    assert fresh["steps_per_epoch"] == -(-stored["steps_per_epoch"] // 2)  # the same rows, once
    assert fresh["train"]["noise_draw"] == "per-epoch"
    # what is saved is the network alone: the noise is for training only
    assert "training_noise" not in [layer.name for layer in trained.network.layers]
    again = SpectrumClassifier.train(x, y, config, **KEYS)
    np.testing.assert_array_equal(trained.predict_proba(x[:50]), again.predict_proba(x[:50]))
    # the noise is really applied in training: drowned in sigma up to 20, nothing is learnt
    loud = TrainConfig(**{**config.to_dict(), "noise_augment": 20.0})
    drowned = SpectrumClassifier.train(x, y, loud, **KEYS).provenance["history"]["loss"]
    assert drowned[-1] > 1.09 and fresh["history"]["loss"][-1] < 1.0, (drowned, fresh["history"])
    with pytest.raises(AlvoError, match="noise_draw"):
        TrainConfig(noise_draw="twice")


def test_one_cycle_runs_its_schedule_and_anneals_the_rate() -> None:
    from service.jobs.eta import Stages

    x, y = _data(600, seed=3)
    config = TrainConfig(
        variant="small", epochs=4, patience=1, schedule="one-cycle", learning_rate=4e-3, seed=2
    )
    reports: list[tuple[float | None, str]] = []
    stages = Stages(lambda fraction, message="": reports.append((fraction, message)), [("t", None)])
    model = fit_classifier(x, y, config, {}, stages.begin("t"))
    assert model.provenance["epochs_run"] == 4  # no early stopping: the schedule's length
    optimizer = model.network.optimizer
    steps = 4 * model.provenance["steps_per_epoch"]
    assert int(optimizer.iterations) == steps
    rate = optimizer.learning_rate  # the schedule's value at the last step: ~1 % of the peak
    assert float(rate) == pytest.approx(4e-5, rel=0.2)
    schedule = optimizer._learning_rate
    assert float(schedule(0)) == pytest.approx(4e-4) and float(schedule(steps // 5)) > 3.9e-3
    epochs = [m for _, m in reports if m.startswith("training: epoch") and "batch" not in m]
    assert len(epochs) == 4 and all("one-cycle schedule of 4" in m for m in epochs)
    assert reports[-1][0] is not None and reports[-1][0] > 0.6  # the end is known
    with pytest.raises(AlvoError, match="schedule"):
        TrainConfig(schedule="step")


def test_job_parameters_choose_the_training() -> None:
    default = training_config(JobParams([]))
    assert (default.noise_draw, default.schedule) == ("per-epoch", "one-cycle")
    assert (default.epochs, default.learning_rate) == (ONE_CYCLE_EPOCHS, LEARNING_RATE)
    before = training_config(JobParams([("LR_SCHEDULE", "constant"), ("NOISE_DRAW", "stored")]))
    assert (before.noise_draw, before.schedule) == ("stored", "constant")
    assert (before.epochs, before.learning_rate, before.patience) == (100, 1e-3, 3)
    asked = training_config(JobParams([("EPOCHS", "9"), ("LEARNING_RATE", "0.002")]))
    assert (asked.epochs, asked.learning_rate) == (9, 0.002)
    for bad in (("NOISE_DRAW", "twice"), ("LR_SCHEDULE", "step"), ("LEARNING_RATE", "2")):
        with pytest.raises(AlvoError, match=bad[0]):
            training_config(JobParams([bad]))
