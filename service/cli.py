"""The ``alvo`` command line: one subcommand per module in :mod:`service.commands`.

Each module there defines ``register(subparsers)`` that adds its subcommand(s)
with a ``func(args) -> int`` default. Discovery keeps this file stable while
the commands grow, and keeps each command's code beside nothing else.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from service import __version__, commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alvo",
        description=(
            "Find rare objects (emission-line stars first) in spectral archives by "
            "active deep learning, served as an IVOA Virtual Observatory service."
        ),
        epilog="Every option of 'alvo serve' can also be set as an ALVO_* environment variable.",
    )
    parser.add_argument("--version", action="version", version=f"alvo {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
