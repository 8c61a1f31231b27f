"""``alvo ingest tree``: an operator bulk-ingests a local archive tree into a dataset."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ingest",
        help="bulk-ingest local archive files (operator only; the service never reads "
        "paths named in requests)",
        description="Bulk ingest of archive files this machine can read.",
    )
    actions = parser.add_subparsers(dest="ingest_command", metavar="ACTION")
    tree = actions.add_parser(
        "tree",
        help="ingest every FITS spectrum under PATH (e.g. a LAMOST DR folder tree)",
        description="Reads only the H-alpha window of each file; re-running adds nothing, "
        "and a run killed at any point resumes where it stopped when run again.",
    )
    tree.add_argument("path", type=Path, help="root folder of the archive tree")
    tree.add_argument("--dataset", required=True, help="dataset to add the spectra to")
    tree.add_argument(
        "--domain", choices=["target", "source"], default="target", help="default target"
    )
    tree.add_argument("--home", type=Path, help="data directory (ALVO_HOME, default ./var)")
    tree.add_argument("--workers", type=int, default=2, help="reading processes (default 2)")
    tree.add_argument("--chunk", type=int, default=2048, help="files per chunk (default 2048)")
    tree.set_defaults(func=run_tree)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def run_tree(args: argparse.Namespace) -> int:
    import json

    from tqdm import tqdm

    from service.jobs.ingest.tree import ingest_tree
    from service.reasons import Reason
    from service.settings import Settings
    from service.spectra.files import archive_files
    from uws.store import is_disk_full

    if not args.path.is_dir():
        print(f"{args.path} is not a folder: give the root of the archive tree")
        return 2
    settings = Settings.from_env(home=args.home)
    total = sum(1 for _ in archive_files(args.path))
    with tqdm(total=total, unit="file", smoothing=0.1) as bar:

        def progress(done: int, added: int) -> None:
            bar.update(done - bar.n)
            bar.set_postfix(added=added)

        try:
            summary = ingest_tree(
                settings, args.path, args.dataset, args.domain, args.workers, args.chunk, progress
            )
        except Exception as error:
            if not is_disk_full(error):
                raise
            bar.close()
            print(
                f"{Reason.DISK_FULL.code}: the disk under ALVO_HOME or the database is full; "
                f"every chunk stored before is intact ({bar.n} files read). Free space and run "
                "the same command again: it resumes where it stopped.",
                file=sys.stderr,
            )
            return 1
    print(json.dumps(summary, indent=1))
    return 0
