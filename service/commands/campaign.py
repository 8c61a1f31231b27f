"""``alvo campaign export NAME`` / ``alvo campaign import FILE``: a campaign's backup.

The export is what cannot be recomputed -- every label with its user, time, verdict,
source and iteration -- with the campaign's parameters, its iterations and batches, and
the publisher DIDs and access URLs of its datasets' spectra, as a gzipped tar of
VOTables (:mod:`service.vo.backup_tables`). The import puts it into a service that has
ingested the same datasets (same names, same DIDs); importing twice adds nothing.
docs/operations.md, *Backups* and *Restore drill*.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "campaign",
        help="back up a campaign's labels to a file, or restore them from one",
        description="Export a campaign (labels first) to a tarball of VOTables, or import one.",
    )
    actions = parser.add_subparsers(dest="campaign_command", metavar="ACTION")
    export = actions.add_parser(
        "export",
        help="write campaign NAME's labels, parameters, iterations and dataset references",
        description="Write a gzipped tar of VOTables (campaign.xml, spectra.xml, labels.xml, "
        "iterations.xml, batches.xml) that 'alvo campaign import' restores. Reads the "
        "database only; safe while the service runs.",
    )
    export.add_argument("name", help="the campaign")
    export.add_argument(
        "-o", "--output", type=Path, help="file to write (default NAME.alvo-campaign.tar.gz)"
    )
    export.add_argument("--home", type=Path, help="data directory (ALVO_HOME, default ./var)")
    export.set_defaults(func=run_export)
    restore = actions.add_parser(
        "import",
        help="restore a campaign from FILE into a service with the same datasets ingested",
        description="Create the campaign (or complete it, when it exists on the same "
        "datasets) with every label, iteration and batch row of FILE it lacks, at their "
        "original users and times. The datasets must be ingested first, under the same "
        "names and with the same publisher DIDs; importing twice adds nothing.",
    )
    restore.add_argument("file", type=Path, help="a file 'alvo campaign export' wrote")
    restore.add_argument("--home", type=Path, help="data directory (ALVO_HOME, default ./var)")
    restore.set_defaults(func=run_import)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def run_export(args: argparse.Namespace) -> int:
    from service.reasons import AlvoError
    from service.settings import Settings
    from service.store.backup import read_backup
    from service.vo.backup_tables import write_backup

    settings = Settings.from_env(home=args.home)
    output = args.output or Path(f"{args.name}.alvo-campaign.tar.gz")
    try:
        backup = read_backup(settings, args.name)
    except AlvoError as error:
        print(f"{error.reason.code}: {error.detail}", file=sys.stderr)
        return 1
    partial = output.with_name(output.name + ".partial")
    partial.write_bytes(write_backup(backup))
    partial.replace(output)  # a backup file is whole or absent
    print(
        f"wrote {output}: campaign {args.name!r}, {len(backup.labels)} labels, "
        f"{len(backup.iterations)} iterations, {len(backup.spectra)} spectra referenced"
    )
    return 0


def run_import(args: argparse.Namespace) -> int:
    from service.reasons import AlvoError
    from service.settings import Settings
    from service.store.backup import restore
    from service.vo.backup_tables import read_backup

    settings = Settings.from_env(home=args.home)
    try:
        outcome = restore(settings, read_backup(args.file.read_bytes()))
    except AlvoError as error:
        print(f"{error.reason.code}: {error.detail}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"{args.file}: {error.strerror}", file=sys.stderr)
        return 1
    state = "created" if outcome.created else "existed"
    print(
        f"campaign {outcome.campaign!r} ({state}): {outcome.labels_added} labels added, "
        f"{outcome.labels_present} already present, {outcome.iterations_added} iterations added"
        + (
            f", {outcome.answers_added} interesting/boring answers added"
            if outcome.answers_added
            else ""
        )
    )
    return 0
