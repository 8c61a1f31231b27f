"""The 1-D CNN of Škoda, Podsztavek & Tvrdík (2020) and its variants, in Keras 3.

``reference`` is the published network ("VGG for 1-D", 12 layers):

    Input (140, 1) -> Conv1D 64 k3 -> Conv1D 64 k3 -> MaxPool 2
    -> Conv1D 128 k3 x2 -> MaxPool 2 -> Conv1D 256 k3 x2 -> MaxPool 2
    -> Flatten (14 x 256 = 3584) -> Dense 512 -> Dropout 0.5 -> Dense 512 -> Dropout 0.5
    -> Dense 3 softmax

ReLU everywhere, 'valid' padding, 2 481 731 parameters, ~34 MFLOP per spectrum;
Adam (lr 1e-3), categorical cross-entropy, batch 64, early stopping (patience 10).
Variants by name: ``same`` ('same' padding, Flatten 4352), ``batchnorm`` (batch
normalisation after each convolution) and ``small`` (a ~30 k-parameter net for tests
and quick simulations). The second Dense layer is named ``embedding``: its output
is the representation the diversity-aware query strategy clusters.

:class:`SpectrumClassifier` wraps a trained network with what a model file must
carry: class names, the adaptation configuration (an opaque dict and its
fingerprint, from ``service.adapt.AdaptConfig``) and training provenance. Loading a
model for features made with another adaptation is refused, because the network
would silently see inputs unlike those it was trained on.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from service.learn.balance import balance
from service.reasons import AlvoError, Reason
from service.vocabulary import CLASSES, FEATURE_PIXELS

#: Bump when the meaning of a model file's metadata changes.
MODEL_FORMAT = 1
#: Rows per inference step: large enough to amortise dispatch, small enough that
#: the reference net's activations stay around 0.5 GB.
INFERENCE_BATCH = 4096
#: Feature rows that calibrate int8 activation ranges (the first finite rows of a pool).
CALIBRATION_ROWS = 2048


def configure_threads(intra: int = 2, inter: int = 2) -> None:
    """Limit TensorFlow's CPU thread pools (must run before TF executes anything).

    On a shared machine TF would otherwise start one thread per core in each pool.
    Called again after TF has started, it changes nothing and raises nothing.
    """
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError:
        pass


def _conv_blocks(
    x: Any, widths: Sequence[int], padding: str, batchnorm: bool, seeds: Iterator[int]
) -> Any:
    from keras import initializers, layers

    for width in widths:
        for _ in range(2):
            kernel = initializers.GlorotUniform(seed=next(seeds))
            if batchnorm:
                x = layers.Conv1D(
                    width, 3, padding=padding, use_bias=False, kernel_initializer=kernel
                )(x)
                x = layers.BatchNormalization()(x)
                x = layers.Activation("relu")(x)
            else:
                x = layers.Conv1D(
                    width, 3, padding=padding, activation="relu", kernel_initializer=kernel
                )(x)
        x = layers.MaxPooling1D(2)(x)
    return x


def _network(
    n_pixels: int,
    n_classes: int,
    widths: Sequence[int] = (64, 128, 256),
    dense_units: int = 512,
    padding: str = "valid",
    batchnorm: bool = False,
    name: str = "reference",
    seed: int = 0,
) -> Any:
    """Every random initialiser and dropout layer gets its own seed, drawn from ``seed``.

    Why: left unseeded, Keras draws them from Python's global ``random``, which other
    threads of the process share -- on a Dask worker the event loop draws from it
    while a job builds its network, so the same training set gave another model
    than in a plain process (measured: |dp| up to 0.7 after 3 epochs).
    """
    import keras
    from keras import initializers, layers

    seeds = iter(np.random.default_rng(seed).integers(0, 2**31 - 1, 64).tolist())

    def dense(units: int, activation: str, **extra: Any) -> Any:
        kernel = initializers.GlorotUniform(seed=next(seeds))
        return layers.Dense(units, activation=activation, kernel_initializer=kernel, **extra)

    inputs = keras.Input((n_pixels, 1), name="features")
    x = _conv_blocks(inputs, widths, padding, batchnorm, seeds)
    x = layers.Flatten()(x)
    x = dense(dense_units, "relu")(x)
    x = layers.Dropout(0.5, seed=next(seeds))(x)
    x = dense(dense_units, "relu", name="embedding")(x)
    x = layers.Dropout(0.5, seed=next(seeds))(x)
    outputs = dense(n_classes, "softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)


VARIANTS: dict[str, Callable[..., Any]] = {
    "reference": lambda n, k, s: _network(n, k, seed=s),
    "same": lambda n, k, s: _network(n, k, padding="same", name="same", seed=s),
    "batchnorm": lambda n, k, s: _network(n, k, batchnorm=True, name="batchnorm", seed=s),
    "small": lambda n, k, s: _network(n, k, widths=(16, 32), dense_units=64, name="small", seed=s),
}


def build_network(
    variant: str = "reference",
    n_pixels: int = FEATURE_PIXELS,
    n_classes: int = len(CLASSES),
    seed: int = 0,
    learning_rate: Any = 1e-3,
) -> Any:
    """A compiled Keras model (Adam, categorical cross-entropy) of the named variant.

    ``learning_rate``: a number (the original's 1e-3) or a Keras schedule
    (:func:`one_cycle`)."""
    import keras

    if variant not in VARIANTS:
        raise AlvoError(Reason.BAD_PARAMETER, f"network {variant!r} not one of {sorted(VARIANTS)}")
    network = VARIANTS[variant](n_pixels, n_classes, seed)
    network.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    return network


#: How noisy training spectra are drawn (:class:`TrainConfig`): the first is the default.
NOISE_DRAWS: tuple[str, ...] = ("stored", "per-epoch")
#: Learning-rate schedules (:class:`TrainConfig`): the first is the original's.
SCHEDULES: tuple[str, ...] = ("constant", "one-cycle")
#: Share of a one-cycle schedule's steps spent warming up from a tenth of the peak.
WARMUP_FRACTION = 0.2


def one_cycle(peak: float, steps: int) -> Any:
    """Linear warm-up from ``peak / 10`` to ``peak`` over :data:`WARMUP_FRACTION` of
    ``steps``, then cosine decay to ``peak / 100`` over the rest (a Keras schedule)."""
    import keras

    warmup = max(1, round(WARMUP_FRACTION * steps))
    return keras.optimizers.schedules.CosineDecay(
        peak / 10, max(1, steps - warmup), alpha=0.01, warmup_target=peak, warmup_steps=warmup
    )


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train: the original's values are the defaults.

    epochs : upper limit; early stopping on a held-out ``validation_fraction`` of
        the (unbalanced) training set ends training after ``patience`` epochs
        without a lower validation loss, keeping the best weights
    balancing : "smote" (original), "class-weight" or "none"
    noise_augment : if > 0, every training spectrum is added once more with Gaussian
        noise of a per-copy standard deviation drawn uniformly from 0..noise_augment
        (feature units, i.e. z-score units by default): a high-SNR source set then
        also shows the network the noisy spectra the target survey is full of
    noise_draw : how the noisy spectra are drawn, when ``noise_augment`` > 0:
        "stored" (one noisy copy of every spectrum drawn once and stored beside it,
        so each epoch runs over twice the rows) or "per-epoch" (each epoch shows
        every spectrum once, with noise drawn afresh for that epoch: the same
        distribution of noise levels at half the steps per epoch, and a new draw
        every epoch instead of the same copy again)
    schedule : "constant" (Adam at ``learning_rate`` until early stopping: the
        original) or "one-cycle" (a warm-up to ``learning_rate`` over the first
        :data:`WARMUP_FRACTION` of the steps, then a cosine decay towards zero, over
        exactly ``epochs`` epochs; no early stopping, the epoch of lowest validation
        loss is kept)
    learning_rate : Adam's rate: constant, or the peak of the one-cycle schedule
    warm_start : start from the weights of the ``initial`` classifier given to
        :meth:`SpectrumClassifier.train` (the previous iteration's) instead of a
        fresh initialisation; the original trained from scratch every iteration
    oracle_weight : each training row marked as an oracle label (``oracle=`` of
        :meth:`SpectrumClassifier.train`) enters the fit this many times (after the
        validation split, so validation stays honest): a few hundred target labels
        beside thousands of source spectra are otherwise outvoted, and a spectrum the
        oracle called absorption is predicted emission again (issue 25, ``flipped``)
    """

    variant: str = "reference"
    epochs: int = 100
    batch_size: int = 64
    patience: int = 10
    validation_fraction: float = 0.1
    balancing: str = "smote"
    seed: int = 0
    noise_augment: float = 0.0
    warm_start: bool = False
    oracle_weight: int = 1
    noise_draw: str = "stored"
    schedule: str = "constant"
    learning_rate: float = 1e-3

    def __post_init__(self) -> None:
        if not self.noise_augment >= 0:
            raise AlvoError(Reason.BAD_PARAMETER, "noise_augment must be >= 0")
        if not 1 <= self.oracle_weight <= 1000:
            raise AlvoError(Reason.BAD_PARAMETER, "oracle_weight must be 1..1000")
        if self.noise_draw not in NOISE_DRAWS:
            raise AlvoError(
                Reason.BAD_PARAMETER, f"noise_draw {self.noise_draw!r} not in {NOISE_DRAWS}"
            )
        if self.schedule not in SCHEDULES:
            raise AlvoError(Reason.BAD_PARAMETER, f"schedule {self.schedule!r} not in {SCHEDULES}")
        if not 0 < self.learning_rate < 1:
            raise AlvoError(Reason.BAD_PARAMETER, "learning_rate must be in (0, 1)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _validation_split(
    y: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train, validation) row indices; classes with < 5 rows stay in training."""
    validation = []
    for c in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == c))
        if rows.size >= 5:
            validation.append(rows[: max(1, round(fraction * rows.size))])
    val = np.sort(np.concatenate(validation)) if validation else np.empty(0, dtype=np.int64)
    train = np.setdiff1d(np.arange(y.size), val, assume_unique=True)
    return train, val


def augment_noise(
    x: np.ndarray, y: np.ndarray, sigma_max: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(x ++ noisy copy of x, y ++ y): copy i gets N(0, s_i) noise, s_i ~ U(0, sigma_max)."""
    sigma = rng.uniform(0.0, sigma_max, (len(x), 1)).astype(np.float32)
    noisy = x + sigma * rng.standard_normal(x.shape, dtype=np.float32)
    return np.concatenate([x, noisy]), np.concatenate([y, y])


def noise_layer(sigma_max: float, seed: int) -> Any:
    """A Keras layer that, in training only, adds N(0, s) noise to each spectrum it
    is given, s ~ U(0, ``sigma_max``) drawn per spectrum and per step: every epoch
    shows each spectrum with noise drawn afresh, at the noise levels of a stored copy
    (:func:`augment_noise`). At inference it passes its input through.

    In the graph, not in the input pipeline: a ``tf.data`` generator makes TensorFlow
    set glibc's M_TRIM_THRESHOLD once per process ("Memory patch applied"), which
    freezes malloc's mmap threshold and slowed every later training in the process
    (docs/performance.md, *Iteration turnaround*).
    """
    import keras

    class SpectrumNoise(keras.layers.Layer):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(name="training_noise")
            self.seeds = keras.random.SeedGenerator(seed)

        def call(self, x: Any, training: bool = False) -> Any:
            if not training:
                return x
            shape = keras.ops.shape(x)
            sigma = keras.random.uniform((shape[0], 1, 1), 0.0, sigma_max, seed=self.seeds)
            return x + sigma * keras.random.normal(shape, seed=self.seeds)

    return SpectrumNoise()


def _noisy_trainer(network: Any, sigma_max: float, seed: int) -> Any:
    """``network`` behind a :func:`noise_layer`, compiled with its own optimizer (so
    its state and the schedule's step are the network's); saved is ``network`` alone."""
    import keras

    inputs = keras.Input(network.input_shape[1:], name="features")
    trainer = keras.Model(inputs, network(noise_layer(sigma_max, seed)(inputs)), name="trainer")
    trainer.compile(
        optimizer=network.optimizer, loss="categorical_crossentropy", metrics=["accuracy"]
    )
    return trainer


def _versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    from service import __version__

    return {
        "alvo": __version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def _device() -> str:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return f"GPU x{len(gpus)}" if gpus else "CPU"


class SpectrumClassifier:
    """A trained network plus what it needs to be used safely later.

    classes : names of the output columns, in order
    adapt_config : the adaptation settings the features were made with (opaque dict)
    adapt_fingerprint : short string identifying ``adapt_config``
    provenance : seed, epochs, per-class counts, versions, time, device, ...
    """

    def __init__(
        self,
        network: Any,
        classes: Sequence[str],
        adapt_config: Mapping[str, Any],
        adapt_fingerprint: str,
        provenance: Mapping[str, Any] | None = None,
    ) -> None:
        self.network = network
        self.classes = tuple(classes)
        self.adapt_config = dict(adapt_config)
        self.adapt_fingerprint = adapt_fingerprint
        self.provenance = dict(provenance or {})
        self._scorers: dict[str, Any] = {}

    # ------------------------------------------------------------------ training
    @classmethod
    def train(
        cls,
        x: np.ndarray,
        y: np.ndarray,
        config: TrainConfig = TrainConfig(),
        *,
        classes: Sequence[str] = CLASSES,
        adapt_config: Mapping[str, Any],
        adapt_fingerprint: str,
        extra_provenance: Mapping[str, Any] | None = None,
        on_epoch: Callable[[int, int, Mapping[str, float]], None] | None = None,
        initial: SpectrumClassifier | None = None,
        on_first_batches: Callable[[int, int], None] | None = None,
        oracle: np.ndarray | None = None,
    ) -> SpectrumClassifier:
        """Train a network: from scratch (as the original did each iteration), or with
        ``config.warm_start`` from ``initial``'s weights when its shape matches.

        x : (n, m) float32 adapted features; y : (n,) int class index into ``classes``
        Reproducible for a given ``config.seed`` (Python, numpy and TF seeds set,
        TF deterministic ops on). ``on_epoch(epoch, max_epochs, logs)`` is called
        after each epoch, so a job can report live progress while a long fit runs;
        ``on_first_batches(done, batches)`` after each batch of the first epoch (its
        speed, before any epoch has ended).
        ``oracle`` : (n,) bool, the rows that are oracle labels (weighted by
        ``config.oracle_weight``); None: none are.
        """
        import keras
        import tensorflow as tf

        y = np.asarray(y, dtype=np.int64)
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or len(x) != len(y) or not np.isfinite(x).all():
            raise AlvoError(Reason.BAD_PARAMETER, "training needs finite (n, m) features, n labels")
        if np.unique(y).size < 2 or y.min() < 0 or y.max() >= len(classes):
            raise AlvoError(Reason.BAD_PARAMETER, f"training needs >= 2 of the classes {classes}")
        keras.utils.set_random_seed(config.seed)
        tf.config.experimental.enable_op_determinism()
        rng = np.random.default_rng(config.seed)
        train_rows, val_rows = _validation_split(y, config.validation_fraction, rng)
        if oracle is not None and config.oracle_weight > 1:
            extra = train_rows[np.asarray(oracle, dtype=bool)[train_rows]]
            train_rows = np.concatenate([train_rows, np.repeat(extra, config.oracle_weight - 1)])
        x_fit, y_fit, class_weight = balance(
            x[train_rows], y[train_rows], config.balancing, config.seed
        )
        per_epoch = config.noise_augment > 0 and config.noise_draw == "per-epoch"
        if config.noise_augment > 0 and not per_epoch:
            x_fit, y_fit = augment_noise(x_fit, y_fit, config.noise_augment, rng)
        steps = -(-len(x_fit) // config.batch_size)
        rate: Any = config.learning_rate
        if config.schedule == "one-cycle":
            rate = one_cycle(config.learning_rate, steps * config.epochs)
        network = build_network(config.variant, x.shape[1], len(classes), config.seed, rate)
        warm = config.warm_start and initial is not None and _same_shapes(network, initial)
        if warm:
            assert initial is not None
            network.set_weights(initial.network.get_weights())
        callbacks = []
        validation = None
        if val_rows.size:
            validation = (
                x[val_rows, :, None],
                keras.utils.to_categorical(y[val_rows], len(classes)),
            )
            # one-cycle runs its whole schedule; either way the best epoch's weights stay
            patience = config.epochs if config.schedule == "one-cycle" else config.patience
            callbacks.append(
                keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True)
            )
        if on_first_batches is not None:
            batches = steps
            seen = {"epoch": 0}

            def first_batches(batch: int, logs: Any) -> None:
                if seen["epoch"] == 0:
                    on_first_batches(batch + 1, batches)

            callbacks.append(
                keras.callbacks.LambdaCallback(
                    on_train_batch_end=first_batches,
                    on_epoch_end=lambda epoch, logs: seen.update(epoch=epoch + 1),
                )
            )
        if on_epoch is not None:
            callbacks.append(
                keras.callbacks.LambdaCallback(
                    on_epoch_end=lambda epoch, logs: on_epoch(epoch + 1, config.epochs, logs or {})
                )
            )
        started = time.perf_counter()
        trainer = network
        if per_epoch:  # the network behind a noise layer: fresh noise at every step
            trainer = _noisy_trainer(network, config.noise_augment, config.seed)
        history = trainer.fit(
            x_fit[:, :, None],
            keras.utils.to_categorical(y_fit, len(classes)),
            batch_size=config.batch_size,
            epochs=config.epochs,
            validation_data=validation,
            class_weight=class_weight,
            callbacks=callbacks,
            shuffle=True,
            verbose=0,
        )
        seconds = time.perf_counter() - started
        counts = np.bincount(y, minlength=len(classes))
        provenance = {
            "train": config.to_dict(),
            "epochs_run": len(history.history["loss"]),
            "steps_per_epoch": steps,
            "seconds": round(seconds, 3),
            "n_per_class": {c: int(n) for c, n in zip(classes, counts, strict=True)},
            "n_validation": int(val_rows.size),
            "best_val_loss": float(min(history.history.get("val_loss", [np.nan]))),
            "history": {
                key: [round(float(v), 5) for v in values]
                for key, values in history.history.items()
                if "loss" in key
            },
            "versions": _versions(),
            "device": _device(),
            "warm_started": bool(warm),
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            **dict(extra_provenance or {}),
        }
        return cls(network, classes, adapt_config, adapt_fingerprint, provenance)

    # ----------------------------------------------------------------- inference
    def scorer(self, precision: str = "fp32", calibration: np.ndarray | None = None) -> Any:
        """The forward pass (probabilities and embedding together) in ``precision``.

        ``precision`` is one that :func:`service.learn.scoring.choose_precision`
        resolved ("fp32", "bf16" or "int8"); int8 calibrates on ``calibration``
        rows (finite features). Cached per precision (and per calibration sample, so
        a model cached in a worker never scores one pool with another's quantisation).
        """
        import hashlib

        from service.learn import scoring

        key = precision
        if precision == "int8" and calibration is not None:  # one quantisation per sample
            key += hashlib.blake2b(np.ascontiguousarray(calibration).tobytes()).hexdigest()
        if key not in self._scorers:
            for old in [k for k in self._scorers if k.startswith("int8") and key != "int8"]:
                del self._scorers[old]  # keep one int8 session: a worker's memory stays flat
            self._scorers[key] = scoring.make_scorer(self.network, precision, calibration)
        return self._scorers[key]

    def forget_scorer(self, precision: str) -> None:
        """Drop the cached ``precision`` scorer (after int8's check, fp32's is not needed)."""
        for key in [k for k in self._scorers if k.startswith(precision)]:
            del self._scorers[key]

    def score(
        self,
        x: np.ndarray,
        batch_size: int = INFERENCE_BATCH,
        precision: str = "fp32",
        calibration: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """((n, k) probabilities, (n, d) embedding) of (n, m) features in one pass.

        ``x`` may be a read-only memory map (``np.load(path, mmap_mode="r")``): it is
        read ``batch_size`` rows at a time, so memory stays bounded by one batch's
        activations plus the results, whatever n is. Rows with a NaN feature get NaN
        outputs. ``precision`` as for :meth:`scorer`; int8 calibrates on
        ``calibration`` or else on the first finite rows of ``x`` (pass the same
        rows for every chunk of one pool, so all chunks share one quantisation).
        """
        if precision == "int8" and calibration is None:
            calibration = finite_rows(x)
        function = self.scorer(precision, calibration)
        width = int(self.network.get_layer("embedding").units)
        probabilities = np.empty((len(x), len(self.classes)), dtype=np.float32)
        embedding = np.empty((len(x), width), dtype=np.float32)
        for start in range(0, len(x), batch_size):
            chunk = np.array(x[start : start + batch_size], dtype=np.float32)  # reads the memmap
            bad = ~np.isfinite(chunk).all(axis=1)
            chunk[bad] = 0.0
            p, e = function(chunk)
            p[bad], e[bad] = np.nan, np.nan
            probabilities[start : start + len(chunk)] = p
            embedding[start : start + len(chunk)] = e
        return probabilities, embedding

    def predict_proba(
        self, x: np.ndarray, batch_size: int = INFERENCE_BATCH, precision: str = "fp32"
    ) -> np.ndarray:
        """(n, k) float32 class probabilities for (n, m) features, NaN rows for NaN inputs
        (streamed over a memory map as :meth:`score` is)."""
        return self.score(x, batch_size, precision)[0]

    def embed(
        self, x: np.ndarray, batch_size: int = INFERENCE_BATCH, precision: str = "fp32"
    ) -> np.ndarray:
        """(n, d) penultimate-layer activations (the ``embedding`` layer), streamed likewise."""
        return self.score(x, batch_size, precision)[1]

    def mc_dropout(
        self, x: np.ndarray, passes: int = 20, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """(passes, n, k) class probabilities of (n, m) features with dropout on
        (Monte-Carlo dropout, Gal & Ghahramani 2016): samples of the network's posterior.

        Only the dense head is random: the convolutions and the first dense layer run
        once (inference mode, so batch normalisation keeps its running statistics),
        then each pass draws new dropout masks in numpy for the two dropout layers and
        applies the remaining two dense layers. ``passes`` forward passes thus cost
        little more than one; meant for a shortlist (a few thousand rows), not a pool.
        """
        import keras

        rng = np.random.default_rng() if rng is None else rng
        drops = [layer for layer in self.network.layers if isinstance(layer, keras.layers.Dropout)]
        if len(drops) != 2:
            raise AlvoError(Reason.BAD_PARAMETER, "MC dropout needs the two-dropout dense head")
        head = keras.Model(self.network.inputs, drops[0].input)
        h1 = np.asarray(head.predict(np.asarray(x, np.float32)[:, :, None], verbose=0), np.float64)
        w2, b2 = (np.asarray(w, np.float64) for w in self.network.get_layer("embedding").weights)
        w3, b3 = (
            np.asarray(w, np.float64) for w in self.network.get_layer("probabilities").weights
        )
        keep = [1.0 - float(d.rate) for d in drops]
        out = np.empty((passes, len(h1), w3.shape[1]), dtype=np.float32)
        for t in range(passes):
            a = h1 * (rng.random(h1.shape) < keep[0]) / keep[0]
            h2 = np.maximum(a @ w2 + b2, 0.0)
            h2 = h2 * (rng.random(h2.shape) < keep[1]) / keep[1]
            logits = h2 @ w3 + b3
            logits -= logits.max(axis=1, keepdims=True)
            e = np.exp(logits)
            out[t] = e / e.sum(axis=1, keepdims=True)
        return out

    # ------------------------------------------------------------------- files
    def metadata(self) -> dict[str, Any]:
        return {
            "model_format": MODEL_FORMAT,
            "classes": list(self.classes),
            "adapt_config": self.adapt_config,
            "adapt_fingerprint": self.adapt_fingerprint,
            "provenance": self.provenance,
        }

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (.keras) and its metadata sidecar ``path + '.json'``."""
        path = Path(path)
        if path.suffix != ".keras":
            raise AlvoError(Reason.BAD_PARAMETER, "model files end in .keras")
        self.network.save(path)
        sidecar(path).write_text(json.dumps(self.metadata(), indent=2, sort_keys=True))
        return path

    @classmethod
    def load(cls, path: str | Path, adapt_fingerprint: str | None = None) -> SpectrumClassifier:
        """Read a model saved by :meth:`save`.

        adapt_fingerprint : the fingerprint of the adaptation the caller's features
            were made with; a model trained on another adaptation is refused
            (MODEL_ADAPTATION_MISMATCH) rather than silently misapplied.
        """
        import keras

        path = Path(path)
        try:
            meta = json.loads(sidecar(path).read_text())
            if meta.get("model_format") != MODEL_FORMAT:
                raise ValueError(f"model format {meta.get('model_format')!r}")
            network = keras.models.load_model(path)
        except (OSError, ValueError, KeyError) as exc:
            raise AlvoError(Reason.BAD_MODEL_FILE, f"{path}: {exc}") from exc
        if adapt_fingerprint is not None and adapt_fingerprint != meta["adapt_fingerprint"]:
            raise AlvoError(
                Reason.MODEL_ADAPTATION_MISMATCH,
                f"{path.name} was trained on features of adaptation {meta['adapt_fingerprint']} "
                f"({meta['adapt_config']}); these features were made with {adapt_fingerprint}",
            )
        return cls(
            network,
            meta["classes"],
            meta["adapt_config"],
            meta["adapt_fingerprint"],
            meta["provenance"],
        )


def _same_shapes(network: Any, initial: SpectrumClassifier) -> bool:
    """Whether ``initial``'s weights fit ``network`` (same variant, pixels and classes)."""
    ours = [w.shape for w in network.get_weights()]
    return ours == [w.shape for w in initial.network.get_weights()]


def finite_rows(x: np.ndarray, n: int = CALIBRATION_ROWS) -> np.ndarray:
    """Up to ``n`` rows of ``x`` without NaN, read from the start (calibration sample)."""
    head = np.array(x[: 4 * n], dtype=np.float32)
    return head[np.isfinite(head).all(axis=1)][:n]


def sidecar(path: Path) -> Path:
    """The metadata file beside a model file: ``model.keras`` -> ``model.keras.json``."""
    return path.with_name(path.name + ".json")
