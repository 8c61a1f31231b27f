"""VOSI availability and capabilities (IVOA VOSI 1.1) for the whole service."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lxml import etree
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from service.settings import Settings
from service.store.health import database_answers

VOSI_AVAILABILITY = "http://www.ivoa.net/xml/VOSIAvailability/v1.0"
VOSI_CAPABILITIES = "http://www.ivoa.net/xml/VOSICapabilities/v1.0"
VR = "http://www.ivoa.net/xml/VOResource/v1.0"
VS = "http://www.ivoa.net/xml/VODataService/v1.1"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XML_MEDIA_TYPE = "text/xml; charset=utf-8"


def availability_document(available: bool = True, note: str = "accepting requests") -> bytes:
    ns = VOSI_AVAILABILITY
    root = etree.Element(f"{{{ns}}}availability", nsmap={"vosi": ns})
    etree.SubElement(root, f"{{{ns}}}available").text = "true" if available else "false"
    etree.SubElement(root, f"{{{ns}}}note").text = note
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def health(database_url: str, executor: Any = None) -> tuple[bool, str]:
    """``(available, note)``: the database answers ``SELECT 1`` and, when given, the job
    executor can run jobs. A service that cannot do either must not say it is available."""
    notes = []
    try:
        database_answers(database_url)
        notes.append("database answering")
    except Exception as error:  # any driver's failure: report, never raise
        return False, f"database unreachable: {type(error).__name__}: {str(error)[:200]}"
    if executor is not None:
        ok, note = executor.health()
        if not ok:
            return False, note
        notes.append(note)
    return True, "accepting requests: " + "; ".join(notes)


def availability_response(request: Request, settings: Settings) -> Response:
    """The availability document of the app serving ``request``: its database, its UWS
    executor (if any) and its running TAP queries with their time so far and limit."""
    uws = getattr(request.app.state, "uws", None)
    available, note = health(settings.sqlalchemy_url, getattr(uws, "executor", None))
    tap = getattr(request.app.state, "tap", None)  # a TapDatabase: what its queries cost now
    if tap is not None:
        note += "; " + tap.running_note()
    return Response(availability_document(available, note), media_type=XML_MEDIA_TYPE)


def capabilities_document(base_url: str, capabilities: Sequence[tuple[str, str]]) -> bytes:
    """``capabilities``: (standardID, path relative to base_url) of each interface."""
    root = etree.Element(
        f"{{{VOSI_CAPABILITIES}}}capabilities",
        nsmap={"vosi": VOSI_CAPABILITIES, "vr": VR, "vs": VS, "xsi": XSI},
    )
    for standard_id, path in capabilities:
        cap = etree.SubElement(root, "capability", standardID=standard_id)
        interface = etree.SubElement(cap, "interface", role="std")
        interface.set(f"{{{XSI}}}type", "vs:ParamHTTP")
        etree.SubElement(interface, "accessURL", use="base").text = f"{base_url}/{path.lstrip('/')}"
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


#: What the whole service offers (each collection's SSA/DataLink also has its own VOSI).
SERVICE_CAPABILITIES = (
    ("ivo://ivoa.net/std/VOSI#availability", "availability"),
    ("ivo://ivoa.net/std/VOSI#capabilities", "capabilities"),
    ("ivo://ivoa.net/std/SSA", "ssa/ondrejov"),
    ("ivo://ivoa.net/std/SSA", "ssa/lamost"),
    ("ivo://ivoa.net/std/DataLink#links-1.1", "datalink/ondrejov"),
    ("ivo://ivoa.net/std/DataLink#links-1.1", "datalink/lamost"),
    ("ivo://ivoa.net/std/TAP", "tap"),
    *(("ivo://ivoa.net/std/UWS", name) for name in ("ingest", "train", "classify", "iterate")),
)


def routes(settings: Settings) -> list[BaseRoute]:
    async def availability(request: Request) -> Response:
        return await run_in_threadpool(availability_response, request, settings)

    async def capabilities(request: Request) -> Response:
        document = capabilities_document(settings.public_url, SERVICE_CAPABILITIES)
        return Response(document, media_type=XML_MEDIA_TYPE)

    return [
        Route("/availability", availability, methods=["GET"]),
        Route("/capabilities", capabilities, methods=["GET"]),
    ]
