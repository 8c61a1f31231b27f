"""``alvo archive``: the simulated demo archive — generate collections, measure realism."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "archive",
        help="generate the simulated two-domain archive (Ondrejov CCD700, LAMOST DR2)",
        description="The embedded demo archive: simulated spectra with ground truth.",
    )
    actions = parser.add_subparsers(dest="archive_command", metavar="ACTION")

    generate = actions.add_parser(
        "generate",
        help="write a collection's FITS files and catalogue under HOME/archive/COLLECTION",
    )
    generate.add_argument("--collection", choices=["ondrejov", "lamost"], required=True)
    generate.add_argument("--n", type=int, default=2000, help="number of spectra (default 2000)")
    generate.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    generate.add_argument("--home", type=Path, help="data directory (ALVO_HOME, default ./var)")
    generate.add_argument(
        "--emission-fraction",
        type=float,
        help="share of emission-line spectra (default: Ondrejov label counts; LAMOST 0.01)",
    )
    generate.add_argument(
        "--workers", type=int, default=1, help="processes writing chunks (default 1)"
    )
    generate.add_argument(
        "--chunk-size", type=int, default=2048, help="rows per chunk in memory (default 2048)"
    )
    generate.set_defaults(func=run_generate)

    realism = actions.add_parser(
        "realism",
        help="compare simulated with the real spectra and classify the real ones "
        "with a model trained on simulated spectra only",
    )
    realism.add_argument("--real", type=Path, help="folder of real spectra (ALVO_REAL_DATA)")
    realism.add_argument("--n", type=int, default=6000, help="simulated spectra per domain")
    realism.add_argument("--seed", type=int, default=7)
    realism.add_argument("--plot", type=Path, help="write the side-by-side PNG here")
    realism.add_argument(
        "--cnn", action="store_true", help="also train service.learn's CNN (minutes on a CPU)"
    )
    realism.set_defaults(func=run_realism)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def run_generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from service.archive.generate import generate_archive

    home = args.home or Path(os.environ.get("ALVO_HOME", "var"))
    with tqdm(total=args.n, unit="spectra", desc=f"{args.collection}") as bar:
        path = generate_archive(
            home,
            args.collection,
            args.n,
            args.seed,
            emission_fraction=args.emission_fraction,
            chunk_size=args.chunk_size,
            workers=args.workers,
            progress=bar.update,
        )
    print(f"catalogue: {path}")
    return 0


def run_realism(args: argparse.Namespace) -> int:
    from service.archive.realism import main

    real = args.real or Path(os.environ.get("ALVO_REAL_DATA", "../shared/data/real"))
    return main(real, n=args.n, seed=args.seed, plot=args.plot, cnn=args.cnn)
