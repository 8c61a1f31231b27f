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
            "(repeat a name for several values); UPLOAD=name,@file attaches a local file "
            "(a VOTable of references), e.g.\n"
            "  alvo submit ingest DATASET=pool SSA=http://127.0.0.1:8000/ssa/lamost MAXREC=2000\n"
            "  alvo submit ingest DATASET=mine UPLOAD=refs,@my-stars.vot\n"
            "  alvo submit --again iterate/3f9c0a1b2c3d4e5f BATCH=50   (run a job again)\n"
            "The service is --service, else ALVO_BASE_URL, else http://127.0.0.1:$ALVO_PORT "
            "(the settings `alvo serve` reads)."
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
    parser.add_argument(
        "job_list", metavar="LIST", nargs="?", help="ingest, train, classify or iterate"
    )
    parser.add_argument("parameters", metavar="NAME=VALUE", nargs="*", help="job parameters")
    parser.add_argument(
        "--service",
        default=None,
        help="alvo service URL (default: ALVO_BASE_URL, else http://127.0.0.1:ALVO_PORT, 8000)",
    )
    parser.add_argument(
        "--again",
        metavar="JOB",
        default=None,
        help=(
            "run the job JOB (LIST/ID or its URL) again: a new job with its parameters, "
            "NAME=VALUE pairs replacing those of the same name; its jobInfo names JOB "
            "(then LIST is not given)"
        ),
    )
    parser.add_argument("--no-wait", action="store_true", help="print the job URL and return")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from service.net.uws_client import JobStatus, again, follow, submit

    items = list(args.parameters)
    if args.again and args.job_list:
        items.insert(0, args.job_list)  # with --again every word is NAME=VALUE
    elif not args.again and not args.job_list:
        print(
            "alvo submit: give LIST (ingest, train, classify, iterate) or --again JOB",
            file=sys.stderr,
        )
        return 2
    pairs = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            print(f"alvo submit: {item!r} is not NAME=VALUE", file=sys.stderr)
            return 2
        pairs.append((name, value))
    try:
        pairs, files = attachments(pairs)
    except OSError as error:
        print(f"alvo submit: cannot read the file to upload: {error}", file=sys.stderr)
        return 2
    try:
        if args.again:
            job_url = again(job_address(args.again, args.service), pairs, files=files)
        else:
            job_url = submit(f"{service_url(args.service)}/{args.job_list}", pairs, files=files)
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


def service_url(given: str | None) -> str:
    """--service, else the URL the service's own settings give (ALVO_BASE_URL, ALVO_PORT)."""
    if given:
        return given.rstrip("/")
    from service.settings import Settings

    settings = Settings.from_env()
    if settings.base_url:
        return settings.base_url.rstrip("/")
    host = settings.host if settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    return f"http://{host}:{settings.port}"


def job_address(job: str, service: str | None) -> str:
    """A job's URL from its URL or from ``LIST/ID`` on the service."""
    if job.startswith(("http://", "https://")):
        return job.rstrip("/")
    return f"{service_url(service)}/{job.strip('/')}"


def attachments(
    pairs: list[tuple[str, str]],
) -> tuple[list[tuple[str, str]], dict[str, tuple[str, bytes]]]:
    """``UPLOAD=name,@path`` becomes ``UPLOAD=name,param:name`` plus the file as part ``name``
    (the DALI/UWS way of sending a table with a job)."""
    from pathlib import Path

    out, files = [], {}
    for name, value in pairs:
        table, sep, where = value.partition(",")
        if name.upper() == "UPLOAD" and sep and where.startswith("@"):
            path = Path(where[1:]).expanduser()
            files[table] = (path.name, path.read_bytes())
            value = f"{table},param:{table}"
        out.append((name, value))
    return out, files
