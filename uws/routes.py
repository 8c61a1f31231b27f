"""HTTP binding of UWS 1.1 (Starlette): translate requests to :class:`uws.service.UWSService` calls.

Handlers stay thin: read parameters (names case-insensitive), call the service,
answer with a document or a 303. Every :class:`uws.models.UWSError` becomes a
``text/plain`` answer with its status. Uploads follow DALI: ``UPLOAD=name,param:part``
names a multipart part that is stored in the job's ``uploads/`` folder, and
``UPLOAD=name,https://...`` is passed to the runner as a URL. A file part that
no UPLOAD mentions is stored as if ``UPLOAD=part,param:part`` had been given.
The request body is capped at the list's ``max_upload_bytes`` (HTTP 413).
"""

from __future__ import annotations

import functools
import logging
import re
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import BaseRoute, Route

from uws import models, rerun, xml
from uws.joblist import JobList
from uws.models import (
    BadRequestError,
    JobFilter,
    JobParameters,
    NotFoundError,
    PayloadTooLargeError,
    UWSError,
)
from uws.store import RETRY_AFTER_S, is_busy, is_disk_full, is_unavailable

XML_TYPE = "text/xml"
VOTABLE_TYPE = "application/x-votable+xml"
#: An upload's name: it becomes a file name under the job's ``uploads/`` ('..' never does).
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
#: Largest text parameter value (files are not limited by this, only by the body's limit).
MAX_FIELD_BYTES = 1 << 20
#: Request parameters that steer UWS instead of being job parameters.
_CONTROL = {"phase", "runid", "action", "executionduration", "destruction"}

Handler = Callable[[Request], Awaitable[Response]]
LOG = logging.getLogger(__name__)


def stylesheet_route() -> BaseRoute:
    """``GET /uws.xsl``: the XSLT that job lists and jobs name, so that a browser shows
    them as HTML tables with links (:data:`uws.xml.STYLESHEET`)."""

    async def stylesheet(request: Request) -> Response:
        return FileResponse(xml.STYLESHEET, media_type="text/xsl")

    return Route("/uws.xsl", stylesheet, methods=["GET"])


def job_list_routes(service: Any, job_list: JobList) -> list[BaseRoute]:
    """All UWS 1.1 resources of one job list, under ``job_list.mount_path``."""
    h = _Handlers(service, job_list)
    base = job_list.mount_path
    return [
        Route(base, h.jobs, methods=["GET", "POST"]),
        Route(base + "/{job_id}", h.job, methods=["GET", "POST", "DELETE"]),
        Route(base + "/{job_id}/phase", h.phase, methods=["GET", "POST"]),
        Route(base + "/{job_id}/executionduration", h.execution_duration, methods=["GET", "POST"]),
        Route(base + "/{job_id}/destruction", h.destruction, methods=["GET", "POST"]),
        Route(base + "/{job_id}/quote", h.quote, methods=["GET"]),
        Route(base + "/{job_id}/owner", h.owner_id, methods=["GET"]),
        Route(base + "/{job_id}/parameters", h.parameters, methods=["GET", "POST"]),
        Route(base + "/{job_id}/results", h.results, methods=["GET"]),
        Route(base + "/{job_id}/results/{result_id}", h.result, methods=["GET"]),
        Route(base + "/{job_id}/error", h.error, methods=["GET"]),
        Route(base + "/{job_id}/again", h.again, methods=["GET", "POST"]),
    ]


