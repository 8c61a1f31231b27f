"""``alvo benchmark active-learning``: the paper's protocol with a simulated oracle.

Adapted source set -> train -> classify the target pool -> the oracle (ground
truth) labels the 100 most useful spectra per iteration (+ a 30-spectrum
precision sample) -> repeat. For each query strategy and seed it records, per
iteration, the error and per-class precision/recall on a held-out target test
set, the labels used and the time, beside the Hou et al. (2016) rule on the same
test spectra; writes ``active_learning.csv``, ``learning_curve.png`` and
``confusion.png`` and prints how the goals were met.

The data come from a *problem function* ``f(n_source, n_target, seed) -> Problem``
(:class:`service.learn.loop.Problem`); ``--problem archive`` uses the embedded
archive's simulator, ``--problem module:function`` any other.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import functools
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from service.learn.loop import IterationResult, Problem

GOAL_ERROR = 0.03


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "benchmark",
        help="measure the learning protocol with a simulated oracle",
        description="Benchmarks of the learning core that need a whole protocol run.",
    )
    actions = parser.add_subparsers(dest="benchmark_action", metavar="WHAT", required=True)
    al = actions.add_parser(
        "active-learning",
        help="active learning with a simulated oracle: strategies vs random vs the Hou rule",
        description=__doc__.split("\n\n")[1],
    )
    al.add_argument("--problem", default="archive", help="'archive' or module:function")
    al.add_argument("--strategies", default="entropy,random,diverse-entropy")
    al.add_argument("--iterations", type=int, default=10)
    al.add_argument("--batch", type=int, default=100, help="queries per iteration")
    al.add_argument("--sample", type=int, default=30, help="precision sample per iteration")
    al.add_argument("--seeds", type=int, default=1, help="repeat with seeds 0..N-1")
    al.add_argument("--variant", default="reference", help="network variant")
    al.add_argument("--epochs", type=int, default=100)
    al.add_argument("--patience", type=int, default=10)
    al.add_argument(
        "--train-batch", type=int, default=64, help="training batch size (original: 64)"
    )
    al.add_argument(
        "--warm-start",
        action="store_true",
        help="start each iteration's training from the previous iteration's weights",
    )
    al.add_argument("--balancing", default="smote", choices=["smote", "class-weight", "none"])
    al.add_argument("--n-source", type=int, default=13000, help="source spectra")
    al.add_argument("--n-target", type=int, default=50000, help="target pool + test spectra")
    al.add_argument("--test-size", type=int, default=2000, help="held-out target test spectra")
    al.add_argument(
        "--noise-augment",
        type=float,
        default=0.0,
        help="add a noisy copy of each training spectrum, sigma ~ U(0, this) (0: off, original)",
    )
    al.add_argument(
        "--emission-fraction",
        type=float,
        help="share of emission-line stars in the archive's target (default: its 1 %%)",
    )
    al.add_argument(
        "--continuum",
        default="linear",
        choices=["none", "linear"],
        help="adaptation's continuum step (archive problem): 'linear' (default) divides each "
        "spectrum by a straight line through the window's ends; 'none' is the original",
    )
    al.add_argument(
        "--exploit",
        default="0",
        help="comma-separated fractions of the batch given to the most likely emission stars "
        "(each is run with each strategy; 0: none, the original)",
    )
    al.add_argument(
        "--label-shift",
        default="off",
        choices=["off", "on", "both"],
        help="re-weight probabilities to the pool's EM-estimated class priors (Saerens 2002)",
    )
    al.add_argument(
        "--candidates",
        default="argmax",
        choices=["argmax", "auto", "recall-target"],
        help="the candidate rule of the iterate job's CANDIDATES: what the batch is drawn "
        "among and the network's pool precision/recall count ('argmax': the seed's)",
    )
    al.add_argument(
        "--oracle-weight",
        default="1",
        help="comma-separated: each oracle label enters training this many times "
        "(each is run as its own variant, '+wN'; 1: the original)",
    )
    al.add_argument("--threads", type=int, default=2, help="TensorFlow intra-op threads")
    al.add_argument("-o", "--out", type=Path, default=Path("benchmark-active-learning"))
    al.set_defaults(func=active_learning_command)


def archive_problem(
    n_source: int,
    n_target: int,
    seed: int,
    emission_fraction: float | None = None,
    continuum: str = "linear",
) -> Problem:
    """The embedded archive's simulator: Ondrejov-like source, LAMOST-like target, adapted.

    emission_fraction : share of emission-line stars in the target (None: the
        archive's default, 1 %, as rare as in LAMOST). The source's ``unknown``
        label becomes the oracle verdict ``not-sure`` (kept out of training);
        spectra adaptation refuses are left out, as an ingest would.
    continuum : the adaptation's continuum step ("none" or "linear")
    """
    import numpy as np

    from service.adapt import AdaptConfig, adapt
    from service.archive import simulate_batch
    from service.archive.classes import UNKNOWN
    from service.learn.labels import verdict_codes
    from service.learn.loop import Problem
    from service.vocabulary import CLASSES, NOT_SURE

    config = AdaptConfig(continuum=continuum)  # type: ignore[arg-type]
    parts = []
    for collection, n, offset, fraction in (
        ("ondrejov", n_source, 0, None),
        ("lamost", n_target, 1, emission_fraction),
    ):
        spectra, truth = simulate_batch(collection, n, 2 * seed + offset, fraction)
        batch = adapt(spectra, config)
        good = np.isfinite(batch.features).all(axis=1)
        names = [{UNKNOWN: NOT_SURE}.get(str(v), str(v)) for v in truth["label"]]
        parts.append((batch.features[good], verdict_codes(names)[good]))
    (source_x, source_v), (target_x, target_v) = parts
    trainable = source_v < len(CLASSES)
    return Problem(
        source_x[trainable], source_v[trainable].astype(np.int64), target_x, target_v,
        config.grid(), config.to_dict(), config.fingerprint,
    )  # fmt: skip


def load_problem_function(spec: str) -> Callable[[int, int, int], Problem]:
    """``archive`` or ``module:function``."""
    if spec == "archive":
        return archive_problem
    from service.reasons import AlvoError, Reason

    module, _, name = spec.partition(":")
    if os.getcwd() not in sys.path:  # like ``python -m``: modules of the current folder
        sys.path.insert(0, os.getcwd())
    try:
        return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]
    except (ImportError, AttributeError, ValueError) as exc:
        raise AlvoError(Reason.BAD_PARAMETER, f"--problem {spec!r}: {exc}") from None


def active_learning_command(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from service.learn import ActiveLearningConfig, TrainConfig, configure_threads
    from service.learn.loop import run_active_learning
    from service.reasons import AlvoError

    configure_threads(args.threads, 2)
    from service.learn.query import get_strategy

    strategies = [s for s in args.strategies.split(",") if s]
    exploits = [float(f) for f in str(args.exploit).split(",") if f]
    shifts = {"off": [False], "on": [True], "both": [False, True]}[args.label_shift]
    weights = [int(w) for w in str(args.oracle_weight).split(",") if w]
    variants = [
        (strategy, fraction, shift, weight)
        for strategy in strategies
        for fraction in exploits
        for shift in shifts
        for weight in weights
        if not (strategy == "exploit" and fraction > 0)
    ]
    train = TrainConfig(
        variant=args.variant,
        epochs=args.epochs,
        patience=args.patience,
        batch_size=args.train_batch,
        warm_start=args.warm_start,
        balancing=args.balancing,
        noise_augment=args.noise_augment,
    )
    try:
        for strategy in strategies:
            get_strategy(strategy)  # fail before any simulation or training
        make_problem = load_problem_function(args.problem)
        if args.problem == "archive":
            make_problem = functools.partial(
                archive_problem, emission_fraction=args.emission_fraction, continuum=args.continuum
            )
        results: list[IterationResult] = []
        classes: Sequence[str] = ()
        with tqdm(total=len(variants) * args.seeds * (args.iterations + 1), unit="it") as bar:
            for seed in range(args.seeds):
                problem = make_problem(args.n_source, args.n_target, seed)
                classes = problem.classes
                for strategy, fraction, shift, weight in variants:
                    config = ActiveLearningConfig(
                        strategy=strategy, iterations=args.iterations, batch=args.batch,
                        precision_sample=args.sample, test_size=args.test_size,
                        train=dataclasses.replace(train, oracle_weight=weight),
                        seed=seed, exploit=fraction, label_shift=shift,
                        candidates=args.candidates,
                    )  # fmt: skip
                    name = variant_name(strategy, fraction, shift, weight)
                    name += "" if args.candidates == "argmax" else f"+{args.candidates}"

                    def advance(r: IterationResult) -> None:
                        r.strategy = name  # noqa: B023 (called before the next variant)
                        bar.set_postfix_str(f"{r.strategy} s{r.seed} error {r.error:.3f}")
                        bar.update()

                    results += run_active_learning(problem, config, advance)
    except AlvoError as exc:
        print(f"alvo benchmark: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(results, classes, args.out / "active_learning.csv")
    learning_curve_png(results, args.out / "learning_curve.png")
    confusion_png(results, classes, args.out / "confusion.png")
    print(summary(results))
    print(rare_summary(results))
    print(f"wrote {args.out}/active_learning.csv, learning_curve.png, confusion.png")
    return 0


def variant_name(strategy: str, exploit: float, label_shift: bool, oracle_weight: int = 1) -> str:
    """``entropy``, ``entropy+exploit0.5``, ``entropy+shift``, ``entropy+w5`` ...: one
    curve's name."""
    return (
        strategy
        + (f"+exploit{exploit:g}" if exploit else "")
        + ("+shift" if label_shift else "")
        + (f"+w{oracle_weight}" if oracle_weight != 1 else "")
    )


def rare_summary(results: Sequence[IterationResult], goal: float = 0.95) -> str:
    """Issue 25's questions per variant, mean ± std over seeds, on the *pool*: emission
    stars shown in the first batch (100 + 30 answers), iteration-0 precision/recall,
    labels until precision and recall are both >= ``goal``, the precision estimate
    against the truth, churn and flipped labels, and where the stopping rule stopped."""
    import numpy as np

    def ms(values: Sequence[float]) -> str:
        v = np.asarray(values, dtype=float)
        return f"{np.nanmean(v):.3f} ± {np.nanstd(v):.3f}" if np.isfinite(v).any() else "n/a"

    lines = ["", "rare regime, on the pool (mean ± std over seeds):"]
    for name in dict.fromkeys(r.strategy for r in results):
        mine = [r for r in results if r.strategy == name]
        seeds = sorted({r.seed for r in mine})
        runs = [sorted((r for r in mine if r.seed == s), key=lambda r: r.iteration) for s in seeds]
        first = [run[0] for run in runs]
        shown = [r.emission_shown / max(r.pool_emission, 1) for r in first]
        reach, reach_catalogue = [], []
        for run in runs:
            hits = [
                r.labels_used for r in run if r.pool_precision >= goal and r.pool_recall >= goal
            ]
            reach.append(float(hits[0]) if hits else float("nan"))
            hits = [
                r.labels_used
                for r in run
                if r.catalogue_precision >= goal and r.catalogue_recall >= goal
            ]
            reach_catalogue.append(float(hits[0]) if hits else float("nan"))
        lines.append(
            f"{name}: {len(runs)} seeds, pool emission {ms([r.pool_emission for r in first])}; "
            f"shown in the first {first[0].labels_used + 130 if first else 130} answers "
            f"{ms(shown)}; iteration 0 precision {ms([r.pool_precision for r in first])} "
            f"recall {ms([r.pool_recall for r in first])}; labels to {goal:.0%}/{goal:.0%}: "
            f"{ms(reach)} ({sum(np.isfinite(reach))} of {len(runs)} seeds reached it); "
            f"the catalogue (oracle verdicts first): {ms(reach_catalogue)} "
            f"({sum(np.isfinite(reach_catalogue))} of {len(runs)}); iteration 0 threshold "
            f"EM argmax {ms([r.shift_precision for r in first])} / "
            f"{ms([r.shift_recall for r in first])}, EM count "
            f"{ms([r.prior_precision for r in first])} / {ms([r.prior_recall for r in first])}"
        )
        for it in range(max(len(run) for run in runs)):
            at = [run[it] for run in runs if len(run) > it]
            lines.append(
                f"  it {it} labels {np.mean([r.labels_used for r in at]):5.0f}: precision "
                f"{ms([r.pool_precision for r in at])} estimate "
                f"{ms([r.precision_estimate for r in at])} (lower "
                f"{ms([r.precision_estimate_lower for r in at])}) recall "
                f"{ms([r.pool_recall for r in at])} churn {ms([r.churn for r in at])} "
                f"flipped {ms([r.flipped for r in at])} uncertain {ms([r.n_uncertain for r in at])}"
                f" stop {sum(r.stop for r in at)}/{len(at)} shown "
                f"{ms([r.emission_shown for r in at])}; catalogue precision "
                f"{ms([r.catalogue_precision for r in at])} estimate "
                f"{ms([r.catalogue_estimate for r in at])} recall "
                f"{ms([r.catalogue_recall for r in at])}"
            )
            matrices = [r.pool_confusion for r in at if r.pool_confusion is not None]
            if matrices:
                total = np.sum(matrices, axis=0)
                cells = " | ".join(
                    " / ".join(str(int(v)) for v in total[i]) for i in range(len(total))
                )
                lines.append(f"    pool confusion (truth rows x predicted, seeds summed): {cells}")
    return "\n".join(lines)


def write_csv(results: Sequence[IterationResult], classes: Sequence[str], path: Path) -> None:
    rows = [r.row(classes) for r in results]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _curves(results: Sequence[IterationResult]) -> dict[str, dict[str, np.ndarray]]:
    """Per strategy: labels used and error etc. averaged over seeds (min, max kept)."""
    import numpy as np

    out: dict[str, dict[str, np.ndarray]] = {}
    for strategy in dict.fromkeys(r.strategy for r in results):
        mine = [r for r in results if r.strategy == strategy]
        iterations = sorted({r.iteration for r in mine})
        table: dict[str, list[Any]] = {
            "labels": [], "error": [], "lo": [], "hi": [], "p_hou": [], "balanced": []
        }  # fmt: skip
        for it in iterations:
            at = [r for r in mine if r.iteration == it]
            errors = [r.error for r in at]
            table["labels"].append(np.mean([r.labels_used for r in at]))
            table["error"].append(np.mean(errors))
            table["lo"].append(min(errors))
            table["hi"].append(max(errors))
            table["p_hou"].append(np.nanmean([r.precision_at_hou_recall for r in at]))
            table["balanced"].append(np.mean([r.balanced_error for r in at]))
        out[strategy] = {k: np.asarray(v, dtype=float) for k, v in table.items()}
    return out


def labels_to_reach(curve: dict[str, np.ndarray], error: float) -> float:
    """Fewest (mean) labels at which the mean error is <= ``error``; NaN if never."""
    import numpy as np

    hits = np.flatnonzero(curve["error"] <= error + 1e-12)
    return float(curve["labels"][hits[0]]) if hits.size else float("nan")


def summary(results: Sequence[IterationResult]) -> str:
    """The goals, in words: 3 % error within 1000 labels, entropy vs random, CNN vs Hou."""
    import numpy as np

    curves = _curves(results)
    lines = [
        "strategy         labels->3%   final error   balanced   labels   CNN prec @ Hou recall"
    ]
    for strategy, c in curves.items():
        lines.append(
            f"{strategy:16s} {labels_to_reach(c, GOAL_ERROR):10.0f}   {c['error'][-1]:11.4f}"
            f"   {c['balanced'][-1]:8.4f}   {c['labels'][-1]:6.0f}   {c['p_hou'][-1]:.3f}"
        )
    hou = results[0]
    lines.append(
        f"Hou et al. 2016 rule: precision {hou.hou_precision:.3f}, recall {hou.hou_recall:.3f}"
    )
    last = max(r.iteration for r in results)
    for strategy in curves:
        final = [r for r in results if r.strategy == strategy and r.iteration == last]
        lines.append(
            f"CNN candidates ({strategy}, final): precision "
            f"{np.nanmean([r.candidates_precision for r in final]):.3f}, recall "
            f"{np.nanmean([r.candidates_recall for r in final]):.3f}"
        )
    if "random" in curves:
        target = curves["random"]["error"][-1]
        base = labels_to_reach(curves["random"], target)
        for strategy, c in curves.items():
            if strategy != "random":
                ratio = labels_to_reach(c, target) / base if base else np.nan
                lines.append(
                    f"{strategy} reaches random's final error {target:.4f} with "
                    f"{ratio:.2f} x random's labels (goal <= 0.5)"
                    if np.isfinite(ratio)
                    else f"{strategy} never reaches random's final error {target:.4f} "
                    f"(its own: {c['error'][-1]:.4f}; goal: with <= 0.5 x random's labels)"
                )
    return "\n".join(lines)


def learning_curve_png(results: Sequence[IterationResult], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    curves = _curves(results)
    figure = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2)
    for strategy, c in curves.items():
        (line,) = left.plot(c["labels"], 100 * c["error"], marker="o", label=strategy)
        left.fill_between(
            c["labels"], 100 * c["lo"], 100 * c["hi"], alpha=0.2, color=line.get_color()
        )
        right.plot(c["labels"], c["p_hou"], marker="o", label=f"CNN ({strategy})")
    left.axhline(100 * GOAL_ERROR, color="grey", ls="--", label="goal 3 %")
    left.set(xlabel="oracle labels used", ylabel="error on target test set (%)", ylim=(0, None))
    left.set_title("Learning curve (mean over seeds, band = min..max)")
    left.legend()
    hou = results[0]
    right.axhline(hou.hou_precision, color="k", ls="--", label="Hou et al. 2016 rule")
    right.set(xlabel="oracle labels used", ylabel="emission precision")
    right.set_title(f"Precision at the Hou rule's recall ({hou.hou_recall:.2f})")
    right.legend()
    figure.savefig(path, dpi=110)


def confusion_png(results: Sequence[IterationResult], classes: Sequence[str], path: Path) -> None:
    """Final-iteration confusion matrix (seed 0) per strategy, rows = truth, in %."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    finals: dict[str, IterationResult] = {}
    for r in results:
        if r.seed == 0 and r.iteration >= finals.get(r.strategy, r).iteration:
            finals[r.strategy] = r
    figure = Figure(figsize=(4.2 * len(finals), 4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(finals), squeeze=False)[0]
    for ax, (strategy, r) in zip(axes, finals.items(), strict=True):
        share = 100 * r.confusion / r.confusion.sum(axis=1, keepdims=True).clip(min=1)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=100)
        for (i, j), value in np.ndenumerate(share):
            ax.text(j, i, f"{value:.1f}%\n({r.confusion[i, j]})", ha="center", va="center",
                    color="white" if value > 60 else "black", fontsize=8)  # fmt: skip
        ax.set_xticks(range(len(classes)), classes, rotation=20)
        ax.set_yticks(range(len(classes)), classes)
        ax.set(xlabel="predicted", ylabel="true")
        ax.set_title(f"{strategy}: {r.labels_used} labels, error {100 * r.error:.2f} %", fontsize=9)
    figure.savefig(path, dpi=110)
