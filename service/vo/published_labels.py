"""The embedded archive's published labels: ``/archive/ondrejov/labels.csv``.

The real Ondrejov archive's labelled set comes as a file of publisher DIDs and
classes beside its SSA service; the demo archive publishes its source
collection's labels the same way, so an ingest can take ``LABELS=<this URL>``.
The target pool's ground truth is *not* published: finding it is the oracle's
job (the simulated-oracle benchmark reads it from the catalogue directly).
"""

from __future__ import annotations

import csv
import io

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from service.archive.classes import UNKNOWN
from service.reasons import AlvoError
from service.settings import Settings
from service.vocabulary import NOT_SURE

#: Collections whose labels are public (the labelled source instrument).
LABELLED = ("ondrejov",)
#: Catalogue labels as oracle verdicts ('unknown' is what the Ondrejov file calls not sure).
VERDICT = {UNKNOWN: NOT_SURE}


def labels_csv(settings: Settings, collection: str) -> bytes:
    from service.archive.catalogue import load_catalogue

    table = load_catalogue(settings.home, collection)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["pubdid", "label"])
    for pubdid, label in zip(table["pubdid"], table["label"], strict=True):
        writer.writerow([pubdid, VERDICT.get(str(label), str(label))])
    return out.getvalue().encode()


def routes(settings: Settings) -> list[BaseRoute]:
    async def labels(request: Request) -> Response:
        collection = request.path_params["collection"]
        if collection not in LABELLED:
            return PlainTextResponse(
                f"{collection!r} publishes no labels: only the source collection "
                f"({', '.join(LABELLED)}) is a labelled set; the pool's classes are for the "
                "oracle to find",
                status_code=404,
            )
        try:
            body = await anyio.to_thread.run_sync(labels_csv, settings, collection)
        except AlvoError as error:
            return PlainTextResponse(str(error), status_code=404)
        return Response(body, media_type="text/csv")

    return [Route("/archive/{collection}/labels.csv", labels, methods=["GET"])]
