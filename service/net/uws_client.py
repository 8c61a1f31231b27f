"""Read a UWS job's results list: the little client side alvo's own tools need.

Parsing is lxml with entities and network access off: a job document comes
from a URL the user typed and must not make us fetch anything else.
"""

from __future__ import annotations

import dataclasses
import urllib.request
from collections.abc import Callable

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
    """VOTable results of the job at ``url``; a VOTable URL maps to itself.

    A FITS file (a spectrum) is refused with ``NotATableError`` so a caller can send
    it as a spectrum instead.
    """
    body, content_type = fetch(url)
    if body.startswith(b"SIMPLE  ="):
        raise NotATableError(url)
    if b"<VOTABLE" in body[:2000].upper():
        return {"table": url}
    if b"uws" not in body[:2000].lower():
        raise ValueError(f"{url} is neither a UWS job nor a VOTable ({content_type})")
    return {
        result_id: href
        for result_id, (href, mime_type) in job_results(body).items()
        if is_votable(href, mime_type) and (not only or result_id in only)
    }


JOBINFO_NS = "urn:x-uws:jobinfo"


class NotATableError(ValueError):
    """The URL holds a FITS spectrum, not a table."""


@dataclasses.dataclass(frozen=True)
class JobStatus:
    """What a client needs of a job document to follow it."""

    url: str
    phase: str
    fraction: float | None
    message: str
    error: str
    results: dict[str, tuple[str, str]]
    #: The URL of the job this one was run again from (jobInfo), or "".
    parent: str = ""

    @property
    def finished(self) -> bool:
        return self.phase in ("COMPLETED", "ERROR", "ABORTED", "ARCHIVED")


def job_status(url: str, document: bytes) -> JobStatus:
    root = etree.fromstring(document, SAFE_PARSER)
    progress = root.find(f".//{{{JOBINFO_NS}}}progress")
    fraction = progress.get("fraction") if progress is not None else None
    parent = root.find(f".//{{{JOBINFO_NS}}}parent")
    return JobStatus(
        url=url,
        phase=root.findtext(f"{{{UWS_NS}}}phase", default="UNKNOWN"),
        fraction=float(fraction) if fraction not in (None, "") else None,
        message=(progress.text or "") if progress is not None else "",
        error=root.findtext(f".//{{{UWS_NS}}}errorSummary/{{{UWS_NS}}}message", default=""),
        results=job_results(document),
        parent=parent.get("href", "") if parent is not None else "",
    )


def submit(
    list_url: str,
    parameters: list[tuple[str, str]],
    timeout_s: float = 60,
    files: dict[str, tuple[str, bytes]] | None = None,
) -> str:
    """Create and start a job (``PHASE=RUN``); return its URL.

    ``files`` are multipart parts (``{part: (file name, content)}``) that an
    ``UPLOAD=name,param:part`` parameter refers to.
    """
    import httpx

    form: dict[str, list[str]] = {}
    for name, value in [*parameters, ("PHASE", "RUN")]:
        form.setdefault(name, []).append(value)
    response = httpx.post(
        list_url, data=form, files=files or None, timeout=timeout_s, follow_redirects=False
    )
    if response.status_code != 303:
        raise ValueError(f"{list_url} refused the job: HTTP {response.status_code} {response.text}")
    return str(httpx.URL(list_url).join(response.headers["Location"]))


def again(
    job_url: str,
    parameters: list[tuple[str, str]],
    timeout_s: float = 60,
    files: dict[str, tuple[str, bytes]] | None = None,
) -> str:
    """Run the job at ``job_url`` again with ``parameters`` replacing its own of the same
    names (``POST {job}/again`` with ``PHASE=RUN``); return the new job's URL."""
    return submit(job_url.rstrip("/") + "/again", parameters, timeout_s, files)


def follow(job_url: str, on_change: Callable[[JobStatus], None], wait_s: int = 30) -> JobStatus:
    """Block until the job ends, calling ``on_change`` on each phase or progress change.

    Uses UWS 1.1 WAIT, so the server answers the moment the phase changes; alvo's
    own service answers a WAIT at a progress report too (at most every 0.5 s a job),
    another at most ``wait_s`` late.
    """
    import httpx

    status = job_status(job_url, httpx.get(job_url, timeout=60).content)
    on_change(status)
    while not status.finished:
        response = httpx.get(
            job_url, params={"WAIT": str(wait_s), "PHASE": status.phase}, timeout=wait_s + 60
        )
        status = job_status(job_url, response.content)
        on_change(status)
    return status
