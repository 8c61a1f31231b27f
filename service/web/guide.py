"""The labelling guide: what each class looks like in the campaign's own source set, and
the written conventions for the hard cases (docs/labelling.md).

``/campaigns/{name}/guide`` answers one JSON document: per class a few *real* labelled
source spectra (not a mean: an expert compares shapes), chosen deterministically as
the ones whose adapted 140-pixel vector lies nearest the mean of their class (the
most typical; ties by row), each with its native window when the ingest left the
file in the cache; and the conventions, read from ``static/conventions.json``, the
one file the page and the documentation both show.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import anyio.to_thread
import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from service.settings import Settings
from service.store import archive_roots
from service.store.campaigns import Campaigns
from service.vocabulary import CLASSES, FEATURE_PIXELS, FEATURE_WINDOW
from service.web.api import _guarded
from service.web.oracle import WINDOW, encode, spectrum_views_of

#: The conventions' one source (the page loads it from here; docs/labelling.md quotes it).
CONVENTIONS = Path(__file__).with_name("static") / "conventions.json"
#: Exemplars shown per class.
PER_CLASS = 3
#: What the guide says of how the exemplars were chosen.
CHOSEN = (
    "labelled source spectra whose adapted vector is nearest the mean of their class "
    "(the most typical), from the campaign's own source set"
)


@functools.cache
def conventions() -> dict[str, Any]:
    """The written conventions for the hard cases (``static/conventions.json``)."""
    data: dict[str, Any] = json.loads(CONVENTIONS.read_text(encoding="utf-8"))
    return data


def typical_rows(
    features: np.ndarray, labels: dict[int, str], per_class: int
) -> dict[str, list[int]]:
    """``{class: feature rows}``: the ``per_class`` labelled rows of each class nearest the
    class's mean vector (RMS over the pixels), nearest first; ties go to the lower row."""
    chosen: dict[str, list[int]] = {}
    for name in CLASSES:
        rows = np.array(
            sorted(r for r, v in labels.items() if v == name and r < len(features)), int
        )
        if not len(rows):
            continue
        vectors = features[rows]
        finite = np.isfinite(vectors).all(axis=1)
        rows, vectors = rows[finite], vectors[finite]
        if not len(rows):
            continue
        distance = np.sqrt(((vectors - vectors.mean(axis=0)) ** 2).mean(axis=1))
        chosen[name] = [int(rows[i]) for i in np.lexsort((rows, distance))[:per_class]]
    return chosen


def guide(settings: Settings, name: str, per_class: int = PER_CLASS) -> dict[str, Any]:
    """The guide's document for campaign ``name``."""
    campaigns = Campaigns(settings)
    campaign = campaigns.require(name)
    source = campaign.source
    features = source.features.array()
    chosen = typical_rows(features, campaigns.datasets.source_labels(source), per_class)
    every = [row for rows in chosen.values() for row in rows]
    meta = campaigns.datasets.at_rows(
        source, every, ("pubdid", "designation", "object", "access_url", "collection")
    )
    views = spectrum_views_of(
        settings, archive_roots.load(settings), [meta[r]["access_url"] or "" for r in every]
    )
    native = dict(zip(every, views.native, strict=True))
    return {
        "campaign": campaign.name,
        "source": source.name,
        "chosen": CHOSEN,
        "window": list(WINDOW),
        "grid": [*FEATURE_WINDOW, FEATURE_PIXELS],
        "wavelengths": views.native_grids,
        "classes": {
            label: [
                {
                    "row": row,
                    "label": label,
                    "pubdid": meta[row]["pubdid"],
                    "designation": meta[row]["designation"] or meta[row]["object"],
                    "collection": meta[row]["collection"],
                    "adapted": encode(features[row]),
                    "spectrum": native[row],
                }
                for row in rows
            ]
            for label, rows in chosen.items()
        },
        **conventions(),
    }


def routes(settings: Settings) -> list[BaseRoute]:
    async def handler(request: Request) -> Response:
        name = request.path_params["name"]
        document = await anyio.to_thread.run_sync(guide, settings, name)
        return JSONResponse(document, headers={"Cache-Control": "no-store"})

    return [Route("/campaigns/{name}/guide", _guarded(handler), methods=["GET"])]
