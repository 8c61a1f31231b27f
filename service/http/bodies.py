"""Request bodies read with limits: every refusal a named reason, never a 500.

A body is read as a stream and cut off at a cap (``BODY_TOO_LARGE``, 413), so
a 100 MiB POST costs the service no more than the cap; a declared
``Content-Length`` above it is refused before anything is read. Forms keep
each text field under :data:`MAX_FIELD_BYTES`; JSON is refused when it holds
``NaN``/``Infinity``, numbers no float can hold (``1e400``) or integers too long
to be anything but an attack. Broken encodings (multipart without boundary,
bad JSON) are ``BAD_REQUEST_BODY``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request

from service.reasons import AlvoError, Reason
from uws.routes import capped_request

#: Largest text field of a form (a DALI parameter, a campaign description), bytes.
MAX_FIELD_BYTES = 1 << 20
#: Most digits an integer in a JSON body may have (a 64-bit integer has 19).
MAX_INTEGER_DIGITS = 20


def too_large(limit: int) -> AlvoError:
    return AlvoError(
        Reason.BODY_TOO_LARGE, f"the request body is larger than the limit of {limit} bytes"
    )


def capped(request: Request, limit: int) -> Request:
    """``request`` whose body ends in ``BODY_TOO_LARGE`` once more than ``limit`` bytes came."""
    return capped_request(request, limit, lambda: too_large(limit))


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, at most ``limit`` bytes of it."""
    chunks = []
    async for chunk in capped(request, limit).stream():
        chunks.append(chunk)
    return b"".join(chunks)


async def read_form(
    request: Request, limit: int, max_field_bytes: int = MAX_FIELD_BYTES, max_files: int = 100
) -> FormData:
    """A urlencoded or multipart form; files spool to disk, text fields stay small."""
    try:
        return await capped(request, limit).form(
            max_files=max_files, max_fields=1000, max_part_size=max_field_bytes
        )
    except (HTTPException, MultiPartException) as error:
        message = str(getattr(error, "detail", None) or error)
        if "exceeded maximum size" in message:
            raise AlvoError(
                Reason.BODY_TOO_LARGE,
                f"a form field is larger than {max_field_bytes} bytes; send large tables "
                "as a file part",
            ) from None
        raise AlvoError(Reason.BAD_REQUEST_BODY, f"unreadable form: {message}") from None
    except (ValueError, UnicodeDecodeError, KeyError) as error:
        raise AlvoError(Reason.BAD_REQUEST_BODY, f"unreadable form: {error}") from None


def _refuse_constant(name: str) -> float:
    raise AlvoError(Reason.BAD_REQUEST_BODY, f"JSON {name} is not a number this service takes")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        _refuse_constant(text)
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise AlvoError(
            Reason.BAD_REQUEST_BODY, f"JSON integer of {len(text)} digits is beyond any count"
        )
    return int(text)


def parse_json(body: bytes) -> Any:
    """JSON with finite numbers only; any decoding problem is ``BAD_REQUEST_BODY``."""
    try:
        return json.loads(
            body,
            parse_constant=_refuse_constant,
            parse_float=_finite,
            parse_int=_bounded_int,
        )
    except (ValueError, RecursionError) as error:
        raise AlvoError(Reason.BAD_REQUEST_BODY, f"the body is not JSON: {error}") from None


async def read_json(request: Request, limit: int) -> Any:
    return parse_json(await read_body(request, limit))


def media_type(request: Request) -> str:
    """The Content-Type without its parameters, lower case."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
