"""``alvo dataset share NAME [USER ...]``: make a dataset private and invite readers.

The operator's door to :func:`service.store.privacy.share` (a signed-in owner uses
``POST /datasets/{name}/readers``): the dataset's rows, and those of campaigns,
labels and predictions built on it, are then shown over TAP only to its owner and
the readers named here. docs/security.md, *Private datasets*.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dataset",
        help="make a dataset private and invite users to read it",
        description="Manage who may read a dataset over TAP (ALVO_AUTH=header).",
    )
    actions = parser.add_subparsers(dest="dataset_command", metavar="ACTION")
    share = actions.add_parser(
        "share",
        help="make dataset NAME private (if it is not) and invite USERs to read it",
        description="Make dataset NAME private: over TAP its rows, and those of the campaigns, "
        "labels and predictions built on it, are shown only to its owner and the invited "
        "USERs. With no USER it only becomes private. A dataset ingested anonymously has "
        "no owner and cannot be private.",
    )
    share.add_argument("name", help="the dataset")
    share.add_argument("users", nargs="*", metavar="USER", help="users to invite as readers")
    share.add_argument("--home", type=Path, help="data directory (ALVO_HOME, default ./var)")
    share.set_defaults(func=run_share)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def run_share(args: argparse.Namespace) -> int:
    from service.reasons import AlvoError
    from service.settings import Settings
    from service.store.datasets import Datasets
    from service.store.privacy import share

    settings = Settings.from_env(home=args.home)
    try:
        readers = share(Datasets(settings).engine, args.name, None, args.users)
    except AlvoError as error:
        print(f"{error.reason.code}: {error.detail}", file=sys.stderr)
        return 1
    print(f"dataset {args.name!r} is private; readers: {', '.join(readers) or 'none'}")
    return 0
