"""Read a UWS job's results list: the little client side alvo's own tools need.

Parsing is lxml with entities and network access off: a job document comes
from a URL the user typed and must not make us fetch anything else.
"""

from __future__ import annotations

import urllib.request

from lxml import etree

UWS_NS = "http://www.ivoa.net/xml/UWS/v1.0"
XLINK_NS = "http://www.w3.org/1999/xlink"
SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


def fetch(url: str, timeout_s: float = 30) -> tuple[bytes, str]:
    """The body and content type at ``url``."""
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return response.read(), response.headers.get("Content-Type", "")


def job_results(document: bytes) -> dict[str, tuple[str, str]]:
    """``{result id: (href, mime-type)}`` from a UWS job or results document."""
    root = etree.fromstring(document, SAFE_PARSER)
    results = {}
    for result in root.iter(f"{{{UWS_NS}}}result"):
        href = result.get(f"{{{XLINK_NS}}}href", "")
        results[result.get("id", "")] = (href, result.get("mime-type", ""))
    return results


def is_votable(href: str, mime_type: str) -> bool:
    return "votable" in mime_type or href.lower().endswith((".vot", ".votable", ".xml"))


def votable_results(url: str, only: list[str] | None = None) -> dict[str, str]:
    """VOTable results of the job at ``url``; a VOTable URL maps to itself."""
    body, content_type = fetch(url)
    if b"<VOTABLE" in body[:2000].upper():
        return {"table": url}
    if b"uws" not in body[:2000].lower():
        raise ValueError(f"{url} is neither a UWS job nor a VOTable ({content_type})")
    return {
        result_id: href
        for result_id, (href, mime_type) in job_results(body).items()
        if is_votable(href, mime_type) and (not only or result_id in only)
    }
