"""Surprise ranking on a pool with planted out-of-class spectra: which score finds them?

Per seed (default 3 seeds): a labelled source set of the three classes (1 500 H-alpha
profiles on the 140-pixel grid), a pool of 5 000 spectra of the three classes (92 %
absorption, as a LAMOST pool is) with 48 planted spectra of no class -- 12 each of
P Cygni profiles (emission with blue-shifted absorption), absorption-line binaries (two
deep absorption lines), flat/bad spectra (noise, steps) and redshifted galaxies (a
narrow emission line with [N II] 40-90 Å off H-alpha). The ``small`` CNN is trained on
the source set, the pool scored (probabilities + embedding, projected as iterate does),
and the planted spectra's recall in the top 100 / top 500 is measured for:

* isolation-forest and reconstruction error on the projected embedding (alvo's inputs),
* the same two on the 140-pixel features,
* entropy of the class probabilities (what active learning queries by),
* random order (the reference).

Prints a table of mean (min-max) recall over the seeds and, per score, the ratio to
random.

Then one round of **relevance answers** (alvo's re-ranking, :func:`service.learn.surprise.rerank`):
for each planted kind in turn a simulated oracle answers on the top 100 surprises,
``interesting`` for that kind and ``boring`` for everything else; the next 100 surprises
(the answered ones left out, as the iterate job lists them) are taken by the plain
anomaly order (ranks 101-200: what the oracle would see next without answers) and by the
re-ranked order. Printed: that kind's recall in those next 100, and in all 200 shown.

Run: .venv/bin/python benchmarks/bench_surprise.py [SEEDS=3]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from service.adapt import AdaptConfig  # noqa: E402
from service.learn import TrainConfig, configure_threads, entropy  # noqa: E402
from service.learn.model import SpectrumClassifier  # noqa: E402
from service.learn.similar import fit_projection, sample_rows  # noqa: E402
from service.learn.surprise import relevance_model, rerank, surprise_scores  # noqa: E402

HALPHA = 6564.6
PLANTED = ("p-cygni", "absorption-binary", "flat-or-bad", "redshifted-galaxy")


def gauss(x: np.ndarray, centre: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * ((x - centre) / sigma) ** 2)


def zscore(flux: np.ndarray) -> np.ndarray:
    return ((flux - flux.mean(1, keepdims=True)) / flux.std(1, keepdims=True)).astype(np.float32)


def classes(kinds: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The three classes: single-peak, double-peak emission, absorption (z-scored)."""
    x = (AdaptConfig().grid() - HALPHA)[None, :]
    n = len(kinds)
    strength = rng.uniform(0.4, 2.5, (n, 1))
    width = rng.uniform(2.0, 4.5, (n, 1))
    split = rng.uniform(3.0, 6.0, (n, 1))
    single = 1 + strength * gauss(x, 0, width)
    double = 1 + strength * (gauss(x, split, 0.6 * width) + gauss(x, -split, 0.6 * width))
    absorption = 1 - 0.2 * strength / 2.5 * gauss(x, 0, 2.5 * width)
    flux = np.choose(kinds[:, None], [single, double, absorption])
    return zscore(flux + rng.normal(0, rng.uniform(0.01, 0.06, (n, 1)), flux.shape))


def planted(n_each: int, rng: np.random.Generator) -> np.ndarray:
    """``n_each`` spectra of each kind in :data:`PLANTED`, in that order (z-scored)."""
    x = (AdaptConfig().grid() - HALPHA)[None, :]
    shape = (n_each, 1)
    amp, w = rng.uniform(0.8, 2.0, shape), rng.uniform(1.5, 3.0, shape)
    pcyg = 1 + amp * gauss(x, 1.0, w) - 0.5 * gauss(x, -rng.uniform(5, 9, shape), 1.5)
    sep = rng.uniform(4, 8, shape)
    binary = 1 - 0.5 * (gauss(x, sep, 1.5) + gauss(x, -sep, 1.5)) * rng.uniform(0.8, 1.2, shape)
    bad = np.where(rng.random(shape) < 0.5,
                   1 + rng.normal(0, 1, (n_each, x.shape[1])),  # noise only
                   1 + 0.8 * (x > rng.uniform(-80, 80, shape)))  # a step  # fmt: skip
    z = rng.choice([-1, 1], shape) * rng.uniform(40, 90, shape)
    galaxy = 1 + amp * (gauss(x, z, 1.2) + 0.35 * gauss(x, z + 20.6, 1.2)
                        + 0.12 * gauss(x, z - 14.8, 1.2))  # fmt: skip
    flux = np.concatenate([pcyg, binary, bad, galaxy])
    return zscore(flux + rng.normal(0, 0.03, flux.shape))


def recall(order: np.ndarray, truth: np.ndarray, top: int) -> float:
    return float(truth[order[:top]].sum() / truth.sum())


