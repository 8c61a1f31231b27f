"""VOSI availability and capabilities (IVOA VOSI 1.1) for the whole service."""

from __future__ import annotations

from lxml import etree
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from service.settings import Settings

VOSI_AVAILABILITY = "http://www.ivoa.net/xml/VOSIAvailability/v1.0"
VOSI_CAPABILITIES = "http://www.ivoa.net/xml/VOSICapabilities/v1.0"
VR = "http://www.ivoa.net/xml/VOResource/v1.0"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XML_MEDIA_TYPE = "text/xml; charset=utf-8"


def availability_document(available: bool = True, note: str = "accepting requests") -> bytes:
    ns = VOSI_AVAILABILITY
    root = etree.Element(f"{{{ns}}}availability", nsmap={"vosi": ns})
    etree.SubElement(root, f"{{{ns}}}available").text = "true" if available else "false"
    etree.SubElement(root, f"{{{ns}}}note").text = note
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def capabilities_document(base_url: str, capabilities: list[tuple[str, str, str | None]]) -> bytes:
    """``capabilities``: (standardID, path relative to base_url, xsi:type or None)."""
    root = etree.Element(
        f"{{{VOSI_CAPABILITIES}}}capabilities",
        nsmap={"vosi": VOSI_CAPABILITIES, "vr": VR, "xsi": XSI},
    )
    for standard_id, path, xsi_type in capabilities:
        cap = etree.SubElement(root, "capability", standardID=standard_id)
        if xsi_type:
            cap.set(f"{{{XSI}}}type", xsi_type)
        interface = etree.SubElement(cap, "interface")
        interface.set(f"{{{XSI}}}type", "vs:ParamHTTP")
        if xsi_type:
            interface.set("role", "std")
        etree.SubElement(interface, "accessURL", use="base").text = f"{base_url}/{path.lstrip('/')}"
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def routes(settings: Settings) -> list[BaseRoute]:
    async def availability(request: Request) -> Response:
        return Response(availability_document(), media_type=XML_MEDIA_TYPE)

    async def capabilities(request: Request) -> Response:
        caps = [
            ("ivo://ivoa.net/std/VOSI#availability", "availability", None),
            ("ivo://ivoa.net/std/VOSI#capabilities", "capabilities", None),
        ]
        return Response(capabilities_document(settings.public_url, caps), media_type=XML_MEDIA_TYPE)

    return [
        Route("/availability", availability, methods=["GET"]),
        Route("/capabilities", capabilities, methods=["GET"]),
    ]
