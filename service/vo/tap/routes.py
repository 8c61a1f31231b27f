"""TAP 1.1 over the result tables: ``/tap/sync``, VOSI, examples; ``/tap/async`` via uws.

Routes (under ``{base}/tap``):

``/sync`` (GET, POST)
    a ``doQuery`` answered at once (:func:`service.vo.tap.execute.execute`);
    multipart POSTs carry ``UPLOAD=name,param:part`` tables.
``/availability``, ``/capabilities``, ``/tables``, ``/tables/{name}``
    VOSI 1.1 (capabilities with the TAPRegExt record of the service).
``/examples``
    DALI examples (XHTML + RDFa).
``/async``
    a UWS 1.1 job list -- not here: the application's one
    :class:`uws.UWSService` mounts it from :func:`async_job_list`.

Handlers are thin: parameters in, a call into :mod:`service.vo.tap.execute`, a document out.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from service.http.access import caller
from service.http.bodies import read_form
from service.reasons import Reason
from service.settings import Settings
from service.store.archive_roots import public_urls
from service.vo import dali
from service.vo.tap import execute as tap
from service.vo.tap import metadata as vosi
from service.vo.tap import upload
from service.vo.tap.query import TapDatabase
from service.vo.vosi import availability_response
from uws import JobList, UWSService

XML = "text/xml; charset=utf-8"
ASYNC_PATH = "/tap/async"


def async_job_list(settings: Settings) -> JobList:
    """The ``/tap/async`` UWS job list, for the application's :class:`uws.UWSService`."""
    limits = tap.TapLimits.from_settings(settings)
    return JobList(
        "tap",
        "service.vo.tap.execute:run_async",
        path=ASYNC_PATH,
        max_execution_duration=limits.execution_s,
        max_upload_bytes=limits.max_upload_bytes,
        description="TAP 1.1 asynchronous queries (ADQL over the alvo result tables)",
    )


async def _params_and_uploads(
    request: Request, settings: Settings, max_bytes: int
) -> tuple[dali.DaliParams, dict[str, bytes]]:
    """DALI parameters plus the bytes of each UPLOAD table, from a GET or a (multipart) POST."""
    items = list(request.query_params.multi_items())
    files: dict[str, UploadFile] = {}
    if request.method == "POST":
        form = await read_form(request, max_bytes)
        for key, value in form.multi_items():
            if isinstance(value, str):
                items.append((key, value))
            else:
                files[key] = value
    params = dali.DaliParams(items)
    uploads = {}
    for name, part in upload.parse_upload_param(params.getlist("UPLOAD")):
        if upload.is_url(part):
            uploads[name] = await upload.fetch_upload(name, part, settings, max_bytes)
            continue
        if part not in files:
            raise dali.DaliError(Reason.BAD_UPLOAD, f"UPLOAD {name}: no multipart part {part!r}")
        uploads[name] = await files[part].read()
    return params, uploads


def _signed_in(request: Request, settings: Settings) -> bool:
    """Whether the caller gets the signed-in time limit: everyone without ``auth=header``."""
    if settings.auth != "header":
        return True
    return caller(request) is not None


def database(settings: Settings) -> TapDatabase:
    """The result tables as TAP queries them, with the operator's (signed-in) time limit;
    an app keeps it as ``app.state.tap``, whose running queries VOSI availability shows."""
    settings.home.mkdir(parents=True, exist_ok=True)
    limit = float(settings.tap_timeout)
    return TapDatabase(settings.sqlalchemy_url, timeout_s=limit, links=public_urls(settings))


def routes(
    settings: Settings, limits: tap.TapLimits | None = None, db: TapDatabase | None = None
) -> list[BaseRoute]:
    limits = limits or tap.TapLimits.from_settings(settings)
    settings.home.mkdir(parents=True, exist_ok=True)
    db = db or TapDatabase(
        settings.sqlalchemy_url, timeout_s=limits.timeout_s, links=public_urls(settings)
    )
    base = f"{settings.public_url}/tap"

    @dali.endpoint
    async def sync(request: Request) -> Response:
        params, uploads = await _params_and_uploads(request, settings, limits.max_upload_bytes)
        await run_in_threadpool(db.ensure_ready)
        timeout = limits.timeout_s if _signed_in(request, settings) else limits.anonymous_timeout_s
        user = caller(request)
        document = await run_in_threadpool(tap.execute, db, params, uploads, limits, timeout, user)
        return Response(document.body, media_type=document.media_type)

    async def availability(request: Request) -> Response:
        return await run_in_threadpool(availability_response, request, settings)

    async def capabilities(request: Request) -> Response:
        return Response(vosi.capabilities(base, limits.as_dict()), media_type=XML)

    async def tables(request: Request) -> Response:
        detail = request.query_params.get("detail", "max").lower() != "min"
        return Response(vosi.tableset(db.dialect, detail), media_type=XML)

    async def one_table(request: Request) -> Response:
        body = vosi.single_table(db.dialect, request.path_params["name"])
        if body is None:
            return Response("no such table\n", status_code=404, media_type="text/plain")
        return Response(body, media_type=XML)

    async def examples(request: Request) -> Response:
        return Response(vosi.examples_document(), media_type="application/xhtml+xml")

    return [
        Route("/tap/sync", sync, methods=["GET", "POST"]),
        Route("/tap/availability", availability, methods=["GET"]),
        Route("/tap/capabilities", capabilities, methods=["GET"]),
        Route("/tap/tables", tables, methods=["GET"]),
        Route("/tap/tables/{name}", one_table, methods=["GET"]),
        Route("/tap/examples", examples, methods=["GET"]),
    ]


def standalone_app(settings: Settings | None = None) -> Starlette:
    """TAP alone -- sync, VOSI, examples and ``/tap/async`` on its own UWS service.

    For serving just the result tables, and for tests that run a real server:
    ``uvicorn --factory service.vo.tap.routes:standalone_app`` (settings from ``ALVO_*``).
    """
    settings = settings or Settings.from_env()
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.save_snapshot()  # the async runner reads it (Settings.for_job)
    jobs = UWSService(
        settings.sqlalchemy_url,
        "local",
        settings.home / "jobs",
        job_lists=[async_job_list(settings)],
        base_url=settings.public_url,
        workers=1,
    )
    app = Starlette(routes=routes(settings) + jobs.routes(), lifespan=jobs.lifespan)
    app.state.settings = settings
    return app
