"""One way to answer a refused request: the reason's HTTP status, its code and a remedy.

Handlers raise :class:`service.reasons.AlvoError`; the wrapper of their
protocol renders it -- :func:`json_errors` here for the campaign API and the
labelling pages, :func:`service.vo.dali.endpoint` as a DALI error VOTable for
SSA/DataLink/TAP, and the UWS routes as a 400 on job creation. Anything else
that escapes is a bug: it becomes ``INTERNAL_ERROR`` (500) with no traceback
in the answer; the log has the traceback (a RecursionError's thousands of
identical frames only at DEBUG). The exceptions a healthy service meets are a
write that waited too long for the database lock, ``DATABASE_BUSY`` (503), and a
database server that is away (restarting), ``DATABASE_UNAVAILABLE`` (503).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from service.reasons import AlvoError, Reason
from uws.store import RETRY_AFTER_S, is_busy, is_disk_full, is_unavailable

LOG = logging.getLogger(__name__)
Handler = Callable[[Request], Awaitable[Response]]


def error_json(error: AlvoError) -> JSONResponse:
    """``{"error": "CODE: detail", "reason": "CODE", "detail": ...}`` with the reason's status."""
    body = {"error": str(error), "reason": error.reason.code, "detail": error.detail}
    return JSONResponse(body, status_code=error.status, headers=retry_headers(error))


def retry_headers(error: AlvoError) -> dict[str, str] | None:
    """``Retry-After`` for a refusal that passes by itself (503)."""
    return {"Retry-After": str(RETRY_AFTER_S)} if error.status == 503 else None


def unexpected(request: Request, error: BaseException) -> AlvoError:
    """Log an unforeseen failure; the client learns only that it happened.

    A write that lost the wait for the database lock is no bug but a moment
    (:func:`uws.store.is_busy`): a 503 the client may repeat, logged without traceback.
    """
    if is_busy(error):
        LOG.warning("%s %s: %s", request.method, request.url.path, error.args[0])
        return AlvoError(Reason.DATABASE_BUSY)
    if is_unavailable(error):
        LOG.warning("%s %s: database unavailable: %s", request.method, request.url.path, error)
        return AlvoError(Reason.DATABASE_UNAVAILABLE)
    if is_disk_full(error):
        LOG.error("%s %s: disk full: %s", request.method, request.url.path, error)
        return AlvoError(Reason.DISK_FULL)
    deep = isinstance(error, RecursionError)
    LOG.error(
        "internal error answering %s %s: %r",
        request.method, request.url.path, error, exc_info=None if deep else error,
    )  # fmt: skip
    if deep:
        LOG.debug("traceback of the internal error", exc_info=error)
    return AlvoError(Reason.INTERNAL_ERROR)


def json_errors(handler: Handler) -> Handler:
    """Wrap a JSON handler: refusals and bugs both become JSON error documents."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except AlvoError as error:
            return error_json(error)
        except Exception as error:  # a bug: said, logged, never shown
            return error_json(unexpected(request, error))

    return wrapped
