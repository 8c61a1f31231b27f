"""What every IVOA DAL protocol here shares (DALI 1.1): parameters, limits, errors.

Protocol modules (``ssa``, ``datalink``, ``tap``) build on these pieces so that
they behave alike:

- :class:`DaliParams` -- request parameters from the query string and a
  form-encoded POST body, with case-insensitive names (DALI 1.1 §3.1); an
  empty value counts as not given.
- :func:`maxrec` -- ``MAXREC`` with a default and a hard limit (§3.2.3);
  :func:`add_overflow_info` appends ``INFO name="QUERY_STATUS"
  value="OVERFLOW"`` after the TABLE when the limit truncated the result.
- :func:`response_format` -- ``RESPONSEFORMAT`` (§3.2.4) for VOTable output,
  including the ``serialization`` media-type parameter.
- :func:`parse_ranges`, :func:`parse_interval`, :func:`parse_time` -- the
  SSA-style ``lo/hi`` range lists, DALI ``interval`` values (``"lo hi"``) and
  DALI timestamps or MJD.
- :class:`DaliError` and :func:`endpoint` -- a refused request becomes a VOTable
  error document (§5.2: ``INFO name="QUERY_STATUS" value="ERROR"``, its text
  ``"REASON: detail"``) with an HTTP 4xx status; anything unexpected becomes a
  500 error document, never a traceback.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import math
import re
from collections.abc import Awaitable, Callable, Iterable

from lxml import etree
from starlette.requests import Request
from starlette.responses import Response

from service.http.bodies import MAX_FIELD_BYTES, read_form
from service.http.errors import retry_headers, unexpected
from service.reasons import AlvoError, Reason
from service.vo.templates import SERIALIZATIONS, VOTABLE_NS, parse_xml, v

VOTABLE_MEDIA_TYPE = "application/x-votable+xml"
LOG = logging.getLogger(__name__)

#: RESPONSEFORMAT values that mean "a VOTable" (DALI 1.1 §3.2.4), before any ";params".
VOTABLE_FORMATS = frozenset({"votable", VOTABLE_MEDIA_TYPE, "text/xml", "application/xml"})
#: Short names TAP advertises in its capabilities (``/tap/capabilities``): every
#: endpoint that takes RESPONSEFORMAT accepts them alike.
VOTABLE_ALIASES = {"votable/td": "tabledata", "votable/b2": "binary2"}
_MJD_EPOCH = dt.datetime(1858, 11, 17, tzinfo=dt.UTC)


class DaliError(AlvoError):
    """A request the service refuses, rendered as a DALI error document.

    ``status`` is the HTTP status: the reason's own (400 for a bad parameter,
    404 for an unknown collection or dataset) unless given.
    """


def bad_parameter(name: str, detail: str) -> DaliError:
    return DaliError(Reason.BAD_PARAMETER, f"{name}: {detail}")


class DaliParams:
    """Request parameters with case-insensitive names (DALI 1.1 §3.1).

    Values keep their order; a parameter given with an empty value is treated
    as not given, as clients such as pyvo send ``MAXREC=`` for "no limit set".
    """

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._values: dict[str, list[str]] = {}
        for key, value in items:
            if value is None or str(value).strip() == "":
                continue
            self._values.setdefault(key.upper(), []).append(str(value).strip())

    @classmethod
    async def from_request(cls, request: Request, limit: int = 4 * MAX_FIELD_BYTES) -> DaliParams:
        """Query and form parameters; a POST body over ``limit`` bytes is BODY_TOO_LARGE."""
        items = list(request.query_params.multi_items())
        if request.method == "POST":
            form = await read_form(request, limit, max_files=0)
            items += [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
        return cls(items)

    def __contains__(self, name: str) -> bool:
        return name.upper() in self._values

    def getlist(self, name: str) -> list[str]:
        return list(self._values.get(name.upper(), []))

    def get(self, name: str, default: str | None = None) -> str | None:
        """The single value of ``name``; repeating it with another value is an error."""
        values = self._values.get(name.upper())
        if not values:
            return default
        if len(set(values)) > 1:
            raise bad_parameter(name.upper(), f"given {len(values)} times; it takes one value")
        return values[0]

    def names(self) -> list[str]:
        return list(self._values)


def maxrec(params: DaliParams, default: int, limit: int) -> int:
    """``MAXREC``: a non-negative integer; above ``limit`` it is cut to ``limit``."""
    text = params.get("MAXREC")
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise bad_parameter("MAXREC", f"{text!r} is not an integer") from None
    if value < 0:
        raise bad_parameter("MAXREC", f"{value} is negative; give 0 or more rows")
    return min(value, limit)


@dataclasses.dataclass(frozen=True)
class VotableFormat:
    """How to write the VOTable a client asked for."""

    media_type: str = VOTABLE_MEDIA_TYPE
    serialization: str = "tabledata"  # tabledata | binary2 | binary


def response_format(params: DaliParams, name: str = "RESPONSEFORMAT") -> VotableFormat:
    """Parse ``RESPONSEFORMAT`` (or another name); only VOTable output is offered.

    ``application/x-votable+xml;serialization=BINARY2`` picks the encoding;
    ``text/xml`` is answered with that media type for browsers.
    """
    text = params.get(name)
    if text is None:
        return VotableFormat()
    if text.strip().lower() in VOTABLE_ALIASES:
        return VotableFormat(serialization=VOTABLE_ALIASES[text.strip().lower()])
    base, *extras = [part.strip() for part in text.split(";")]
    if base.lower() not in VOTABLE_FORMATS:
        raise bad_parameter(
            name, f"{text!r} is not offered; use {VOTABLE_MEDIA_TYPE} (or 'votable')"
        )
    serialization = "tabledata"
    for extra in extras:
        key, _, value = extra.partition("=")
        if key.strip().lower() == "serialization":
            serialization = value.strip().strip('"').lower()
            if serialization not in SERIALIZATIONS:
                raise bad_parameter(name, "serialization must be TABLEDATA, BINARY2 or BINARY")
    media = "text/xml" if base.lower() in ("text/xml", "application/xml") else VOTABLE_MEDIA_TYPE
    return VotableFormat(media, serialization)


def _number(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise bad_parameter(name, f"{text!r} is not a number") from None
    if math.isnan(value):
        raise bad_parameter(name, "NaN is not a valid bound")
    return value


def parse_ranges(
    text: str, name: str, convert: Callable[[str, str], float] = _number
) -> list[tuple[float, float]]:
    """An SSA range list: ``lo/hi``, open ``lo/`` or ``/hi``, or one value, comma-separated.

    An optional ``;qualifier`` suffix (SSA's frame or source) is ignored. Open
    ends become -inf/+inf; a single value ``x`` is the range ``(x, x)``.
    """
    text = text.split(";", 1)[0]
    ranges = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise bad_parameter(name, f"empty range in {text!r}")
        if "/" in part:
            lo_text, _, hi_text = part.partition("/")
            lo = convert(lo_text.strip(), name) if lo_text.strip() else -math.inf
            hi = convert(hi_text.strip(), name) if hi_text.strip() else math.inf
        else:
            lo = hi = convert(part, name)
        if lo > hi:
            raise bad_parameter(name, f"range {part!r} has its lower bound above its upper bound")
        ranges.append((lo, hi))
    return ranges


def parse_interval(text: str, name: str) -> tuple[float, float]:
    """A DALI ``interval`` (``xtype="interval"``): ``"lo hi"``; ``-Inf``/``+Inf`` open a side."""
    parts = text.split()
    if len(parts) != 2:
        raise bad_parameter(name, f"{text!r} is not an interval 'lo hi' (two numbers)")
    lo, hi = (_number(part, name) for part in parts)
    if lo > hi:
        raise bad_parameter(name, f"interval {text!r} has its lower bound above its upper bound")
    return lo, hi


_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?Z?$")


def parse_time(text: str, name: str = "TIME") -> float:
    """A time as MJD (UTC days), given as MJD or as DALI timestamp ``YYYY-MM-DD[Thh:mm:ss[.s]]``."""
    try:
        return float(text)
    except ValueError:
        pass
    if not _ISO.match(text):
        raise bad_parameter(name, f"{text!r} is neither an MJD nor an ISO 8601 timestamp")
    try:
        moment = dt.datetime.fromisoformat(text.rstrip("Z"))
    except ValueError as error:
        raise bad_parameter(name, f"{text!r}: {error}") from None
    moment = moment.replace(tzinfo=dt.UTC)
    return (moment - _MJD_EPOCH).total_seconds() / 86400.0


# --- documents --------------------------------------------------------------
def status_info(value: str, text: str = "") -> etree._Element:
    info = etree.Element(v("INFO"), name="QUERY_STATUS", value=value)
    if text:
        info.text = text
    return info


def error_document(message: str) -> bytes:
    """The DALI error VOTable: a results RESOURCE holding only the ERROR status."""
    root = etree.Element(v("VOTABLE"), nsmap={None: VOTABLE_NS}, version="1.4")
    resource = etree.SubElement(root, v("RESOURCE"), type="results")
    resource.append(status_info("ERROR", message))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def add_overflow_info(root: etree._Element) -> None:
    """Append the OVERFLOW status after the results TABLE (DALI 1.1 §5.4.1)."""
    resource = root.find(f"{v('RESOURCE')}[@type='results']")
    if resource is None:
        raise ValueError("document has no results RESOURCE")
    table = resource.find(v("TABLE"))
    info = status_info("OVERFLOW", "The result was truncated at MAXREC rows.")
    if table is None:
        resource.append(info)
    else:
        table.addnext(info)


def votable_response(body: bytes, fmt: VotableFormat | None = None, status: int = 200) -> Response:
    media = (fmt or VotableFormat()).media_type
    return Response(body, status_code=status, media_type=media)


def error_response(error: AlvoError) -> Response:
    """The DALI error document of a refusal, with its reason's HTTP status."""
    response = votable_response(error_document(str(error)), status=error.status)
    response.headers.update(retry_headers(error) or {})
    return response


Handler = Callable[[Request], Awaitable[Response]]


def endpoint(handler: Handler) -> Handler:
    """Wrap a DAL request handler so that every failure is an error document."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except AlvoError as error:
            return error_response(error)
        except Exception as error:  # the client gets a document, the log the traceback
            return error_response(unexpected(request, error))

    return wrapped


__all__ = [
    "VOTABLE_MEDIA_TYPE",
    "DaliError",
    "DaliParams",
    "VotableFormat",
    "add_overflow_info",
    "bad_parameter",
    "endpoint",
    "error_document",
    "error_response",
    "maxrec",
    "parse_interval",
    "parse_ranges",
    "parse_time",
    "parse_xml",
    "response_format",
    "status_info",
    "votable_response",
]
