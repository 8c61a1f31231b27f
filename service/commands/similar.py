"""``alvo similar ID``: the pool spectra most like one spectrum ("more like this")."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "similar",
        help="list the pool spectra nearest to a spectrum in the network's embedding",
        description=(
            "Ask a running alvo service's /similar endpoint for the K pool spectra most like "
            "the spectrum ID (its publisher DID, as in every candidate table, or its "
            "spectrum_id), in the embedding of the campaign's latest iteration, and print them "
            "nearest first (or save the VOTable with --output, for TOPCAT), e.g.\n"
            "  alvo similar 'ivo://alvo.demo/lamost?obsid=123' --k 20 --campaign be"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("ids", metavar="ID", nargs="+", help="publisher DID or spectrum_id")
    parser.add_argument("--k", type=int, default=10, help="neighbours per ID (default 10)")
    parser.add_argument("--campaign", default=None, help="campaign (default: found by the ID)")
    parser.add_argument("--iteration", type=int, default=None, help="default: the newest")
    parser.add_argument("--output", default=None, help="write the VOTable to this file")
    parser.add_argument(
        "--service",
        default=None,
        help="alvo service URL (default: ALVO_BASE_URL, else http://127.0.0.1:ALVO_PORT, 8000)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import io

    import httpx
    from astropy.io.votable import parse_single_table

    from service.commands.submit import service_url

    params: list[tuple[str, str | int | float | bool | None]] = [("ID", i) for i in args.ids] + [
        ("K", str(args.k))
    ]
    if args.campaign:
        params.append(("CAMPAIGN", args.campaign))
    if args.iteration is not None:
        params.append(("ITERATION", str(args.iteration)))
    url = f"{service_url(args.service)}/similar"
    try:
        response = httpx.get(url, params=params, timeout=60)
    except httpx.HTTPError as error:
        print(f"alvo similar: {url}: {error}", file=sys.stderr)
        return 1
    if response.status_code != 200:
        message = response.text
        if b"QUERY_STATUS" in response.content:
            from lxml import etree

            root = etree.fromstring(response.content, etree.XMLParser(resolve_entities=False))
            message = "".join(root.xpath("//*[local-name()='INFO'][@name='QUERY_STATUS']/text()"))
        print(f"alvo similar: {message.strip()}", file=sys.stderr)
        return 1
    if args.output:
        with open(args.output, "wb") as out:
            out.write(response.content)
        print(args.output)
        return 0
    table = parse_single_table(io.BytesIO(response.content)).to_table()
    shown = ["query_id", "rank", "distance", "pubdid", "predicted_class", "label", "ra", "dec"]
    table[shown].pprint_all()
    return 0
