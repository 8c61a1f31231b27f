"""The model comparison behind the adaptation's default continuum step.

A CNN trained on simulated Ondrejov spectra alone (the service's situation before
the oracle's first label) is applied to simulated LAMOST spectra and to the 40
labelled real spectra of ``../shared/data/real/``, once with features made with
``continuum="none"`` (the original) and once with ``"linear"``, for several
seeds. It prints, per seed and on average, the simulated LAMOST error of the
binary emission/absorption decision and how many real spectra are labelled
correctly; docs/adaptation.md reports the run.

    .venv/bin/python benchmarks/compare_continuum.py [--seeds 4] [--n-source 3000]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from service.adapt import AdaptConfig, adapt
from service.archive import simulate_batch
from service.archive.realism import real_examples
from service.learn import SpectrumClassifier, TrainConfig, configure_threads
from service.vocabulary import CLASSES

EMISSION = ("single-peak", "double-peak")
REAL = Path(
    os.environ.get("ALVO_REAL_DATA", Path(__file__).resolve().parents[2] / "shared/data/real")
)


def trainable(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.isfinite(features).all(axis=1) & np.isin(labels, CLASSES)


def emission_predicted(model: SpectrumClassifier, features: np.ndarray) -> np.ndarray:
    p = model.predict_proba(features)
    return p[:, [CLASSES.index(c) for c in EMISSION]].sum(axis=1) > 0.5


def one_seed(seed: int, n_source: int, n_target: int, continuum: str, real: list) -> tuple:
    config = AdaptConfig(continuum=continuum)  # type: ignore[arg-type]
    source, source_truth = simulate_batch("ondrejov", n_source, 100 + seed)
    target, target_truth = simulate_batch("lamost", n_target, 200 + seed, emission_fraction=0.1)
    xs, xt = adapt(source, config).features, adapt(target, config).features
    ls, lt = np.asarray(source_truth["label"]), np.asarray(target_truth["label"])
    keep = trainable(xs, ls)
    y = np.array([CLASSES.index(v) for v in ls[keep]])
    train = TrainConfig(variant="small", epochs=20, patience=4, seed=seed, noise_augment=1.0)
    model = SpectrumClassifier.train(
        xs[keep], y, train, adapt_config=config.to_dict(), adapt_fingerprint=config.fingerprint
    )
    tkeep = trainable(xt, lt)
    simulated_error = float(
        (emission_predicted(model, xt[tkeep]) != np.isin(lt[tkeep], EMISSION)).mean()
    )
    real_x = adapt([spectrum for *_, spectrum in real], config).features
    truth = np.array([label == "emission" for _, label, _ in real])
    correct = emission_predicted(model, real_x) == truth
    lamost = np.array([not name.startswith("ondrejov") for name, *_ in real])
    return simulated_error, int(correct.sum()), int(correct[lamost].sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--n-source", type=int, default=3000)
    parser.add_argument("--n-target", type=int, default=4000)
    args = parser.parse_args()
    configure_threads(2, 1)
    real = real_examples(REAL)
    n_lamost = sum(not name.startswith("ondrejov") for name, *_ in real)
    rows: dict[str, list[tuple]] = {"none": [], "linear": []}
    for seed in range(args.seeds):
        for continuum, results in rows.items():
            results.append(one_seed(seed, args.n_source, args.n_target, continuum, real))
            error, correct, correct_lamost = results[-1]
            print(
                f"seed {seed} continuum {continuum:6s}: simulated LAMOST error {error:.3f}, "
                f"real {correct}/{len(real)} (LAMOST {correct_lamost}/{n_lamost})",
                flush=True,
            )
    for continuum, results in rows.items():
        error, correct, correct_lamost = np.mean(np.array(results, dtype=float), axis=0)
        print(
            f"mean continuum {continuum:6s}: simulated LAMOST error {error:.3f}, "
            f"real {correct:.1f}/{len(real)} (LAMOST {correct_lamost:.1f}/{n_lamost})"
        )


if __name__ == "__main__":
    main()
