"""``alvo reasons``: every named reason a spectrum, upload or query can be refused for."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reasons",
        help="list the named reasons in error messages and failure tables",
        description=(
            "Print every named reason (CORRUPT_FITS, NO_HALPHA_COVERAGE, SSA_TIMEOUT...) that "
            "appears in UWS error summaries, ingest failure tables and HTTP errors, with what "
            "it means, as a Markdown table (docs/reasons.md is this output)."
        ),
    )
    parser.set_defaults(func=run)


def markdown() -> str:
    from service.reasons import Reason

    lines = [
        "# Named reasons",
        "",
        "Every way a spectrum, an upload or a query can be refused has a name; it appears in",
        "UWS error summaries, in the `failures` table of an ingest and in HTTP error",
        "documents. A web request refused for a reason is answered with the reason's HTTP",
        "status (a job whose parameters are refused is always a UWS 400; a job that fails",
        "later shows the reason in its error summary). This page is the output of",
        "`alvo reasons`.",
        "",
        "| reason | HTTP | what it means |",
        "|---|---|---|",
    ]
    lines += [
        f"| `{reason.code}` | {reason.http_status} | {reason.explanation} |" for reason in Reason
    ]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    print(markdown(), end="")
    return 0
