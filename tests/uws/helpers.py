"""Small UWS client steps shared by the black-box tests (plain httpx, no library of ours)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from lxml import etree

from tests.uws.conftest import UWS_NS, parse

FINAL = {"COMPLETED", "ERROR", "ABORTED", "ARCHIVED"}


def create(
    http: httpx.Client, path: str = "/demo", files: dict | None = None, **params: object
) -> str:
    """POST a new job; return its URL (after checking the 303 and the id in it)."""
    data = {k: [str(x) for x in v] if isinstance(v, list) else str(v) for k, v in params.items()}
    response = http.post(path, data=data, files=files)
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(str(http.base_url).rstrip("/") + path + "/")
    return location


def job(http: httpx.Client, url: str, **query: object) -> etree._Element:
    response = http.get(url, params={k: str(v) for k, v in query.items()})
    assert response.status_code == 200, response.text
    return parse(response.content)


def text(element: etree._Element, name: str) -> str | None:
    found = element.find(UWS_NS + name)
    if found is None:
        return None
    return found.text


def phase(http: httpx.Client, url: str) -> str:
    response = http.get(url + "/phase")
    assert response.status_code == 200, response.text
    return response.text.strip()


def wait_final(http: httpx.Client, url: str, timeout: float = 30.0) -> etree._Element:
    """Follow the job with WAIT=-1 until it reaches a final phase."""
    deadline = time.monotonic() + timeout
    document = job(http, url)
    while text(document, "phase") not in FINAL:
        assert time.monotonic() < deadline, f"{url} still {text(document, 'phase')}"
        document = job(http, url, WAIT=-1, PHASE=text(document, "phase"))
    return document


def wait_phase(http: httpx.Client, url: str, wanted: str, timeout: float = 30.0) -> etree._Element:
    """Follow the job with WAIT until it is in ``wanted`` (fails if it ends elsewhere)."""
    deadline = time.monotonic() + timeout
    document = job(http, url)
    while True:
        current = text(document, "phase")
        if current == wanted:
            return document
        assert current not in FINAL, f"{url} ended {current}, expected {wanted}"
        assert time.monotonic() < deadline, f"{url} still {current}"
        document = job(http, url, WAIT=-1, PHASE=current)  # block only while still there


def parameters(document: etree._Element) -> list[tuple[str, str]]:
    return [(p.get("id"), p.text or "") for p in document.iter(UWS_NS + "parameter")]


def results(document: etree._Element) -> dict[str, str]:
    return {
        r.get("id"): r.get("{http://www.w3.org/1999/xlink}href")
        for r in document.iter(UWS_NS + "result")
    }


def progress_pid(document: etree._Element) -> int | None:
    """The worker pid the demo 'sleep' task reports in its jobInfo progress message."""
    for element in document.iter("{urn:x-uws:jobinfo}progress"):
        message = element.text or ""
        if message.startswith("pid="):
            return int(message[4:])
    return None


def heartbeat_stops(heartbeat: Path, timeout: float = 10.0) -> None:
    """Assert the demo runner's heartbeat file (rewritten every 0.05 s while it runs)
    stops changing within ``timeout``: the work has really stopped."""
    deadline = time.monotonic() + timeout
    while True:
        before = heartbeat.read_text()
        time.sleep(0.3)  # six heartbeats' time
        if heartbeat.read_text() == before:
            return
        assert time.monotonic() < deadline, f"{heartbeat} still beating after {timeout} s"
