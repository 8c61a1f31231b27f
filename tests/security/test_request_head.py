"""Request heads over the limit, sent to a real ``alvo serve`` (uvicorn + h11) on loopback.

Before, a 200 KiB header got no answer (the socket was reset while the client
was still sending) and a 100 KiB one was accepted when it arrived in one read;
now every head over ``ALVO_MAX_HEAD_BYTES`` is a 431 (a long URL a 414) with
its reason, and the service goes on answering.
"""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from tests.security.processes import alvo_serve, free_port

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    home = tmp_path_factory.mktemp("head") / "home"
    process = alvo_serve(home, free_port(), max_head_bytes=str(LIMIT))
    try:
        yield process.start("/availability", timeout=120)
    finally:
        process.stop()


def raw(port: int, head: bytes) -> tuple[int, bytes]:
    """Send ``head`` whole over a plain socket, then read the answer to its end."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(head)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


@pytest.mark.parametrize("size", [100 << 10, 200 << 10, 1 << 20])
def test_a_large_header_is_a_431_the_client_reads(service, size):
    response = httpx.get(service.url + "/availability", headers={"X-Big": "a" * size}, timeout=30)
    assert response.status_code == 431, response.text[:300]
    assert response.json()["reason"] == "REQUEST_HEAD_TOO_LARGE"
    assert "ALVO_MAX_HEAD_BYTES" not in response.json()["detail"]  # says what to do, not how
    assert str(LIMIT) in response.json()["detail"]


def test_a_long_url_is_a_414_over_a_raw_socket(service):
    head = b"GET /availability?x=" + b"a" * (300 << 10) + b" HTTP/1.1\r\nHost: t\r\n\r\n"
    status, body = raw(service.port, head)
    assert status == 414
    assert json.loads(body)["reason"] == "URL_TOO_LONG"


def test_many_headers_over_a_raw_socket_are_a_431(service):
    lines = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(200))
    status, body = raw(service.port, b"GET /availability HTTP/1.1\r\nHost: t\r\n" + lines + b"\r\n")
    assert status == 431
    assert json.loads(body)["reason"] == "REQUEST_HEAD_TOO_LARGE"


def test_a_head_under_the_limit_is_served_and_the_service_goes_on(service):
    response = httpx.get(service.url + "/availability", headers={"X-Big": "a" * (32 << 10)})
    assert response.status_code == 200 and "<vosi:available>true" in response.text
    query = "SELECT TOP 1 table_name FROM TAP_SCHEMA.tables"
    form = {"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query, "PAD": "p" * (200 << 10)}
    posted = httpx.post(service.url + "/tap/sync", data=form)  # a large body is no large head
    assert posted.status_code == 200 and 'value="OK"' in posted.text, posted.text[:300]
