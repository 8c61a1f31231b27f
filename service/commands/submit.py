"""``alvo submit LIST NAME=VALUE...``: run a job on a service and watch it finish."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "submit",
        help="run an ingest/train/classify/iterate job on a service, with a progress bar",
        description=(
            "Create a UWS job on a running alvo service, start it, show its progress "
            "until it ends, and print its result URLs. Parameters are NAME=VALUE pairs "
            "(repeat a name for several values), e.g.\n"
            "  alvo submit ingest DATASET=pool SSA=http://127.0.0.1:8000/ssa/lamost MAXREC=2000"
        ),
        epilog=(
            "The most used parameters (all of them, and every result: docs/jobs.md):\n"
            "  ingest    DATASET, SSA + POS/SIZE/BAND/TIME/MAXREC, DATALINK + ID, URL, LABELS\n"
            "  train     DATASET, MODEL, EPOCHS, BALANCE, NOISE_AUGMENT, SEED\n"
            "  classify  MODEL_ID, DATASET, BROADCAST\n"
            "  iterate   CAMPAIGN (+ SOURCE, TARGET to create it), STRATEGY, BATCH, EPOCHS"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("job_list", metavar="LIST", help="ingest, train, classify or iterate")
    parser.add_argument("parameters", metavar="NAME=VALUE", nargs="*", help="job parameters")
    parser.add_argument("--service", default="http://127.0.0.1:8000", help="alvo service URL")
    parser.add_argument("--no-wait", action="store_true", help="print the job URL and return")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from service.uws_client import JobStatus, follow, submit

    pairs = []
    for item in args.parameters:
        name, sep, value = item.partition("=")
        if not sep or not name:
            print(f"alvo submit: {item!r} is not NAME=VALUE", file=sys.stderr)
            return 2
        pairs.append((name, value))
    try:
        job_url = submit(f"{args.service.rstrip('/')}/{args.job_list}", pairs)
    except (OSError, ValueError) as error:
        print(f"alvo submit: {error}", file=sys.stderr)
        return 1
    print(job_url)
    if args.no_wait:
        return 0
    with tqdm(total=1.0, bar_format="{percentage:3.0f}%|{bar:30}| {desc}") as bar:

        def show(status: JobStatus) -> None:
            if status.fraction is not None:
                bar.n = status.fraction
            bar.set_description_str(f"{status.phase} {status.message}"[:60])
            bar.refresh()

        final = follow(job_url, show)
    if final.phase != "COMPLETED":
        print(f"job ended {final.phase}: {final.error}", file=sys.stderr)
        return 1
    for result_id, (href, _) in final.results.items():
        print(f"{result_id}: {href}")
    return 0
