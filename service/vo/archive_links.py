"""``/archive/{root_id}/...``: the spectra of the operator's archive roots, over HTTP and DataLink.

A tree-ingested spectrum is recorded by its ``file://`` URL, which no client
elsewhere can open; the service hands out these routes instead (TOPCAT and SPLAT
over SAMP, the candidate VOTables, the labelling page's links; see
:meth:`service.store.archive_roots.Roots.served`):

- ``/archive/{root_id}/{path}``: the file itself, as stored;
- ``/archive/{root_id}/datalink?ID=...``: DataLink {links} of the spectra with these
  publisher DIDs under the root -- ``#this`` (the file above), ``#preview`` and
  ``#proc`` -- made by the same code as the embedded archive's
  (:mod:`service.vo.datalink`), so a client treats both alike;
- ``/archive/{root_id}/preview?ID=...`` and ``/archive/{root_id}/proc?ID=&BAND=...``.

Only regular spectrum files inside a registered root are read
(:meth:`~service.store.archive_roots.Roots.file`, links resolved); the ID is only a key
into the ``spectrum`` table, whose ``file://`` URL was written by the operator's
ingest and is checked again on every read. A path that leaves the root is a DALI
error with ``OUTSIDE_ARCHIVE_ROOT`` (404), as ``/datalink/{collection}/files``
answers for the embedded archive.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from pathlib import Path
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from service.reasons import AlvoError, Reason
from service.settings import Settings
from service.store import archive_roots
from service.store.archive_roots import Roots
from service.store.datasets import Datasets
from service.vo import dali
from service.vo.datalink import (
    LINKS_MEDIA_TYPE,
    Described,
    cached_png,
    link_rows,
    links_votable,
    not_found_row,
    proc_arguments,
    proc_body,
    requested_ids,
    single,
    soda_endpoint,
)
from service.vo.holdings import COLLECTIONS
from service.vo.ssa import FITS_MEDIA_TYPE

#: What a compressed file (LAMOST's ``.fits.gz``) is sent as: the bytes as stored.
GZIP_MEDIA_TYPE = "application/gzip"
#: Spectra looked at per ID: the same file ingested into several datasets.
SAME_ID = 20


def media_type(name: str) -> str:
    return GZIP_MEDIA_TYPE if name.lower().endswith(".gz") else FITS_MEDIA_TYPE


@dataclasses.dataclass(frozen=True)
class Held:
    """One spectrum of a root: its path below the root, the checked file, its description."""

    relative: str
    path: Path
    described: Described


def held(settings: Settings, roots: Roots, rid: str, identifier: str) -> Held:
    """The spectrum with publisher DID ``identifier`` whose file lies under root ``rid``."""
    names = ("pubdid", "obsid", "object", "ra", "dec", "mjd", "collection", "access_url")
    for row in Datasets(settings).with_pubdid(identifier, names, SAME_ID):
        place = roots.place(row["access_url"] or "")
        if place is not None and place[0] == rid:
            collection = row["collection"] or ""
            known = COLLECTIONS.get(collection.lower())
            ra, dec, mjd = (
                math.nan if row[n] is None else float(row[n]) for n in ("ra", "dec", "mjd")
            )
            described = Described(
                identifier, row["obsid"] or "", row["object"] or "", ra, dec, mjd, collection,
                known.instrument if known else collection or "archive tree",
            )  # fmt: skip
            return Held(place[1], roots.file(*place), described)
    raise dali.DaliError(
        Reason.UNKNOWN_DATASET, f"no spectrum {identifier!r} in archive root {rid}", 404
    )


def links_document(
    settings: Settings, rid: str, ids: list[str], serialization: str = "tabledata"
) -> bytes:
    """The {links} VOTable of these IDs under root ``rid`` (unknown IDs as error rows)."""
    roots = archive_roots.load(settings)
    roots.require(rid)
    base = f"{settings.public_url}/{archive_roots.ROUTE}/{rid}"
    rows: list[dict[str, object]] = []
    for identifier in ids:
        try:
            spectrum = held(settings, roots, rid, identifier)
        except AlvoError as error:
            rows.append(not_found_row(identifier, error.detail or str(error)))
            continue
        url = archive_roots.served(settings.public_url, rid, spectrum.relative)
        file = (url, media_type(spectrum.path.name), spectrum.path.stat().st_size)
        preview = f"{base}/preview?ID={quote(identifier, safe='')}"
        rows += link_rows(identifier, file, preview, spectrum.described.instrument)
    return links_votable(rows, f"{base}/proc", serialization)


def routes(settings: Settings) -> list[BaseRoute]:
    cache_dir = settings.home / "cache" / "datalink-preview"

    def spectrum_of(request: Request, identifier: str | None) -> Held:
        if identifier is None:
            raise dali.bad_parameter("ID", "missing; give the publisher DID of a spectrum")
        rid = request.path_params["root_id"]
        return held(settings, archive_roots.load(settings), rid, identifier)

    @dali.endpoint
    async def file(request: Request) -> Response:
        rid, relative = request.path_params["root_id"], request.path_params["path"]

        def find() -> str:
            return str(archive_roots.load(settings).file(rid, relative))

        path = await run_in_threadpool(find)
        return FileResponse(path, media_type=media_type(path))

    @dali.endpoint
    async def links(request: Request) -> Response:
        params = await dali.DaliParams.from_request(request)
        ids = requested_ids(params)
        fmt = dali.response_format(params)
        rid = request.path_params["root_id"]
        body = await run_in_threadpool(links_document, settings, rid, ids, fmt.serialization)
        media = LINKS_MEDIA_TYPE if fmt.media_type == dali.VOTABLE_MEDIA_TYPE else fmt.media_type
        return Response(body, media_type=media)

    @dali.endpoint
    async def preview(request: Request) -> Response:
        params = await dali.DaliParams.from_request(request)
        identifier = single(params, "ID")

        def draw() -> Path:
            spectrum = spectrum_of(request, identifier)
            name = hashlib.blake2b(str(identifier).encode(), digest_size=12).hexdigest()
            target = cache_dir / f"archive-{request.path_params['root_id']}" / f"{name}.png"
            return cached_png(target, spectrum.path, spectrum.described.title)

        return FileResponse(await run_in_threadpool(draw), media_type="image/png")

    @soda_endpoint
    async def proc(request: Request) -> Response:
        params = await dali.DaliParams.from_request(request)
        identifier = single(params, "ID")
        band, media = proc_arguments(params)

        def make() -> bytes:
            spectrum = spectrum_of(request, identifier)
            return proc_body(spectrum.path, spectrum.described, band, media)

        return Response(await run_in_threadpool(make), media_type=media)

    base = f"/{archive_roots.ROUTE}/{{root_id}}"
    return [  # the services before the files: no spectrum file is named like them
        Route(f"{base}/datalink", links, methods=["GET", "POST"]),
        Route(f"{base}/preview", preview, methods=["GET"]),
        Route(f"{base}/proc", proc, methods=["GET", "POST"]),
        Route(f"{base}/{{path:path}}", file, methods=["GET", "HEAD"]),
    ]
