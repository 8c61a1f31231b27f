"""VOSI availability and capabilities (IVOA VOSI 1.1) for the whole service."""

from __future__ import annotations

from collections.abc import Sequence

from lxml import etree
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from service.settings import Settings

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
        return Response(availability_document(), media_type=XML_MEDIA_TYPE)

    async def capabilities(request: Request) -> Response:
        document = capabilities_document(settings.public_url, SERVICE_CAPABILITIES)
        return Response(document, media_type=XML_MEDIA_TYPE)

    return [
        Route("/availability", availability, methods=["GET"]),
        Route("/capabilities", capabilities, methods=["GET"]),
    ]
