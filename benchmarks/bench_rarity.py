"""The rare regime of issue 25: active learning at LAMOST's emission-star rarity.

Runs ``alvo benchmark active-learning`` on the archive simulator (Ondrejov-like
source, realism-augmented LAMOST-like target) at each emission fraction given,
for the default strategy (entropy), random among the candidates, and each with an
exploitation part (``--exploit``), and prints per variant, mean ± std over seeds,
on the pool: the emission stars shown to the oracle in the first 130 answers,
iteration-0 precision and recall, the labels until precision and recall are both
≥ 95 %, and per iteration the true precision beside the service's stratified
estimate, churn, labelled-absorption spectra predicted emission, and the stopping
rule's decision. The CSVs (with the test-set confusion per iteration) go to
``OUT/fraction-F/``; docs/learning.md, *The rare regime*, reports a run.

    .venv/bin/python benchmarks/bench_rarity.py [--fractions 0.003,0.01,0.03]
        [--problem archive|benchmarks.line_models:rare_1pc] [--oracle-weight 1,10]
        [--pool 10000] [--seeds 3] [--iterations 3] [--exploit 0,0.5]
        [--candidates argmax|auto|recall-target] [-o OUT]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from service.cli import build_parser


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fractions", default="0.01")
    parser.add_argument(
        "--problem",
        default="archive",
        help="'archive', or module:function (e.g. benchmarks.line_models:rare_1pc, whose "
        "function sets the emission fraction itself)",
    )
    parser.add_argument("--pool", type=int, default=10_000, help="pool spectra (test extra)")
    parser.add_argument("--test-size", type=int, default=2000)
    parser.add_argument("--n-source", type=int, default=3000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--strategies", default="entropy,random")
    parser.add_argument("--exploit", default="0,0.5")
    parser.add_argument("--label-shift", default="off", choices=["off", "on", "both"])
    parser.add_argument("--oracle-weight", default="1")
    parser.add_argument(
        "--candidates", default="argmax", choices=["argmax", "auto", "recall-target"]
    )
    parser.add_argument("--warm-start", action="store_true")
    parser.add_argument("--variant", default="small")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--patience", type=int, default=4)
    parser.add_argument("-o", "--out", type=Path, default=Path("bench-rarity"))
    args = parser.parse_args()
    cli = build_parser()
    status = 0
    for fraction in (float(f) for f in args.fractions.split(",")):
        started = time.perf_counter()
        argv = [
            "benchmark", "active-learning", "--problem", args.problem,
            "--strategies", args.strategies, "--exploit", args.exploit,
            "--label-shift", args.label_shift, "--iterations", str(args.iterations),
            "--oracle-weight", args.oracle_weight, "--candidates", args.candidates,
            *(["--warm-start"] if args.warm_start else []),
            "--seeds", str(args.seeds), "--variant", args.variant,
            "--epochs", str(args.epochs), "--patience", str(args.patience),
            "--noise-augment", "1.0", "--n-source", str(args.n_source),
            "--n-target", str(args.pool + args.test_size), "--test-size", str(args.test_size),
            "--emission-fraction", str(fraction), "-o", str(args.out / f"fraction-{fraction:g}"),
        ]  # fmt: skip
        print(f"== emission fraction {fraction:g}, pool {args.pool}: {' '.join(argv)}")
        namespace = cli.parse_args(argv)
        status |= int(namespace.func(namespace))
        print(f"== {time.perf_counter() - started:.0f} s")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