def one_seed(seed: int, n_pool: int = 5000, n_each: int = 12) -> dict[str, tuple[float, float]]:
    rng = np.random.default_rng(seed)
    source_kinds = rng.choice(3, 1500, p=[0.4, 0.2, 0.4])
    source = classes(source_kinds, rng)
    pool = np.concatenate([classes(rng.choice(3, n_pool, p=[0.05, 0.03, 0.92]), rng),
                           planted(n_each, rng)])  # fmt: skip
    truth = np.zeros(len(pool), bool)
    truth[n_pool:] = True
    config = TrainConfig(variant="small", epochs=15, patience=4, balancing="class-weight",
                         seed=seed)  # fmt: skip
    adapt = AdaptConfig()
    model = SpectrumClassifier.train(
        source, source_kinds, config, adapt_config=adapt.to_dict(),
        adapt_fingerprint=adapt.fingerprint,
    )  # fmt: skip
    probabilities, embedding = model.score(pool)
    projected = fit_projection(embedding[sample_rows(len(pool))])(embedding)
    scores = {
        "isolation-forest, embedding": surprise_scores(projected, "isolation-forest", seed),
        "reconstruction, embedding": surprise_scores(projected, "reconstruction", seed),
        "isolation-forest, features": surprise_scores(pool, "isolation-forest", seed),
        "reconstruction, features": surprise_scores(pool, "reconstruction", seed),
        "entropy (active learning)": np.asarray(entropy(probabilities)),
        "random": rng.random(len(pool)),
    }
    rank = {name: np.argsort(np.argsort(-s)) for name, s in scores.items()}
    scores["isolation-forest emb. + entropy (rank mean)"] = -(
        rank["isolation-forest, embedding"] + rank["entropy (active learning)"]
    ).astype(float)
    out = {name: (recall(np.argsort(-s), truth, 100), recall(np.argsort(-s), truth, 500))
           for name, s in scores.items()}  # fmt: skip
    for k, kind in enumerate(PLANTED):  # which planted kinds each score finds (top 500)
        kind_truth = np.zeros(len(pool), bool)
        kind_truth[n_pool + k * n_each : n_pool + (k + 1) * n_each] = True
        for name in ("isolation-forest, embedding", "entropy (active learning)"):
            order = np.argsort(-scores[name])
            out[f"  {kind} @500 by {name.split(',')[0].split(' (')[0]}"] = (
                recall(order, kind_truth, 100),
                recall(order, kind_truth, 500),
            )
    out.update(relevance_round(projected, scores["isolation-forest, embedding"], n_pool, n_each))
    return out


def relevance_round(
    x: np.ndarray, anomaly: np.ndarray, n_pool: int, n_each: int, shown: int = 100
) -> dict[str, tuple[float, float]]:
    """Per planted kind: (recall in the next ``shown``, recall in all 2 x ``shown`` seen)
    without answers (plain anomaly order) and with one round of answers (re-ranked)."""
    out = {}
    first = np.argsort(-anomaly)[:shown]
    for k, kind in enumerate(PLANTED):
        truth = np.zeros(len(x), bool)
        truth[n_pool + k * n_each : n_pool + (k + 1) * n_each] = True
        answers = truth[first].astype(np.float32)  # interesting: the kind; boring: the rest
        estimate, trust = relevance_model(x, first, answers)
        combined = rerank(anomaly, estimate, trust)
        seen = np.zeros(len(x), bool)
        seen[first] = True
        for name, score in (("plain", anomaly), ("re-ranked", combined)):
            order = [r for r in np.argsort(-score) if not seen[r]][:shown]
            nxt = float(truth[order].sum() / truth.sum())
            both = float((truth[order].sum() + truth[first].sum()) / truth.sum())
            out[f"  relevance: {kind}, next {shown} {name}"] = (nxt, both)
    return out


def main() -> None:
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    configure_threads()
    print(f"{seeds} seeds, pool 5000 + 48 planted, load {os.getloadavg()[0]:.2f}")
    started = time.perf_counter()
    runs = [one_seed(seed) for seed in range(seeds)]
    print(f"{'score':32s} {'recall@100':>22s} {'recall@500':>22s}  x random@500")
    random500 = np.mean([r["random"][1] for r in runs])
    for name in runs[0]:
        at100 = [r[name][0] for r in runs]
        at500 = [r[name][1] for r in runs]
        print(f"{name:32s} {np.mean(at100):6.3f} ({min(at100):.3f}-{max(at100):.3f})"
              f"       {np.mean(at500):6.3f} ({min(at500):.3f}-{max(at500):.3f})"
              f"  {np.mean(at500) / max(random500, 1e-9):5.1f}")  # fmt: skip
    print(f"{time.perf_counter() - started:.0f} s, load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
