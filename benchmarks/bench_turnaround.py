"""Training settings for an iteration's turnaround, side by side over seeds.

At the demo campaign's size (``--source-n`` simulated Ondrejov spectra, 40 %
emission, labelled; noise copies on, as the service trains), each named training
setting below trains

* iteration 0: on the source set alone (where noise copies matter most: the
  domain gap to LAMOST), and
* iterations 1, 2, ...: on the source set plus ``--labels`` more LAMOST-like
  spectra per iteration that the oracle labelled (drawn with 30 % emission, as a
  batch of candidates is); the ``warm`` settings start from their own previous
  net (at iteration 1: their base setting's iteration-0 net),

and is judged on ``--test-n`` held-out simulated LAMOST spectra with 5 % emission
(error, emission precision and recall: single- or double-peak against absorption).
Settings run interleaved per seed, in a rotated order, so a machine's load falls
on all of them alike; the ratio to ``before`` is the number to read.

    nice -n 5 .venv/bin/python benchmarks/bench_turnaround.py [--seeds 0 1 2] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from service.learn.model import SpectrumClassifier, TrainConfig  # noqa: E402

#: The service's defaults before this benchmark (batch 256, patience 3, one stored
#: noisy copy per spectrum, Adam 1e-3 until early stopping).
BEFORE = TrainConfig(batch_size=256, patience=3, noise_augment=1.0)
SETTINGS: dict[str, TrainConfig] = {
    "before": BEFORE,
    "per-epoch noise": dataclasses.replace(BEFORE, noise_draw="per-epoch"),
    "one-cycle 6": dataclasses.replace(
        BEFORE, noise_draw="per-epoch", schedule="one-cycle", epochs=6, learning_rate=3e-3
    ),
    "one-cycle 4": dataclasses.replace(
        BEFORE, noise_draw="per-epoch", schedule="one-cycle", epochs=4, learning_rate=3e-3
    ),
}
#: From iteration 1 on: warm-started from the setting's own previous net (the named
#: base setting's at iteration 1).
WARM: dict[str, tuple[str, TrainConfig]] = {
    "warm one-cycle 3": (
        "one-cycle 6",
        dataclasses.replace(SETTINGS["one-cycle 6"], epochs=3, learning_rate=1e-3, warm_start=True),
    ),
}


def simulated(survey: str, n: int, seed: int, emission: float) -> tuple[np.ndarray, np.ndarray]:
    """Adapted features and class indices of ``n`` simulated spectra (finite, classed)."""
    from service.adapt import adapt
    from service.archive.simulate import simulate_batch
    from service.vocabulary import CLASSES

    spectra, truth = simulate_batch(survey, n, seed, emission)
    x = np.asarray(adapt(spectra).features, np.float32)
    y = np.array([CLASSES.index(c) if c in CLASSES else -1 for c in truth["label"].astype(str)])
    keep = np.isfinite(x).all(axis=1) & (y >= 0)
    return x[keep], y[keep]


def judged(model: SpectrumClassifier, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Error, emission precision and recall of ``model`` on (x, y)."""
    predicted = model.predict_proba(x).argmax(axis=1)
    said, true = predicted < 2, y < 2  # CLASSES: single-peak, double-peak, absorption
    hits = int(np.sum(said & true))
    return {
        "error": round(float(np.mean(predicted != y)), 4),
        "precision": round(hits / max(1, int(said.sum())), 4),
        "recall": round(hits / max(1, int(true.sum())), 4),
    }


def train(
    name: str,
    config: TrainConfig,
    x: np.ndarray,
    y: np.ndarray,
    test: tuple[np.ndarray, np.ndarray],
    initial: SpectrumClassifier | None = None,
) -> tuple[SpectrumClassifier, dict[str, Any]]:
    from service.adapt import AdaptConfig

    adaptation = AdaptConfig()
    started = time.perf_counter()
    model = SpectrumClassifier.train(
        x,
        y,
        config,
        adapt_config=adaptation.to_dict(),
        adapt_fingerprint=adaptation.fingerprint,
        initial=initial,
    )
    row = {
        "seconds": round(time.perf_counter() - started, 1),
        "epochs": model.provenance["epochs_run"],
        "steps": model.provenance["epochs_run"] * model.provenance["steps_per_epoch"],
        "best_val_loss": round(model.provenance["best_val_loss"], 4),
        **judged(model, *test),
        "load": round(os.getloadavg()[0], 1),
    }
    print(f"  {name}: {row}", flush=True)
    return model, row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--source-n", type=int, default=2000)
    parser.add_argument("--labels", type=int, default=130)
    parser.add_argument("--test-n", type=int, default=4000)
    parser.add_argument("--only", nargs="+", help="settings to run (default: all)")
    parser.add_argument("--iterations", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--output", type=Path, help="write the runs as JSON here")
    args = parser.parse_args()

    from service.learn import configure_threads

    configure_threads()
    names = [n for n in SETTINGS if not args.only or n in args.only]
    warm = {n: w for n, w in WARM.items() if not args.only or n in args.only}
    runs: list[dict[str, Any]] = []
    for seed in args.seeds:
        xs, ys = simulated("ondrejov", args.source_n, 100 + seed, 0.4)
        test = simulated("lamost", args.test_n, 200 + seed, 0.05)
        order = names[seed % len(names) :] + names[: seed % len(names)]
        models: dict[str, SpectrumClassifier] = {}  # each setting's latest net
        print(f"seed {seed}: {len(ys)} source, {len(test[1])} test", flush=True)
        x, y = xs, ys
        for iteration in range(max(args.iterations) + 1):
            if iteration:  # the oracle's next batch: candidate-rich LAMOST spectra
                xl, yl = simulated("lamost", args.labels, 300 + 10 * seed + iteration, 0.3)
                x, y = np.concatenate([x, xl]), np.concatenate([y, yl])
            chosen = order + (list(warm) if iteration else [])
            for name in chosen:
                base, config = warm[name] if name in warm else (name, SETTINGS[name])
                config = dataclasses.replace(config, seed=seed)
                initial = models.get(name, models.get(base))  # warm: its own latest net
                label = f"it {iteration} {name}"
                models[name], row = train(label, config, x, y, test, initial)
                if iteration in args.iterations:
                    runs.append({"seed": seed, "iteration": iteration, "setting": name, **row})
    print("\n| iteration | setting | seconds (mean) | ratio to before | epochs | error | "
          "precision / recall |\n|---|---|---|---|---|---|---|")  # fmt: skip
    for iteration in sorted({r["iteration"] for r in runs}):
        rows = [r for r in runs if r["iteration"] == iteration]
        before = {r["seed"]: r["seconds"] for r in rows if r["setting"] == "before"}
        for name in dict.fromkeys(r["setting"] for r in rows):
            mine = [r for r in rows if r["setting"] == name]
            ratio = [r["seconds"] / before[r["seed"]] for r in mine if r["seed"] in before]
            m = {k: float(np.mean([r[k] for r in mine])) for k in mine[0] if k != "setting"}
            print(f"| {iteration} | {name} | {m['seconds']:.0f} | "
                  f"{np.mean(ratio) if ratio else float('nan'):.2f} | {m['epochs']:.1f} | "
                  f"{m['error']:.4f} | {m['precision']:.3f} / {m['recall']:.3f} |")  # fmt: skip
    if args.output:
        args.output.write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
