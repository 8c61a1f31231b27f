"""``/archive/{root_id}/{path}``: the spectrum files of the operator's archive roots over HTTP.

A tree-ingested spectrum is recorded by its ``file://`` URL, which no client
elsewhere can open; the service hands out this route instead (TOPCAT and SPLAT
over SAMP, the candidate VOTables, the labelling page's links; see
:meth:`service.archive_roots.Roots.served_url`). Only regular spectrum files
inside a registered root are served (:meth:`~service.archive_roots.Roots.file`);
a path that leaves it is a DALI error with ``OUTSIDE_ARCHIVE_ROOT`` (404), as the
embedded archive's ``/datalink/{collection}/files`` answers.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from service import archive_roots
from service.settings import Settings
from service.vo import dali
from service.vo.ssa import FITS_MEDIA_TYPE

#: What a compressed file (LAMOST's ``.fits.gz``) is sent as: the bytes as stored.
GZIP_MEDIA_TYPE = "application/gzip"


def media_type(name: str) -> str:
    return GZIP_MEDIA_TYPE if name.lower().endswith(".gz") else FITS_MEDIA_TYPE


def routes(settings: Settings) -> list[BaseRoute]:
    @dali.endpoint
    async def file(request: Request) -> Response:
        rid, relative = request.path_params["root_id"], request.path_params["path"]

        def find() -> str:
            return str(archive_roots.load(settings).file(rid, relative))

        path = await run_in_threadpool(find)
        return FileResponse(path, media_type=media_type(path))

    path = f"/{archive_roots.ROUTE}/{{root_id}}/{{path:path}}"
    return [Route(path, file, methods=["GET", "HEAD"])]
