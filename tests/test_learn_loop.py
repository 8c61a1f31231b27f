"""The active-learning protocol learns: error falls across iterations, entropy beats random.

The embedded archive's simulator is the real data source for ``alvo benchmark
active-learning``; this test uses a crude stand-in (Gaussian H-alpha profiles on
the 140-pixel grid) with the property that matters: the target domain holds
weak emitters and noisier spectra the source set lacks, so a source-only model
errs on them and oracle labels can fix that.
"""

from __future__ import annotations

import numpy as np

from service.learn import (
    ActiveLearningConfig,
    Problem,
    TrainConfig,
    configure_threads,
    run_active_learning,
)
from service.vocabulary import VERDICTS

GRID = np.linspace(6519.0, 6732.0, 140)
HALPHA = 6564.614


def _gauss(centre: np.ndarray, width: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * ((GRID[None, :] - centre[:, None]) / width[:, None]) ** 2)


def standin_spectra(
    kinds: np.ndarray,
    rng: np.random.Generator,
    emission: tuple[float, float],
    noise: tuple[float, float],
    nebular: float = 0.0,
) -> np.ndarray:
    """(n, 140) z-scored profiles: 0 single-peak, 1 double-peak, 2 absorption, 4 bad.

    nebular : share of absorption rows with a narrow (unresolved) emission spike at
        H-alpha, as from a surrounding HII region: uninteresting, so still absorption,
        but the source set never shows one.
    """
    n = kinds.size
    u = lambda lo, hi: rng.uniform(lo, hi, n)  # noqa: E731
    centre = HALPHA + u(-1.5, 1.5)
    flux = 1 + u(-0.05, 0.05)[:, None] * (GRID - 6600) / 100
    flux = flux - u(0.15, 0.5)[:, None] * _gauss(centre, u(4, 10))  # photospheric absorption
    amp = u(*emission)[:, None]
    single, double = kinds == 0, kinds == 1
    flux += single[:, None] * amp * _gauss(centre, u(2, 4))
    sep = u(2.5, 5)
    wid = u(1.8, 2.5)
    flux += double[:, None] * amp * (_gauss(centre - sep, wid) + _gauss(centre + sep, wid))
    spike = (kinds == 2) & (rng.random(n) < nebular)
    flux += spike[:, None] * u(0.2, 0.8)[:, None] * _gauss(HALPHA + u(-0.5, 0.5), u(0.7, 1.0))
    flux += rng.normal(0, 1, flux.shape) * u(*noise)[:, None]
    bad = kinds == 4  # a cosmic-ray spike somewhere
    flux[bad, rng.integers(0, 140, bad.sum())] += 3.0
    flux = (flux - flux.mean(axis=1, keepdims=True)) / flux.std(axis=1, keepdims=True)
    return flux.astype(np.float32)


def standin_problem(n_source: int, n_target: int, seed: int) -> Problem:
    rng = np.random.default_rng(seed)
    source_y = rng.choice(3, n_source, p=[0.4, 0.12, 0.48])
    source_x = standin_spectra(source_y, rng, emission=(0.4, 2.0), noise=(0.003, 0.01))
    truth = rng.choice(5, n_target, p=[0.07, 0.03, 0.88, 0.01, 0.01]).astype(np.int8)
    target_x = standin_spectra(truth, rng, emission=(0.05, 1.0), noise=(0.005, 0.03), nebular=0.08)
    return Problem(source_x, source_y, target_x, truth, GRID, {"standin": True}, "standin")


def test_standin_verdicts_cover_extras() -> None:
    problem = standin_problem(100, 2000, 0)
    assert set(np.unique(problem.target_truth)) == set(range(len(VERDICTS)))


def test_each_round_labels_the_batch_and_a_full_precision_sample() -> None:
    """The protocol's mechanics (which strategy wins is the benchmark's, docs/learning.md)."""
    configure_threads(2, 1)
    train = TrainConfig(variant="small", epochs=3, patience=2, batch_size=64)
    problem = standin_problem(1000, 4000, 0)
    config = ActiveLearningConfig(iterations=1, test_size=1000, train=train, seed=0)
    first, second = run_active_learning(problem, config)
    assert first.sample_size == 30  # drawn first: never emptied by the query batch
    assert second.labels_used - first.labels_used == 100 + 30
    assert 0 <= first.sample_confirmed <= 30
    # the last round's sample estimates its precision too (it trains nobody)
    assert second.sample_size == 30 and np.isfinite(second.precision_estimate)
    # issue 25's pool measures: stars shown, churn between the two models, the stop rule
    assert 0 <= first.emission_shown <= second.emission_shown <= first.pool_emission
    assert np.isnan(first.churn) and 0 <= second.churn <= 1 and first.flipped == 0
    assert not first.stop and "fewer than" in first.stop_reason


def test_benchmark_command_writes_csv_and_pngs(tmp_path, capsys) -> None:
    from service.cli import main

    out = tmp_path / "bench"
    problem = "tests.test_learn_loop:standin_problem"
    argv = ["benchmark", "active-learning", "--problem", problem, "--strategies",
            "entropy,random", "--exploit", "0,0.5", "--iterations", "1", "--variant",
            "small", "--epochs", "2",
            "--n-source", "300", "--n-target", "1200", "--test-size", "400",
            "-o", str(out)]  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "Hou et al. 2016 rule: precision" in text and "random's final error" in text
    assert "rare regime" in text and "entropy+exploit0.5:" in text and "labels to 95%" in text
    rows = (out / "active_learning.csv").read_text().splitlines()
    assert len(rows) == 1 + 4 * 2 and rows[0].startswith("strategy,seed,iteration,labels_used")
    assert "confusion_absorption_as_single-peak" in rows[0] and "precision_estimate" in rows[0]
    for png in ("learning_curve.png", "confusion.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main([*argv[:4], "--strategies", "greedy"]) == 2
    assert "query strategy 'greedy'" in capsys.readouterr().err


def test_the_benchmarked_loop_takes_the_served_jobs_candidate_rule() -> None:
    """--candidates auto: iteration 0's pool candidates are the recall-targeted cut (the
    set the benchmark also scores as target_precision/recall), iteration 1's argmax."""
    configure_threads(2, 1)
    train = TrainConfig(variant="small", epochs=2, patience=1, batch_size=64)
    problem = standin_problem(300, 1600, 0)
    config = ActiveLearningConfig(
        iterations=1, test_size=400, train=train, seed=0, candidates="auto"
    )
    first, _ = run_active_learning(problem, config)
    assert (first.pool_precision, first.pool_recall) == (
        first.target_precision,
        first.target_recall,
    )
    argmax = ActiveLearningConfig(iterations=0, test_size=400, train=train, seed=0)
    (seed_path,) = run_active_learning(problem, argmax)  # the same first model: argmax's set
    assert seed_path.pool_precision != first.pool_precision or (
        seed_path.pool_recall != first.pool_recall
    )
