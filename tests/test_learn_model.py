"""The CNN: the published architecture, reproducible training, streaming inference, model files."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from service.learn import configure_threads
from service.learn.balance import balance
from service.learn.model import (
    SpectrumClassifier,
    TrainConfig,
    augment_noise,
    build_network,
    sidecar,
)
from service.reasons import AlvoError

configure_threads(2, 1)
FINGERPRINT = "0123456789abcdef"
ADAPT = {"algorithm_version": 1, "scaling": "zscore"}


def _data(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three separable classes: a bump, a dip, a two-horned bump at pixel 30."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    pix = np.arange(140)
    bump = np.exp(-0.5 * ((pix - 30) / 2.0) ** 2)
    horns = np.exp(-0.5 * ((pix - 27) / 1.5) ** 2) + np.exp(-0.5 * ((pix - 33) / 1.5) ** 2)
    shapes = np.stack([bump, horns, -bump])
    x = shapes[y] * rng.uniform(0.5, 2, (n, 1)) + rng.normal(0, 0.2, (n, 140))
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def trained() -> SpectrumClassifier:
    x, y = _data()
    config = TrainConfig(variant="small", epochs=6, seed=7)
    return SpectrumClassifier.train(x, y, config, adapt_config=ADAPT, adapt_fingerprint=FINGERPRINT)


def test_reference_network_is_the_published_one() -> None:
    net = build_network("reference")
    shapes = {layer.name: layer.output.shape for layer in net.layers}
    flatten = [s for name, s in shapes.items() if name.startswith("flatten")]
    assert flatten == [(None, 3584)]
    convs = [layer for layer in net.layers if layer.name.startswith("conv1d")]
    assert [c.filters for c in convs] == [64, 64, 128, 128, 256, 256]
    assert all(c.kernel_size == (3,) and c.padding == "valid" for c in convs)
    assert net.count_params() == 2_481_731  # "~2.5 M parameters"
    assert net.output.shape == (None, 3)
    same = build_network("same")
    assert any(layer.output.shape == (None, 4352) for layer in same.layers)


def test_unknown_variant_is_a_named_error() -> None:
    with pytest.raises(AlvoError, match="network 'vgg19'"):
        build_network("vgg19")


def test_training_learns_and_records_provenance(trained: SpectrumClassifier) -> None:
    x, y = _data(300, seed=1)
    accuracy = (trained.predict_proba(x).argmax(axis=1) == y).mean()
    assert accuracy > 0.9
    prov = trained.provenance
    assert prov["train"]["seed"] == 7 and prov["epochs_run"] <= 6
    assert sum(prov["n_per_class"].values()) == 600 and "tensorflow" in prov["versions"]


def test_training_is_reproducible_with_a_seed_and_reports_each_epoch(
    trained: SpectrumClassifier,
) -> None:
    x, y = _data()
    epochs: list[tuple[int, int, float]] = []
    again = SpectrumClassifier.train(
        x, y, TrainConfig(variant="small", epochs=6, seed=7),
        adapt_config=ADAPT, adapt_fingerprint=FINGERPRINT,
        on_epoch=lambda epoch, most, logs: epochs.append((epoch, most, logs["loss"])),
    )  # fmt: skip
    probe = _data(50, seed=2)[0]
    np.testing.assert_allclose(again.predict_proba(probe), trained.predict_proba(probe), atol=1e-6)
    assert [(e, most) for e, most, _ in epochs] == [(e, 6) for e in range(1, 7)][: len(epochs)]
    assert len(epochs) == again.provenance["epochs_run"] and all(loss > 0 for *_, loss in epochs)


def test_inference_streams_over_a_memmap(trained: SpectrumClassifier, tmp_path) -> None:
    x = _data(1000, seed=3)[0]
    x[17] = np.nan  # a spectrum adaptation could not use
    np.save(tmp_path / "features.npy", x)
    mapped = np.load(tmp_path / "features.npy", mmap_mode="r")
    streamed = trained.predict_proba(mapped, batch_size=96)  # many uneven chunks
    whole = trained.predict_proba(np.nan_to_num(x), batch_size=4096)
    assert np.isnan(streamed[17]).all()
    keep = np.arange(1000) != 17
    np.testing.assert_allclose(streamed[keep], whole[keep], atol=1e-5)
    np.testing.assert_allclose(streamed[keep].sum(axis=1), 1.0, atol=1e-5)
    assert trained.embed(mapped[:10]).shape == (10, 64)


def test_model_file_round_trip_and_refusal(trained: SpectrumClassifier, tmp_path) -> None:
    path = trained.save(tmp_path / "m.keras")
    meta = json.loads(sidecar(path).read_text())
    assert meta["classes"] == ["single-peak", "double-peak", "absorption"]
    assert meta["adapt_config"] == ADAPT and meta["provenance"]["train"]["seed"] == 7
    loaded = SpectrumClassifier.load(path, adapt_fingerprint=FINGERPRINT)
    probe = _data(20, seed=4)[0]
    np.testing.assert_allclose(loaded.predict_proba(probe), trained.predict_proba(probe), atol=1e-6)
    with pytest.raises(AlvoError, match="MODEL_ADAPTATION_MISMATCH"):
        SpectrumClassifier.load(path, adapt_fingerprint="fedcba9876543210")
    sidecar(path).unlink()
    with pytest.raises(AlvoError, match="BAD_MODEL_FILE"):
        SpectrumClassifier.load(path)


def test_balancing() -> None:
    x, y = _data(400)
    y = np.where(np.arange(400) < 30, 1, np.where(y == 1, 0, y))  # class 1: 30 rows
    xs, ys, weights = balance(x, y, "smote", seed=0)
    assert weights is None and np.unique(np.bincount(ys)).size == 1 and xs.dtype == np.float32
    _, _, weights = balance(x, y, "class-weight")
    assert weights is not None and weights[1] > weights[0]
    tiny = y.copy()
    tiny[tiny == 1] = 0
    tiny[0] = 1  # a single member: duplicated, not SMOTE'd
    assert np.unique(np.bincount(balance(x, tiny, "smote")[1])).size == 1
    with pytest.raises(AlvoError, match="balancing"):
        balance(x, y, "undersample")


def test_noise_augmentation_adds_noisy_copies() -> None:
    x, y = _data(200)
    xa, ya = augment_noise(x, y, 1.0, np.random.default_rng(0))
    assert xa.shape == (400, 140) and xa.dtype == np.float32 and (ya[200:] == y).all()
    np.testing.assert_array_equal(xa[:200], x)
    residual = (xa[200:] - x).std(axis=1)
    assert 0.3 < residual.mean() < 0.7 and residual.max() < 1.2  # sigma ~ U(0, 1)
    with pytest.raises(AlvoError, match="noise_augment"):
        TrainConfig(noise_augment=-1)


def test_learning_jobs_report_epochs_and_an_honest_time_left() -> None:
    """The fraction is the part of the expected time: epochs to early stopping (patience
    after the best validation loss, at least what a first training is expected to run),
    never the whole way to the epoch cap; during the first epoch, from its batches."""
    from service.jobs.eta import Stages
    from service.jobs.learning import FIRST_BEST_EPOCH, fit_classifier

    x, y = _data(600)
    reports: list[tuple[float | None, str]] = []
    stages = Stages(lambda fraction, message="": reports.append((fraction, message)), [("t", None)])
    fit_classifier(
        x, y, TrainConfig(variant="small", epochs=100, patience=2, seed=1), {},
        stages.begin("t"),
    )  # fmt: skip
    batches = [r for r in reports if r[1].startswith("training: epoch 1, batch")]
    epochs = [r for r in reports if r[1].startswith("training: epoch") and r not in batches]
    # an estimate before the first epoch ends: rows per second so far, not "unknown"
    assert batches and all(fraction is not None and fraction > 0 for fraction, _ in batches)
    assert reports.index(batches[0]) < reports.index(epochs[0])
    assert epochs[0][1].startswith("training: epoch 1 (loss ")
    assert "stops 2 epochs after it, at most 100" in epochs[0][1]
    # (FIRST_BEST_EPOCH + patience - 1) epochs' time left after the first,
    # which here built the graph in most of its time: far from 1/100, short of done
    first = epochs[0][0]
    assert first is not None and 0.02 < first < 0.99, first
    assert FIRST_BEST_EPOCH < 100
    assert epochs[-1][0] is not None and epochs[-1][0] > 0.5  # little left when it stops
    assert len(epochs) < 100


def test_oracle_weight_makes_the_network_keep_the_oracles_verdicts() -> None:
    """Issue 25's ``flipped``: ten weak emission-like bumps the oracle labelled absorption,
    beside 600 source spectra whose bumps are emission. Counted once, the network calls
    most of them emission again; each counted 30 times, it keeps the verdicts."""
    x, y = _data()
    rng = np.random.default_rng(1)
    bump = np.exp(-0.5 * ((np.arange(140) - 30) / 2.0) ** 2)
    weak = (0.4 * bump + rng.normal(0, 0.2, (10, 140))).astype(np.float32)
    features, labels = np.r_[x, weak], np.r_[y, np.full(10, 2)]
    oracle = np.r_[np.zeros(len(y), bool), np.ones(10, bool)]
    flipped = []
    for weight in (1, 30):
        config = TrainConfig(variant="small", epochs=6, seed=7, oracle_weight=weight)
        model = SpectrumClassifier.train(
            features, labels, config, adapt_config=ADAPT, adapt_fingerprint=FINGERPRINT,
            oracle=oracle,
        )  # fmt: skip
        flipped.append(int(np.sum(model.predict_proba(weak).argmax(axis=1) != 2)))
        assert np.mean(model.predict_proba(x).argmax(axis=1) == y) > 0.95  # still learns
    assert flipped[0] >= 5 and flipped[1] <= 1, flipped
    with pytest.raises(AlvoError, match="oracle_weight"):
        TrainConfig(oracle_weight=0)


def test_mc_dropout_passes_scatter_around_the_deterministic_prediction(
    trained: SpectrumClassifier,
) -> None:
    x, _ = _data(40, seed=3)
    passes = trained.mc_dropout(x, 50, np.random.default_rng(0))
    assert passes.shape == (50, 40, 3) and np.allclose(passes.sum(axis=2), 1, atol=1e-5)
    assert passes.std(axis=0).max() > 1e-3  # dropout is on: the passes differ
    # the passes' mean is less confident than the deterministic net, but agrees with it
    agree = passes.mean(axis=0).argmax(axis=1) == trained.predict_proba(x).argmax(axis=1)
    assert agree.mean() >= 0.9


def test_the_time_left_keeps_the_seconds_the_fit_takes_after_its_last_epoch() -> None:
    """Issue 23: Keras returns from the fit some time after the last epoch's report
    (1.2 s measured in an early-stopped training that restored its best weights; 0.01-
    0.15 s in the demo's one-cycle jobs). Each report keeps that tail (as measured
    before), and the fit measures its own."""
    from service.jobs.eta import TrainTimes
    from service.jobs.learning import fit_classifier

    class Recorder:
        def __init__(self) -> None:
            self.started = time.perf_counter()
            self.left: list[float | None] = []

        def elapsed(self) -> float:
            return time.perf_counter() - self.started

        def seconds_left(self, seconds: float | None, message: str = "") -> None:
            self.left.append(seconds)

    stage, times = Recorder(), TrainTimes()
    config = TrainConfig(variant="small", epochs=2, schedule="one-cycle", seed=1)
    fit_classifier(*_data(300), config, {}, stage, times=times, tail=7.0)  # type: ignore[arg-type]
    assert stage.left and all(left is not None and left >= 7.0 for left in stage.left)
    assert stage.left[-1] == pytest.approx(7.0)  # the last epoch: only the tail is left
    assert times.tail is not None and 0 <= times.tail < stage.elapsed()


def test_first_epoch_batches_and_the_services_epoch_make_the_training_time_left() -> None:
    """Issue 23: during the first epoch a later epoch is ``batch_ratio`` times the first
    epoch's batches (validation included; the epoch ratio had left it out: estimates
    20-30 % short), and after it the service's per-epoch seconds count as one more
    epoch among the training's own (one 0.5-s epoch had made an estimate 40 % short).
    A clock that ticks once per look makes every batch and epoch last 1 s."""
    from service.jobs.learning import fit_classifier

    class Ticking:
        def __init__(self) -> None:
            self.now = 0.0
            self.reports: list[tuple[float | None, str]] = []

        def elapsed(self) -> float:
            self.now += 1.0
            return self.now

        def seconds_left(self, seconds: float | None, message: str = "") -> None:
            self.reports.append((seconds, message))

    stage = Ticking()
    config = TrainConfig(variant="small", epochs=3, schedule="one-cycle", seed=1)
    fit_classifier(
        *_data(600), config, {}, stage,  # type: ignore[arg-type]
        epoch_ratio=1.0, tail=0.5, batch_ratio=3.0, epoch_prior=5.0,
    )  # fmt: skip
    in_first = [(s, m) for s, m in stage.reports if m.startswith("training: epoch 1, batch")]
    assert in_first, stage.reports
    seconds, message = in_first[0]
    done, batches = (int(v) for v in message.split("batch ")[1].split(" of "))
    # its batches left, its validation (a later epoch less its batches), 2 later epochs
    assert seconds == pytest.approx((batches - done) + 2 * batches + 2 * 3 * batches + 0.5)
    second = next(s for s, m in stage.reports if m.startswith("training: epoch 2 ("))
    assert second == pytest.approx((1.0 + 5.0) / 2 * 1 + 0.5)  # its 1-s epoch and the 5-s prior
