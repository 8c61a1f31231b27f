"""``alvo samp send|listen``: hand results to VO desktop tools and take labels back."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "samp",
        help="send results to TOPCAT/Aladin/SPLAT-VO, or receive labels from them",
        description=(
            "Talk to desktop VO tools over SAMP. A hub must be running (TOPCAT and Aladin "
            "start one; or run `jsamp hub`)."
        ),
    )
    actions = parser.add_subparsers(dest="samp_action", metavar="ACTION", required=True)

    send = actions.add_parser(
        "send",
        help="send a job's VOTable results, a VOTable or a FITS spectrum to SAMP clients",
        description=(
            "Send the VOTable results of a UWS job (candidates, query batch...) to SAMP "
            "clients as table.load.votable, each under its result name; tables without "
            "positions (metrics) are not sent to sky viewers such as Aladin, which cannot "
            "show them. URL is a job URL such as "
            "http://127.0.0.1:8000/iterate/42, the URL of a VOTable, or the URL of a FITS "
            "spectrum (sent as spectrum.load.ssa-generic, for SPLAT-VO)."
        ),
    )
    send.add_argument("url", metavar="URL", help="UWS job URL or VOTable URL")
    send.add_argument("--result", action="append", help="only these result ids (repeatable)")
    send.add_argument("--to", metavar="CLIENT", help="samp.name of one client, e.g. topcat")
    send.set_defaults(func=send_command)

    listen = actions.add_parser(
        "listen",
        help="turn tables sent from TOPCAT with a 'label' column into oracle labels",
        description=(
            "Register as 'alvo' on the hub and wait. In TOPCAT, add a 'label' column "
            "(single-peak, double-peak, absorption, not-sure, bad) to a candidate table and "
            "send it to alvo: the labels are posted to the campaign on the service. Tables "
            "of another campaign are refused; sending the same labels again adds nothing."
        ),
    )
    listen.add_argument("--service", default="http://127.0.0.1:8000", help="alvo service URL")
    listen.add_argument("--campaign", required=True, help="campaign the labels belong to")
    listen.set_defaults(func=listen_command)


def send_command(args: argparse.Namespace) -> int:
    from service.net.uws_client import NotATableError, votable_results
    from service.vo import samp

    try:
        tables = votable_results(args.url, only=args.result)
    except NotATableError:
        meta = {"ssa:Access.Reference": args.url, "ssa:Access.Format": "application/fits"}
        message = samp.spectrum_load_message(args.url, meta, args.url, args.url.rsplit("/")[-1])
        with samp.connect() as client:
            samp.SampMessenger(client).send(message, args.to)
        print(f"sent spectrum {args.url} (spectrum.load.ssa-generic)")
        return 0
    except (OSError, ValueError) as error:
        print(f"alvo samp send: {error}", file=sys.stderr)
        return 1
    if not tables:
        print(f"alvo samp send: {args.url} has no VOTable results to send", file=sys.stderr)
        return 1
    from service.net.uws_client import fetch

    named: dict[str, tuple[str, bool]] = {}
    for result_id, url in tables.items():
        body, _ = fetch(url)
        fallback = url.rstrip("/").rsplit("/", 1)[-1]
        name = samp.table_name(body, fallback) if result_id == "table" else result_id
        named[name] = (url, samp.has_positions(body))
    with samp.connect() as client:
        for name, clients in samp.send_tables(client, named, args.to).items():
            url, positional = named[name]
            why = "" if positional else " (no positions: not sent to sky viewers)"
            print(f"sent {name}: {url} -> {', '.join(clients) or 'no client'}{why}")
    return 0


def listen_command(args: argparse.Namespace) -> int:
    import threading

    import httpx

    from service.vo import samp

    endpoint = f"{args.service.rstrip('/')}/campaigns/{args.campaign}/labels"

    def post(labels: list[samp.OracleLabel]) -> None:
        payload = {
            "source": "samp",
            "labels": [
                {"spectrum": x.spectrum, "label": x.label}
                | ({} if x.comment is None else {"comment": x.comment})
                | ({} if x.flag is None else {"flag": x.flag})
                for x in labels
            ],
        }
        response = httpx.post(endpoint, json=payload, timeout=30)
        response.raise_for_status()
        outcome = response.json()
        print(
            f"{outcome['stored']} labels stored at {endpoint}, "
            f"{outcome.get('unchanged', 0)} already there"
        )

    with samp.connect(name="alvo") as client:
        samp.LabelListener(client, post, args.campaign).register()
        print("listening for tables from TOPCAT (Ctrl-C to stop)")
        threading.Event().wait()
    return 0
