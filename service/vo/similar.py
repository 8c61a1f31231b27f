""" "More like this" over HTTP: ``/similar?ID=...&K=10`` -> a VOTable of the nearest pool spectra.

A DAL-style synchronous service (parse -> pure function -> VOTable, as ``ssa`` and
``datalink``): for each ``ID`` (a spectrum's publisher DID, as in every candidate table,
TAP row and SAMP-sent row, or its alvo ``spectrum_id``) the ``K`` pool spectra nearest
to it in the network's embedding of a campaign's iteration, nearest first, with their
predictions, positions and links (``votable_templates/similar.xml``; TOPCAT opens it and
its DataLink descriptor opens each spectrum). Parameters:

``ID``        one or more spectra of the campaign's pool (repeat the parameter)
``K``         neighbours per ID (default 10, at most :data:`MAX_K`)
``CAMPAIGN``  whose pool and embedding (default: the newest campaign whose pool holds
              the first ID and that has an index)
``ITERATION`` whose model's embedding (default: the newest indexed iteration)
``RESPONSEFORMAT``  TABLEDATA (default) or BINARY2, as everywhere

The index is the one the iterate job built (:mod:`service.learn.similar`), found by
:func:`service.store.predictions.similarity_index_file`; loaded once per process.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from service.http.access import caller
from service.learn.similar import SimilarityIndex
from service.reasons import AlvoError, Reason
from service.settings import Settings
from service.store import archive_roots
from service.store.campaigns import Campaign, Campaigns
from service.store.candidates import spectrum_rows
from service.store.engine import engine_for
from service.store.predictions import latest_similarity_index
from service.vo import dali, templates

DEFAULT_K = 10
MAX_K = 1000
MAX_IDS = 100


def routes(settings: Settings) -> list[BaseRoute]:
    """``/similar`` (GET and POST)."""

    @dali.endpoint
    async def similar(request: Request) -> Response:
        params = await dali.DaliParams.from_request(request)
        ids, k = parse_query(params)
        fmt = dali.response_format(params)
        campaign, iteration = params.get("CAMPAIGN"), params.get("ITERATION")
        number = _iteration(iteration)
        user = caller(request)

        def answer() -> bytes:
            return similar_document(settings, ids, k, campaign, number, fmt.serialization, user)

        return dali.votable_response(await run_in_threadpool(answer), fmt)

    return [Route("/similar", similar, methods=["GET", "POST"])]


def parse_query(params: dali.DaliParams) -> tuple[list[str], int]:
    ids = [i.strip() for i in params.getlist("ID") if i.strip()]
    if not ids:
        raise dali.bad_parameter("ID", "give the spectrum: ID=its publisher DID")
    if len(ids) > MAX_IDS:
        raise dali.bad_parameter("ID", f"at most {MAX_IDS} IDs per request")
    text = (params.get("K") or str(DEFAULT_K)).strip()
    if not text.isdecimal() or not 1 <= int(text[:6]) <= MAX_K or len(text) > 6:
        raise dali.bad_parameter("K", f"a whole number from 1 to {MAX_K}, not {text[:40]!r}")
    return ids, int(text)


def _iteration(text: str | None) -> int | None:
    if text is None or not text.strip():
        return None
    if not text.strip().isdecimal() or len(text.strip()) > 9:
        raise dali.bad_parameter("ITERATION", f"an iteration number, not {text[:40]!r}")
    return int(text)


def similar_document(
    settings: Settings,
    ids: list[str],
    k: int,
    campaign_name: str | None = None,
    iteration: int | None = None,
    serialization: str = "tabledata",
    user: str | None = None,
) -> bytes:
    """The neighbours of each ID as ``votable_templates/similar.xml``, among the
    campaigns ``user`` may see (:meth:`Campaigns.seen_by`)."""
    campaign, number, found = neighbours_of(settings, ids, k, campaign_name, iteration, user)
    engine = engine_for(settings.sqlalchemy_url)
    described = spectrum_rows(engine, campaign.campaign_id, number, [f[2] for f in found])
    table = [{**described[sid], "query_id": q, "rank": r, "distance": d} for q, r, sid, d in found]
    table = archive_roots.load(settings).served_rows(table, settings.public_url)
    return _votable(table, campaign.name, number, k, serialization)


def neighbours_of(
    settings: Settings,
    ids: list[str],
    k: int,
    campaign_name: str | None = None,
    iteration: int | None = None,
    user: str | None = None,
) -> tuple[Campaign, int, list[tuple[str, int, int, float]]]:
    """(campaign, iteration of the index, ``[(ID, rank, spectrum_id, distance)]``): the ``k``
    nearest pool spectra of each ID (a publisher DID or spectrum_id of the pool), nearest
    first, among the campaigns ``user`` may see; what ``/similar`` and the oracle page's
    key ``m`` answer from."""
    campaigns = Campaigns(settings).seen_by(user)
    campaign, number, path = _index_of(settings, campaigns, ids[0], campaign_name, iteration)
    index = _load(str(path), path.stat().st_mtime_ns)
    rows_of = campaigns.datasets.rows_of(campaign.target, ids)
    missing = [i for i in ids if i not in rows_of]
    if missing:
        raise AlvoError(
            Reason.UNKNOWN_SPECTRUM,
            f"{missing[0]!r} is not a spectrum of campaign {campaign.name!r}'s pool "
            f"({campaign.target.name}); give a publisher DID or spectrum_id of that dataset",
        )
    near: list[tuple[str, int, int, float]] = []  # (ID, rank, pool row, distance)
    for identifier in ids:
        row = rows_of[identifier]
        if row not in index:
            continue  # a spectrum without finite features has no embedding: no neighbours
        rows, distances = index.neighbours(index.vector(row), k, exclude=row)
        for rank, (r, d) in enumerate(zip(rows, distances, strict=True), 1):
            near.append((identifier, rank, int(r), float(d)))
    pool_ids = campaigns.datasets.ids_at_rows(campaign.target, [n[2] for n in near])
    found = [(q, rank, int(pool_ids[r]), d) for q, rank, r, d in near if r in pool_ids]
    return campaign, number, found


def _index_of(
    settings: Settings,
    campaigns: Campaigns,
    first_id: str,
    name: str | None,
    iteration: int | None,
) -> tuple[Campaign, int, Path]:
    """The campaign, iteration and index file that answer (named, or found by the first ID)."""
    if name:
        chosen = [campaigns.require(name)]
    else:
        every = [c for c in (campaigns.get(n) for n in campaigns.names()) if c is not None]
        chosen = sorted(
            (c for c in every if campaigns.datasets.rows_of(c.target, [first_id])),
            key=lambda c: -c.campaign_id,
        )
        if not chosen:
            raise AlvoError(
                Reason.UNKNOWN_SPECTRUM,
                f"no campaign's pool holds {first_id!r}; give CAMPAIGN and an ID of its pool",
            )
    for campaign in chosen:
        last = campaigns.last_iteration(campaign)
        if iteration is not None and (last is None or iteration > last):
            raise AlvoError(
                Reason.UNKNOWN_ITERATION, f"campaign {campaign.name!r} has no iteration {iteration}"
            )
        found = latest_similarity_index(settings.home, campaign.campaign_id, last, iteration)
        if found is not None:
            return campaign, found[0], found[1]
    raise AlvoError(
        Reason.NO_SIMILARITY_INDEX,
        f"campaign {chosen[0].name!r} has no 'more like this' index"
        + (f" for iteration {iteration}" if iteration is not None else "")
        + f": run /iterate CAMPAIGN={chosen[0].name}",
    )


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime_ns: int) -> SimilarityIndex:
    """An index file, read once per process (the modification time is part of the key)."""
    return SimilarityIndex.load(Path(path))


def _votable(
    rows: list[dict[str, Any]], campaign: str, iteration: int, k: int, serialization: str
) -> bytes:
    document = templates.load("similar.xml")
    document.by_id("info_campaign").set("value", campaign)
    document.by_id("info_iteration").set("value", str(iteration))
    document.by_id("info_k").set("value", str(k))

    def column(name: str, dtype: Any = object) -> np.ndarray:
        values = [row.get(name) for row in rows]
        if dtype is object:
            return np.array(values, dtype=object)
        return np.array([np.nan if v is None else v for v in values], dtype=dtype)

    text = ("query_id", "pubdid", "obsid", "designation", "predicted_class", "label", "simbad_id")
    floats = ("snr", "entropy", "p_single_peak", "p_double_peak", "p_absorption", "distance")
    document.fill(
        "similar",
        {
            **{name: column(name) for name in (*text, "access_url")},
            **{name: column(name, np.float32) for name in floats},
            "rank": np.array([row["rank"] for row in rows], dtype=np.int32),
            "ra": column("ra", float),
            "dec": column("dec", float),
            "access_format": np.array(["application/fits"] * len(rows), dtype=object),
            "datalink": column("datalink_url"),
        },
        serialization,
    )
    bases = {str(row["datalink_url"]).split("?", 1)[0] for row in rows if row.get("datalink_url")}
    if len(bases) == 1:
        document.set_param("dl_accessURL", bases.pop())
    else:  # no one DataLink service for every row: no descriptor to offer
        document.remove("//v:RESOURCE[@ID='datalink_service']")
    return document.to_bytes()