def _uws(handler: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
    """Turn refusals into plain-text answers with their HTTP status; a bug into a bare 500."""

    @functools.wraps(handler)
    async def wrapped(self: _Handlers, request: Request) -> Response:
        try:
            return await handler(self, request)
        except UWSError as error:
            return PlainTextResponse(error.text + "\n", status_code=error.status)
        except Exception as error:  # the log has the traceback, the client only the fact
            if is_busy(error):
                LOG.warning("%s %s: %s", request.method, request.url.path, error.args[0])
                return PlainTextResponse(
                    "DATABASE_BUSY: another job is writing a large result; try again shortly\n",
                    status_code=503,
                    headers={"Retry-After": str(RETRY_AFTER_S)},
                )
            if is_unavailable(error):
                LOG.warning("%s %s: database unavailable", request.method, request.url.path)
                return PlainTextResponse(
                    "DATABASE_UNAVAILABLE: the database does not answer; try again shortly\n",
                    status_code=503,
                    headers={"Retry-After": str(RETRY_AFTER_S)},
                )
            if is_disk_full(error):
                LOG.error("%s %s: disk full: %s", request.method, request.url.path, error)
                return PlainTextResponse(
                    "DISK_FULL: the service's disk is full; nothing was stored\n",
                    status_code=507,
                )
            LOG.error("internal error answering %s %s", request.method, request.url.path,
                      exc_info=None if isinstance(error, RecursionError) else error)  # fmt: skip
            return PlainTextResponse(
                "INTERNAL_ERROR: the service failed; the operator's log has the details\n",
                status_code=500,
            )

    return wrapped


def _params(items: Any) -> list[tuple[str, Any]]:
    """Parameters with lower-case names; text XML cannot carry is refused here, at the door."""
    pairs = [(str(k).lower(), v) for k, v in items]
    for name, value in pairs:
        models.check_xml_text(name, "a parameter name")
        if isinstance(value, str):
            models.check_xml_text(value, f"parameter {name[:40]!r}")
    return pairs


def _last(items: list[tuple[str, Any]], name: str) -> str | None:
    values = [v for k, v in items if k == name and isinstance(v, str)]
    return values[-1] if values else None


def _all(items: list[tuple[str, Any]], name: str) -> list[str]:
    return [v for k, v in items if k == name and isinstance(v, str)]


def capped_request(request: Request, limit: int, refuse: Callable[[], Exception]) -> Request:
    """``request`` whose body raises ``refuse()`` once more than ``limit`` bytes came.

    A declared Content-Length above the limit is refused before anything is read; a
    body that lies about its length (or is chunked) is cut while it streams, so a huge
    upload never sits in memory.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdecimal() and int(declared) > limit:
        raise refuse()
    received = 0

    async def receive() -> Any:
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise refuse()
        return message

    return Request(request.scope, receive)


class _Handlers:
    def __init__(self, service: Any, job_list: JobList) -> None:
        self.service = service
        self.job_list = job_list

    # -- helpers ------------------------------------------------------------------------------

    def owner(self, request: Request) -> str | None:
        return self.service.authenticator(request)

    def list_url(self, request: Request) -> str:
        base = self.service.base_url or str(request.base_url).rstrip("/")
        return base + self.job_list.mount_path

    def stylesheet(self, request: Request) -> str:
        """URL of the XSLT the job list and job documents name (``/uws.xsl``)."""
        return (self.service.base_url or str(request.base_url).rstrip("/")) + "/uws.xsl"

    def job_url(self, request: Request, job_id: str) -> str:
        return f"{self.list_url(request)}/{job_id}"

    def see_job(self, request: Request, job_id: str) -> Response:
        return RedirectResponse(self.job_url(request, job_id), status_code=303)

    async def form(self, request: Request) -> list[tuple[str, Any]]:
        """Query and body parameters (names lower-cased), the body capped in size."""
        items = _params(request.query_params.multi_items())
        if request.method != "POST":
            return items
        limit = self.job_list.max_upload_bytes
        limited = capped_request(
            request,
            limit,
            lambda: PayloadTooLargeError(f"request body larger than the limit of {limit} bytes"),
        )
        try:
            form = await limited.form(
                max_files=1000, max_fields=10000, max_part_size=min(limit, MAX_FIELD_BYTES)
            )
        except PayloadTooLargeError:
            raise
        except Exception as error:  # malformed multipart and the like
            detail = str(getattr(error, "detail", None) or error)
            if "exceeded maximum size" in detail:
                raise PayloadTooLargeError(
                    f"a parameter value is larger than {MAX_FIELD_BYTES} bytes; send large "
                    "tables as a file part (UPLOAD)"
                ) from None
            raise BadRequestError(
                f"unreadable request body: {error}", reason="BAD_REQUEST_BODY"
            ) from None
        return items + _params(form.multi_items())

    async def save_uploads(
        self, job_id: str, items: list[tuple[str, Any]]
    ) -> tuple[list[tuple[str, str]], dict[str, str]]:
        """Split parameters from files; store DALI uploads; return (parameters, uploads)."""
        files = {k: v for k, v in items if isinstance(v, UploadFile)}
        pairs = [(k, v) for k, v in items if isinstance(v, str) and k not in _CONTROL]
        referenced = set()
        uploads: dict[str, str] = {}
        for _, value in [(k, v) for k, v in pairs if k == "upload"]:
            for spec in filter(None, (s.strip() for s in value.split(";"))):
                name, _, uri = spec.partition(",")
                name, uri = name.strip(), uri.strip()
                if not _NAME.match(name) or not uri:
                    raise BadRequestError(
                        f"UPLOAD must be 'name,URI' (DALI) with a name of letters, digits, "
                        f"'_', '.', '-' starting with a letter or digit, not {spec[:80]!r}",
                        reason="BAD_UPLOAD",
                    )
                if uri.startswith("param:"):
                    part = uri[len("param:") :].lower()
                    if part not in files:
                        raise BadRequestError(
                            f"UPLOAD {name}: no multipart file part named {part[:80]!r}",
                            reason="BAD_UPLOAD",
                        )
                    uploads[name] = await self.store_file(job_id, name, files[part])
                    referenced.add(part)
                elif uri.startswith(("http://", "https://")):
                    uploads[name] = uri
                else:
                    raise BadRequestError(
                        f"UPLOAD {name}: URI must be param:part or http(s)://", reason="BAD_UPLOAD"
                    )
        for part, upload in files.items():
            if part not in referenced:
                if not _NAME.match(part):
                    raise BadRequestError(
                        f"upload part name {part[:80]!r} is not a simple name", reason="BAD_UPLOAD"
                    )
                uploads[part] = await self.store_file(job_id, part, upload)
                pairs.append(("upload", f"{part},param:{part}"))
        return pairs, uploads

    async def store_file(self, job_id: str, name: str, upload: UploadFile) -> str:
        relative = f"uploads/{name}"
        target = self.service.job_dir(job_id) / relative

        def copy() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            upload.file.seek(0)
            with target.open("wb") as out:
                shutil.copyfileobj(upload.file, out, 1 << 20)

        await anyio.to_thread.run_sync(copy)
        return relative

    async def posted(self, request: Request, name: str, hint: str) -> str:
        """The one value a POST to a job property must carry (400 without it)."""
        value = _last(await self.form(request), name)
        if value is None:
            raise BadRequestError(f"this POST needs {name.upper()}={hint}")
        return value

    async def job_record(self, request: Request) -> models.JobRecord:
        return await self.service.get(
            self.job_list, self.owner(request), request.path_params["job_id"]
        )

    def text(self, value: str) -> Response:
        return PlainTextResponse(value)

    # -- resources ----------------------------------------------------------------------------

    @_uws
    async def jobs(self, request: Request) -> Response:
        owner = self.owner(request)
        if request.method == "GET":
            items = _params(request.query_params.multi_items())
            where = JobFilter.from_query(
                _all(items, "phase"), _all(items, "after"), _all(items, "last")
            )
            refs = await self.service.list_jobs(self.job_list, owner, where)
            return Response(
                xml.job_list_document(refs, self.list_url(request), self.stylesheet(request)),
                media_type=XML_TYPE,
            )
        make = functools.partial(self.service.create, self.job_list, owner)
        return await self.new_job(request, make, "on job creation")

    async def new_job(
        self, request: Request, make: Callable[..., Awaitable[Any]], when: str
    ) -> Response:
        """Create a job from the posted form with ``make(parameters, **options)`` (a new
        job, or a job run again) and answer 303 to it; all or nothing: no folder is
        left of a job that does not exist."""
        items = await self.form(request)
        phase = _last(items, "phase")
        if phase is not None and phase.upper() != "RUN":
            raise BadRequestError(f"PHASE {when} can only be RUN, not {phase!r}")
        job_id = self.service.new_job_id()
        try:
            pairs, uploads = await self.save_uploads(job_id, items)
            await make(
                JobParameters(pairs),
                job_id=job_id,
                uploads=uploads,
                run_id=_last(items, "runid"),
                execution_duration=_last(items, "executionduration"),
                destruction=_last(items, "destruction"),
                run=phase is not None,
            )
        except BaseException:
            shutil.rmtree(self.service.job_dir(job_id), ignore_errors=True)
            raise
        return self.see_job(request, job_id)

    @_uws
    async def again(self, request: Request) -> Response:
        """Run the job again: GET is an HTML form with the old values, POST creates the
        new job (its parameters the old ones with the posted names replaced; PHASE=RUN
        starts it) and answers 303 to it. The new job's jobInfo names this one."""
        owner = self.owner(request)
        parent_id = request.path_params["job_id"]
        if request.method == "GET":
            parent = await self.service.get(self.job_list, owner, parent_id)
            page = rerun.form_html(parent, self.job_url(request, parent_id))
            return HTMLResponse(page)
        make = functools.partial(self.service.again, self.job_list, owner, parent_id)
        return await self.new_job(request, make, "when running a job again")

    @_uws
    async def job(self, request: Request) -> Response:
        owner = self.owner(request)
        job_id = request.path_params["job_id"]
        if request.method == "DELETE":
            await self.service.delete(self.job_list, owner, job_id)
            return RedirectResponse(self.list_url(request), status_code=303)
        if request.method == "POST":
            items = await self.form(request)
            action = _last(items, "action")
            if action is not None:
                if action.upper() != "DELETE":
                    raise BadRequestError(f"ACTION can only be DELETE, not {action!r}")
                await self.service.delete(self.job_list, owner, job_id)
                return RedirectResponse(self.list_url(request), status_code=303)
            phase = _last(items, "phase")
            if any(k not in _CONTROL for k, _ in items):
                # parameters posted to the job itself (UWS 1.0 clients such as uws-client)
                await self.update_parameters(owner, job_id, items)
            elif phase is None:
                raise BadRequestError(
                    "POST to a job takes ACTION=DELETE, PHASE=RUN|ABORT or parameters"
                )
            if phase is not None:
                await self.change_phase(owner, job_id, phase)
            return self.see_job(request, job_id)
        items = _params(request.query_params.multi_items())
        wait = _last(items, "wait")
        if wait is None:
            job = await self.service.get(self.job_list, owner, job_id)
        else:
            seconds = models.wait_seconds(wait, self.job_list.max_wait)
            phase = _last(items, "phase")
            wanted = models.parse_phase(phase) if phase else None
            job = await self.service.wait(self.job_list, owner, job_id, seconds, wanted)
        document = xml.job_document(job, self.job_url(request, job_id), self.stylesheet(request))
        return Response(document, media_type=XML_TYPE)

    async def update_parameters(
        self, owner: str | None, job_id: str, items: list[tuple[str, Any]]
    ) -> None:
        job = await self.service.get(self.job_list, owner, job_id)
        models.check_parameters_editable(job.phase)  # before storing any upload
        pairs, uploads = await self.save_uploads(job_id, items)
        await self.service.update_parameters(
            self.job_list, owner, job_id, JobParameters(pairs), uploads
        )

    async def change_phase(self, owner: str | None, job_id: str, phase: str) -> None:
        verb = phase.strip().upper()
        if verb == "RUN":
            await self.service.run(self.job_list, owner, job_id)
        elif verb == "ABORT":
            await self.service.abort(self.job_list, owner, job_id)
        else:
            raise BadRequestError(f"PHASE must be RUN or ABORT, not {phase!r}")

    @_uws
    async def phase(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        if request.method == "POST":
            phase = await self.posted(request, "phase", "RUN or ABORT")
            await self.change_phase(self.owner(request), job_id, phase)
            return self.see_job(request, job_id)
        return self.text((await self.job_record(request)).phase.value)

    @_uws
    async def execution_duration(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        if request.method == "POST":
            value = await self.posted(request, "executionduration", "seconds")
            await self.service.set_execution_duration(
                self.job_list, self.owner(request), job_id, value
            )
            return self.see_job(request, job_id)
        return self.text(str((await self.job_record(request)).execution_duration))

    @_uws
    async def destruction(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        if request.method == "POST":
            value = await self.posted(request, "destruction", "an ISO 8601 time")
            await self.service.set_destruction(self.job_list, self.owner(request), job_id, value)
            return self.see_job(request, job_id)
        return self.text(models.format_time((await self.job_record(request)).destruction))

    @_uws
    async def quote(self, request: Request) -> Response:
        return self.text(models.format_time((await self.job_record(request)).quote))

    @_uws
    async def owner_id(self, request: Request) -> Response:
        return self.text((await self.job_record(request)).owner or "")

    @_uws
    async def parameters(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        if request.method == "POST":
            await self.update_parameters(self.owner(request), job_id, await self.form(request))
            return self.see_job(request, job_id)
        job = await self.job_record(request)
        return Response(xml.parameters_document(job), media_type=XML_TYPE)

    @_uws
    async def results(self, request: Request) -> Response:
        job = await self.job_record(request)
        document = xml.results_document(job, self.job_url(request, job.id))
        return Response(document, media_type=XML_TYPE)

    @_uws
    async def result(self, request: Request) -> Response:
        job = await self.job_record(request)
        wanted = request.path_params["result_id"]
        for result in job.results:
            if result.id != wanted:
                continue
            if result.is_url:
                return RedirectResponse(result.location, status_code=303)
            path = Path(self.service.job_dir(job.id)) / result.location
            if not path.is_file():
                raise NotFoundError(f"result {wanted!r} of job {job.id} is no longer available")
            return FileResponse(path, media_type=result.mime_type, filename=path.name)
        raise NotFoundError(f"job {job.id} has no result {wanted!r}")

    @_uws
    async def error(self, request: Request) -> Response:
        job = await self.job_record(request)
        if job.error is None:
            raise NotFoundError(f"job {job.id} has no error (it is {job.phase.value})")
        return Response(
            xml.error_votable(job.error.message, job.error.detail), media_type=VOTABLE_TYPE
        )
